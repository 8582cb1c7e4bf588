"""Benchmark of dependency-aware rendering (run by hand: .venv/bin/python bench/bench_render.py).

1. A 20-shot project (+ an edit of all shots), nothing changed: time for `vstudio render`
   to decide (whole CLI process), median of 5; target <= 1.0 s.
2. Dependency scan of 100 .blend files (each links a library and a texture): cold (no
   cache) <= 2 s, warm <= 0.3 s; peer: blender-asset-tracer's own recursive `trace.deps`.
3. After changing the one texture used by 1 of 20 shots: frames rendered must equal that
   shot's frames + the edit's frames.
4. (``stream``) 2 shots of 6 frames and their edit, chunk 1, -j 2: time to the edit's first
   frame and to the end, frame by frame vs the round-1 way (the edit waits for whole shots).
Peer for 1: RenderChan analyses each file by launching Blender; we time that launch
(`blender -b FILE --python-expr pass`) on 3 files and show the per-file median.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.render_projects import make_project, write_png  # noqa: E402

VSTUDIO = [sys.executable, "-m", "vstudio"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*VSTUDIO, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"vstudio {' '.join(args)} failed:\n{proc.stderr}")
    return proc


def timed(fn, n: int = 5) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def bench_scan(tmp: Path) -> None:
    from blender_asset_tracer import blendfile, trace

    from vstudio.render.graph import build
    from vstudio.render.project import Project
    from vstudio.render.statcache import FileCache

    proj = make_project(tmp / "scan100", shots=100, edit=False, synfig=False)
    time.sleep(2.1)  # past the racy-timestamp window, as for files saved a while ago
    project = Project(proj)
    cold = []
    for _ in range(3):
        project.cache_path.unlink(missing_ok=True)
        t0 = time.perf_counter()
        cache = FileCache(project.cache_path)
        graph = build(project, [proj], cache)
        cache.save()
        cold.append(time.perf_counter() - t0)
    assert len([n for n in graph.nodes.values() if n.renderer]) == 101
    warm = timed(lambda: (build(project, [proj], FileCache(project.cache_path))), 5)

    def bat() -> None:
        for f in sorted((proj / "shots").glob("*.blend")):
            list(trace.deps(f))
        blendfile.close_all_cached()

    peer = timed(bat, 3)
    print(f"scan 100 .blend: cold median {statistics.median(cold):.3f} s (target <= 2.0), "
          f"warm median {warm:.3f} s (target <= 0.3)")
    print(f"  peer BAT trace.deps over the same 100 files: {peer:.3f} s; "
          f"cold/peer {statistics.median(cold) / peer:.2f}x, warm/peer {warm / peer:.3f}x")


def bench_project(tmp: Path) -> None:
    studio = tmp / "studio"
    run("init", str(studio))
    proj = make_project(tmp / "film20", shots=20, edit=True, synfig=False)
    t0 = time.perf_counter()
    first = json.loads(run("render", str(proj), "--studio", str(studio), "--json").stdout)
    print(f"first render of 20 shots + edit: {time.perf_counter() - t0:.1f} s, "
          f"{sum(i['frames'] for i in first)} frames")
    time.sleep(2.1)
    run("render", str(proj), "--studio", str(studio), "--json")  # settles the stat cache
    decide = timed(lambda: run("render", str(proj), "--studio", str(studio), "--json"), 5)
    dry = timed(lambda: run("render", str(proj), "--studio", str(studio), "--dry-run"), 5)
    print(f"unchanged 20-shot project: render decides in {decide:.3f} s median "
          f"(target <= 1.0), --dry-run {dry:.3f} s")
    blender = shutil.which("blender") or "blender"
    shots = sorted((proj / "shots").glob("*.blend"))[:3]
    launch = timed(lambda: [subprocess.run([blender, "-b", str(s), "--python-expr", "pass"],
                                           capture_output=True) for s in shots], 1) / 3
    print(f"  peer: one Blender launch to analyse a file (RenderChan style): {launch:.3f} s "
          f"per file; our decision for all 21 files / one such launch = {decide / launch:.2f}x")

    write_png(proj / "textures" / "wood.png", 8, 8, (10, 220, 90))
    after = json.loads(run("render", str(proj), "--studio", str(studio), "--json").stdout)
    rendered = {i["file"]: i["frames"] for i in after if i["status"] == "rendered"}
    expected = {"shots/s1.blend": 2, "edit.blend": 40}
    print(f"after changing the texture of 1 of 20 shots: rendered {rendered} "
          f"= {sum(rendered.values())} frames (expected {sum(expected.values())}: "
          f"{'OK' if rendered == expected else 'MISMATCH'})")


def bench_stream(tmp: Path) -> None:
    """Frame by frame vs waiting for whole renders: 2 shots x 6 frames (chunk 1) + edit, -j 2."""
    from vstudio.render import engine
    from vstudio.studio import Studio

    studio = tmp / "studio-stream"
    run("init", str(studio))
    proj = make_project(tmp / "stream", shots=2, frames=6, edit=True, synfig=False)
    (proj / "vstudio.toml").write_text("[render]\nchunk = 1\n", encoding="utf-8")
    store = Studio.open(studio).store
    real_save = engine.outputs.save_chunk
    for stream in (False, True, False, True):
        first: list[float] = []
        job = engine.ProjectRender([proj], store, force=True, jobs=2, stream=stream)
        items = job.plan()
        edit_key = next(i.key for i in items if i.file == "edit.blend")

        def save(st, scope, key, files, _first=first,  # type: ignore[no-untyped-def]
                 _edit=edit_key):
            if key == _edit and not _first:
                _first.append(time.perf_counter())
            return real_save(st, scope, key, files)

        engine.outputs.save_chunk = save  # type: ignore[assignment]
        t0 = time.perf_counter()
        try:
            job.run()
        finally:
            engine.outputs.save_chunk = real_save  # type: ignore[assignment]
        total = time.perf_counter() - t0
        assert {i.status for i in items} == {"rendered"}, [i.error for i in items]
        print(f"{'frame by frame' if stream else 'whole renders '}: first edit frame after "
              f"{first[0] - t0:.1f} s, all done in {total:.1f} s")


def main() -> None:
    os.environ.setdefault("XDG_CACHE_HOME", tempfile.mkdtemp(prefix="vstudio-bench-cache-"))
    with tempfile.TemporaryDirectory(prefix="vstudio-bench-render-") as d:
        tmp = Path(d)
        which = sys.argv[1] if len(sys.argv) > 1 else "all"
        if which in ("scan", "all"):
            bench_scan(tmp)
        if which in ("project", "all"):
            bench_project(tmp)
        if which in ("stream", "all"):
            bench_stream(tmp)


if __name__ == "__main__":
    main()
