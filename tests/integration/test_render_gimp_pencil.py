"""RenderChan's GIMP (.xcf) and Pencil2D (.pclx) sources rendered by the real programs.

Each test makes its source with the program itself (GIMP's batch mode) or as the program
saves it, renders it with ``vstudio render`` and reads the output's pixels back.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.helpers import cli, need


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
