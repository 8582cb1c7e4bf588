"""Benchmark: what one edit of a Blender scene costs to store, against Subversion and restic.

The issue's scene: 300 UV spheres (64 x 32 segments) at random positions and a packed
1024 x 1024 random-noise texture, saved uncompressed by Blender; then reopened in a new
Blender session, one object moved, saved again.  The same with Blender's "Compress" option
(zstd).  Each system stores both versions; we print the second version's growth, the
ratio to Subversion's growth in the same run, and put throughput (median of runs).

    .venv/bin/python bench/bench_blend.py [--workdir DIR] [--runs N] [--spheres N] [--edits]

``--edits`` instead measures a set of small edits (``tests/blendgen.EDITS``: a property, an
object moved, a material tweaked, a modifier added, the packed image replaced) on scenes of
about 1, 20 and 80 MB: the growth of each save committed after the original, in Subversion
and in vstudio (put with ``previous=`` the original, as commits do), side by side.
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import blendgen  # noqa: E402
from vstudio.store import blend, maintenance, open_store  # noqa: E402


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def make_scenes(work: Path, spheres: int) -> dict[str, list[Path]]:
    """Per kind: v1 (made by a script), v2 (new session, one object moved), v3 (another
    new session on v2, another object moved)."""
    out = {}
    for kind, compress in (("uncompressed", False), ("compressed", True)):
        v1, v2, v3 = (work / f"{kind}-v{i}.blend" for i in (1, 2, 3))
        if not (v1.exists() and v2.exists()):
            t = time.monotonic()
            blendgen.make_scene(v1, spheres=spheres, segments=64, rings=32, texture=1024,
                                seed=7, compress=compress)
            blendgen.resave_moved(v1, v2)
            print(f"  made {kind} scene in {time.monotonic() - t:.1f} s", flush=True)
        if not v3.exists():
            blendgen.resave_moved(v2, v3, obj="sphere_0100", offset=(0, 1, 0))
        out[kind] = [v1, v2, v3]
    return out


def run(cmd: list[str], **kw: object) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   **kw)  # type: ignore[call-overload]


def bench_svn(versions: list[Path], tmp: Path) -> list[int]:
    """Repository growth of each commit."""
    repo, wc = tmp / "svnrepo", tmp / "svnwc"
    run(["svnadmin", "create", str(repo)])
    run(["svn", "checkout", "-q", f"file://{repo}", str(wc)])
    shutil.copy(versions[0], wc / "scene.blend")
    run(["svn", "add", "-q", str(wc / "scene.blend")])
    growth = []
    for i, v in enumerate(versions):
        shutil.copy(v, wc / "scene.blend")
        before = du(repo)
        run(["svn", "commit", "-q", "-m", f"v{i + 1}", str(wc)])
        growth.append(du(repo) - before)
    return growth


def bench_restic(versions: list[Path], tmp: Path) -> tuple[int, int]:
    repo, src = tmp / "resticrepo", tmp / "resticsrc"
    src.mkdir()
    env = {**os.environ, "RESTIC_PASSWORD": "bench", "RESTIC_REPOSITORY": str(repo),
           "RESTIC_CACHE_DIR": str(tmp / "resticcache")}
    run(["restic", "init", "-q"], env=env)
    base = du(repo)
    v1, v2 = versions[:2]
    shutil.copy(v1, src / "scene.blend")
    run(["restic", "backup", "-q", str(src)], env=env)
    first = du(repo)
    shutil.copy(v2, src / "scene.blend")
    run(["restic", "backup", "-q", str(src)], env=env)
    return first - base, du(repo) - first


def bench_vstudio(versions: list[Path], tmp: Path, runs: int, fastcdc: bool = False
                  ) -> dict[str, Any]:
    """Growth of each version and put/get times, medians of ``runs`` fresh stores."""
    times: list[list[float]] = [[] for _ in versions]
    growths: list[list[int]] = [[] for _ in versions]
    t_get: list[float] = []
    chunkers: dict[str, int] = {}
    for i in range(runs):
        root = tmp / f"vst{'-cdc' if fastcdc else ''}-{i}"
        store = open_store(f"file://{root}")
        ids = []
        for k, path in enumerate(versions):
            before = du(root)
            t = time.perf_counter()
            if fastcdc:
                with open(path, "rb") as f:
                    ids.append(store.put_stream(f))
            else:  # as a commit does: the path's previous version is named
                ids.append(store.put_file(path, previous=ids[-1] if ids else None))
            times[k].append(time.perf_counter() - t)
            growths[k].append(du(root) - before)
        t = time.perf_counter()
        store.get_file(ids[1], tmp / "back.blend")
        t_get.append(time.perf_counter() - t)
        if (tmp / "back.blend").read_bytes() != versions[1].read_bytes():
            raise SystemExit("vstudio returned different bytes!")
        chunkers = maintenance.stats(store)["chunkers"]
        shutil.rmtree(root)
    return {"growth": [statistics.median(g) for g in growths],
            "put_s": [statistics.median(t) for t in times],
            "get_s": statistics.median(t_get), "chunkers": chunkers}


def bench_remote(versions: list[Path], tmp: Path) -> dict[str, Any]:
    """The same puts by an artist's client through ``vstudio serve`` (RemoteStore): growth
    of the server's store and put times (one run)."""
    from tests.conftest import start_server
    from vstudio.store.remote import RemoteStore
    from vstudio.studio import init_studio

    root = tmp / "served"
    init_studio(root, store_url=None, db_url=None).close()
    srv = start_server(root, tmp / "server.log")
    growth, times = [], []
    try:
        remote = RemoteStore(srv.url, srv.admin_token)
        for path in versions:
            before = du(root / "store")
            t = time.perf_counter()
            oid = remote.put_file(path)
            times.append(time.perf_counter() - t)
            growth.append(du(root / "store") - before)
        if remote.get_bytes(oid) != versions[-1].read_bytes():
            raise SystemExit("vstudio returned different bytes through the server!")
        remote.close()
    finally:
        srv.process.terminate()
        srv.process.wait(10)
    return {"growth": growth, "put_s": times}


