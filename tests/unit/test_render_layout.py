"""RenderChan's project layout and names next to vstudio's: roots, settings, outputs."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from tests.render_projects import write_png
from vstudio.errors import BadInput
from vstudio.render import layout
from vstudio.render.layout import Output
from vstudio.render.media import png_blank
from vstudio.render.project import Project, find_root

CONF = """[main]
active_profile=draft-lq

[draft-lq]
WIDTH=480
HEIGHT=270
FORMAT=avi
AUDIO_RATE=48000
blender.cycles_samples=10
BLENDER_VERSION=2.70
blender.packet_size=20
STEREO=left
synfig.antialias=2

[hd]
WIDTH=1280
HEIGHT=720
FORMAT=png
blender.cycles_samples=75
"""


def rc_project(root: Path, conf: str = CONF) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    (root / "project.conf").write_text(conf)
    return Project(root)


def test_project_conf_is_a_root(tmp_path: Path) -> None:
    rc_project(tmp_path / "film")
    (tmp_path / "film" / "shots").mkdir()
    assert find_root(tmp_path / "film" / "shots" / "s1.blend") == tmp_path / "film"
    # an empty project.conf in a sub-project takes the non-empty one above it
    sub = tmp_path / "film" / "ep1"
    sub.mkdir()
    (sub / "project.conf").write_text("")
    p = Project(find_root(sub / "a.sif"))
    assert p.root == sub and p.renderchan and p.rc is not None
    assert p.rc.path == tmp_path / "film" / "project.conf"


def test_profiles_and_module_keys_mean_what_they_mean_in_renderchan(tmp_path: Path) -> None:
    p = rc_project(tmp_path)
    assert p.check_profile(None) == "draft-lq"
    blend = p.profile("draft-lq", "shots/s1.blend").settings
    assert blend["width"] == 480 and blend["height"] == 270 and blend["format"] == "avi"
    assert blend["samples"] == 10 and blend["chunk"] == 20
    # RenderChan's Blender videos: RGB (transparency over black), lossless H.264 4:4:4
    assert blend["codec"] == "lossless-yuv" and blend["color_mode"] == "RGB"
    from vstudio.render.runner import task_for

    task = task_for(p.root / "shots/s1.blend", "blender", None, p.profile("draft-lq",
                                                                          "shots/s1.blend"), [1])
    assert task["params"]["overrides"] == {"render.image_settings.color_mode": "RGB"}
    # module keys apply to their module only
    sif = p.profile("draft-lq", "title.sif").settings
    assert "samples" not in sif and sif["chunk"] == 10 and sif["width"] == 480
    hd = p.profile("hd", "shots/s1.blend")
    assert hd.settings["width"] == 1280 and hd.format == "png" and hd.is_default
    assert hd.settings["color_mode"] == "RGBA"  # PNG frames keep their alpha
    # a setting vstudio cannot honour is one warning line naming it
    assert sum("stereo" in w for w in p.warnings) == 1
    assert any("antialias" in w for w in p.warnings)
    assert not any("blender_version" in w for w in p.warnings)  # RenderChan ignores it too
    with pytest.raises(Exception, match=r"no profile .nope.*draft-lq, hd"):
        p.check_profile("nope")


def test_file_conf_multipliers_single_and_range(tmp_path: Path) -> None:
    p = rc_project(tmp_path)
    (tmp_path / "shots").mkdir()
    (tmp_path / "shots" / "s1.blend.conf").write_text("WIDTH=*2\nheight=*0.5\nformat=png\n"
                                                     "start=3\nend=7\npacket_size=0\n")
    s = p.profile("hd", "shots/s1.blend").settings
    assert (s["width"], s["height"], s["format"]) == (2560, 360, "png")
    assert (s["start"], s["end"], s["chunk"]) == (3, 7, 1_000_000)
    (tmp_path / "license.sif.conf").write_text("SINGLE=1\nformat=png\n")
    assert p.profile("hd", "license.sif").settings["single"] == 1
    (tmp_path / "paint.kra.conf").write_text("")  # Krita keeps its own size in RenderChan
    kra = p.profile("hd", "paint.kra").settings
    assert kra.get("own_size") and "width" not in kra
    (tmp_path / "bad.sif.conf").write_text("[x\n")
    with pytest.raises(BadInput, match=r"bad\.sif\.conf"):
        p.profile("hd", "bad.sif")


def test_vstudio_toml_wins_where_both_exist(tmp_path: Path) -> None:
    p = rc_project(tmp_path)
    (tmp_path / "vstudio.toml").write_text('[render]\nformat = "mp4"\ncodec = "h264"\n'
                                           '[profiles.hd]\nsamples = 5\n')
    p = Project(tmp_path)
    s = p.profile("hd", "shots/s1.blend").settings
    assert (s["format"], s["codec"], s["samples"], s["width"]) == ("mp4", "h264", 5, 1280)
    assert p.renderchan  # RenderChan's names stay: its edits read them


def test_default_outputs_of_both_layouts() -> None:
    rc = layout.default_output("shots/s1.blend", "png", "blender", True, "render")
    assert rc.frame_file(1) == "render/shots/s1.blend.png/file.00001.png"
    sif = layout.default_output("title.sif", "png", "synfig", True, "render")
    assert sif.frame_file(0) == "render/title.sif.png/file.0000.png"
    vs = layout.default_output("title.sif", "png", "synfig", False, "render/draft")
    assert vs.frame_file(3) == "render/draft/title.sif.png/0003.png"
    assert layout.default_output("e.blend", "mp4", "blender", True, "render") == \
        Output("video", "render/e.blend.mp4")
    assert layout.default_output("l.sif", "png", "synfig", True, "render", 1) == \
        Output("single", "render/l.sif.png", single=1)


def test_the_path_read_decides_the_output() -> None:
    read = layout.output_read
    assert read("render/s.blend.png/file.00001.png", "s.blend", "sequence", "blender", None) \
        == Output("frames", "render/s.blend.png", "file.{:05d}.png")
    assert read("render/s.blend.png/0001.png", "s.blend", "sequence", "blender", None) \
        == Output("frames", "render/s.blend.png", "{:04d}.png")
    assert read("render/s.blend.mp4", "s.blend", "strip", "blender", None) == \
        Output("video", "render/s.blend.mp4")
    assert read("render/s.blend.avi", "s.blend", "movie", "blender", None).container == "avi"
    assert read("render/l.sif.png", "l.sif", "image", "synfig", 1) == \
        Output("single", "render/l.sif.png", single=1)
    lst = read("render/s.blend.lst", "s.blend", "list", "blender", None)
    assert lst is not None and lst.frame_file(2) == "render/s.blend.png/file.00002.png"
    # RenderChan's FORMAT=exr: OpenEXR frames (the renderer's format must match: reads.attach)
    assert read("render/s.blend.exr/file.00001.exr", "s.blend", "sequence", "blender",
                None) == Output("frames", "render/s.blend.exr", "file.{:05d}.exr")
    # nothing renders these: the reader must fail, not read nothing
    assert read("render/s.blend.exr/file.00001.png", "s.blend", "sequence", "blender",
                None) is None
    assert read("render/s.blend.png/shot.png", "s.blend", "image", "blender", None) is None
    assert layout.upstream_pattern("render/s.blend.png/file.00001.png") == \
        "render/s.blend.png/file.{frame:05d}.png"


def test_blank_frames_are_recognised(tmp_path: Path) -> None:
    import struct

    def rgba(path: Path, w: int, h: int, px: bytes) -> Path:
        raw = b"".join(b"\x02" + px * w for _ in range(h))  # "Up" filter on every row

        def chunk(kind: bytes, data: bytes) -> bytes:
            return (struct.pack(">I", len(data)) + kind + data
                    + struct.pack(">I", zlib.crc32(kind + data)))

        path.write_bytes(b"\x89PNG\r\n\x1a\n"
                         + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
                         + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
        return path

    assert png_blank(rgba(tmp_path / "empty.png", 5, 3, b"\0\0\0\0"))
    # dithered colour under zero alpha (Blender's empty frames) is still empty
    assert png_blank(rgba(tmp_path / "dither.png", 5, 3, b"\1\0\1\0"))
    assert not png_blank(rgba(tmp_path / "dot.png", 5, 3, b"\0\0\0\1"))
    assert not png_blank(write_png(tmp_path / "wood.png", 4, 4, (150, 90, 40)))
    assert not png_blank(tmp_path / "nope.png")
