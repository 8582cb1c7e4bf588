"""Tiny real projects for the render tests: .blend files made by Blender, .sif by hand.

Layout made by ``make_project`` (all sizes 64x36, Cycles at 4 samples):

    vstudio.toml            profiles draft/final
    lib/props.blend         a library: collection "Props" with a cube (library-only)
    textures/wood.png       texture used by shots/s1.blend
    textures/stone.png      texture used by the shots other than s1
    textures/logo.png       image imported by title.sif
    shots/sN.blend          links lib/props.blend, a plane with a texture, FRAMES frames
    title.sif               Synfig scene importing textures/logo.png, 2 frames
    edit.blend              sequencer edit of render/shots/sN.blend.png/ and render/title.sif.png/
"""

from __future__ import annotations

import json
import struct
import subprocess
import zlib
from pathlib import Path

from tests.helpers import need

BLENDER_SCRIPT = r'''
import json, os, sys
import bpy

spec = json.loads(sys.argv[sys.argv.index("--") + 1])
root = spec["root"]


def reset():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.preferences.filepaths.save_version = 0  # no .blend1 backups


def setup(scene, frames, engine="CYCLES"):
    r = scene.render
    r.resolution_x, r.resolution_y, r.resolution_percentage = 64, 36, 100
    r.fps = 24
    r.engine = engine
    scene.cycles.samples = 4
    scene.cycles.use_denoising = False
    scene.frame_start, scene.frame_end = 1, frames
    r.image_settings.file_format = "PNG"


def rel(target, blend):
    return "//" + os.path.relpath(target, os.path.dirname(blend)).replace(os.sep, "/")


def save(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=path, compress=False)


lib = os.path.join(root, "lib", "props.blend")
if spec.get("lib", True):
    reset()
    setup(bpy.context.scene, 1)
    bpy.ops.mesh.primitive_cube_add(size=1)
    cube = bpy.context.active_object
    cube.name = "Prop"
    coll = bpy.data.collections.new("Props")
    coll.objects.link(cube)
    bpy.context.scene.collection.objects.unlink(cube)
    bpy.context.scene.collection.children.link(coll)  # an orphan would not be saved
    save(lib)

for shot in spec["shots"]:
    path = os.path.join(root, shot["path"])
    reset()
    scene = bpy.context.scene
    setup(scene, shot["frames"])
    save(path)
    with bpy.data.libraries.load(lib, link=True, relative=True) as (src, dst):
        dst.collections = ["Props"]
    inst = bpy.data.objects.new("PropsInstance", None)
    inst.instance_type = "COLLECTION"
    inst.instance_collection = dst.collections[0]
    scene.collection.objects.link(inst)
    bpy.ops.mesh.primitive_plane_add(size=4, location=(0, 0, -0.5))
    plane = bpy.context.active_object
    mat = bpy.data.materials.new("Tex")
    mat.use_nodes = True
    tex = mat.node_tree.nodes.new("ShaderNodeTexImage")
    img = bpy.data.images.load(os.path.join(root, shot["texture"]))
    img.filepath = rel(os.path.join(root, shot["texture"]), path)
    tex.image = img
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    mat.node_tree.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    plane.data.materials.append(mat)
    cam_data = bpy.data.cameras.new("Cam")
    cam = bpy.data.objects.new("Cam", cam_data)
    cam.location = (0, -6, 3)
    cam.rotation_euler = (1.1, 0, 0)
    scene.collection.objects.link(cam)
    scene.camera = cam
    light = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    scene.collection.objects.link(light)
    cam.location.x = shot.get("x", 0.0)
    cam.keyframe_insert("location", frame=1)
    cam.location.x += 0.5
    cam.keyframe_insert("location", frame=shot["frames"])
    save(path)

edit = spec.get("edit")
if edit:
    path = os.path.join(root, edit["path"])
    reset()
    scene = bpy.context.scene
    total = sum(s.get("frames", 0) for s in edit["strips"])
    setup(scene, total)
    scene.render.use_sequencer = True
    seq = scene.sequence_editor_create()
    start = 1
    for i, s in enumerate(edit["strips"]):
        if s.get("sound"):  # under the whole edit, on its own channel
            seq.sequences.new_sound("sound%d" % i, os.path.join(root, s["sound"]),
                                    channel=5, frame_start=1)
            continue
        if s.get("movie"):  # made on a stand-in movie of the same length, then pointed
            strip = seq.sequences.new_movie("strip%d" % i, s["standin"],
                                            channel=1 + i % 2, frame_start=start)
            strip.filepath = rel(os.path.join(root, s["movie"]), path)
            start += s["frames"]
            continue
        folder = os.path.join(root, s["dir"])
        names = [s.get("name", "%04d.png") % (s["first"] + n) for n in range(s["frames"])]
        strip = seq.sequences.new_image("strip%d" % i, os.path.join(folder, names[0]),
                                        channel=1 + i % 2, frame_start=start)
        for n in names[1:]:
            strip.elements.append(n)
        strip.directory = rel(folder, path) + "/"
        strip.mute = bool(s.get("mute"))
        start += s["frames"]
    if edit.get("frames"):
        scene.frame_end = edit["frames"]
    save(path)
'''

