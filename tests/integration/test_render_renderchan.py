"""RenderChan projects render right, unchanged: names, settings, sound, lossless
intermediates, never a silent empty edit, never a foreign file touched (real Blender,
Synfig and ffmpeg)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.helpers import cli, need
from tests.render_projects import make_project, make_rc_project, write_png, write_sif

TEXT_SIF = """<?xml version="1.0" encoding="UTF-8"?>
<canvas version="1.2" width="64" height="36" xres="2834.645669" yres="2834.645669"
 view-box="-2 1.125 2 -1.125" antialias="1" fps="24" begin-time="0f" end-time="3f"
 bgcolor="0.5 0.5 0.5 1.0">
 <layer type="text" active="true" version="0.3" desc="license">
  <param name="text"><string>CC-BY</string></param>
  <param name="color"><color><r>1</r><g>1</g><b>1</b><a>1</a></color></param>
  <param name="family"><string>DejaVuSans-Bold.ttf</string></param>
  <param name="size"><vector><x>0.5</x><y>0.5</y></vector></param>
 </layer>
 <layer type="text" active="true" version="0.3" desc="again">
  <param name="text"><string>BY</string></param>
  <param name="family"><string>DejaVuSans-Bold.ttf</string></param>
 </layer>
 <layer type="text" active="true" version="0.3" desc="as in RenderChan's template">
  <param name="text"><string>SA</string></param>
  <param name="family"><string>../../fonts/DejaVuSans-Bold.ttf</string></param>
 </layer>
