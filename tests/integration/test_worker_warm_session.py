"""A warm Blender session driven directly (no farm): reuse, re-open and refusals."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vstudio import jobtypes
from vstudio.worker.runner import RunResult
from vstudio.worker.warm import BlenderSession, WarmRun


@pytest.fixture(scope="module")
def scenes(scenes: Path) -> Path:
    """The shared scenes (conftest.py) and two.blend."""
    d = scenes
    # a second scene, smaller, that only a scene switch renders
    subprocess.run(["blender", "-b", str(d / "a.blend"), "--python-expr",
                    "import bpy; o = bpy.context.scene.copy(); o.name = 'Other'; "
                    "o.use_fake_user = True; "
                    "o.render.resolution_x, o.render.resolution_y = 32, 18; "
                    f"bpy.ops.wm.save_as_mainfile(filepath={str(d / 'two.blend')!r})"],
                   check=True, capture_output=True)
    return d


@pytest.fixture
def session(tmp_path: Path) -> Iterator[BlenderSession]:
    s = BlenderSession(tmp_path / "session").start()
    try:
        yield s
    finally:
        s.close()
    assert not s.alive


def _task(session: BlenderSession, task_dir: Path, frames: list[int], files: dict[str, Path],
          file: str, trusted: bool = False, **params: Any) -> tuple[RunResult, list[str]]:
    for rel, src in files.items():
        (task_dir / "files" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, task_dir / "files" / rel)
    inv = jobtypes.build({"id": 1, "type": "blender", "frames": frames, "trusted": trusted,
                          "params": {"file": file, **params},
                          "inputs": [{"path": r, "oid": f"{r}:{src.stat().st_size}"}
                                     for r, src in files.items()]}, task_dir,
                         allow_local_paths=True)  # the shared-disk case names one
    assert inv.warm is not None
    lines: list[str] = []
    res = WarmRun(session, inv, on_log=lines.append).wait()
    # as the worker does; the session keeps links of its own
    shutil.rmtree(task_dir / "files", ignore_errors=True)
    return res, lines


def _how(lines: list[str]) -> str:
    (line,) = [x for x in lines if "warm blender session pid" in x]
    return line.rsplit(", ", 1)[1]


def test_same_inputs_reuse_the_open_file_and_textures_still_resolve(
        session: BlenderSession, scenes: Path, tmp_path: Path) -> None:
    files = {"shots/tex.blend": scenes / "tex.blend", "shots/tex.png": scenes / "tex.png"}
    first, lines = _task(session, tmp_path / "t1", [1], files, "shots/tex.blend")
    assert first.error is None and _how(lines) == "opening the file", lines
    # the first task's folder is gone; //tex.png resolves in the session's own folder
    again, lines = _task(session, tmp_path / "t2", [1, 2], files, "shots/tex.blend")
    assert again.error is None and _how(lines) == "file already open", lines
    assert [o.frame for o in again.outputs] == [1, 2]
    assert all(o.path.stat().st_size > 0 for o in again.outputs)
    # other settings: open the file again, so nothing of the last task's settings stays
    other, lines = _task(session, tmp_path / "t3", [2], files, "shots/tex.blend",
                         resolution="32x18")
    assert other.error is None and _how(lines) == "opening the file"


def test_frames_with_gaps_and_a_missing_texture(session: BlenderSession, scenes: Path,
                                                tmp_path: Path) -> None:
    res, _ = _task(session, tmp_path / "t1", [1, 3, 6], {"a.blend": scenes / "a.blend"},
                   "a.blend")
    assert res.error is None and [o.path.name for o in res.outputs] == [
        "frame_000001.png", "frame_000003.png", "frame_000006.png"]
    res, _ = _task(session, tmp_path / "t2", [1], {"tex.blend": scenes / "tex.blend"},
                   "tex.blend")
    assert res.error == "blender exited with code 3: missing input files: //tex.png"
    assert session.alive
    res, _ = _task(session, tmp_path / "t3", [2], {"a.blend": scenes / "a.blend"}, "a.blend")
    assert res.error is None and [o.frame for o in res.outputs] == [2]


def test_a_shared_disk_file_is_opened_again_when_it_changes(session: BlenderSession,
                                                             scenes: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared" / "a.blend"
    shared.parent.mkdir()
    shutil.copyfile(scenes / "a.blend", shared)
    _, lines = _task(session, tmp_path / "t1", [1], {}, str(shared))
    assert _how(lines) == "opening the file"
    _, lines = _task(session, tmp_path / "t2", [2], {}, str(shared))
    assert _how(lines) == "file already open"
    os.utime(shared, (1, 1))  # saved again by somebody
    res, lines = _task(session, tmp_path / "t3", [3], {}, str(shared))
    assert _how(lines) == "opening the file" and res.error is None


def test_after_a_trusted_file_another_file_needs_a_fresh_process(
        session: BlenderSession, scenes: Path, tmp_path: Path) -> None:
    files = {"a.blend": scenes / "a.blend"}
    res, _ = _task(session, tmp_path / "t1", [1], files, "a.blend", trusted=True)
    assert res.error is None and session.ran_scripts
    (tmp_path / "t2" / "files").mkdir(parents=True)
    shutil.copyfile(scenes / "a.blend", tmp_path / "t2" / "files" / "a.blend")
    same = jobtypes.build({"id": 2, "type": "blender", "frames": [2], "trusted": True,
                           "params": {"file": "a.blend"},
                           "inputs": [{"path": "a.blend", "oid": f"a.blend:"
                                       f"{(scenes / 'a.blend').stat().st_size}"}]},
                          tmp_path / "t2")
    other = jobtypes.build({"id": 3, "type": "blender", "frames": [2],
                            "params": {"file": "a.blend"},
                            "inputs": [{"path": "a.blend", "oid": "another"}]}, tmp_path / "t2")
    assert not session.stale_for(same) and session.stale_for(other)


def test_scene_and_camera_are_checked_as_on_the_command_path(session: BlenderSession,
                                                             scenes: Path, tmp_path: Path) -> None:
    files = {"a.blend": scenes / "a.blend"}
    res, _ = _task(session, tmp_path / "t1", [1], files, "a.blend", scene="Nope")
    assert res.error == "blender exited with code 4: scene 'Nope' is not in the file"
    res, _ = _task(session, tmp_path / "t2", [1], files, "a.blend", camera="Nope")
    assert res.error == "blender exited with code 4: camera 'Nope' is not in the file"
    res, lines = _task(session, tmp_path / "t3", [1, 2], files, "a.blend", scene="Scene",
                       camera="Camera")
    assert res.error is None and [o.frame for o in res.outputs] == [1, 2], lines
    two = {"two.blend": scenes / "two.blend"}
    for scene, width in (("Other", 32), ("Scene", 64), ("Other", 32)):
        res, lines = _task(session, tmp_path / f"t-{scene}-{width}", [1], two, "two.blend",
                           scene=scene)
        assert res.error is None, lines
        png = res.outputs[0].path.read_bytes()
        assert struct.unpack(">I", png[16:20])[0] == width, scene
