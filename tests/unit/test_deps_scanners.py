"""Scanners, the stat cache, the graph and render keys, on files written by the tests."""

from __future__ import annotations

import gzip
import os
import shutil
import time
import zipfile
from pathlib import Path

import pytest

from tests.render_projects import write_png, write_sif
from vstudio.render.graph import CycleError, MissingFiles, build
from vstudio.render.keys import KeyMaker
from vstudio.render.project import Project
from vstudio.render.scan_synfig import parse_time
from vstudio.render.scanners import ScanError, expand_sequence, scan_file
from vstudio.render.statcache import FileCache, content_id

SIF = """<?xml version="1.0" encoding="UTF-8"?>
<canvas version="1.2" width="120" height="60" fps="25" begin-time="0f" end-time="1s 5f">
 <layer type="import" desc="bg"><param name="filename"><string>img/bg.png</string></param></layer>
 <layer type="import" desc="walk"><param name="filename"><string>walk.lst</string></param></layer>
 <layer type="sound"><param name="filename"><string>audio/line.wav</string></param></layer>
 <layer type="paste_canvas"><param name="canvas" use="parts/arm.sif#"/></layer>
 <layer type="circle"><param name="color" use="palette.sif#:skin"/></layer>
 <layer type="circle"><param name="color" use="#local"/></layer>
 <layer type="text"><param name="family"><string>fonts/Comic.ttf</string></param></layer>
 <layer type="text"><param name="family"><string>Sans Serif</string></param></layer>
</canvas>
"""


def old(path: Path) -> None:
    """Date a file 10 s back: out of the racy-timestamp window, as a file saved earlier."""
    t = time.time() - 10
    os.utime(path, (t, t))


def test_sif_scanner_lists_imports_lists_canvases_and_values(tmp_path: Path) -> None:
    sif = tmp_path / "scene.sif"
    sif.write_text(SIF)
    write_png(tmp_path / "img" / "bg.png", 2, 2, (0, 0, 0))
    result = scan_file(sif)
    got = {(Path(u.path).relative_to(tmp_path).as_posix(), u.kind, u.exists) for u in result.uses}
    assert got == {("img/bg.png", "import", True), ("walk.lst", "list", False),
                   ("audio/line.wav", "sound", False), ("parts/arm.sif", "canvas", False),
                   ("palette.sif", "canvas", False), ("fonts/Comic.ttf", "font", False)}
    assert result.scene is not None
    assert (result.scene.start, result.scene.end, result.scene.fps) == (0, 30, 25.0)
    assert (result.scene.width, result.scene.height) == (120, 60)
    # the same scene gzip-compressed
    (tmp_path / "scene.sifz").write_bytes(gzip.compress(SIF.encode()))
    assert len(scan_file(tmp_path / "scene.sifz").uses) == 6


def test_parse_time() -> None:
    assert [parse_time(t, 24) for t in ("0f", "1s", "1s 6f", "2", "0:00:01", "1m")] == \
        [0, 24, 30, 48, 24, 1440]


def test_lst_and_kra_scanners(tmp_path: Path) -> None:
    (tmp_path / "walk.lst").write_text("FPS 12\nw/0001.png\n\nw/0002.png\n")
    write_png(tmp_path / "w" / "0001.png", 2, 2, (1, 1, 1))
    uses = scan_file(tmp_path / "walk.lst").uses
    assert [(Path(u.path).name, u.exists) for u in uses] == [("0001.png", True),
                                                             ("0002.png", False)]
    kra = tmp_path / "paint.kra"
    with zipfile.ZipFile(kra, "w") as z:
        z.writestr("mimetype", "application/x-krita")
        z.writestr("maindoc.xml", (
            '<DOC xmlns="http://www.calligra.org/DTD/krita"><IMAGE width="640" height="360">'
            '<layers><layer name="ref" nodetype="filelayer" source="refs/photo.png"/>'
            '<layer name="paint" nodetype="paintlayer"/></layers>'
            '<animation><framerate value="12"/><range from="3" to="9"/></animation>'
            "</IMAGE></DOC>"))
    result = scan_file(kra)
    assert [(Path(u.path).relative_to(tmp_path).as_posix(), u.kind) for u in result.uses] == \
        [("refs/photo.png", "layer")]
    assert result.scene is not None  # Krita saves a range in stills too: no keyframes, a still
    assert (result.scene.start, result.scene.end, result.scene.width) == (0, 0, 640)
    with zipfile.ZipFile(kra, "a") as z:
        z.writestr("paint/layers/layer2.keyframes.xml", "<keyframes/>")
    result = scan_file(kra)
    assert result.scene is not None
    assert (result.scene.start, result.scene.end, result.scene.width) == (3, 9, 640)


def test_damaged_files_name_themselves(tmp_path: Path) -> None:
    for name, data in (("bad.sif", b"<canvas"), ("bad.blend", b"BLENDER-v304garbage"),
                       ("bad.kra", b"PK not a zip")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ScanError, match=name):
            scan_file(tmp_path / name)