SIF = """<?xml version="1.0" encoding="UTF-8"?>
<canvas version="1.2" width="64" height="36" xres="2834.645669" yres="2834.645669"
 view-box="-2 1.125 2 -1.125" antialias="1" fps="24" begin-time="0f" end-time="{end}f"
 bgcolor="0.5 0.5 0.5 1.0">
 <layer type="import" active="true" version="0.1" desc="logo">
  <param name="tl"><vector><x>-1</x><y>1</y></vector></param>
  <param name="br"><vector><x>1</x><y>-1</y></vector></param>
  <param name="c"><integer value="1"/></param>
  <param name="gamma_adjust"><real value="1"/></param>
  <param name="filename"><string>{image}</string></param>
  <param name="time_offset"><time value="0s"/></param>
 </layer>
</canvas>
"""

TOML = """[render]
chunk = 10

[profiles.draft]
resolution = 50
samples = 2

[profiles.final]
resolution = 100
samples = 4
"""


def write_png(path: Path, width: int, height: int, rgb: tuple[int, int, int]) -> Path:
    """Write a plain RGB PNG without any imaging library."""
    row = b"\x00" + bytes(rgb) * width
    raw = row * height

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path


def write_sif(path: Path, image: str, frames: int = 2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SIF.format(end=frames - 1, image=image), encoding="utf-8")
    return path


def run_blender(spec: dict[str, object]) -> None:
    blender = need("blender", "apt-get install blender")
    proc = subprocess.run(
        [blender, "-b", "--factory-startup", "-noaudio", "--python-exit-code", "3",
         "--python-expr", BLENDER_SCRIPT, "--", json.dumps(spec)],
        capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise AssertionError(f"blender failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-3000:]}")


def make_project(root: Path, shots: int = 2, frames: int = 2, edit: bool = True,
                 synfig: bool = True) -> Path:
    """Build the project described in the module docstring; returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "vstudio.toml").write_text(TOML, encoding="utf-8")
    write_png(root / "textures" / "wood.png", 8, 8, (150, 90, 40))
    write_png(root / "textures" / "stone.png", 8, 8, (120, 120, 130))
    shot_specs = [{"path": f"shots/s{i}.blend", "frames": frames, "x": 0.1 * i,
                   "texture": "textures/wood.png" if i == 1 else "textures/stone.png"}
                  for i in range(1, shots + 1)]
    strips = [{"dir": f"render/{s['path']}.png", "first": 1, "frames": frames}
              for s in shot_specs]
    if synfig:
        write_png(root / "textures" / "logo.png", 16, 9, (230, 200, 20))
        write_sif(root / "title.sif", "textures/logo.png", 2)
        strips.append({"dir": "render/title.sif.png", "first": 0, "frames": 2})
    spec: dict[str, object] = {"root": str(root), "shots": shot_specs}
    if edit:
        spec["edit"] = {"path": "edit.blend", "strips": strips}
    run_blender(spec)
    return root


RC_CONF = """[main]
active_profile=test

[test]
WIDTH=64
HEIGHT=36
FORMAT=png
AUDIO_RATE=48000
blender.cycles_samples=4
blender.packet_size=10
"""


def write_wav(path: Path, seconds: float = 0.5, rate: int = 48000) -> Path:
    """A 440 Hz tone: a sound strip's file."""
    import math
    import wave

    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * 440 * i
                                                                           / rate)))
                               for i in range(int(seconds * rate))))
    return path