EDIT_SCENES = {"1 MB": (4, 256), "20 MB": (60, 1024), "80 MB": (300, 1024)}


def load() -> str:
    la = os.getloadavg()[0]
    return f"load {la:.2f}" + (" (BUSY: over the 2 cores)" if la > 2 else "")


def bench_edits(work: Path) -> None:
    print(f"{'scene':8} {'edit':10} {'svn growth':>12} {'vstudio':>12} {'ratio':>7}  load")
    for label, (spheres, texture) in EDIT_SCENES.items():
        base = work / f"edits-{spheres}.blend"
        if not base.exists():
            blendgen.make_scene(base, spheres=spheres, segments=64, rings=32,
                                texture=texture, seed=11)
        edited = {}
        for edit in blendgen.EDITS:
            dest = work / f"edits-{spheres}-{edit}.blend"
            if not dest.exists():
                blendgen.resave_edited(base, dest, edit)
            edited[edit] = dest
        with tempfile.TemporaryDirectory(dir=work) as t:
            tmp = Path(t)
            repo, wc = tmp / "svnrepo", tmp / "svnwc"
            run(["svnadmin", "create", str(repo)])
            run(["svn", "checkout", "-q", f"file://{repo}", str(wc)])
            shutil.copy(base, wc / "base.blend")
            run(["svn", "add", "-q", str(wc / "base.blend")])
            run(["svn", "commit", "-q", "-m", "base", str(wc)])
            store = open_store(f"file://{tmp / 'vst'}")
            base_id = store.put_file(base)
            ratios = []
            for edit, path in edited.items():
                status = load()
                run(["svn", "copy", "-q", str(wc / "base.blend"), str(wc / f"{edit}.blend")])
                run(["svn", "commit", "-q", "-m", "copy", str(wc)])
                shutil.copy(path, wc / f"{edit}.blend")
                before = du(repo)
                run(["svn", "commit", "-q", "-m", edit, str(wc)])
                svn = du(repo) - before
                before = du(tmp / "vst")
                oid = store.put_file(path, previous=base_id)
                vst = du(tmp / "vst") - before
                if store.get_bytes(oid) != path.read_bytes():
                    raise SystemExit("vstudio returned different bytes!")
                ratios.append(vst / svn)
                print(f"{label:8} {edit:10} {svn:12,d} {vst:12,d} {vst / svn:6.2f}x  {status}",
                      flush=True)
            problems = maintenance.check(store, read_data=True)
            print(f"{label:8} {'median':10} {'':12} {'':12} {statistics.median(ratios):6.2f}x  "
                  f"store check --read-data: {'clean' if not problems else problems[:3]}")


