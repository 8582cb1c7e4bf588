"""Benchmark: what one edit of a Blender scene costs to store, against Subversion and restic.

The issue's scene: 300 UV spheres (64 x 32 segments) at random positions and a packed
1024 x 1024 random-noise texture, saved uncompressed by Blender; then reopened in a new
Blender session, one object moved, saved again.  The same with Blender's "Compress" option
(zstd).  Each system stores both versions; we print the second version's growth, the
ratio to Subversion's growth in the same run, and put throughput (median of runs).

    .venv/bin/python bench/bench_blend.py [--workdir DIR] [--runs N] [--spheres N]
"""

from __future__ import annotations

import argparse
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

from tests import blendgen  # noqa: E402
from vstudio.store import blend, open_store  # noqa: E402


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def make_scenes(work: Path, spheres: int) -> dict[str, tuple[Path, Path]]:
    out = {}
    for kind, compress in (("uncompressed", False), ("compressed", True)):
        v1, v2 = work / f"{kind}-v1.blend", work / f"{kind}-v2.blend"
        if not (v1.exists() and v2.exists()):
            t = time.monotonic()
            blendgen.make_scene(v1, spheres=spheres, segments=64, rings=32, texture=1024,
                                seed=7, compress=compress)
            blendgen.resave_moved(v1, v2)
            print(f"  made {kind} scene in {time.monotonic() - t:.1f} s", flush=True)
        out[kind] = (v1, v2)
    return out


def run(cmd: list[str], **kw: object) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   **kw)  # type: ignore[call-overload]


def bench_svn(v1: Path, v2: Path, tmp: Path) -> tuple[int, int]:
    repo, wc = tmp / "svnrepo", tmp / "svnwc"
    run(["svnadmin", "create", str(repo)])
    run(["svn", "checkout", "-q", f"file://{repo}", str(wc)])
    shutil.copy(v1, wc / "scene.blend")
    run(["svn", "add", "-q", str(wc / "scene.blend")])
    base = du(repo)
    run(["svn", "commit", "-q", "-m", "v1", str(wc)])
    first = du(repo)
    shutil.copy(v2, wc / "scene.blend")
    run(["svn", "commit", "-q", "-m", "v2", str(wc)])
    return first - base, du(repo) - first


def bench_restic(v1: Path, v2: Path, tmp: Path) -> tuple[int, int]:
    repo, src = tmp / "resticrepo", tmp / "resticsrc"
    src.mkdir()
    env = {**os.environ, "RESTIC_PASSWORD": "bench", "RESTIC_REPOSITORY": str(repo),
           "RESTIC_CACHE_DIR": str(tmp / "resticcache")}
    run(["restic", "init", "-q"], env=env)
    base = du(repo)
    shutil.copy(v1, src / "scene.blend")
    run(["restic", "backup", "-q", str(src)], env=env)
    first = du(repo)
    shutil.copy(v2, src / "scene.blend")
    run(["restic", "backup", "-q", str(src)], env=env)
    return first - base, du(repo) - first


def bench_vstudio(v1: Path, v2: Path, tmp: Path, runs: int, fastcdc: bool = False
                  ) -> dict[str, float]:
    """Growth of each version and put throughput, median of ``runs`` fresh stores."""
    t1s, t2s, g1s, g2s, t_get = [], [], [], [], []
    chunkers: dict[str, int] = {}
    for i in range(runs):
        root = tmp / f"vst{'-cdc' if fastcdc else ''}-{i}"
        store = open_store(f"file://{root}")
        base = du(root)
        ids = []
        for path, times, growths in ((v1, t1s, g1s), (v2, t2s, g2s)):
            before = du(root)
            t = time.perf_counter()
            if fastcdc:
                with open(path, "rb") as f:
                    ids.append(store.put_stream(f))
            else:
                ids.append(store.put_file(path))
            times.append(time.perf_counter() - t)
            growths.append(du(root) - before)
        t = time.perf_counter()
        store.get_file(ids[1], tmp / "back.blend")
        t_get.append(time.perf_counter() - t)
        if (tmp / "back.blend").read_bytes() != v2.read_bytes():
            raise SystemExit("vstudio returned different bytes!")
        chunkers = store.stats()["chunkers"]
        del base
        shutil.rmtree(root)
    return {"first": statistics.median(g1s), "growth": statistics.median(g2s),
            "put1_s": statistics.median(t1s), "put2_s": statistics.median(t2s),
            "get_s": statistics.median(t_get), "chunkers": chunkers}  # type: ignore[dict-item]


