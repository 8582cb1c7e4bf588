"""Small but real scenes for the demo and the tests: an animated Blender and Synfig shot."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from vstudio.errors import VStudioError

# Runs in Blender: a keyframed cube under a sun, seen by a camera, rendered with Cycles.
_BLEND_SCRIPT = r"""
import bpy, sys
a = sys.argv[sys.argv.index("--") + 1:]
out, frames, w, h, tex = a[0], int(a[1]), int(a[2]), int(a[3]), a[4]
bpy.ops.wm.read_factory_settings(use_empty=True)
sc = bpy.context.scene
sc.render.engine = "CYCLES"
sc.cycles.samples = 4
sc.cycles.use_denoising = False
sc.render.resolution_x, sc.render.resolution_y, sc.render.resolution_percentage = w, h, 100
sc.frame_start, sc.frame_end = 1, frames
sc.render.fps = 24
bpy.ops.mesh.primitive_cube_add(size=1.6)
cube = bpy.context.active_object
cube.keyframe_insert("rotation_euler", frame=1)
cube.location.x = -1.0
cube.keyframe_insert("location", frame=1)
cube.rotation_euler = (0.6, 0.9, 3.14)
cube.location.x = 1.0
cube.keyframe_insert("rotation_euler", frame=frames)
cube.keyframe_insert("location", frame=frames)
mat = bpy.data.materials.new("paint")
mat.use_nodes = True
bsdf = mat.node_tree.nodes["Principled BSDF"]
bsdf.inputs[0].default_value = (0.9, 0.35, 0.1, 1.0)
if tex:
    node = mat.node_tree.nodes.new("ShaderNodeTexImage")
    node.image = bpy.data.images.load(tex, check_existing=False)
    mat.node_tree.links.new(node.outputs[0], bsdf.inputs[0])
cube.data.materials.append(mat)
bpy.ops.mesh.primitive_plane_add(size=8, location=(0, 0, -1))
bpy.ops.object.light_add(type="SUN", location=(2, -2, 4))
bpy.context.active_object.data.energy = 4
bpy.ops.object.camera_add(location=(4.5, -4.5, 3.2), rotation=(1.1, 0, 0.785))
sc.camera = bpy.context.active_object
world = bpy.data.worlds.new("sky")
world.color = (0.2, 0.3, 0.5)
sc.world = world
bpy.ops.wm.save_as_mainfile(filepath=out, relative_remap=True)
"""

# A 1x1 PNG (a texture for scenes that use one)
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63f8cfc0f01f0005000201a3d5a6b90000000049454e44ae426082")


def make_blend(path: Path, frames: int = 24, size: tuple[int, int] = (64, 36),
               texture: Path | None = None) -> Path:
    """Save an animated scene; ``texture`` (relative to ``path``) makes the cube use an image."""
    exe = shutil.which("blender")
    if not exe:
        raise VStudioError("blender is not installed: apt-get install blender")
    path.parent.mkdir(parents=True, exist_ok=True)
    script = path.parent / f".{path.stem}-make.py"
    script.write_text(_BLEND_SCRIPT)
    try:
        proc = subprocess.run(
            [exe, "-b", "--factory-startup", "--python-exit-code", "1", "--python", str(script),
             "--", str(path.resolve()), str(frames), str(size[0]), str(size[1]),
             str(texture.resolve()) if texture else ""],
            capture_output=True, text=True, timeout=120)
    finally:
        script.unlink(missing_ok=True)
    if proc.returncode != 0 or not path.is_file():
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise VStudioError(f"blender could not write the demo scene: {' | '.join(tail)}")
    return path


def make_sif(path: Path, frames: int = 24, size: tuple[int, int] = (64, 36)) -> Path:
    """Save a Synfig scene: a ball crossing the frame, frames 0..frames-1."""
    last = frames - 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<canvas version="1.2" width="{size[0]}" height="{size[1]}" xres="2834.645669" yres="2834.645669"
 gamma-r="1" gamma-g="1" gamma-b="1" view-box="-2 1.125 2 -1.125" antialias="1" fps="24"
 begin-time="0f" end-time="{last}f" bgcolor="0.15 0.2 0.3 1">
  <layer type="circle" active="true" version="0.2" desc="ball">
    <param name="color"><color><r>1</r><g>0.6</g><b>0.1</b><a>1</a></color></param>
    <param name="radius"><real value="0.45"/></param>
    <param name="origin">
      <animated type="vector">
        <waypoint time="0f" before="linear" after="linear">
          <vector><x>-1.5</x><y>-0.5</y></vector></waypoint>
        <waypoint time="{last}f" before="linear" after="linear">
          <vector><x>1.5</x><y>0.5</y></vector></waypoint>
      </animated>
    </param>
  </layer>
</canvas>
""", encoding="utf-8")
    return path
