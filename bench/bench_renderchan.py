"""vstudio against RenderChan on one RenderChan-layout project, side by side in one run.

Run by hand (short; the machine is shared):

    .venv/bin/python bench/bench_renderchan.py --renderchan /work/renderchan [--runs 3]

The project is built the RenderChan way: ``project.conf`` (profile ``bench``: WIDTH,
HEIGHT, FPS, FORMAT=png), ``lib/props.blend`` (a library), ``textures/wood.png``, two Cycles
shots linking both, a Synfig title, ``sound/music.wav``, and ``edit.blend`` whose sequencer
reads the renders under RenderChan's names (``render/shots/shot1.blend.png/file.00001.png``,
``render/title.sif.png/file.0000.png``) plus a sound strip; ``edit.blend.conf`` asks
``FORMAT=mp4``. Both peers render ``edit.blend`` (and so everything it reads).

Per run, each peer gets its own fresh copy (and vstudio a fresh studio), then in order:
full render; no-op; ``touch`` of the texture; a real texture change; a library change.
Every step is timed for both peers, alternating which goes first, whole CLI processes,
with the load average printed before each. After each step the outputs are compared:
frame count and size of every render, edit frames by PSNR (lossless tolerance: >= 45 dB
on every frame), and the edit's audio stream. Medians of ``--runs`` and ratios
(vstudio / RenderChan) close the run. Goals (issue 13): full and real changes <= 1.0x,
no-op and touch <= 0.1x, outputs matching.

RenderChan is pure Python 3: fetch its source from
https://github.com/morevnaproject-org/RenderChan (``git clone`` it, or ``git archive`` a
bare copy) and pass the folder. At its HEAD, on Blender 3.4 its render script finds only
``BLENDER_EEVEE`` among the registered engines and switches every other scene (Cycles
too) to Eevee, which renders slowly in software GL here. The bench runs a copy of
RenderChan in its temp folder with that switch taken out (it says so), so both peers
render the scenes' own engine; the checkout itself is not changed. Its Cycles branch
then stops at ``bpy.context.user_preferences`` (gone since Blender 2.80) after setting
the samples, so the shots render with their own size and format (the same as the
profile's here); the edit is a Workbench scene so that RenderChan sets its mp4 format.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.render_projects import SIF, write_png  # noqa: E402
from vstudio.studio import init_studio  # noqa: E402

PEERS = ("renderchan", "vstudio")
MIN_PSNR = 45.0

# Builds the library, the shots and the edit in one Blender process (spec as JSON after --).
BLEND = r'''
import json, os, sys
import bpy
spec = json.loads(sys.argv[sys.argv.index("--") + 1])
root, w, h, frames = spec["root"], spec["width"], spec["height"], spec["frames"]

def reset():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.preferences.filepaths.save_version = 0

def setup(sc, n):
    r = sc.render
    r.resolution_x, r.resolution_y, r.resolution_percentage, r.fps = w, h, 100, spec["fps"]
    r.engine = "CYCLES"  # RenderChan's Blender 3.4 engine list lacks Workbench
    sc.cycles.samples, sc.cycles.use_denoising = spec["samples"], False
    sc.frame_start, sc.frame_end = 1, n
    r.image_settings.file_format = "PNG"

def save(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=path, compress=False, relative_remap=True)

lib = os.path.join(root, "lib", "props.blend")
if spec.get("lib_color"):
    reset()
    setup(bpy.context.scene, 1)
    bpy.ops.mesh.primitive_cube_add(size=1)
    cube = bpy.context.active_object
    cube.name = "Prop"
    mat = bpy.data.materials.new("PropMat")
    mat.diffuse_color = spec["lib_color"] + [1.0]
    mat.use_nodes = True
    mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (
        spec["lib_color"] + [1.0])
    cube.data.materials.append(mat)
    coll = bpy.data.collections.new("Props")
    coll.objects.link(cube)
    bpy.context.scene.collection.objects.unlink(cube)
    bpy.context.scene.collection.children.link(coll)
    save(lib)
    if spec.get("only_lib"):
        sys.exit(0)

for n in (1, 2):
    path = os.path.join(root, "shots", "shot%d.blend" % n)
    reset()
    sc = bpy.context.scene
    setup(sc, frames)
    save(path)
    with bpy.data.libraries.load(lib, link=True, relative=True) as (src, dst):
        dst.collections = ["Props"]
    inst = bpy.data.objects.new("PropsInstance", None)
    inst.instance_type, inst.instance_collection = "COLLECTION", dst.collections[0]
    sc.collection.objects.link(inst)
    bpy.ops.mesh.primitive_plane_add(size=6, location=(0, 0, -0.5))
    plane = bpy.context.active_object
    mat = bpy.data.materials.new("Wood")
    mat.use_nodes = True
    tex = mat.node_tree.nodes.new("ShaderNodeTexImage")
    tex.image = bpy.data.images.load(os.path.join(root, "textures", "wood.png"))
    tex.image.filepath = "//../textures/wood.png"
    mat.node_tree.links.new(tex.outputs["Color"],
                            mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"])
    plane.data.materials.append(mat)
    cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    cam.location, cam.rotation_euler = (0.3 * n, -6, 3), (1.1, 0, 0)
    sc.collection.objects.link(cam)
    sc.camera = cam
    sc.collection.objects.link(bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN")))
    cam.keyframe_insert("location", frame=1)
    cam.location.x += 1.0
    cam.keyframe_insert("location", frame=frames)
    save(path)

path = os.path.join(root, "edit.blend")
reset()
sc = bpy.context.scene
setup(sc, 3 * frames)
sc.render.engine = "BLENDER_WORKBENCH"  # unused by a sequencer of images; see the docstring
sc.render.use_sequencer = True
seq = sc.sequence_editor_create()
strips = [("render/shots/shot1.blend.png", "file.%05d.png", 1),
          ("render/shots/shot2.blend.png", "file.%05d.png", 1),
          ("render/title.sif.png", "file.%04d.png", 0)]
for i, (folder, pattern, first) in enumerate(strips):
    names = [pattern % (first + k) for k in range(frames)]
    st = seq.sequences.new_image("strip%d" % i, os.path.join(root, folder, names[0]),
                                 channel=1 + i % 2, frame_start=1 + i * frames)
    for name in names[1:]:
        st.elements.append(name)
    st.directory = "//" + folder + "/"
snd = seq.sequences.new_sound("music", os.path.join(root, "sound", "music.wav"),
                              channel=3, frame_start=1)
snd.sound.filepath = "//sound/music.wav"
save(path)
'''


def blender(spec: dict[str, object]) -> None:
    proc = subprocess.run(["blender", "-b", "--factory-startup", "-noaudio",
                           "--python-exit-code", "3", "--python-expr", BLEND, "--",
                           json.dumps(spec)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"building the project failed:\n{proc.stdout[-2000:]}")


def build(root: Path, a: argparse.Namespace) -> None:
    root.mkdir(parents=True)
    (root / "project.conf").write_text(
        "[main]\nactive_profile=bench\n\n[bench]\n"
        f"WIDTH={a.width}\nHEIGHT={a.height}\nFPS={a.fps}\nFORMAT=png\nAUDIO_RATE=48000\n"
        f"blender.cycles_samples={a.samples}\n")
    (root / "edit.blend.conf").write_text("FORMAT=mp4\n")
    write_png(root / "textures" / "wood.png", 16, 16, (150, 90, 40))
    write_png(root / "textures" / "logo.png", 32, 18, (230, 200, 20))
    sif = (SIF.replace('width="64" height="36"', f'width="{a.width}" height="{a.height}"')
           .replace('fps="24"', f'fps="{a.fps}"')
           .format(end=a.frames - 1, image="textures/logo.png"))
    (root / "title.sif").write_text(sif)
    (root / "sound").mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    f"sine=frequency=440:duration={3 * a.frames / a.fps}:sample_rate=48000",
                    str(root / "sound" / "music.wav")], check=True)
    blender({"root": str(root), "width": a.width, "height": a.height, "fps": a.fps,
             "frames": a.frames, "samples": a.samples, "lib_color": [0.8, 0.2, 0.2]})


# -- the steps, applied identically to both peers' copies

def step_touch(proj: Path, _: Path) -> None:
    # now, not in the future: a later real change must get a newer time, else RenderChan
    # (which compares times) misses it, as a first version of this bench showed
    os.utime(proj / "textures" / "wood.png")


def step_texture(proj: Path, _: Path) -> None:
    write_png(proj / "textures" / "wood.png", 16, 16, (40, 160, 200))


def step_library(proj: Path, spare: Path) -> None:
    shutil.copyfile(spare / "lib" / "props.blend", proj / "lib" / "props.blend")


STEPS: list[tuple[str, Callable[[Path, Path], None] | None]] = [
    ("full render", None), ("no-op", None), ("touch texture", step_touch),
    ("texture change", step_texture), ("library change", step_library)]


def patched_renderchan(src: Path, dest: Path) -> Path:
    """A copy of RenderChan whose Blender script keeps the scene's engine."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".git"))
    script = dest / "renderchan" / "contrib" / "blender" / "render.py"
    text = script.read_text()
    check = "if sce.render.engine not in available_engines:"
    if check in text:
        script.write_text(text.replace(check, "if False:  # bench: keep the scene's engine"))
        print("renderchan: engine switch of contrib/blender/render.py disabled in the "
              "bench's copy (it would render the Cycles scenes with Eevee)")
    else:
        print("renderchan: no engine switch found in contrib/blender/render.py; unpatched")
    return dest


