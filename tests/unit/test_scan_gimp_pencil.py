"""The GIMP and Pencil2D scanners read size, frames and uses without running the programs."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest

from vstudio.render.layout import Output, alpha_pattern, extract_alpha
from vstudio.render.model import SceneInfo, Use
from vstudio.render.scanners import ScanError, scan_file

DOC = """<!DOCTYPE PencilDocument><document><object>
 <layer id="1" name="Camera" type="5" width="320" height="180"><camera frame="1"/>
  <camera frame="40"/></layer>
 <layer id="2" name="ink" type="1"><image frame="1" src="002.001.png"/>
  <image frame="12" src="002.012.png"/></layer>
 <layer id="3" name="lines" type="2"><image frame="30" src="003.030.vec"/></layer>
</object><projectdata><fps value="8"/></projectdata></document>"""


def test_xcf_header_gives_the_size(tmp_path: Path) -> None:
    xcf = tmp_path / "bg.xcf"
    xcf.write_bytes(b"gimp xcf v011\0" + struct.pack(">III", 1920, 1080, 0) + b"\0" * 64)
    result = scan_file(xcf)
    assert result.uses == []
    assert result.scene == SceneInfo(renderer="gimp", start=1, end=1, width=1920,
                                     height=1080)
    for bad in (b"GIF89a", b"gimp xcf v011\0" + struct.pack(">II", 0, 5), b""):
        xcf.write_bytes(bad)
        with pytest.raises(ScanError, match=r"bg\.xcf"):
            scan_file(xcf)


def test_pclx_frames_camera_and_fps(tmp_path: Path) -> None:
    pclx = tmp_path / "walk.pclx"
    with zipfile.ZipFile(pclx, "w") as z:
        z.writestr("main.xml", DOC)
        for name in ("002.001.png", "002.012.png", "003.030.vec"):
            z.writestr(f"data/{name}", b"x")
    result = scan_file(pclx)
    assert result.uses == []  # everything is inside the zip
    # frames 1 to the last key of any layer, the camera layer's size, the document's fps
    assert result.scene == SceneInfo(renderer="pencil2d", start=1, end=40, fps=8.0,
                                     width=320, height=180)
    with zipfile.ZipFile(pclx, "w") as z:
        z.writestr("main.xml", DOC)
    with pytest.raises(ScanError, match=r"data/002\.001\.png"):
        scan_file(pclx)


def test_pcl_uses_its_data_folder(tmp_path: Path) -> None:
    pcl = tmp_path / "walk.pcl"
    pcl.write_text(DOC)
    (tmp_path / "walk.pcl.data").mkdir()
    (tmp_path / "walk.pcl.data" / "002.001.png").write_bytes(b"x")
    uses = {(Path(u.path).name, u.kind, u.exists) for u in scan_file(pcl).uses
            if isinstance(u, Use)}
    assert uses == {("002.001.png", "image", True), ("002.012.png", "image", False),
                    ("003.030.vec", "image", False)}


def test_extract_alpha_outputs_are_synfigs_names() -> None:
    assert alpha_pattern("file.{:04d}.png") == "file-alpha.{:04d}.png"
    frames = Output("frames", "render/a.sif.png", "file.{:04d}.png")
    assert extract_alpha([frames]) == [
        Output("frames", "render/a.sif.png", "file.{:04d}.png", channel="rgb"),
        Output("frames", "render/a.sif.png", "file-alpha.{:04d}.png", channel="alpha")]
    single = Output("single", "render/a.sif.png", single=3)
    assert extract_alpha([single])[1] == Output("single", "render/a.sif-alpha.png", single=3,
                                                channel="alpha")
    # a reader of the alpha frames gets the alpha, once
    read = Output("frames", "render/a.sif.png", "file-alpha.{:04d}.png", read=True)
    assert [o.channel for o in extract_alpha([frames, read])] == ["rgb", "alpha"]
