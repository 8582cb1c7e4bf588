"""The runner with real programs: Blender, Synfig, ffmpeg, and a process tree to kill."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import need, wait_for
from vstudio import jobtypes
from vstudio.errors import CorruptObject
from vstudio.jobtypes.samples import make_sif
from vstudio.worker.cache import InputCache, blake3_file
from vstudio.worker.runner import Run


def _run(task_dir: Path, task: dict[str, Any], files: dict[str, Path], **kw: Any) -> Any:
    for rel, src in files.items():
        (task_dir / "files" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, task_dir / "files" / rel)
    task.setdefault("inputs", [{"path": r, "oid": "0" * 64} for r in files])
    lines: list[str] = []
    progress: list[float] = []
    inv = jobtypes.build(task, task_dir, **kw)
    res = Run(inv, on_progress=lambda p, f: progress.append(p), on_log=lines.append).wait()
    return res, lines, progress


def test_blender_chunk_renders_each_frame(scenes: Path, tmp_path: Path) -> None:
    res, lines, progress = _run(tmp_path, {"id": 1, "type": "blender", "frames": [2, 3, 4],
                                           "params": {"file": "shot/a.blend", "samples": 2}},
                                {"shot/a.blend": scenes / "a.blend"})
    assert res.error is None, lines
    assert [o.frame for o in res.outputs] == [2, 3, 4]
    assert all(o.path.read_bytes()[:4] == b"\x89PNG" for o in res.outputs)
    assert all(o.seconds is not None and o.peak_mem for o in res.outputs)
    assert progress[-1] == 100.0


def test_missing_texture_is_a_clear_task_error(scenes: Path, tmp_path: Path) -> None:
    # Blender alone would render the missing image magenta and exit 0
    res, _, _ = _run(tmp_path, {"id": 2, "type": "blender", "frames": [1],
                                "params": {"file": "tex.blend"}},
                     {"tex.blend": scenes / "tex.blend"})
    assert res.outputs == []
    assert res.error == "blender exited with code 3: missing input files: //tex.png"


def test_corrupt_blend_is_a_clear_task_error(scenes: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.blend"
    bad.write_bytes((scenes / "a.blend").read_bytes()[:3000])
    res, _, _ = _run(tmp_path / "t", {"id": 3, "type": "blender", "frames": [1],
                                      "params": {"file": "bad.blend"}}, {"bad.blend": bad})
    assert res.error and "exited with code 1" in res.error and "Failed to read blend" in res.error


def test_synfig_then_ffmpeg_encode(tmp_path: Path) -> None:
    need("synfig", "apt-get install synfig")
    need("ffmpeg", "apt-get install ffmpeg")
    sif = make_sif(tmp_path / "b.sif", frames=8)
    res, lines, _ = _run(tmp_path / "s", {"id": 4, "type": "synfig", "frames": list(range(8)),
                                          "params": {"file": "b.sif", "width": 64,
                                                     "height": 36}}, {"b.sif": sif})
    assert res.error is None, lines
    assert [o.name for o in res.outputs] == [f"frame.{i:04d}.png" for i in range(8)]
    frames = {f"render/{o.name}": o.path for o in res.outputs}
    enc, lines, _ = _run(tmp_path / "e", {"id": 5, "type": "ffmpeg", "frames": [0],
                                          "params": {"block": "render", "fps": 24,
                                                     "output": "ball.mp4"}}, frames)
    assert enc.error is None, lines
    video = enc.outputs[0].path
    assert video.name == "ball.mp4" and video.read_bytes()[4:8] == b"ftyp"


def test_synfig_missing_output_folder_is_not_success(tmp_path: Path) -> None:
    need("synfig", "apt-get install synfig")
    sif = make_sif(tmp_path / "b.sif", frames=2)
    task = {"id": 6, "type": "synfig", "frames": [0, 1], "params": {"file": "b.sif"}}
    (tmp_path / "files").mkdir()
    shutil.copyfile(sif, tmp_path / "files" / "b.sif")
    inv = jobtypes.build({**task, "inputs": [{"path": "b.sif", "oid": "0" * 64}]}, tmp_path)
    shutil.rmtree(tmp_path / "out")  # synfig then exits 0 and writes nothing
    res = Run(inv).wait()
    assert res.returncode == 0 and res.error and "wrote no output for frames 0, 1" in res.error


def test_kill_stops_the_whole_process_tree(tmp_path: Path) -> None:
    # a shell that starts a grandchild, as renderers start helpers
    marker = tmp_path / "grandchild.pid"
    script = f"sleep 300 & echo $! > {marker}; wait"
    inv = jobtypes.build({"id": 7, "type": "command", "frames": [1],
                          "params": {"argv": ["sh", "-c", script]}}, tmp_path,
                         allow_commands=True)
    run = Run(inv)
    pid = int(wait_for(lambda: marker.is_file() and marker.read_text().strip(), 10,
                       "the grandchild to start"))
    t0 = time.monotonic()
    run.kill(grace=2)
    res = run.wait()
    assert res.canceled and res.error == "canceled"

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"

    wait_for(gone, 5, "the grandchild to die")
    assert time.monotonic() - t0 < 5


def test_cache_verifies_shares_and_evicts(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    blobs = {}
    for i in range(4):
        p = src / f"{i}.bin"
        p.write_bytes(os.urandom(1000) + bytes([i]))
        blobs[blake3_file(p)] = p

    class Store:
        calls = 0

        def get_file(self, oid: str, dest: Path) -> None:
            Store.calls += 1
            shutil.copyfile(blobs.get(oid, src / "0.bin"), dest)

    cache = InputCache(tmp_path / "cache", max_bytes=2500)
    oids = list(blobs)
    cache.place(Store(), oids[0], tmp_path / "t1" / "a" / "x.bin")
    cache.place(Store(), oids[0], tmp_path / "t2" / "x.bin")  # shared, fetched once
    assert Store.calls == 1 and cache.hits == 1
    assert (tmp_path / "t2" / "x.bin").read_bytes() == blobs[oids[0]].read_bytes()
    for oid in oids[1:]:
        time.sleep(0.01)
        cache.fetch(Store(), oid)
    # over 2500 bytes: the oldest unused go; the one linked into task folders stays
    assert cache.path_for(oids[0]).is_file()
    assert cache.size() <= 2500 + 1001
    assert not cache.path_for(oids[1]).is_file()
    with pytest.raises(CorruptObject, match="arrived corrupt"):
        cache.fetch(Store(), "f" * 64)
    assert not any(p.name.endswith(".part") for p in cache.objects.rglob("*"))


def test_worker_cli_bad_usage() -> None:
    import subprocess

    p = subprocess.run([sys.executable, "-m", "vstudio", "worker", "--server", "ftp://x",
                        "--token", "t"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "http(s)://" in p.stderr


def test_unknown_camera_or_scene_is_a_clear_task_error(scenes: Path, tmp_path: Path) -> None:
    res, _, _ = _run(tmp_path, {"id": 9, "type": "blender", "frames": [1],
                                "params": {"file": "a.blend", "camera": "Nope"}},
                     {"a.blend": scenes / "a.blend"})
    assert res.error == "blender exited with code 4: camera 'Nope' is not in the file"