def command(peer: str, proj: Path, studio: Path, rc_dir: Path) -> list[str]:
    if peer == "renderchan":
        return [sys.executable, str(rc_dir / "bin" / "renderchan"), str(proj / "edit.blend")]
    return [sys.executable, "-m", "vstudio", "render", "--local", str(proj / "edit.blend"),
            "--studio", str(studio)]


def timed(cmd: list[str], log: Path) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    with log.open("ab") as out:
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                              stdin=subprocess.DEVNULL).returncode
    return time.perf_counter() - t0, code


# -- comparing outputs

def frames_of(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.suffix == ".png") if path.is_dir() else []


def probe(path: Path) -> dict[str, object]:
    """Frames, size and audio of a render (a PNG folder or a video)."""
    if path.is_dir():
        pngs = frames_of(path)
        if not pngs:
            return {"frames": 0}
        info = probe_file(pngs[0])
        return {**info, "frames": len(pngs), "audio": False}
    if not path.is_file():
        return {"frames": 0}
    return probe_file(path)


def probe_file(path: Path) -> dict[str, object]:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                          "stream=codec_type,width,height,nb_read_frames", "-of", "json",
                          str(path)], capture_output=True, text=True)
    streams = json.loads(out.stdout or "{}").get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"), {})
    return {"frames": int(video.get("nb_read_frames") or 0),
            "size": f"{video.get('width')}x{video.get('height')}",
            "audio": any(s.get("codec_type") == "audio" for s in streams)}


