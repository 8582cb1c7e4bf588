"""RenderChan's GIMP (.xcf) and Pencil2D (.pclx) sources rendered by the real programs.

Each test makes its source with the program itself (GIMP's batch mode) or as the program
saves it, renders it with ``vstudio render`` and reads the output's pixels back.
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

from tests.helpers import cli, need
from tests.render_projects import write_png


def render(target: Path, studio: Path, *args: str) -> list[dict[str, Any]]:
    out = cli("render", str(target), "--studio", str(studio), "--json", *args)
    return list(json.loads(out.stdout))


def rgba(png: Path) -> tuple[int, int, list[tuple[int, ...]]]:
    """Width, height and RGBA pixels (row by row) of an image, decoded by ffmpeg."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=width,height",
                            "-of", "csv=p=0:s=x", str(png)], capture_output=True, text=True,
                           check=True).stdout.strip()
    w, h = (int(n) for n in probe.split("x"))
    raw = subprocess.run([need("ffmpeg", "apt-get install ffmpeg"), "-v", "error", "-i",
                          str(png), "-pix_fmt", "rgba", "-f", "rawvideo", "-"],
                         capture_output=True, check=True).stdout
    return w, h, [tuple(raw[i:i + 4]) for i in range(0, len(raw), 4)]


def make_xcf(path: Path, width: int, height: int) -> None:
    """A GIMP image made by GIMP: left half opaque red, right half transparent."""
    gimp = need("gimp", "apt-get install gimp")
    target = json.dumps(str(path))  # a Script-Fu string is a JSON string here
    script = (f"(let* ((image (car (gimp-image-new {width} {height} RGB)))"
              f" (layer (car (gimp-layer-new image {width} {height} RGBA-IMAGE \"paint\" 100"
              " LAYER-MODE-NORMAL))))"
              " (gimp-image-insert-layer image layer 0 -1)"
              " (gimp-context-set-foreground '(255 0 0))"
              f" (gimp-image-select-rectangle image CHANNEL-OP-REPLACE 0 0 {width // 2}"
              f" {height})"
              " (gimp-drawable-edit-fill layer FILL-FOREGROUND)"
              " (gimp-selection-none image)"
              f" (gimp-xcf-save RUN-NONINTERACTIVE image layer {target} {target})"
              " (gimp-image-delete image))")
    made = subprocess.run([gimp, "-i", "-d", "-f", "-b", script, "-b", "(gimp-quit 0)"],
                          capture_output=True, text=True, timeout=120)
    assert path.is_file(), made.stdout[-2000:] + made.stderr[-2000:]