def mb(n: float) -> str:
    return f"{n / 1e6:8.3f} MB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench_blend")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--spheres", type=int, default=300)
    ap.add_argument("--edits", action="store_true", help="the small-edit set instead")
    args = ap.parse_args()
    for prog in ("blender", "svn", "svnadmin", "restic"):
        if not shutil.which(prog):
            raise SystemExit(f"{prog} is missing: apt-get install blender subversion restic")
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"scenes in {args.workdir} (kept between runs); {load()}")
    if args.edits:
        bench_edits(args.workdir)
        return
    scenes = make_scenes(args.workdir, args.spheres)
    for kind, versions in scenes.items():
        v1, v2 = versions[:2]
        size = v2.stat().st_size
        a, b = v1.read_bytes(), v2.read_bytes()
        differing = sum(x != y for x, y in zip(a, b, strict=False)) + abs(len(a) - len(b))
        print(f"\n== {kind} save: v1 {mb(len(a))}, v2 {mb(size)}, "
              f"{differing} bytes differ ==")
        with tempfile.TemporaryDirectory(dir=args.workdir) as t:
            tmp = Path(t)
            svn = bench_svn(versions, tmp)
            restic = bench_restic(versions, tmp)
            vst = bench_vstudio(versions, tmp, args.runs)
            cdc = bench_vstudio(versions[:2], tmp, 1, fastcdc=True)
            served = bench_remote(versions, tmp)
            # The same layout with pointers left as Blender wrote them: what cutting at
            # block boundaries alone gives, without rewriting pointer-bearing bodies.
            saved = blend._codec
            blend._codec = lambda *a: None  # type: ignore[assignment]
            try:
                raw = bench_vstudio(versions, tmp, 1)
            finally:
                blend._codec = saved
        rows = [("subversion 1.14 (FSFS)", svn),
                ("restic", [*restic, 0]),
                ("vstudio, FastCDC only", [*cdc["growth"], 0]),
                ("vstudio, blocks, pointers as saved", raw["growth"]),
                (f"vstudio, {'+'.join(vst['chunkers'])} chunker", vst["growth"]),
                ("vstudio through vstudio serve", served["growth"])]
        print(f"{'system':36} {'v1 stored':>11} {'edit (v2)':>11} {'vs svn':>7} "
              f"{'2nd (v3)':>11} {'vs svn':>7}")
        for name, g in rows:
            third = f"{mb(g[2])} {g[2] / svn[2]:6.3f}x" if g[2] else f"{'-':>11} {'':>7}"
            print(f"{name:36} {mb(g[0])} {mb(g[1])} {g[1] / svn[1]:6.3f}x {third}")
        put1, put2 = vst["put_s"][0], vst["put_s"][1]
        print(f"vstudio put v1: {put1:.3f} s = {len(a) / put1 / 1e6:.0f} MB/s; "
              f"put v2: {put2:.3f} s = {size / put2 / 1e6:.0f} MB/s; "
              f"get v2: {vst['get_s']:.3f} s = {size / vst['get_s'] / 1e6:.0f} MB/s "
              f"(medians of {args.runs})")
        print(f"through the server: put v1 {len(a) / served['put_s'][0] / 1e6:.0f} MB/s, "
              f"v2 {size / served['put_s'][1] / 1e6:.0f} MB/s (1 run)")
        print(f"FastCDC-only put v1: {len(a) / cdc['put_s'][0] / 1e6:.0f} MB/s, "
              f"v2: {size / cdc['put_s'][1] / 1e6:.0f} MB/s (1 run)")
        if kind == "compressed":
            from vstudio.store.blendzstd import seek_table

            plain = sum(f.usize for f in seek_table(b)[0])
            print(f"  in decoded .blend bytes ({mb(plain).strip()}): put v1 "
                  f"{plain / put1 / 1e6:.0f} MB/s, put v2 {plain / put2 / 1e6:.0f} MB/s, "
                  f"get v2 {plain / vst['get_s'] / 1e6:.0f} MB/s")


if __name__ == "__main__":
    main()