def test_sequence_expansion(tmp_path: Path) -> None:
    for n in (1, 2, 3):
        write_png(tmp_path / "seq" / f"{n:04d}.png", 1, 1, (n, n, n))
    write_png(tmp_path / "seq" / "other.png", 1, 1, (0, 0, 0))
    first = str(tmp_path / "seq" / "0001.png")
    assert [Path(p).name for p in expand_sequence(first)] == ["0001.png", "0002.png",
                                                              "0003.png"]
    assert len(expand_sequence(str(tmp_path / "seq" / "<UDIM>.png"))) == 4
    assert expand_sequence(str(tmp_path / "none" / "0001.png")) == []


def _synfig_project(root: Path) -> Path:
    """a.sif and b.sif use parts/lib.sif as a canvas; edit.sif imports a.sif's render."""
    write_png(root / "tex.png", 2, 2, (9, 9, 9))
    write_sif(root / "parts" / "lib.sif", "../tex.png")
    for name in ("a", "b"):
        text = write_sif(root / f"{name}.sif", "tex.png").read_text().replace(
            "</canvas>", '<layer type="paste_canvas"><param name="canvas" '
                         'use="parts/lib.sif#"/></layer></canvas>')
        (root / f"{name}.sif").write_text(text)
    write_sif(root / "edit.sif", "render/a.sif.png/0000.png")
    for f in root.rglob("*.*"):
        old(f)
    return root


def test_graph_targets_roots_and_needed_renders_never_libraries(tmp_path: Path) -> None:
    root = _synfig_project(tmp_path / "p")
    project = Project(root)
    graph = build(project, [root], FileCache(None))
    graph.check()
    assert graph.targets() == ["a.sif", "b.sif", "edit.sif"] or \
        graph.targets() == ["b.sif", "a.sif", "edit.sif"]
    order = graph.targets()
    assert order.index("a.sif") < order.index("edit.sif") and "parts/lib.sif" not in order
    assert graph.nodes["edit.sif"].render_deps == ["a.sif"]
    # naming a file renders it and the renders it reads, nothing else
    only = build(project, [root / "edit.sif"], FileCache(None))
    assert only.targets() == ["a.sif", "edit.sif"]


def test_missing_and_cycles_are_errors_naming_files(tmp_path: Path) -> None:
    root = _synfig_project(tmp_path / "p")
    (root / "tex.png").unlink()
    graph = build(Project(root), [root], FileCache(None))
    with pytest.raises(MissingFiles) as e:
        graph.check()
    assert "tex.png is missing, used by a.sif" in e.value.message
    assert "used by parts/lib.sif" in e.value.message
    loop = _synfig_project(tmp_path / "q")
    text = (loop / "parts" / "lib.sif").read_text().replace(
        "</canvas>", '<layer type="paste_canvas"><param name="canvas" use="../a.sif#"/>'
                     "</layer></canvas>")
    (loop / "parts" / "lib.sif").write_text(text)
    with pytest.raises(CycleError, match=r"a\.sif -> parts/lib\.sif -> a\.sif"):
        build(Project(loop), [loop], FileCache(None)).check()


def test_stat_cache_reads_nothing_when_unchanged(tmp_path: Path) -> None:
    root = _synfig_project(tmp_path / "p")
    project = Project(root)
    cache = FileCache(project.cache_path)
    build(project, [root], cache)
    cache.save()
    assert cache.hashed == 5 and cache.scanned == 3  # a.sif and b.sif are the same bytes
    warm = FileCache(project.cache_path)
    build(project, [root], warm)
    assert (warm.hashed, warm.scanned) == (0, 0)
    # new bytes of the same size, dated in the past: the mtime still differs from the cache
    write_png(root / "tex.png", 2, 2, (8, 8, 8))
    os.utime(root / "tex.png", (time.time() - 20, time.time() - 20))
    changed = FileCache(project.cache_path)
    build(project, [root], changed)
    assert changed.hashed == 1 and changed.scanned == 0
    # a copy elsewhere re-hashes (new inodes) but parses nothing: scans are by content
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    c = FileCache(project.cache_path)
    build(Project(copy), [copy], c)
    assert c.hashed == 5 and c.scanned == 0


def test_racy_files_are_hashed_again(tmp_path: Path) -> None:
    f = tmp_path / "fresh.png"
    write_png(f, 1, 1, (1, 2, 3))
    cache = FileCache(None)
    assert cache.stat_id(f) == content_id(f)
    assert cache.stat_id(f) == content_id(f)
    assert cache.hashed == 2  # written just now: the second look hashes again


def test_render_keys_follow_content_not_paths(tmp_path: Path) -> None:
    root = _synfig_project(tmp_path / "p")

    def keys(where: Path, **settings: object) -> dict[str, str]:
        project = Project(where)
        graph = build(project, [where], FileCache(None))
        profile = project.profile("default", "x")
        if settings:
            from dataclasses import replace

            profile = replace(profile, settings={**profile.settings, **settings})
        maker = KeyMaker(graph, lambda rel: profile)
        return {rel: maker.render_key(rel) for rel in graph.targets()}

    before = keys(root)
    shutil.copytree(root, tmp_path / "copy")
    assert keys(tmp_path / "copy") == before
    assert keys(root, chunk=3) == before  # how work is split is not part of the key
    assert all(before[k] != v for k, v in keys(root, resolution=50).items())
    write_png(root / "parts" / "../tex.png", 2, 2, (1, 2, 3))
    after = keys(root)
    assert after["a.sif"] != before["a.sif"] and after["b.sif"] != before["b.sif"]
    assert after["edit.sif"] != before["edit.sif"]  # it reads a.sif's render