def standin_movie(path: Path, frames: int) -> Path:
    """A tiny real movie Blender can open while a movie strip is being made."""
    ffmpeg = need("ffmpeg", "apt-get install ffmpeg")
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([ffmpeg, "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"color=c=red:s=64x36:r=24:d={frames / 24}", "-frames:v", str(frames),
                    "-pix_fmt", "yuv420p", str(path)], check=True, timeout=120)
    return path


def make_rc_project(root: Path, frames: int = 2, strips: list[dict[str, object]] | None = None,
                    conf: str = RC_CONF) -> Path:
    """A RenderChan-layout project: ``project.conf``, no vstudio.toml, and an edit reading
    the shots the way RenderChan names them.

    Default strips: shot 1 as ``render/shots/s1.blend.png/file.NNNNN.png`` frames, shot 2
    as the movie ``render/shots/s2.blend.mp4``, the Synfig title as
    ``render/title.sif.png/file.NNNN.png``, and a sound strip (``sounds/beep.wav``).
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "project.conf").write_text(conf, encoding="utf-8")
    write_png(root / "textures" / "wood.png", 8, 8, (150, 90, 40))
    write_png(root / "textures" / "stone.png", 8, 8, (120, 120, 130))
    write_png(root / "textures" / "logo.png", 16, 9, (230, 200, 20))
    write_sif(root / "title.sif", "textures/logo.png", 2)
    write_wav(root / "sounds" / "beep.wav")
    shots = [{"path": f"shots/s{i}.blend", "frames": frames, "x": 0.1 * i,
              "texture": "textures/wood.png" if i == 1 else "textures/stone.png"}
             for i in (1, 2)]
    if strips is None:
        strips = [{"dir": "render/shots/s1.blend.png", "first": 1, "frames": frames,
                   "name": "file.%05d.png"},
                  {"movie": "render/shots/s2.blend.mp4", "frames": frames,
                   "standin": str(standin_movie(root.parent / f".{root.name}-standin.mp4",
                                                frames))},
                  {"dir": "render/title.sif.png", "first": 0, "frames": 2,
                   "name": "file.%04d.png"},
                  {"sound": "sounds/beep.wav"}]
    run_blender({"root": str(root), "shots": shots,
                 "edit": {"path": "edit.blend", "strips": strips}})
    return root


# an edit whose only strip (the title's frames) is muted: every edit frame comes out empty
MUTED_TITLE: list[dict[str, object]] = [
    {"dir": "render/title.sif.png", "first": 0, "frames": 2, "name": "file.%04d.png",
     "mute": True}]


def assert_empty_edit_warned(out: subprocess.CompletedProcess[str]) -> None:
    """The render succeeded and said loudly that the edit came out empty."""
    items = {i["file"]: i for i in json.loads(out.stdout)}
    assert items["edit.blend"]["status"] == "rendered"
    assert "every frame of edit.blend is empty" in items["edit.blend"]["warning"]
    assert "title.sif" in items["edit.blend"]["warning"]
    assert "WARNING: every frame of edit.blend is empty" in out.stderr
    assert items["title.sif"]["warning"] == ""