def edit_output(proj: Path) -> Path:
    for name in ("edit.blend.mp4", "edit.blend.png"):
        if (proj / "render" / name).exists():
            return proj / "render" / name
    return proj / "render" / "edit.blend.mp4"


def as_input(path: Path, fps: int) -> list[str]:
    if path.is_dir():  # at the video's rate: psnr pairs frames by time
        return ["-framerate", str(fps), "-pattern_type", "glob", "-i", str(path / "*.png")]
    return ["-i", str(path)]


def psnr(a: Path, b: Path, fps: int) -> tuple[float, float] | None:
    """(lowest, mean) PSNR over the frames of two renders of the same size; inf = equal."""
    with tempfile.NamedTemporaryFile(suffix=".log") as stats:
        proc = subprocess.run(
            ["ffmpeg", "-v", "error", *as_input(a, fps), *as_input(b, fps), "-lavfi",
             f"[0:v]format=rgb24[x];[1:v]format=rgb24[y];[x][y]psnr=stats_file={stats.name}",
             "-f", "null", "-"], capture_output=True, text=True)
        values = [float(m) if m != "inf" else float("inf") for m in
                  re.findall(r"psnr_avg:(\S+)", Path(stats.name).read_text())]
    if proc.returncode or not values:
        return None
    return min(values), statistics.fmean(min(v, 100.0) for v in values)