def mb(n: float) -> str:
    return f"{n / 1e6:8.3f} MB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench_blend")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--spheres", type=int, default=300)
    args = ap.parse_args()
    for prog in ("blender", "svn", "svnadmin", "restic"):
        if not shutil.which(prog):
            raise SystemExit(f"{prog} is missing: apt-get install blender subversion restic")
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"scenes in {args.workdir} (kept between runs)")
    scenes = make_scenes(args.workdir, args.spheres)
    for kind, (v1, v2) in scenes.items():
        size = v2.stat().st_size
        a, b = v1.read_bytes(), v2.read_bytes()
        differing = sum(x != y for x, y in zip(a, b, strict=False)) + abs(len(a) - len(b))
        print(f"\n== {kind} save: v1 {mb(len(a))}, v2 {mb(size)}, "
              f"{differing} bytes differ ==")
        with tempfile.TemporaryDirectory(dir=args.workdir) as t:
            tmp = Path(t)
            svn = bench_svn(v1, v2, tmp)
            restic = bench_restic(v1, v2, tmp)
            vst = bench_vstudio(v1, v2, tmp, args.runs)
            cdc = bench_vstudio(v1, v2, tmp, 1, fastcdc=True)
            # The same layout with pointers left as Blender wrote them: what cutting at
            # block boundaries alone gives, without rewriting pointer-bearing bodies.
            saved = blend._codec
            blend._codec = lambda *a: None  # type: ignore[assignment]
            try:
                raw = bench_vstudio(v1, v2, tmp, 1)
            finally:
                blend._codec = saved
        rows = [("subversion 1.14 (FSFS)", svn[0], svn[1]),
                ("restic", restic[0], restic[1]),
                ("vstudio, FastCDC only", cdc["first"], cdc["growth"]),
                ("vstudio, blocks, pointers as saved", raw["first"], raw["growth"]),
                (f"vstudio, {'+'.join(vst['chunkers'])} chunker", vst["first"], vst["growth"])]
        print(f"{'system':34} {'v1 stored':>12} {'edit growth':>12} {'vs svn':>8}")
        for name, first, growth in rows:
            print(f"{name:34} {mb(first)} {mb(growth)} {growth / svn[1]:7.3f}x")
        print(f"vstudio put v1: {vst['put1_s']:.3f} s = {len(a) / vst['put1_s'] / 1e6:.0f} MB/s; "
              f"put v2: {vst['put2_s']:.3f} s = {size / vst['put2_s'] / 1e6:.0f} MB/s; "
              f"get v2: {vst['get_s']:.3f} s = {size / vst['get_s'] / 1e6:.0f} MB/s "
              f"(medians of {args.runs})")
        print(f"FastCDC-only put v1: {len(a) / cdc['put1_s'] / 1e6:.0f} MB/s, "
              f"v2: {size / cdc['put2_s'] / 1e6:.0f} MB/s (1 run)")
        if kind == "compressed":
            from vstudio.store.blendzstd import seek_table

            plain = sum(f.usize for f in seek_table(b)[0])
            print(f"  in decoded .blend bytes ({mb(plain).strip()}): put v1 "
                  f"{plain / vst['put1_s'] / 1e6:.0f} MB/s, put v2 "
                  f"{plain / vst['put2_s'] / 1e6:.0f} MB/s, get v2 "
                  f"{plain / vst['get_s'] / 1e6:.0f} MB/s")


if __name__ == "__main__":
    main()