</canvas>
"""


def render(project: Path, studio: Path, *args: str, check: bool = True) -> Any:
    out = cli("render", str(project), "--studio", str(studio), "-j", "2", "--json", *args,
              check=check)
    return out if not check else json.loads(out.stdout)


def by_file(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["file"]: i for i in items}


def probe(path: Path) -> list[dict[str, Any]]:
    ffprobe = need("ffprobe", "apt-get install ffmpeg")
    out = subprocess.run([ffprobe, "-v", "error", "-count_frames", "-show_entries",
                          "stream=codec_type,codec_name,profile,pix_fmt,width,height,"
                          "nb_read_frames", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout)["streams"])


def rgba(path: Path, frame: int = 0) -> tuple[int, int, bytes]:
    """One frame of an image or video as raw RGBA bytes, through ffmpeg."""
    ffmpeg = need("ffmpeg", "apt-get install ffmpeg")
    video = next(s for s in probe(path) if s["codec_type"] == "video")
    w, h = int(video["width"]), int(video["height"])
    out = subprocess.run([ffmpeg, "-v", "error", "-i", str(path), "-vf",
                          f"select=eq(n\\,{frame})", "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "rgba", "-"], capture_output=True, check=True)
    assert len(out.stdout) == w * h * 4, (path, frame)
    return w, h, out.stdout


def test_renderchan_project_renders_with_its_names_sound_and_lossless_shots(
        studio_dir: Path, tmp_path: Path) -> None:
    need("blender", "apt-get install blender")
    need("synfig", "apt-get install synfig")
    proj = make_rc_project(tmp_path / "film")
    (proj / "edit.blend.conf").write_text("FORMAT=mp4\n")
    (proj / "shots" / "s2.blend.conf").write_text("WIDTH=*2\nHEIGHT=*2\n")

    t0 = time.monotonic()
    first = by_file(render(proj, studio_dir))
    took = time.monotonic() - t0
    assert {f: i["status"] for f, i in first.items()} == {
        "shots/s1.blend": "rendered", "shots/s2.blend": "rendered", "title.sif": "rendered",
        "edit.blend": "rendered"}, first
    assert "lib/props.blend" not in first  # a library is never a render target
    # seconds are wall time, never more than the whole run
    assert all(0 < i["seconds"] <= took for i in first.values())
    # RenderChan's names, decided by the paths the edit reads
    assert first["shots/s1.blend"]["output"] == "render/shots/s1.blend.png"
    assert first["shots/s2.blend"]["output"] == "render/shots/s2.blend.mp4"
    assert first["edit.blend"]["output"] == "render/edit.blend.mp4"
    shot1 = sorted(p.name for p in (proj / "render/shots/s1.blend.png").iterdir())
    assert shot1 == ["file.00001.png", "file.00002.png"]
    title = sorted(p.name for p in (proj / "render/title.sif.png").iterdir())
    assert title == ["file.0000.png", "file.0001.png"]
    assert not (proj / "shots" / "render").exists()
    assert not list(proj.rglob(".vstudio"))  # vstudio's cache is not beside the sources
    # the shot the edit reads as a movie: lossless, at its own size (WIDTH=*2)
    (v2,) = probe(proj / "render/shots/s2.blend.mp4")
    assert (v2["width"], v2["height"], v2["nb_read_frames"]) == (128, 72, "2")
    # as RenderChan's Blender writes it: lossless H.264 in yuv444p
    assert v2["profile"] == "High 4:4:4 Predictive" and v2["pix_fmt"] == "yuv444p"
    # the edit: every part shows, with the sound strip as AAC
    streams = probe(proj / "render/edit.blend.mp4")
    video = next(s for s in streams if s["codec_type"] == "video")
    assert (video["width"], video["height"], video["nb_read_frames"]) == (64, 36, "6")
    assert [s["codec_name"] for s in streams if s["codec_type"] == "audio"] == ["aac"]
    frames = [rgba(proj / "render/edit.blend.mp4", n)[2] for n in (0, 2, 4)]
    assert all(any(f[3::4]) and any(f[0::4]) for f in frames)  # not empty
    assert len(set(frames)) == 3  # shot 1, shot 2 (the movie), the title

    mtime = (proj / "render/shots/s1.blend.png/file.00001.png").stat().st_mtime_ns
    again = by_file(render(proj, studio_dir))
    assert {i["status"] for i in again.values()} == {"cached"}
    assert (proj / "render/shots/s1.blend.png/file.00001.png").stat().st_mtime_ns == mtime


def test_edit_reading_what_no_render_writes_fails_naming_it(studio_dir: Path,
                                                           tmp_path: Path) -> None:
    need("blender", "apt-get install blender")
    need("synfig", "apt-get install synfig")
    # the title renders frames 0-1; the edit reads four of its frames
    strips: list[dict[str, object]] = [
        {"dir": "render/title.sif.png", "first": 0, "frames": 4, "name": "file.%04d.png"}]
    proj = make_rc_project(tmp_path / "film", strips=strips)
    out = render(proj, studio_dir, check=False)
    assert out.returncode == 1, out.stdout
    assert "render/title.sif.png/file.0002.png" in out.stderr
    items = by_file(json.loads(out.stdout))
    assert items["edit.blend"]["status"] == "failed"
    assert items["title.sif"]["status"] == "rendered"
    assert not (proj / "render/edit.blend.png").exists()  # no empty edit written

    # EXR frames of a file that renders PNG (no FORMAT=exr): failed at once, named
    strips = [{"dir": "render/title.sif.exr", "first": 0, "frames": 2,
               "name": "file.%04d.exr"}]
    other = make_rc_project(tmp_path / "film2", strips=strips)
    out = render(other, studio_dir, check=False)
    assert out.returncode == 1
    assert "render/title.sif.exr is read as EXR, but title.sif renders PNG" in out.stderr
    assert "title.sif.conf" in out.stderr and "Traceback" not in out.stderr
    # a path that names no render format at all: failed at once, named
    strips = [{"dir": "render/title.sif.tga", "first": 0, "frames": 2,
               "name": "file.%04d.tga"}]
    third = make_rc_project(tmp_path / "film3", strips=strips)
    out = render(third, studio_dir, check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "render/title.sif.tga/file.0000.tga" in out.stderr


def test_foreign_renders_are_never_deleted_or_overwritten(studio_dir: Path,
                                                         tmp_path: Path) -> None:
    need("synfig", "apt-get install synfig")
    proj = tmp_path / "film"
    proj.mkdir()
    (proj / "project.conf").write_text("[main]\nactive_profile=t\n[t]\nWIDTH=32\nHEIGHT=18\n")
    write_png(proj / "logo.png", 8, 8, (200, 30, 30))
    write_sif(proj / "title.sif", "logo.png", 3)
    frames = proj / "render" / "title.sif.png"
    theirs = write_png(frames / "file.0000.png", 32, 18, (1, 2, 3))  # RenderChan's
    stale = write_png(frames / "file.0009.png", 32, 18, (4, 5, 6))
    before = theirs.read_bytes()

    out = render(proj, studio_dir, check=False)
    assert out.returncode == 1
    assert "render/title.sif.png/file.0000.png was not written by vstudio" in out.stderr
    assert theirs.read_bytes() == before and stale.is_file()

    ok = by_file(render(proj, studio_dir, "--overwrite"))
    assert ok["title.sif"]["status"] in ("rendered", "cached")
    assert theirs.read_bytes() != before
    assert sorted(p.name for p in frames.iterdir()) == [
        "file.0000.png", "file.0001.png", "file.0002.png", "file.0009.png"]
    # vstudio's own frames of a longer render are its to remove; the foreign one stays
    (proj / "title.sif.conf").write_text("end=1\n")
    render(proj, studio_dir)
    assert sorted(p.name for p in frames.iterdir()) == [
        "file.0000.png", "file.0001.png", "file.0009.png"]


def test_font_families_single_frames_and_settings_warnings(studio_dir: Path,
                                                          tmp_path: Path) -> None:
    need("synfig", "apt-get install synfig")
    proj = tmp_path / "film"
    proj.mkdir()
    (proj / "project.conf").write_text("[main]\nactive_profile=t\n[t]\nWIDTH=48\nHEIGHT=27\n"
                                       "STEREO=left\n")
    (proj / "license.sif").write_text(TEXT_SIF)
    (proj / "license.sif.conf").write_text("SINGLE=1\nformat=png\n")
    deps = cli("deps", str(proj / "license.sif"), "--json")
    report = json.loads(deps.stdout)
    assert report["missing"] == []  # a font family is no file; an installed one is used
    assert [u["path"].endswith("/fonts/DejaVuSans-Bold.ttf") for u in report["uses"]] == [True]
    assert "the installed /" in deps.stderr and "DejaVuSans-Bold.ttf" in deps.stderr
    out = cli("render", str(proj), "--studio", str(studio_dir), "--json")
    (item,) = json.loads(out.stdout)
    assert (item["file"], item["status"], item["frames"]) == ("license.sif", "rendered", 1)
    single = proj / "render" / "license.sif.png"
    assert single.is_file()  # SINGLE: one image, not a folder
    w, h, px = rgba(single)
    assert (w, h) == (48, 27) and any(px[3::4])
    # the setting vstudio cannot honour: one line naming it
    assert sum("stereo" in line for line in out.stderr.splitlines()) == 1


def test_draft_edit_is_a_full_frame_at_half_size(studio_dir: Path, tmp_path: Path) -> None:
    need("blender", "apt-get install blender")
    proj = make_project(tmp_path / "film", shots=1, synfig=False)
    (proj / "vstudio.toml").write_text("[profiles.draft]\nresolution = 50\nsamples = 2\n")
    items = by_file(render(proj, studio_dir, "--profile", "draft"))
    assert items["edit.blend"]["status"] == "rendered"
    w, h, px = rgba(proj / "render/draft/edit.blend.png/0001.png")
    assert (w, h) == (32, 18)
    corners = [px[i * 4 + 3] for i in (0, w - 1, (h - 1) * w, h * w - 1)]
    assert all(a == 255 for a in corners), corners  # the shot fills the frame


def test_deps_writes_nothing_beside_the_sources(tmp_path: Path) -> None:
    proj = tmp_path / "film"
    proj.mkdir()
    (proj / "project.conf").write_text("[main]\nactive_profile=t\n[t]\nWIDTH=32\n")
    write_png(proj / "logo.png", 8, 8, (200, 30, 30))
    write_sif(proj / "title.sif", "logo.png", 2)
    before = sorted(p.relative_to(proj) for p in proj.rglob("*"))
    os.chmod(proj, 0o555)
    try:
        cache = tmp_path / "cache"
        out = cli("deps", str(proj / "title.sif"), "--json",
                  env={"XDG_CACHE_HOME": str(cache)})
    finally:
        os.chmod(proj, 0o755)
    assert [u["path"] for u in json.loads(out.stdout)["uses"]] == ["logo.png"]
    assert sorted(p.relative_to(proj) for p in proj.rglob("*")) == before
    assert list((cache / "vstudio" / "projects").glob("film-*.json"))


def test_library_cycle_is_broken_with_a_warning(studio_dir: Path, tmp_path: Path) -> None:
    from tests.blendgen import run_blender

    a, b = tmp_path / "film" / "a.blend", tmp_path / "film" / "b.blend"
    a.parent.mkdir()
    (a.parent / "project.conf").write_text("[main]\nactive_profile=t\n[t]\nWIDTH=16\n"
                                           "HEIGHT=9\nblender.cycles_samples=1\n")
    save = "bpy.ops.wm.save_as_mainfile(filepath=%r, relative_remap=True)"

    def coll(name: str) -> str:
        return (f"bpy.ops.mesh.primitive_cube_add(); c = bpy.data.collections.new({name!r}); "
                "c.objects.link(bpy.context.active_object); "
                "bpy.context.scene.collection.children.link(c)")

    def link(lib: Path, name: str) -> str:
        return (f"with bpy.data.libraries.load({str(lib)!r}, link=True, relative=True) as "
                f"(s, d): d.collections = [{name!r}]\n"
                "bpy.context.scene.collection.children.link(d.collections[0])")

    run_blender(f"import bpy\nbpy.ops.wm.read_factory_settings(use_empty=True)\n"
                f"{coll('A')}\nsc = bpy.context.scene\nsc.frame_end = 1\n"
                "cam = bpy.data.objects.new('C', bpy.data.cameras.new('C'))\n"
                "sc.collection.objects.link(cam); sc.camera = cam; cam.location.z = 5\n"
                f"{save % str(a)}")
    run_blender(f"import bpy\nbpy.ops.wm.read_factory_settings(use_empty=True)\n"
                f"{coll('B')}\n{save % str(b)}\n{link(a, 'A')}\n{save % str(b)}")
    run_blender(f"import bpy\n{link(b, 'B')}\nbpy.ops.wm.save_mainfile()", blend=a)
    deps = cli("deps", str(a), "--json")
    assert "library cycle" in deps.stderr
    assert [u["path"] for u in json.loads(deps.stdout)["uses"]] == ["b.blend", "a.blend"]
    out = cli("render", str(a), "--studio", str(studio_dir), "--json")
    assert "library cycle" in out.stderr
    assert [(i["file"], i["status"]) for i in json.loads(out.stdout)] == [
        ("a.blend", "rendered")]
    assert (a.parent / "render/a.blend.png/file.00001.png").is_file()


def test_lossless_video_keeps_odd_sizes(tmp_path: Path) -> None:
    need("ffmpeg", "apt-get install ffmpeg")
    from vstudio.render.media import encode

    frames = [write_png(tmp_path / f"f{n}.png", 81, 45, (10 * n, 200, 30)) for n in range(3)]
    lossless = encode(frames, 24, tmp_path / "a.mp4", "lossless")
    (v,) = probe(lossless)
    assert (v["width"], v["height"], v["nb_read_frames"]) == (81, 45, "3")
    _, _, px = rgba(lossless, 2)
    assert px[:4] == bytes((20, 200, 30, 255))  # exact
    delivery = encode(frames, 24, tmp_path / "b.mov", "h264", crf=30)
    (d,) = probe(delivery)
    assert (d["width"], d["height"], d["codec_name"]) == (81, 45, "h264")


def test_an_edit_that_comes_out_empty_is_a_loud_warning(studio_dir: Path,
                                                        tmp_path: Path) -> None:
    need("blender", "apt-get install blender")
    need("synfig", "apt-get install synfig")
    from tests.render_projects import MUTED_TITLE, assert_empty_edit_warned

    # the strip is there and its frames render, but it is muted: every edit frame is empty
    proj = make_rc_project(tmp_path / "film", strips=MUTED_TITLE)
    assert_empty_edit_warned(
        cli("render", str(proj / "edit.blend"), "--studio", str(studio_dir), "--json"))


def test_sound_files_are_converted_where_the_edit_reads_them(studio_dir: Path,
                                                             tmp_path: Path) -> None:
    need("blender", "apt-get install blender")
    ffmpeg = need("ffmpeg", "apt-get install ffmpeg")
    from tests.render_projects import write_wav

    root = tmp_path / "film"
    beep = write_wav(tmp_path / "beep.wav", seconds=0.3, rate=22050)
    (root / "sounds").mkdir(parents=True)
    subprocess.run([ffmpeg, "-v", "error", "-i", str(beep), str(root / "sounds/beep.flac")],
                   check=True)
    write_wav(root / "render/sounds/beep.flac.wav")  # a stand-in while the strip is made
    strips: list[dict[str, object]] = [
        {"dir": "render/title.sif.png", "first": 0, "frames": 2, "name": "file.%04d.png"},
        {"sound": "render/sounds/beep.flac.wav"}]
    make_rc_project(root, strips=strips)
    (root / "render/sounds/beep.flac.wav").unlink()
    (root / "edit.blend.conf").write_text("FORMAT=mp4\n")
    deps = json.loads(cli("deps", str(root / "edit.blend"), "--json").stdout)
    paths = {u["path"]: u["exists"] for u in deps["uses"]}
    assert paths["render/sounds/beep.flac.wav"]  # made from sounds/beep.flac
    out = cli("render", str(root / "edit.blend"), "--studio", str(studio_dir), "--json")
    assert by_file(json.loads(out.stdout))["edit.blend"]["status"] == "rendered"
    wav = probe(root / "render/sounds/beep.flac.wav")
    assert [(s["codec_name"]) for s in wav] == ["pcm_s16le"]
    rate = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=sample_rate",
                           "-of", "csv=p=0", str(root / "render/sounds/beep.flac.wav")],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert rate == "48000"  # AUDIO_RATE
    streams = probe(root / "render/edit.blend.mp4")
    assert [s["codec_name"] for s in streams if s["codec_type"] == "audio"] == ["aac"]