def compare(rc: Path, vs: Path, fps: int) -> list[str]:
    """One line per render; mismatches are marked MISMATCH."""
    lines = []
    renders = [("shots/shot1.blend.png", "shots/shot1.blend.png"),
               ("shots/shot2.blend.png", "shots/shot2.blend.png"),
               ("title.sif.png", "title.sif.png")]
    for a, b in renders:
        pa, pb = probe(rc / "render" / a), probe(vs / "render" / b)
        names = ([p.name for p in frames_of(rc / "render" / a)]
                 == [p.name for p in frames_of(vs / "render" / b)])
        ok = pa["frames"] == pb["frames"] and pa.get("size") == pb.get("size") and names
        lines.append(f"  {a}: renderchan {pa['frames']} frames {pa.get('size')}, vstudio "
                     f"{pb['frames']} frames {pb.get('size')}"
                     f"{'' if names else ', frame file names differ'}"
                     f"{'' if ok else '  MISMATCH'}")
    ea, eb = edit_output(rc), edit_output(vs)
    pa, pb = probe(ea), probe(eb)
    ok = (pa["frames"] == pb["frames"] and pa.get("size") == pb.get("size")
          and pa.get("audio") == pb.get("audio"))
    lines.append(f"  edit: renderchan {ea.name} {pa['frames']} frames {pa.get('size')} "
                 f"audio={pa.get('audio')}; vstudio {eb.name} {pb['frames']} frames "
                 f"{pb.get('size')} audio={pb.get('audio')}{'' if ok else '  MISMATCH'}")
    if pa["frames"] and pa.get("size") == pb.get("size"):
        p = psnr(ea, eb, fps)
        good = p is not None and p[0] >= MIN_PSNR and pa["frames"] == pb["frames"]
        lines.append("  edit frames PSNR: " + ("not comparable" if p is None else
                     f"lowest {p[0]:.1f} dB, mean {p[1]:.1f} dB")
                     + ("" if good else f"  MISMATCH (want >= {MIN_PSNR} dB on every frame)"))
    return lines


# -- the run

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--renderchan", type=Path, default=os.environ.get("RENDERCHAN_DIR"),
                    help="RenderChan checkout (has bin/renderchan)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--frames", type=int, default=24, help="frames per shot and title")
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--height", type=int, default=90)
    ap.add_argument("--fps", type=int, default=24)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--keep", action="store_true", help="keep the projects and logs")
    a = ap.parse_args()
    if not a.renderchan or not (a.renderchan / "bin" / "renderchan").is_file():
        raise SystemExit(
            "RenderChan is needed: git clone https://github.com/morevnaproject-org/RenderChan "
            "/work/renderchan, then pass --renderchan /work/renderchan")
    for prog in ("blender", "synfig", "ffmpeg", "ffprobe", "sox"):
        if not shutil.which(prog):
            raise SystemExit(f"{prog} is missing: apt-get install {prog}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-renderchan-"))
    rc_dir = patched_renderchan(a.renderchan, tmp / "renderchan")
    template, spare = tmp / "template", tmp / "spare"
    build(template, a)
    spare.mkdir()  # the library after the "library change" step: another colour
    blender({"root": str(spare), "width": a.width, "height": a.height, "fps": a.fps,
             "frames": a.frames, "samples": a.samples, "lib_color": [0.2, 0.3, 0.9],
             "only_lib": True})
    times: dict[tuple[str, str], list[float]] = {}
    print(f"project: 2 shots + title of {a.frames} frames, edit of {3 * a.frames}, "
          f"{a.width}x{a.height}, Cycles {a.samples} samples; {a.runs} runs; logs in {tmp}")
    for run in range(a.runs):
        projs = {}
        for peer in PEERS:
            projs[peer] = tmp / f"run{run}" / peer / "film"
            shutil.copytree(template, projs[peer])
        studio = tmp / f"run{run}" / "studio"
        init_studio(studio, store_url=None, db_url=None).close()
        for n, (name, change) in enumerate(STEPS):
            if change is not None:
                for peer in PEERS:
                    change(projs[peer], spare)
            order = PEERS if (run + n) % 2 == 0 else PEERS[::-1]
            for peer in order:
                load = os.getloadavg()
                secs, code = timed(command(peer, projs[peer], studio, rc_dir),
                                   tmp / f"run{run}" / f"{peer}.log")
                times.setdefault((name, peer), []).append(secs)
                print(f"run {run + 1} {name:15} {peer:10} {secs:7.2f} s  exit {code}  "
                      f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
            for line in compare(projs["renderchan"], projs["vstudio"], a.fps):
                print(line)
    print("\nmedians (s)          renderchan    vstudio   vstudio/renderchan  goal")
    for name, _ in STEPS:
        rc, vs = (statistics.median(times[(name, p)]) for p in PEERS)
        goal = "<= 0.1x" if name in ("no-op", "touch texture") else "<= 1.0x"
        print(f"{name:18} {rc:12.2f} {vs:10.2f} {vs / rc:14.2f}x       {goal}")
    if not a.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
