"""``krita`` tasks through the real ``krita --export`` / ``--export-sequence``: a worker
offers Krita only when it can run it, and a task succeeds only when Krita rendered it."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.kragen import first_pixel, make_animated, make_still
from tests.render_projects import write_png
from vstudio import jobtypes
from vstudio.jobtypes.base import LocalPathRefused, TaskError
from vstudio.worker.runner import Run

RED, BLUE, GREEN = (200, 30, 40), (20, 30, 220), (10, 180, 20)


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("kra")
    make_animated(d / "walk.kra", [RED, BLUE, GREEN])
    make_still(d / "board.kra", RED)
    return d


def _rewritten(src: Path, dest: Path, change: Callable[[str, bytes], bytes]) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as out:
        for info in zin.infolist():
            out.writestr(info, change(info.filename, zin.read(info)))
    return dest


def _run(task_dir: Path, frames: list[int], kra: Path, **kw: Any) -> Any:
    (task_dir / "files").mkdir(parents=True)
    shutil.copyfile(kra, task_dir / "files" / kra.name)
    task = {"id": 1, "type": "krita", "frames": frames, "params": {"file": kra.name},
            "inputs": [{"path": kra.name, "oid": "0" * 64}]}
    inv = jobtypes.build(task, task_dir, **kw)
    lines: list[str] = []
    return inv, Run(inv, on_log=lines.append).wait(), lines


def test_animated_frames_are_krita_s(docs: Path, tmp_path: Path) -> None:
    inv, res, lines = _run(tmp_path / "a", [1, 2], docs / "walk.kra")
    assert inv.argv[1:3] == ["-m", "vstudio.jobtypes.krita"] and res.error is None, lines
    assert "krita: exporting frame 2" in lines
    assert [(o.frame, o.name) for o in res.outputs] == [(1, "frame_000001.png"),
                                                        (2, "frame_000002.png")]
    assert [first_pixel(o.path)[:3] for o in res.outputs] == [BLUE, GREEN]
    # frames out of order and past the last keyframe (which holds)
    inv, res, lines = _run(tmp_path / "b", [0, 4], docs / "walk.kra")
    assert res.error is None, lines
    assert [first_pixel(o.path)[:3] for o in res.outputs] == [RED, GREEN]


def test_a_still_is_exported_once_for_every_frame(docs: Path, tmp_path: Path) -> None:
    inv, res, lines = _run(tmp_path / "s", [4, 5, 6], docs / "board.kra")
    assert res.error is None, lines
    assert any(Path(a).name == "krita" for a in inv.argv) and "--export" in inv.argv
    assert [o.name for o in res.outputs] == ["frame_000004.png", "frame_000005.png",
                                             "frame_000006.png"]
    assert {first_pixel(o.path)[:3] for o in res.outputs} == {RED}


def test_krita_renders_not_the_saved_merged_image(docs: Path, tmp_path: Path) -> None:
    # an older worker delivered the document's saved mergedimage.png as every frame
    blue = write_png(tmp_path / "blue.png", 32, 18, BLUE).read_bytes()
    doc = _rewritten(docs / "board.kra", tmp_path / "stale.kra",
                     lambda name, data: blue if name == "mergedimage.png" else data)
    _, res, lines = _run(tmp_path / "m", [1], doc)
    assert res.error is None, lines
    assert first_pixel(res.outputs[0].path)[:3] == RED


def test_a_file_that_is_no_krita_document_fails(tmp_path: Path) -> None:
    not_kra = tmp_path / "not.kra"
    not_kra.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    with pytest.raises(TaskError, match="not a Krita document"):
        _run(tmp_path / "y", [1], not_kra)


def test_file_layers_outside_the_task_need_local_paths(docs: Path, tmp_path: Path) -> None:
    layer = b'<layers><layer name="ref" nodetype="filelayer" source="/etc/hostname"/>'
    doc = _rewritten(docs / "board.kra", tmp_path / "ref.kra", lambda name, data: data.replace(
        b"<layers>", layer) if name == "maindoc.xml" else data)
    with pytest.raises(LocalPathRefused, match=r"file layer of ref\.kra"):
        _run(tmp_path / "z", [1], doc)


def test_krita_is_offered_only_where_it_runs(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    krita = shutil.which("krita")
    assert krita and "krita" in jobtypes.available()
    only_krita = tmp_path / "bin"
    only_krita.mkdir()
    (only_krita / "krita").symlink_to(krita)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("PATH", str(only_krita))  # Krita, but no display and no xvfb-run
    assert "krita" not in jobtypes.available()
    monkeypatch.setenv("PATH", str(tmp_path / "none"))
    assert "krita" not in jobtypes.available()  # no Krita at all
    with pytest.raises(TaskError, match="cannot run Krita"):
        _run(tmp_path / "w", [1], _any_kra(tmp_path))


def _any_kra(tmp_path: Path) -> Path:
    kra = tmp_path / "any.kra"
    with zipfile.ZipFile(kra, "w") as z:
        z.writestr("mimetype", "application/x-krita")
        z.writestr("maindoc.xml", "<DOC><IMAGE width='4' height='4'><layers/></IMAGE></DOC>")
    return kra
