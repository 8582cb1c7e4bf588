"""argv building: typed params in, a list of arguments out (never a shell string)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vstudio import jobtypes
from vstudio.jobtypes.base import MissingInput, TaskError
from vstudio.jobtypes.samples import PNG_1PX
from vstudio.jobtypes.schema import PARAMS


def _task(tmp: Path, type_: str, params: dict[str, Any], frames: list[int],
          files: dict[str, bytes] | None = None, trusted: bool = False) -> dict[str, Any]:
    for rel, data in (files or {}).items():
        p = tmp / "files" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return {"id": 7, "attempt": 1, "type": type_, "params": params, "frames": frames,
            "trusted": trusted, "inputs": [{"path": r, "oid": "0" * 64} for r in files or {}]}


def test_blender_argv_order_and_safety(tmp_path: Path) -> None:
    t = _task(tmp_path, "blender", {"file": "shots/a.blend", "samples": 4, "engine": "CYCLES",
                                    "resolution": [64, 36], "format": "PNG", "scene": "Main",
                                    "overrides": {"render.fps": 12}},
              [1, 2, 3], {"shots/a.blend": b"BLENDER-v304"})
    inv = jobtypes.build(t, tmp_path)
    a = inv.argv
    assert a[1:4] == ["-b", str(tmp_path / "files/shots/a.blend"), "-Y"]
    # exit code option before the script, script before the render action
    assert a.index("--python-exit-code") < a.index("--python-expr") < a.index("-a")
    assert a[a.index("-S") + 1] == "Main" and a[a.index("-E") + 1] == "CYCLES"
    assert a[-7:] == ["-x", "1", "-s", "1", "-e", "3", "-a"]
    script = a[a.index("--python-expr") + 1]
    assert "use_denoising = False" in script and '"render.fps": 12' in script
    assert sorted(inv.outputs) == [1, 2, 3]
    assert inv.outputs[2] == tmp_path / "out" / "frame_000002.png"


def test_blender_trusted_steps_and_formats(tmp_path: Path) -> None:
    t = _task(tmp_path, "blender", {"file": "a.blend", "format": "OPEN_EXR",
                                    "resolution_percentage": 50},
              [1, 3, 5], {"a.blend": b"x"}, trusted=True)
    inv = jobtypes.build(t, tmp_path)
    assert "-y" in inv.argv and "-Y" not in inv.argv
    assert inv.argv[-2:] == ["-f", "1,3,5"]
    assert inv.outputs[5].name == "frame_000005.exr"
    assert '"percent": 50' in inv.argv[inv.argv.index("--python-expr") + 1]


@pytest.mark.parametrize("params, message", [
    ({"file": "a.blend", "format": "TIFF"}, "output format"),
    ({"file": "a.blend", "overrides": {"__class__": 1}}, "scene property path"),
    ({"file": "a.blend", "overrides": {"render.fps": [1]}}, "number, string or boolean"),
    ({"file": "a.blend", "resolution": "huge"}, "percent or WxH"),
    ({"file": "a.blend", "engine": "LUXCORE"}, "engine"),
])
def test_blender_bad_params(tmp_path: Path, params: dict[str, Any], message: str) -> None:
    with pytest.raises(TaskError, match=message):
        jobtypes.build(_task(tmp_path, "blender", params, [1], {"a.blend": b"x"}), tmp_path)


def test_missing_inputs_fail_before_running(tmp_path: Path) -> None:
    t = _task(tmp_path, "blender", {"file": "a.blend"}, [1])
    with pytest.raises(MissingInput, match=r"a\.blend"):
        jobtypes.build(t, tmp_path)
    t["inputs"] = [{"path": "tex/wood.png", "oid": "0" * 64}]
    with pytest.raises(MissingInput, match=r"tex/wood\.png"):
        jobtypes.build(t, tmp_path)
    t["inputs"] = [{"path": "../escape.png", "oid": "0" * 64}]
    with pytest.raises(Exception, match="stay inside"):
        jobtypes.build(t, tmp_path)


def test_synfig_times_always_in_frames(tmp_path: Path) -> None:
    t = _task(tmp_path, "synfig", {"file": "b.sif", "width": 64, "height": 36}, [0, 1, 2, 3],
              {"b.sif": b"<canvas/>"})
    a = jobtypes.build(t, tmp_path).argv
    assert a[a.index("--start-time") + 1] == "0f" and a[a.index("--end-time") + 1] == "3f"
    assert a[a.index("-w") + 1] == "64" and a[a.index("-o") + 1].endswith("out/frame.png")
    one = jobtypes.build(_task(tmp_path, "synfig", {"file": "b.sif"}, [5]), tmp_path)
    assert one.argv[one.argv.index("-o") + 1].endswith("frame.0005.png")


def test_ffmpeg_sequence_and_concat(tmp_path: Path) -> None:
    files = {f"render/frame_{i:06d}.png": PNG_1PX for i in (3, 1, 2)}
    t = _task(tmp_path, "ffmpeg", {"block": "render", "fps": 12, "codec": "h264",
                                   "output": "film.mp4"}, [1, 2, 3], files)
    inv = jobtypes.build(t, tmp_path)
    a = inv.argv
    assert a[a.index("-framerate") + 1] == "12" and "libx264" in a and "yuv420p" in a
    assert "trunc(iw/2)*2" in a[a.index("-vf") + 1]
    assert a[-1] == str(tmp_path / "out" / "film.mp4")
    seq = sorted((tmp_path / "seq").iterdir())
    assert [p.resolve().name for p in seq] == [f"frame_{i:06d}.png" for i in (1, 2, 3)]
    t2 = _task(tmp_path / "c", "ffmpeg", {"block": "enc", "codec": "vp9", "output": "film.mp4"},
               [1], {"enc/part_0013.webm": b"v", "enc/part_0001.webm": b"v"})
    inv2 = jobtypes.build(t2, tmp_path / "c")
    assert "concat" in inv2.argv and inv2.argv[-1].endswith("film.webm")
    listing = (tmp_path / "c" / "concat.txt").read_text().splitlines()
    assert listing[0].endswith("part_0001.webm'") and listing[1].endswith("part_0013.webm'")


def test_command_needs_permission_and_substitutes(tmp_path: Path) -> None:
    t = _task(tmp_path, "command", {"argv": ["echo", "{start}-{end}", "$HOME;rm"]}, [4, 5, 6])
    with pytest.raises(TaskError, match="allow-commands"):
        jobtypes.build(t, tmp_path)
    inv = jobtypes.build(t, tmp_path, allow_commands=True)
    assert inv.argv == ["echo", "4-6", "$HOME;rm"]
    assert "command" not in jobtypes.available(False)
    assert "command" in jobtypes.available(True)


def test_every_schema_field_is_read_by_a_builder() -> None:
    # The farm validates with these models; a field no builder reads would be ignored silently.
    sources = {name: (Path(jobtypes.__file__).parent / f"{name}.py").read_text()
               for name in PARAMS}
    for name, model in PARAMS.items():
        for field in model.model_fields:
            if name == "ffmpeg" and field == "block":
                continue  # resolved by the manager into the task's inputs
            if field == "upstream_paths":  # read for every type where inputs are placed
                assert '"upstream_paths"' in (Path(jobtypes.__file__).parent
                                              / "base.py").read_text()
                continue
            assert f'"{field}"' in sources[name], f"{name}.{field} is not used by the worker"


def test_synfig_missing_import_fails_before_rendering(tmp_path: Path) -> None:
    sif = ('<?xml version="1.0"?><canvas version="1.2" width="64" height="36" fps="24" '
           'begin-time="0f" end-time="3f"><layer type="import"><param name="filename">'
           '<string>img/bg.png</string></param></layer></canvas>')
    t = _task(tmp_path, "synfig", {"file": "s/a.sif"}, [0, 1], {"s/a.sif": sif.encode()})
    with pytest.raises(MissingInput, match=r"missing input files of a\.sif: img/bg\.png"):
        jobtypes.build(t, tmp_path)
    (tmp_path / "files/s/img").mkdir()
    (tmp_path / "files/s/img/bg.png").write_bytes(PNG_1PX)
    assert jobtypes.build(t, tmp_path).argv[0].endswith("synfig")
    t2 = _task(tmp_path / "b", "synfig", {"file": "b.sif"}, [0], {"b.sif": b"<canvas"})
    with pytest.raises(TaskError, match="not a readable Synfig file"):
        jobtypes.build(t2, tmp_path / "b")
