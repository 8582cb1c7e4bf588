"""RenderChan's ``extract_alpha`` (and its output formats) rendered by the real Synfig.

The reference is Synfig itself: what ``synfig -x`` (what RenderChan's Synfig module runs
for ``extract_alpha=1``) writes for the same scene.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.helpers import cli, need

# a red disc, half of it off the frame's bottom edge, on nothing: alpha 0 around it and
# partial alpha on its antialiased rim
SIF = """<?xml version="1.0" encoding="UTF-8"?>
<canvas version="1.0" width="32" height="18" xres="2834.645669" yres="2834.645669"
 view-box="-2 1.125 2 -1.125" antialias="1" fps="24" begin-time="0f" end-time="2f">
<layer type="circle" active="true" version="0.2" desc="disc">
<param name="color"><color><r>1.0</r><g>0.2</g><b>0.0</b><a>1.0</a></color></param>
<param name="radius"><real value="0.9"/></param>
<param name="origin"><vector><x>0.3</x><y>-0.6</y></vector></param>
</layer>
</canvas>
"""


def render(target: Path, studio: Path, *args: str) -> list[dict[str, Any]]:
    out = cli("render", str(target), "--studio", str(studio), "--json", *args)
    return list(json.loads(out.stdout))


def rgb(png: Path) -> bytes:
    return subprocess.run([need("ffmpeg", "apt-get install ffmpeg"), "-v", "error", "-i",
                           str(png), "-pix_fmt", "rgb24", "-f", "rawvideo", "-"],
                          capture_output=True, check=True).stdout


def synfig_x(sif: Path, out: Path) -> None:
    """RenderChan's Synfig command line for extract_alpha=1, run by hand."""
    out.mkdir(parents=True)
    subprocess.run([need("synfig", "apt-get install synfig"), "-o", str(out / "file.png"),
                    "-w", "32", "-h", "18", "--sequence-separator", ".", "-t", "png",
                    "--start-time", "0f", "--end-time", "2f", "-x", str(sif)],
                   capture_output=True, check=True)


def test_extract_alpha_writes_synfigs_colour_and_alpha_frames(studio_dir: Path,
                                                              tmp_path: Path) -> None:
    root = tmp_path / "film"
    root.mkdir()
    (root / "project.conf").write_text("[main]\nactive_profile=draft\n\n"
                                       "[draft]\nWIDTH=32\nHEIGHT=18\n")
    (root / "disc.sif").write_text(SIF)
    (root / "disc.sif.conf").write_text("extract_alpha=1\n")
    (item,) = render(root / "disc.sif", studio_dir)
    assert item["status"] == "rendered", item
    folder = root / "render/disc.sif.png"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["file-alpha.0000.png", "file-alpha.0001.png", "file-alpha.0002.png",
                     "file.0000.png", "file.0001.png", "file.0002.png"]
    synfig_x(root / "disc.sif", tmp_path / "ref")
    for name in names:  # pixel for pixel what Synfig's own -x writes
        assert rgb(folder / name) == rgb(tmp_path / "ref" / name), name
    alpha = rgb(folder / "file-alpha.0001.png")
    assert set(alpha[0:3]) == {0} and max(alpha) == 255  # a corner: nothing; the disc
    assert len(set(alpha[i] for i in range(0, len(alpha), 3))) > 2  # and its soft rim
    # turned off again: RGBA frames alone, the alpha frames vstudio wrote are gone
    (root / "disc.sif.conf").write_text("extract_alpha=0\n")
    assert render(root / "disc.sif", studio_dir)[0]["status"] == "cached"
    assert sorted(p.name for p in folder.iterdir()) == [
        "file.0000.png", "file.0001.png", "file.0002.png"]


def test_extract_alpha_single_frame_and_other_modules(studio_dir: Path,
                                                      tmp_path: Path) -> None:
    need("synfig", "apt-get install synfig")
    root = tmp_path / "film"
    root.mkdir()
    (root / "project.conf").write_text("[draft]\nWIDTH=32\nHEIGHT=18\nextract_alpha=1\n")
    (root / "disc.sif").write_text(SIF)
    (root / "disc.sif.conf").write_text("SINGLE=1\n")
    (root / "card.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="8" '
                                   'height="8"><rect width="4" height="8" fill="red"/></svg>')
    out = cli("render", str(root), "--studio", str(studio_dir))
    # RenderChan: render/disc.sif.png and render/disc.sif-alpha.png
    assert rgb(root / "render/disc.sif.png") != rgb(root / "render/disc.sif-alpha.png")
    ref = tmp_path / "ref"
    synfig_x(root / "disc.sif", ref)
    assert rgb(root / "render/disc.sif-alpha.png") == rgb(ref / "file-alpha.0001.png")
    # Inkscape files keep their alpha, as in RenderChan, with one warning naming the key
    assert not list((root / "render").glob("card.svg*alpha*"))
    warned = [ln for ln in out.stderr.splitlines() if "extract_alpha" in ln]
    assert len(warned) == 1 and "Synfig files only" in warned[0], out.stderr


SHOT = """
import bpy
sc = bpy.context.scene
sc.render.engine = "BLENDER_WORKBENCH"
sc.render.resolution_x, sc.render.resolution_y = 64, 36
sc.frame_start, sc.frame_end = 1, 2
bpy.ops.wm.save_as_mainfile(filepath=%r)
"""


def exr_info(path: Path) -> tuple[str, str]:
    """(codec, size) of an image as ffprobe reads it."""
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                          "stream=codec_name,width,height", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, check=True).stdout.strip()
    codec, w, h = out.split(",")
    return codec, f"{w}x{h}"


