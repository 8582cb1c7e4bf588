"""Local project renders reuse warm Blender sessions (the render node's module) with real
Blender: few processes, autoexec off, chunk sizes that keep start-up from dominating."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

from tests.blendgen import run_blender
from tests.helpers import cli, need
from tests.render_projects import make_project
from vstudio.render.engine import Item, ProjectRender
from vstudio.render.project import Profile
from vstudio.render.runner import WarmPool, run_chunk, task_for


def _counting_blender(tmp: Path) -> tuple[dict[str, str], Path]:
    """PATH with a ``blender`` that logs each start, then runs the real one."""
    real = need("blender", "apt-get install blender")
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    log = tmp / "starts.log"
    wrapper = bin_dir / "blender"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s %s %s\\n" "$1" "$2" "$3" >> {log}\n'
                       f'exec {real} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}, log


def test_local_render_starts_one_blender_per_slot(studio_dir: Path, tmp_path: Path) -> None:
    need("synfig", "apt-get install synfig")
    proj = make_project(tmp_path / "film", frames=24)
    env, log = _counting_blender(tmp_path)
    out = cli("render", str(proj), "--studio", str(studio_dir), "-j", "2", "--json", env=env)
    items = {i["file"]: i for i in json.loads(out.stdout)}
    assert {i["status"] for i in items.values()} == {"rendered"}
    # 3 Blender files of 24-50 frames: 6 chunks, but only the 2 sessions' processes
    assert sum(items[f]["chunks"] for f in ("shots/s1.blend", "shots/s2.blend",
                                            "edit.blend")) == 6
    starts = [s for s in log.read_text().splitlines() if s.startswith("-b ")]
    assert len(starts) == 2, starts  # (others ask "blender --version" for render keys)
    assert all(s.split()[1] == "-Y" for s in starts), starts  # autoexec off
    edit = sorted((proj / "render/edit.blend.png").iterdir())
    assert len(edit) == 50 and all(p.stat().st_size > 0 for p in edit)
    # the edit shows the shots' frames: its frames differ as the shots' cameras move
    assert len({p.read_bytes() for p in edit[:24]}) > 12


def test_warm_local_render_matches_cold_and_never_runs_scripts(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "film", shots=1, frames=3, edit=False, synfig=False)
    shot = proj / "shots/s1.blend"
    marker = tmp_path / "autoexec-ran"
    # a text block registered as a module runs on load when autoexec is on
    run_blender(f"""
        import bpy
        t = bpy.data.texts.new("mark.py")
        t.write("open({str(marker)!r}, 'w').write('ran')")
        t.use_module = True
        bpy.context.preferences.filepaths.save_version = 0
        bpy.ops.wm.save_mainfile()
    """, shot)
    frames = [1, 2, 3]
    task = task_for(shot, "blender", None, Profile("default"), frames)
    pool = WarmPool(tmp_path / "sessions", 1)
    try:
        warm = run_chunk(task, tmp_path / "warm", sessions=pool, version="k1")
        # the session died between chunks: the pool starts a new one
        pid = pool._all[0].pid
        os.killpg(pid, 9)
        pool._all[0].proc.wait()  # type: ignore[union-attr]
        again = run_chunk(task, tmp_path / "again", sessions=pool, version="k1")
        assert pool._all[0].pid != pid and pool._all[0].alive
    finally:
        pool.close()
    cold = run_chunk(task, tmp_path / "cold")
    assert not marker.exists(), "a local render ran the file's own script"
    for f in frames:  # the same pixels (the files differ in their time stamps)
        assert _pixels(warm[f]) == _pixels(cold[f]) == _pixels(again[f])
    assert len({_pixels(warm[f]) for f in frames}) == 3  # the camera moves


def _pixels(png: Path) -> str:
    out = subprocess.run([need("ffmpeg", "apt-get install ffmpeg"), "-v", "error", "-i",
                          str(png), "-f", "framemd5", "-"], capture_output=True, text=True,
                         check=True).stdout
    return out.strip().splitlines()[-1].split(",")[-1].strip()


def test_default_chunk_grows_to_one_per_slot_within_limits() -> None:
    job = ProjectRender([Path(".")], store=None, jobs=2)  # type: ignore[arg-type]

    def size(frames: int, chunk: int | None = None) -> int:
        settings = {} if chunk is None else {"chunk": chunk}
        item = Item(file="a.blend", key="k", status="planned", frames=frames,
                    profile_obj=Profile("default", settings),
                    frame_list=list(range(1, frames + 1)))
        return job.chunk_size(item)

    assert size(5) == 10  # never below the default chunk
    assert size(24) == 12  # one chunk per slot
    assert size(50) == 25
    assert size(500) == 40  # at most 4 chunks' worth: frames still flow in steps
    assert size(500, chunk=1) == 1 and size(24, chunk=30) == 30  # the project's own choice
    job.jobs = 1
    assert size(24) == 24