def test_xcf_renders_through_real_gimp(studio_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "film"
    root.mkdir()
    (root / "project.conf").write_text("[main]\nactive_profile=draft\n\n"
                                       "[draft]\nWIDTH=20\nHEIGHT=16\n")
    make_xcf(root / "bg.xcf", 40, 30)
    (item,) = render(root / "bg.xcf", studio_dir)
    # RenderChan's GIMP module: one image file, at the image's own size
    assert (item["status"], item["frames"], item["output"]) == (
        "rendered", 1, "render/bg.xcf.png")
    w, h, px = rgba(root / "render/bg.xcf.png")
    assert (w, h) == (40, 30)
    assert px[5 * w + 5] == (255, 0, 0, 255)  # left: the red paint
    assert px[5 * w + 35][3] == 0  # right: transparent, as in the image
    assert render(root / "bg.xcf", studio_dir)[0]["status"] == "cached"
    # use_own_dimensions=0: the profile's size, as RenderChan's FILE.conf says
    (root / "bg.xcf.conf").write_text("use_own_dimensions=0\n")
    (again,) = render(root / "bg.xcf", studio_dir)
    assert again["status"] == "rendered"
    w, h, px = rgba(root / "render/bg.xcf.png")
    assert (w, h) == (20, 16) and px[2 * w + 2] == (255, 0, 0, 255)


def test_damaged_xcf_is_one_line_error(studio_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "film"
    root.mkdir()
    (root / "project.conf").write_text("")
    make_xcf(tmp_path / "good.xcf", 40, 30)
    data = (tmp_path / "good.xcf").read_bytes()
    (root / "cut.xcf").write_bytes(data[:40])  # the header survives, the layers do not
    out = cli("render", str(root / "cut.xcf"), "--studio", str(studio_dir), check=False)
    assert out.returncode == 1, out.stdout + out.stderr
    errors = [ln for ln in out.stderr.splitlines() if "cut.xcf" in ln]
    assert errors and "GIMP could not render cut.xcf" in out.stderr + out.stdout
    assert "Traceback" not in out.stderr
    assert not (root / "render/cut.xcf.png").exists()
    (root / "junk.xcf").write_bytes(b"not an image at all")
    out = cli("render", str(root / "junk.xcf"), "--studio", str(studio_dir), check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "junk.xcf is not a GIMP image" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_workers_offer_gimp_only_where_gimp_runs(monkeypatch: Any, tmp_path: Path) -> None:
    from vstudio import jobtypes

    need("gimp", "apt-get install gimp")
    assert "gimp" in jobtypes.available()
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without GIMP
    assert "gimp" not in jobtypes.available()


MAIN_XML = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE PencilDocument>
<document>
 <object>
  <layer id="1" name="Camera Layer" visibility="1" type="5" width="64" height="36">
   <camera frame="1" m11="1" m12="0" m21="0" m22="1" dx="0" dy="0"/>
  </layer>
  <layer id="2" name="Bitmap Layer" visibility="1" type="1">
{keys}
  </layer>
 </object>
 <projectdata><fps value="12"/></projectdata>
</document>
"""


def make_pclx(path: Path, colours: dict[int, tuple[int, int, int]]) -> None:
    """A Pencil2D animation as Pencil2D saves one: main.xml and data/LLL.FFF.png keys.

    Each key is a 32x36 bitmap over the left half of a 64x36 camera."""
    keys = "\n".join(f'   <image frame="{f}" src="002.{f:03d}.png" topLeftX="-32" '
                     f'topLeftY="-18"/>' for f in colours)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("main.xml", MAIN_XML.format(keys=keys))
        for f, rgb in colours.items():
            png = write_png(path.parent / f"key{f}.png", 32, 36, rgb)
            z.write(png, f"data/002.{f:03d}.png")
            png.unlink()


def test_pclx_renders_through_real_pencil2d(studio_dir: Path, tmp_path: Path) -> None:
    need("pencil2d", "apt-get install pencil2d")
    red, blue = (255, 0, 0), (0, 0, 255)
    root = tmp_path / "film"
    root.mkdir()
    (root / "project.conf").write_text("[main]\nactive_profile=draft\n\n"
                                       "[draft]\nWIDTH=32\nHEIGHT=18\n")
    make_pclx(root / "walk.pclx", {1: red, 3: blue})  # frame 2 holds frame 1's key
    (item,) = render(root / "walk.pclx", studio_dir)
    assert (item["status"], item["frames"], item["output"]) == (
        "rendered", 3, "render/walk.pclx.png")
    frames = sorted((root / "render/walk.pclx.png").iterdir())
    # RenderChan's names: Pencil2D's PREFIX0001.png with the prefix "file"
    assert [p.name for p in frames] == ["file0001.png", "file0002.png", "file0003.png"]
    seen = [rgba(p) for p in frames]
    assert {(w, h) for w, h, _ in seen} == {(32, 18)}  # the profile's size
    left, right = 9 * 32 + 4, 9 * 32 + 28
    assert [px[left] for _, _, px in seen] == [(*red, 255), (*red, 255), (*blue, 255)]
    assert seen[0][2][right] == (255, 255, 255, 255)  # Pencil2D's white paper
    # RenderChan's transparency=1 in FILE.conf: no paper
    (root / "walk.pclx.conf").write_text("transparency=1\n")
    (again,) = render(root / "walk.pclx", studio_dir)
    assert again["status"] == "rendered"
    _, _, px = rgba(root / "render/walk.pclx.png/file0001.png")
    assert px[left] == (*red, 255) and px[right][3] == 0


def test_damaged_pclx_is_one_line_error(studio_dir: Path, tmp_path: Path) -> None:
    need("pencil2d", "apt-get install pencil2d")
    root = tmp_path / "film"
    root.mkdir()
    (root / "project.conf").write_text("")
    make_pclx(tmp_path / "good.pclx", {1: (255, 0, 0), 2: (0, 255, 0)})
    data = (tmp_path / "good.pclx").read_bytes()
    # Pencil2D itself waits for ever on this one (its error dialog); vstudio refuses it
    (root / "cut.pclx").write_bytes(data[:len(data) // 2])
    out = cli("render", str(root / "cut.pclx"), "--studio", str(studio_dir), check=False,
              timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "cut.pclx is a damaged Pencil2D file" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    with zipfile.ZipFile(tmp_path / "good.pclx") as z, \
            zipfile.ZipFile(root / "hole.pclx", "w") as out_zip:
        for name in z.namelist():
            if name != "data/002.002.png":
                out_zip.writestr(name, z.read(name))
    out = cli("render", str(root / "hole.pclx"), "--studio", str(studio_dir), check=False,
              timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "data/002.002.png" in out.stderr and "hole.pclx" in out.stderr
    assert not (root / "render/hole.pclx.png").exists()


def test_workers_offer_pencil2d_only_where_it_runs(monkeypatch: Any, tmp_path: Path) -> None:
    from vstudio import jobtypes

    need("pencil2d", "apt-get install pencil2d")
    assert "pencil2d" in jobtypes.available()
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "pencil2d" not in jobtypes.available()


def test_stills_are_one_image_in_a_renderchan_project(studio_dir: Path,
                                                     tmp_path: Path) -> None:
    """RenderChan's Inkscape and Krita modules write a still as render/PATH.png, a file."""
    need("inkscape", "apt-get install inkscape")
    need("krita", "apt-get install krita")
    from tests.kragen import make_still

    root = tmp_path / "film"
    root.mkdir()
    (root / "project.conf").write_text("[draft]\nWIDTH=32\nHEIGHT=18\n")
    (root / "card.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="8" '
                                   'height="8"><rect width="8" height="8" fill="red"/></svg>')
    make_still(root / "paint.kra", (10, 180, 20))
    items = {i["file"]: i for i in render(root, studio_dir)}
    assert {f: (i["status"], i["output"]) for f, i in items.items()} == {
        "card.svg": ("rendered", "render/card.svg.png"),
        "paint.kra": ("rendered", "render/paint.kra.png")}
    assert rgba(root / "render/card.svg.png")[2][0] == (255, 0, 0, 255)
    assert rgba(root / "render/paint.kra.png")[2][0] == (10, 180, 20, 255)


def test_pcl_reads_its_data_folder(studio_dir: Path, tmp_path: Path) -> None:
    """The older .pcl: main.xml as the file, key frames in NAME.pcl.data (its inputs)."""
    need("pencil2d", "apt-get install pencil2d")
    root = tmp_path / "film"
    data = root / "walk.pcl.data"
    data.mkdir(parents=True)
    (root / "project.conf").write_text("[draft]\nWIDTH=32\nHEIGHT=18\n")
    keys = "\n".join(f'   <image frame="{f}" src="002.{f:03d}.png" topLeftX="-32" '
                     'topLeftY="-18"/>' for f in (1, 2))
    (root / "walk.pcl").write_text(MAIN_XML.format(keys=keys))
    write_png(data / "002.001.png", 32, 36, (255, 0, 0))
    write_png(data / "002.002.png", 32, 36, (0, 0, 255))
    (item,) = render(root / "walk.pcl", studio_dir)
    assert (item["status"], item["output"]) == ("rendered", "render/walk.pcl.png")
    left = 9 * 32 + 4
    assert rgba(root / "render/walk.pcl.png/file0002.png")[2][left] == (0, 0, 255, 255)
    write_png(data / "002.002.png", 32, 36, (0, 255, 0))  # a key frame changes
    (again,) = render(root / "walk.pcl", studio_dir)
    assert again["status"] == "rendered"
    assert rgba(root / "render/walk.pcl.png/file0002.png")[2][left] == (0, 255, 0, 255)
    (data / "002.001.png").unlink()
    out = cli("render", str(root / "walk.pcl"), "--studio", str(studio_dir), check=False,
              timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "walk.pcl.data/002.001.png" in out.stderr
