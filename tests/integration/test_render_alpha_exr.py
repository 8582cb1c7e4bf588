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
