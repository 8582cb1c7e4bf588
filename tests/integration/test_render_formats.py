"""RenderChan's other formats rendered by the real programs: Inkscape .svg, Krita .kra."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import cli, need
from tests.render_projects import write_png
from vstudio.render.model import SceneInfo, Use
from vstudio.render.scan_svg import scan_svg

SVG = """<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
 xmlns:sodipodi="http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd"
 width="{w}" height="{h}" viewBox="0 0 64 36">
 <rect x="0" y="0" width="32" height="36" fill="#ff0000"/>
 {images}
</svg>
"""


def render(proj: Path, studio: Path, *args: str) -> list[dict[str, Any]]:
    out = cli("render", str(proj), "--studio", str(studio), "--json", *args)
    return list(json.loads(out.stdout))


def pixels(png: Path) -> str:
    """A hash of the picture's RGB pixels (file bytes differ in metadata)."""
    out = subprocess.run([need("ffmpeg", "apt-get install ffmpeg"), "-v", "error", "-i",
                          str(png), "-pix_fmt", "rgb24", "-f", "framemd5", "-"],
                         capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1].split(",")[-1].strip()


def size(png: Path) -> str:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=width,height",
                          "-of", "csv=p=0:s=x", str(png)], capture_output=True, text=True)
    return out.stdout.strip()


def output_frames(proj: Path, item: dict[str, Any]) -> list[Path]:
    out = proj / item["output"]
    return sorted(out.glob("*.png")) if out.is_dir() else [out]


def test_svg_scanner_reads_links_like_inkscape(tmp_path: Path) -> None:
    write_png(tmp_path / "tex" / "a.png", 4, 4, (1, 2, 3))
    elsewhere = write_png(tmp_path / "elsewhere" / "b.png", 4, 4, (1, 2, 3))
    (tmp_path / "other.svg").write_text(SVG.format(w=10, h=10, images=""))
    images = "\n".join([
        '<image xlink:href="tex/a.png" width="8" height="8"/>',
        '<image href="tex/a.png"/>',  # SVG 2, same file: listed once
        f'<image xlink:href="moved/b.png" sodipodi:absref="{elsewhere}"/>',
        f'<image xlink:href="file://{tmp_path}/tex/c%20d.png"/>',
        '<image xlink:href="data:image/png;base64,iVBORw0KGgo="/>',
        '<image xlink:href="https://example.org/x.png"/>',
        '<use xlink:href="other.svg#logo"/>', '<use xlink:href="#local"/>'])
    svg = tmp_path / "d.svg"
    svg.write_text(SVG.format(w="20mm", h="10mm", images=images))
    records = list(scan_svg(svg))
    uses = {(Path(r.path).relative_to(tmp_path).as_posix(), r.kind, r.exists)
            for r in records if isinstance(r, Use)}
    assert uses == {("tex/a.png", "image", True), ("elsewhere/b.png", "image", True),
                    ("tex/c d.png", "image", False), ("other.svg", "canvas", True)}
    scene = next(r for r in records if isinstance(r, SceneInfo))
    assert (scene.renderer, scene.width, scene.height) == ("inkscape", 76, 38)  # 96 dpi


def test_svg_renders_with_inkscape_and_follows_its_image(studio_dir: Path,
                                                        tmp_path: Path) -> None:
    need("inkscape", "apt-get install inkscape")
    proj = tmp_path / "film"
    write_png(proj / "tex.png", 8, 8, (0, 0, 255))
    image = '<image x="32" y="0" width="32" height="36" xlink:href="tex.png"/>'
    (proj / "logo.svg").write_text(SVG.format(w=64, h=36, images=image))
    first = render(proj, studio_dir)
    assert [(i["file"], i["status"]) for i in first] == [("logo.svg", "rendered")]
    [png] = output_frames(proj, first[0])
    assert size(png) == "64x36"
    blue = pixels(png)
    assert render(proj, studio_dir)[0]["status"] == "cached"
    write_png(proj / "tex.png", 8, 8, (0, 255, 0))  # the linked image changes: renders again
    again = render(proj, studio_dir)
    assert again[0]["status"] == "rendered"
    assert pixels(output_frames(proj, again[0])[0]) != blue
    (proj / "tex.png").unlink()  # Inkscape would draw an empty box and exit 0
    out = cli("render", str(proj), "--studio", str(studio_dir), check=False)
    assert out.returncode == 1 and "tex.png" in out.stderr and "Traceback" not in out.stderr


def test_kra_renders_through_real_krita(studio_dir: Path, tmp_path: Path) -> None:
    krita = need("krita", "apt-get install krita")
    need("Xvfb", "apt-get install xvfb")
    proj = tmp_path / "film"
    proj.mkdir()
    src = tmp_path / "src.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=s=64x36",
                    "-frames:v", "1", str(src)], check=True)
    # Krita itself makes the .kra (headless: its own X server, as the job type runs it)
    made = subprocess.run([sys.executable, "-m", "vstudio.jobtypes.xserver", krita,
                           "--export", "--export-filename", str(proj / "paint.kra"),
                           str(src)], capture_output=True, text=True, timeout=300)
    assert made.returncode == 0 and (proj / "paint.kra").is_file(), made.stderr[-2000:]
    items = render(proj, studio_dir)
    assert [(i["file"], i["status"]) for i in items] == [("paint.kra", "rendered")]
    [png] = output_frames(proj, items[0])
    assert size(png) == "64x36" and pixels(png) == pixels(src)


def test_svg_still_fills_every_frame_asked(tmp_path: Path) -> None:
    need("inkscape", "apt-get install inkscape")
    from vstudio.render.project import Profile
    from vstudio.render.runner import run_chunk, task_for

    svg = tmp_path / "card.svg"
    svg.write_text(SVG.format(w=64, h=36, images=""))
    task = task_for(svg, "inkscape", None, Profile("default", {"width": 32, "height": 18}),
                    [1, 2, 3])
    frames = run_chunk(task, tmp_path / "work")
    assert sorted(frames) == [1, 2, 3]
    assert {size(p) for p in frames.values()} == {"32x18"}
    assert len({pixels(p) for p in frames.values()}) == 1


def test_krita_animation_in_a_renderchan_project(studio_dir: Path, tmp_path: Path) -> None:
    need("krita", "apt-get install krita")
    from tests.kragen import first_pixel, make_animated

    red, blue, green = (200, 30, 40), (20, 30, 220), (10, 180, 20)
    root = tmp_path / "film"
    root.mkdir()
    (root / "project.conf").write_text("[main]\nactive_profile=draft\n\n[draft]\nFPS=24\n")
    make_animated(root / "walk.kra", [red, blue, green])
    (item,) = render(root / "walk.kra", studio_dir)
    assert (item["status"], item["frames"], item["output"]) == (
        "rendered", 3, "render/walk.kra.png")
    frames = sorted((root / "render/walk.kra.png").iterdir())
    assert [p.name for p in frames] == ["file.0000.png", "file.0001.png", "file.0002.png"]
    assert [first_pixel(p)[:3] for p in frames] == [red, blue, green]
