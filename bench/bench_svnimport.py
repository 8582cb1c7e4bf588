"""Benchmark: moving a Subversion studio in, against ``svnadmin load`` of the same dump.

A synthetic studio history is made with real ``svn`` commands: N revisions (default 200)
of .blend saves (three shots whose scenes change a little each time; one shot saved with
Blender's "Compress"), textures added and partly repainted, renames, deletes, copies and
one case-only rename. The .blend variants come from one Blender process (a few saves per
shot), so making the history stays quick. Then, per run and alternating which goes first:

- ``svnadmin load`` of the dump of r1..N-10 into a new FSFS repository, and
  ``vstudio svn-import`` of the same dump into a new studio (local store): wall times;
- the repository's ``du`` against the studio store's bytes;
- catch-up of the 10 newest revisions: ``svnadmin load`` of their --incremental dump, and
  ``vstudio svn-sync file://...`` (which runs ``svnadmin dump`` itself) and
  ``vstudio svn-import`` of that incremental dump.

Goals (issue 14): import <= 1.0x svnadmin load; stored bytes <= 0.5x the FSFS du;
catch-up of 10 revisions <= 2 s.

    .venv/bin/python bench/bench_svnimport.py [--revisions N] [--runs N] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VSTUDIO = [sys.executable, "-m", "vstudio"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
SHOTS = 3
SPHERES = 24


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[bytes]:
    kw.setdefault("stdout", subprocess.PIPE)
    done = subprocess.run(cmd, stderr=subprocess.PIPE, **kw)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed: {(done.stdout or b'').decode()[-2000:]}"
                         f"{done.stderr.decode()[-2000:]}")
    return done  # type: ignore[no-any-return]


CPU: dict[str, float] = {}  # the last timed command's CPU seconds (with its helpers)


def timed(cmd: list[str], **kw: object) -> float:
    """Wall seconds of ``cmd``; its user+system CPU seconds, of every process it waited
    for, go to ``CPU["last"]`` (on a shared machine CPU varies less than wall time)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    run(cmd, **kw)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU["last"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_variants(out: Path, variants: int) -> list[list[Path]]:
    """SHOTS x ``variants`` .blend files from one Blender process: each variant moves one
    sphere and recolours a material a little; shot 1 is saved compressed (zstd)."""
    files = [[out / f"shot{s}_v{v}.blend" for v in range(variants)] for s in range(SHOTS)]
    if all(f.exists() for row in files for f in row):
        return files
    out.mkdir(parents=True, exist_ok=True)
    # Each variant reopens the previous save (new memory addresses in every block, as in
    # an artist's next session), moves one sphere and recolours the material.
    script = f"""
        import bpy, random
        bpy.context.preferences.filepaths.save_version = 0
        for s in range({SHOTS}):
            random.seed(s)
            bpy.ops.wm.read_factory_settings(use_empty=True)
            mat = bpy.data.materials.new("mat")
            for i in range({SPHERES}):
                loc = tuple(random.uniform(-20, 20) for _ in range(3))
                bpy.ops.mesh.primitive_uv_sphere_add(segments=32, ring_count=16, location=loc)
                ob = bpy.context.active_object
                ob.name = "sphere_%03d" % i
                ob.data.materials.append(mat)
            for v in range({variants}):
                if v:
                    bpy.ops.wm.open_mainfile(filepath="{out}/shot%d_v%d.blend" % (s, v - 1))
                ob = bpy.data.objects["sphere_%03d" % random.randrange({SPHERES})]
                ob.location.x += 0.25
                bpy.data.materials["mat"].diffuse_color = (random.random(), 0.5, 0.5, 1.0)
                bpy.ops.wm.save_as_mainfile(filepath="{out}/shot%d_v%d.blend" % (s, v),
                                            compress=(s == 1))
        """
    run(["blender", "-b", "--factory-startup", "-noaudio", "-Y", "--python-exit-code", "3",
         "--python-expr", textwrap.dedent(script)])
    return files


def svn(wc: Path, *args: str) -> None:
    run(["svn", "--non-interactive", *args], cwd=wc)


class History:
    """Applies revision i of the synthetic history to a working copy."""

    def __init__(self, wc: Path, variants: list[list[Path]], n: int) -> None:
        self.wc, self.variants, self.n = wc, variants, n
        self.rng = random.Random(14)
        self.shots = [f"shots/shot{s}.blend" for s in range(SHOTS)]
        self.textures: list[str] = []

    def step(self, i: int) -> str:
        wc, rng = self.wc, self.rng
        s = i % SHOTS
        row = self.variants[s]
        shutil.copyfile(row[(i // SHOTS) % len(row)], wc / self.shots[s])
        what = f"save {self.shots[s]}"
        if i % 8 == 0:
            name = f"tex/t{i:04d}.png"
            (wc / name).write_bytes(rng.randbytes(rng.randrange(32, 128) << 10))
            self.textures.append(name)
            what += f", add {name}"
        elif i % 7 == 0 and self.textures:  # repaint part of a texture
            name = rng.choice(self.textures)
            data = bytearray((wc / name).read_bytes())
            at = rng.randrange(len(data))
            data[at:at + 8192] = rng.randbytes(8192)
            (wc / name).write_bytes(bytes(data))
            what += f", repaint {name}"
        if i % 17 == 0 and self.textures:
            old = self.textures.pop(0)
            new = f"tex/renamed{i}_{old.rsplit('/', 1)[1]}"
            svn(wc, "mv", "-q", old, new)
            self.textures.append(new)
            what += f", rename {old}"
        if i % 19 == 0 and len(self.textures) > 3:
            old = self.textures.pop(rng.randrange(len(self.textures)))
            svn(wc, "rm", "-q", old)
            what += f", delete {old}"
        if i % 23 == 0:
            svn(wc, "copy", "-q", self.shots[s], f"shots/shot{s}_r{i}.blend")
            what += ", copy a shot"
        if i == self.n // 2:  # svn mv foo.blend Foo.blend
            old = self.shots[0]
            self.shots[0] = "shots/Shot0.blend"
            svn(wc, "mv", "-q", old, self.shots[0])
            what += ", case-only rename"
        return what

    def make(self, repo: Path) -> None:
        run(["svnadmin", "create", str(repo)])
        run(["svn", "checkout", "-q", f"file://{repo}", str(self.wc)])
        (self.wc / "shots").mkdir()
        (self.wc / "tex").mkdir()
        for i in range(1, self.n + 1):
            msg = self.step(i)
            svn(self.wc, "add", "-q", "--force", ".")
            svn(self.wc, "commit", "-q", "-m", f"r{i}: {msg}", "--username",
                ("ann", "bob", "cy")[i % 3])


def one_run(work: Path, base: Path, tail: Path, src: Path, k: int, first: str) -> dict[str, float]:
    out: dict[str, float] = {}
    order = ["svn", "vstudio"] if first == "svn" else ["vstudio", "svn"]
    for who in order:
        print(f"  run {k} {who}: load average {loadavg()}", flush=True)
        if who == "svn":
            repo = work / f"load{k}"
            run(["svnadmin", "create", str(repo)])
            with open(base, "rb") as f:
                out["svn_load"] = timed(["svnadmin", "load", "-q", str(repo)], stdin=f)
            out["svn_load_cpu"] = CPU["last"]
            out["svn_du"] = du(repo)
            with open(tail, "rb") as f:
                out["svn_tail"] = timed(["svnadmin", "load", "-q", str(repo)], stdin=f)
            shutil.rmtree(repo)
            continue
        studio = work / f"studio{k}"
        run([*VSTUDIO, "init", str(studio)], env=ENV)
        for p in ("p", "q"):
            run([*VSTUDIO, "project", "create", p, "--studio", str(studio)], env=ENV)
        out["vs_import"] = timed([*VSTUDIO, "svn-import", str(base), f"{studio}/p"], env=ENV)
        out["vs_import_cpu"] = CPU["last"]
        out["vs_store"] = du(studio / "store") if (studio / "store").exists() else du(studio)
        out["vs_studio"] = du(studio)
        out["vs_sync"] = timed([*VSTUDIO, "svn-sync", f"file://{src}", f"{studio}/p"], env=ENV)
        print(f"  run {k} vstudio catch-up by import: load average {loadavg()}", flush=True)
        run([*VSTUDIO, "svn-import", str(base), f"{studio}/q"], env=ENV)
        out["vs_tail"] = timed([*VSTUDIO, "svn-import", str(tail), f"{studio}/q"], env=ENV)
        shutil.rmtree(studio)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--revisions", type=int, default=200)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    if args.revisions < 20:
        raise SystemExit("--revisions must be at least 20 (the last 10 are the catch-up)")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-svnimport-"))
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    per_shot = -(-args.revisions // SHOTS)  # every revision saves a scene not seen before
    variants = make_variants(work / f"variants{per_shot}", per_shot)
    print(f"made {SHOTS * per_shot} .blend variants in one Blender process "
          f"({time.perf_counter() - t:.1f} s)", flush=True)
    src = work / f"src{args.revisions}"
    if not src.exists():
        t = time.perf_counter()
        History(work / f"wc{args.revisions}", variants, args.revisions).make(src)
        print(f"made {args.revisions} revisions with svn in {time.perf_counter() - t:.1f} s")
    n = args.revisions
    base, tail = work / "base.dump", work / "tail.dump"
    with open(base, "wb") as f:
        run(["svnadmin", "dump", "-q", "-r", f"0:{n - 10}", str(src)], stdout=f)
    with open(tail, "wb") as f:
        run(["svnadmin", "dump", "-q", "--incremental", "-r", f"{n - 9}:{n}", str(src)],
            stdout=f)
    print(f"dump r0..r{n - 10}: {base.stat().st_size / 1e6:.1f} MB; incremental "
          f"r{n - 9}..r{n}: {tail.stat().st_size / 1e6:.1f} MB; source repository du "
          f"{du(src) / 1e6:.1f} MB", flush=True)
    # The source must not hold the catch-up's pre-commit hook etc.: it is only read.
    runs = [one_run(work, base, tail, src, k, "svn" if k % 2 else "vstudio")
            for k in range(1, args.runs + 1)]

    for k, r in enumerate(runs, start=1):
        print(f"run {k}: " + ", ".join(
            f"{key} {v / 1e6:.2f} MB" if key.endswith(("du", "store", "studio"))
            else f"{key} {v:.2f} s" for key, v in sorted(r.items())))

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    print(f"\nmedians of {args.runs} runs, {n - 10} revisions imported, 10 caught up:")
    print(f"  import wall time: svnadmin load {med('svn_load'):.2f} s, vstudio svn-import "
          f"{med('vs_import'):.2f} s, ratio {med('vs_import') / med('svn_load'):.2f}x "
          "(goal <= 1.0x)")
    print(f"  import CPU (user+system, helpers included): svnadmin load "
          f"{med('svn_load_cpu'):.2f} s, vstudio svn-import {med('vs_import_cpu'):.2f} s, "
          f"ratio {med('vs_import_cpu') / med('svn_load_cpu'):.2f}x")
    print(f"  stored bytes: FSFS du {med('svn_du') / 1e6:.1f} MB, vstudio store "
          f"{med('vs_store') / 1e6:.1f} MB (whole studio {med('vs_studio') / 1e6:.1f} MB), "
          f"ratio {med('vs_store') / med('svn_du'):.2f}x (goal <= 0.5x)")
    print(f"  catch-up of 10 revisions: svnadmin load {med('svn_tail'):.2f} s, vstudio "
          f"svn-sync {med('vs_sync'):.2f} s ({med('vs_sync') / med('svn_tail'):.2f}x), "
          f"vstudio svn-import {med('vs_tail'):.2f} s ({med('vs_tail') / med('svn_tail'):.2f}x)"
          " (goal <= 2 s)")
    if not args.workdir:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
