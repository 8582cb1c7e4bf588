"""Blender (Debian's, in the background) saving .blend files straight into the mount."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.helpers import need, wait_for
from tests.integration.test_mount_write import mount_w, new_studio, repo, unmount, wait_head

SAVE = """
import bpy, sys
path, new = sys.argv[-2], sys.argv[-1] == "new"
if not new:
    bpy.ops.wm.open_mainfile(filepath=path)
    bpy.ops.mesh.primitive_cube_add(location=(len(bpy.data.objects), 0, 0))
bpy.ops.wm.save_as_mainfile(filepath=path)
"""


def blender_save(path: Path, new: bool) -> None:
    exe = need("blender", "apt-get install blender")
    proc = subprocess.run([exe, "-b", "--factory-startup", "--python-expr", SAVE, "--",
                           str(path), "new" if new else "edit"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Saved" in proc.stdout, proc.stdout[-2000:] + proc.stderr


def test_blender_saves_through_the_mount(tmp_path: Path) -> None:
    studio = new_studio(tmp_path)
    m = mount_w(studio, tmp_path / "mnt", tmp_path / "cache", "ann", "--settle", "0.5")
    try:
        (m.latest / "shots").mkdir()
        scene = m.latest / "shots/scene.blend"
        blender_save(scene, new=True)
        # (the mkdir may be a revision of its own: an empty folder is committed)
        wait_for(lambda: "shots/scene.blend" in repo(studio)[1], 30, "the first save")
        first = repo(studio)[0]
        blender_save(scene, new=False)  # keeps the old version as scene.blend1
        wait_head(studio, first + 1)
        head, files, log = repo(studio)
        assert head == first + 1
        assert sorted(files) == ["shots/scene.blend"], "the .blend1 backup stays local"
        assert files["shots/scene.blend"] == scene.read_bytes()
        assert (m.latest / "shots/scene.blend1").read_bytes() == (
            m.mnt / f"r/{first}/shots/scene.blend").read_bytes()
        assert log[0] == ("ann", "mount: 1 file saved by ann")
        assert not list((m.latest / "shots").glob("*@")), "Blender's temp file is gone"
    finally:
        unmount(m)
