"""Make small, real .blend files with Debian's ``blender -b`` for tests and benchmarks.

Every function runs one Blender process (about a second for tiny scenes) and returns the
path it wrote. Scenes are built from a script, not the factory startup file, so the result
does not depend on the user's preferences. Reuse these from any area's tests.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

BLENDER_INSTALL = "apt-get install -y blender"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def blender_exe() -> str:
    """The blender program; fails the calling test (never skips) when it is missing."""
    exe = shutil.which("blender")
    if not exe:
        import pytest

        pytest.fail(f"blender is missing: install it with '{BLENDER_INSTALL}' (make test does)")
    return exe


def run_blender(script: str, blend: Path | None = None, timeout: float = 600) -> str:
    """Run ``script`` inside ``blender -b [blend]``; return its output; raise on failure."""
    args = [blender_exe(), "-b", "--factory-startup", "-noaudio"]
    if blend is not None:
        args.append(str(blend))
    args += ["-Y", "--python-exit-code", "3", "--python-expr", textwrap.dedent(script)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"blender exited {proc.returncode}:\n{proc.stdout[-3000:]}\n"
                           f"{proc.stderr[-3000:]}")
    return proc.stdout


def _save(path: Path, compress: bool) -> str:
    # save_version = 0: no "file.blend1" backup next to the output.
    return ("bpy.context.preferences.filepaths.save_version = 0\n"
            f"bpy.ops.wm.save_as_mainfile(filepath={str(path)!r}, compress={compress!r}, "
            "relative_remap=True)\n")


def make_scene(path: Path, *, spheres: int = 6, segments: int = 16, rings: int = 8,
               texture: int = 0, seed: int = 1, compress: bool = False) -> Path:
    """A scene of ``spheres`` UV spheres at random positions; with ``texture`` > 0 a packed
    ``texture`` x ``texture`` random-noise image on a material.  Saved uncompressed unless
    ``compress`` (Blender's "Compress" option, zstd since 3.0)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    script = f"""
        import bpy, random
        random.seed({seed})
        for ob in list(bpy.data.objects):
            bpy.data.objects.remove(ob, do_unlink=True)
        for m in list(bpy.data.meshes):
            bpy.data.meshes.remove(m)
        mat = None
        if {texture} > 0:
            # Debian's Blender has no numpy: random noise from the stdlib (it stays incompressible).
            img = bpy.data.images.new("noise", {texture}, {texture}, alpha=True)
            img.pixels.foreach_set([random.random() for _ in range({texture} * {texture} * 4)])
            img.filepath_raw = "//noise.png"
            img.file_format = "PNG"
            img.pack()
            mat = bpy.data.materials.new("noise_mat")
            mat.use_nodes = True
            tex = mat.node_tree.nodes.new("ShaderNodeTexImage")
            tex.image = img
            bsdf = mat.node_tree.nodes["Principled BSDF"]
            mat.node_tree.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
        for i in range({spheres}):
            loc = tuple(random.uniform(-20, 20) for _ in range(3))
            bpy.ops.mesh.primitive_uv_sphere_add(segments={segments}, ring_count={rings},
                                                 location=loc)
            ob = bpy.context.active_object
            ob.name = "sphere_%04d" % i
            if mat is not None and i == 0:
                ob.data.materials.append(mat)
        bpy.context.scene.frame_end = 10
        """
    run_blender(textwrap.dedent(script) + _save(path, compress))
    return path


def resave_moved(src: Path, dest: Path, *, obj: str | None = None,
                 offset: tuple[float, float, float] = (0.5, 0.0, 0.0),
                 compress: bool | None = None) -> Path:
    """Open ``src`` in a new Blender session, move one object (the first sphere unless
    ``obj``), save as ``dest``; ``compress`` None keeps the file's own setting."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if compress is None:
        # Blender's "Compress" saves are zstd streams; keep whatever the source file used.
        with open(src, "rb") as f:
            compress = f.read(4) == ZSTD_MAGIC
    script = f"""
        import bpy
        name = {obj!r} or sorted(o.name for o in bpy.data.objects)[0]
        ob = bpy.data.objects[name]
        ob.location = tuple(a + b for a, b in zip(ob.location, {tuple(offset)!r}))
        """
    script = textwrap.dedent(script) + _save(dest, compress)
    run_blender(script, blend=Path(src))
    return dest


def make_linking(path: Path, library: Path, *, obj: str | None = None) -> Path:
    """A new file that links one object (the first one unless ``obj``) from ``library``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    script = f"""
        import bpy
        for ob in list(bpy.data.objects):
            bpy.data.objects.remove(ob, do_unlink=True)
        with bpy.data.libraries.load({str(library)!r}, link=True, relative=True) as (src, dst):
            names = [{obj!r}] if {obj!r} else sorted(src.objects)[:1]
            dst.objects = names
        for ob in dst.objects:
            bpy.context.scene.collection.objects.link(ob)
        bpy.ops.wm.save_as_mainfile(filepath={str(path)!r}, relative_remap=True)
        """
    run_blender(script)
    return path


# Small edits a studio makes between saves (bench/bench_blend.py --edits): each a Blender
# script run on the opened file before it is saved again.
EDITS = {
    "property": "bpy.context.scene.frame_end += 7\n",
    "moved": ("ob = bpy.data.objects[sorted(o.name for o in bpy.data.objects)[1]]\n"
              "ob.location.x += 0.25\n"),
    "material": ("mat = bpy.data.materials.get('noise_mat') or bpy.data.materials.new('m')\n"
                 "mat.diffuse_color = (0.2, 0.4, 0.6, 1.0)\n"
                 "mat.roughness = 0.31\n"),
    "modifier": ("ob = bpy.data.objects[sorted(o.name for o in bpy.data.objects)[2]]\n"
                 "ob.modifiers.new('bevel', 'BEVEL').width = 0.05\n"),
    "image": ("import random\n"
              "random.seed(99)\n"
              "img = bpy.data.images['noise']\n"
              "n = img.size[0] * img.size[1] * 4\n"
              "img.pixels.foreach_set([random.random() for _ in range(n)])\n"
              "img.pack()\n"),
}


def resave_edited(src: Path, dest: Path, edit: str) -> Path:
    """Open ``src`` in a new Blender session, make one of ``EDITS``, save as ``dest``."""
    with open(src, "rb") as f:
        compress = f.read(4) == ZSTD_MAGIC
    run_blender("import bpy\n" + EDITS[edit] + _save(Path(dest), compress), blend=Path(src))
    return Path(dest)