def test_format_exr_writes_openexr_frames(studio_dir: Path, tmp_path: Path) -> None:
    need("synfig", "apt-get install synfig")
    blender = need("blender", "apt-get install blender")
    root = tmp_path / "film"
    root.mkdir()
    (root / "project.conf").write_text("[main]\nactive_profile=draft\n\n"
                                       "[draft]\nWIDTH=32\nHEIGHT=18\nFORMAT=exr\n")
    (root / "disc.sif").write_text(SIF)
    made = subprocess.run([blender, "-b", "--factory-startup", "--python-exit-code", "3",
                           "--python-expr", SHOT % str(root / "shot.blend")],
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stdout[-2000:]
    (root / "card.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="8" '
                                   'height="8"><rect width="4" height="8" fill="red"/></svg>')
    out = cli("render", str(root), "--studio", str(studio_dir), "--json")
    items = {i["file"]: i for i in json.loads(out.stdout)}
    assert {f: i["status"] for f, i in items.items()} == {
        "disc.sif": "rendered", "shot.blend": "rendered", "card.svg": "rendered"}, items
    sif = sorted(p.name for p in (root / "render/disc.sif.exr").iterdir())
    assert sif == ["file.0000.exr", "file.0001.exr", "file.0002.exr"]
    blend = sorted(p.name for p in (root / "render/shot.blend.exr").iterdir())
    assert blend == ["file.00001.exr", "file.00002.exr"]
    for frame in (root / "render/disc.sif.exr/file.0001.exr",
                  root / "render/shot.blend.exr/file.00001.exr"):
        assert exr_info(frame) == ("exr", "32x18"), frame
    # real pictures: the disc is there (colour), and nothing around it (alpha 0)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(root / "render/disc.sif.exr/"
                          "file.0001.exr"), "-pix_fmt", "rgba", "-f", "rawvideo", "-"],
                         capture_output=True, check=True).stdout
    alphas = {raw[i] for i in range(3, len(raw), 4)}
    assert 0 in alphas and 255 in alphas and max(raw[0::4]) > 200
    # Inkscape has no EXR in RenderChan: PNG, as RenderChan falls back to
    assert (root / "render/card.svg.png").exists()
    assert "FORMAT" not in out.stderr


def test_reading_png_frames_of_an_exr_render_fails_naming_format(studio_dir: Path,
                                                                  tmp_path: Path) -> None:
    from tests.render_projects import write_sif

    need("synfig", "apt-get install synfig")
    root = tmp_path / "film"
    root.mkdir()
    (root / "project.conf").write_text("[draft]\nWIDTH=32\nHEIGHT=18\n")
    (root / "disc.sif").write_text(SIF)
    (root / "disc.sif.conf").write_text("FORMAT=exr\n")
    write_sif(root / "title.sif", "render/disc.sif.png/file.0001.png")
    out = cli("render", str(root), "--studio", str(studio_dir), check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "renders EXR frames" in out.stdout + out.stderr
    assert "disc.sif.conf" in out.stdout + out.stderr


def test_a_reader_of_the_alpha_frames_gets_them(studio_dir: Path, tmp_path: Path) -> None:
    """A Synfig matte reading render/disc.sif.png/file-alpha.0001.png (as made against
    RenderChan's output) renders after the alpha frames are written, streaming."""
    from tests.render_projects import write_sif

    need("synfig", "apt-get install synfig")
    root = tmp_path / "film"
    root.mkdir()
    (root / "project.conf").write_text("[draft]\nWIDTH=32\nHEIGHT=18\n")
    (root / "disc.sif").write_text(SIF)
    (root / "disc.sif.conf").write_text("extract_alpha=1\n")
    write_sif(root / "matte.sif", "render/disc.sif.png/file-alpha.0001.png")
    items = {i["file"]: i["status"] for i in render(root, studio_dir)}
    assert items == {"disc.sif": "rendered", "matte.sif": "rendered"}
    alpha = root / "render/disc.sif.png/file-alpha.0001.png"
    ref = tmp_path / "ref"
    synfig_x(root / "disc.sif", ref)
    assert rgb(alpha) == rgb(ref / "file-alpha.0001.png")
    matte = rgb(root / "render/matte.sif.png/file.0000.png")
    assert len(set(matte)) > 2  # the grey disc shows in the matte


def test_renderchans_separate_alpha_folder_is_read_too(studio_dir: Path,
                                                       tmp_path: Path) -> None:
    """RenderChan's code names the alpha render render/PATH-alpha.png (its file.py reads
    it back as PATH's render): a reader of it gets the alpha frames there."""
    from tests.render_projects import write_sif

    need("synfig", "apt-get install synfig")
    root = tmp_path / "film"
    root.mkdir()
    (root / "project.conf").write_text("[draft]\nWIDTH=32\nHEIGHT=18\n")
    (root / "disc.sif").write_text(SIF)
    (root / "disc.sif.conf").write_text("extract_alpha=1\n")
    write_sif(root / "matte.sif", "render/disc.sif-alpha.png/file.0001.png")
    items = {i["file"]: i["status"] for i in render(root, studio_dir)}
    assert items == {"disc.sif": "rendered", "matte.sif": "rendered"}
    ref = tmp_path / "ref"
    synfig_x(root / "disc.sif", ref)
    assert rgb(root / "render/disc.sif-alpha.png/file.0001.png") == \
        rgb(ref / "file-alpha.0001.png")
    # the colour frames are written as RenderChan's module writes them, too
    assert rgb(root / "render/disc.sif.png/file.0001.png") == rgb(ref / "file.0001.png")
