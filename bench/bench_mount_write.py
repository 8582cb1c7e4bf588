"""Writing through ``vstudio mount --write`` vs s3fs, on the same loopback S3 server (moto).

Run through ``bench/bench_mount.py --only write`` (it starts moto). Each measurement runs the
peers alternately in the same run and prints medians, ratios and the load average:

- writing one 200 MiB file (``cp``): time until ``cp`` returns (bytes durable in the write
  cache) and until the revision is committed in S3; s3fs uploads on close. Every run copies
  the same source file: the mount's first run stores new bytes, later runs are chunked and
  hashed but find every chunk stored already (nothing new is uploaded), while s3fs uploads
  all of it every time; the first run's figures are printed apart. The peak memory
  (VmHWM) of the mount's process and of s3fs's is printed after the runs;
- writing 500 small files (``cp -r``), the same two times;
- Blender's save pattern on an 80 MB .blend, three saves with small edits (write
  ``scene.blend@``, rename ``scene.blend`` to ``scene.blend1``, rename the temp over):
  time to committed and growth of the bucket, beside ``vstudio commit`` of the same versions
  from a working copy and beside s3fs;
- ``ls -lR`` of 20,000 files written through the mount (one ``tar -x``), vs s3fs on the
  same files (uploaded with boto3).
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import tarfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench_mount import (
    VSTUDIO,
    MiB,
    make_studio,
    new_bucket,
    report,
    s3,
    s3fs_mounted,
    timed,
    vs,
)

SETTLE = "0.5"


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def write_random(path: Path, size: int, seed: int) -> None:
    """A file of random bytes, made piece by piece: big sizes need no memory."""
    rng = random.Random(seed)
    with open(path, "wb") as f:
        for at in range(0, size, 16 * MiB):
            f.write(rng.randbytes(min(16 * MiB, size - at)))


def peak_rss(pid: int) -> int:
    """Peak resident memory of a process (VmHWM), in bytes; -1 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


def serving_pid(name: str, mnt: Path) -> int:
    """The process named ``name`` whose command line names the mount point ``mnt``."""
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and Path(args[0].decode()).name == name and str(mnt).encode() in args:
            return int(proc.name)
    return -1


def warn_load() -> None:
    one = os.getloadavg()[0]
    print(f"  ({load()}{'  -- LOAD > 2: figures are unreliable' if one > 2 else ''})")


def s3_store(bucket: str) -> str:
    return f"s3://{bucket}/studio?endpoint={os.environ['BENCH_S3']}&region=us-east-1"


def bucket_bytes(bucket: str) -> int:
    client = s3()
    total = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):  # type: ignore[attr-defined]
        total += sum(int(o["Size"]) for o in page.get("Contents", []))
    return total


class WriteMount:
    """A ``--write`` mount of an S3-backed studio; ``committed`` waits for a revision."""

    def __init__(self, tmp: Path, name: str) -> None:
        self.bucket = new_bucket()
        self.url = make_studio(tmp, name, s3_store(self.bucket))
        self.mnt = tmp / f"mnt-{name}"
        self.mnt.mkdir()
        out = vs("mount", self.url, str(self.mnt), "--write", "--settle", SETTLE,
                 "--cache", str(tmp / f"cache-{name}"), "--poll", "0.2")
        self.pid = int(out.split("(pid ", 1)[1].split(";", 1)[0])
        self.latest = self.mnt / "latest"
        from vstudio.studio import Studio

        self.studio = Studio.open(self.url.rsplit("/", 1)[0])

    def head(self) -> int:
        from vstudio.repo import open_reader

        return open_reader(self.studio).head("p")

    def committed(self, rev: int) -> None:
        while self.head() < rev:
            time.sleep(0.02)

    def close(self) -> None:
        self.studio.close()
        subprocess.run([*VSTUDIO, "umount", str(self.mnt)], capture_output=True)


def both(runs: int, ours: Callable[[int], tuple[float, float]],
         theirs: Callable[[int], float]) -> tuple[list[float], list[float], list[float]]:
    a, b, c = [], [], []
    for i in range(runs):
        warn_load()
        returned, done = ours(i)
        a.append(returned)
        b.append(done)
        c.append(theirs(i))
    return a, b, c


def cp_until_committed(m: WriteMount, src: Path, name: str) -> tuple[float, float]:
    """``cp`` of ``src`` into the mount's ``latest/NAME``: seconds until ``cp`` returned
    and until the mount committed it."""
    rev = m.head() + 1
    t = time.perf_counter()
    subprocess.run(["cp", str(src), str(m.latest / name)], check=True)
    returned = time.perf_counter() - t
    m.committed(rev)
    return returned, time.perf_counter() - t


def bench_write_big(tmp: Path, big_mib: int, runs: int) -> None:
    print(f"\n== write one {big_mib} MiB file (cp) into the mount, S3 store (moto)")
    src = tmp / "big.bin"
    write_random(src, big_mib * MiB, 2)
    m = WriteMount(tmp, "wbig")
    bucket = new_bucket()
    rss: dict[str, int] = {}
    try:
        with s3fs_mounted(bucket, tmp / "s3fs-wbig", tmp) as f:
            def ours(i: int) -> tuple[float, float]:
                return cp_until_committed(m, src, f"big{i}.bin")

            a, b, c = both(runs, ours, lambda i: timed(lambda: subprocess.run(
                ["cp", str(src), str(f / f"big{i}.bin")], check=True)))
            rss = {"vstudio mount": peak_rss(m.pid), "s3fs": peak_rss(serving_pid("s3fs", f))}
    finally:
        m.close()
    size = big_mib * MiB
    mb = [[size / MiB / x for x in xs] for xs in (a, b, c)]
    report("vstudio mount: cp returned (in write cache)", mb[0], "MB/s")
    o = report(f"vstudio mount: committed (settle {SETTLE} s)", mb[1], "MB/s")
    s = report("s3fs: cp returned (uploaded)", mb[2], "MB/s")
    print(f"  ratio mount committed / s3fs: {o / s:.2f}  (goal >= 4)")
    print(f"  ratio mount cp returned / s3fs: {statistics.median(mb[0]) / s:.2f}  (when each "
          "tool's save returns: durable in the write cache vs uploaded)")
    # Committed waits for the settle window after close by design: at most size / settle.
    wait = float(SETTLE)
    print(f"  committed without the {SETTLE} s settle window: "
          f"{statistics.median(size / MiB / (x - wait) for x in b):.2f} MB/s; the window "
          f"alone caps committed at {size / MiB / wait:.0f} MB/s (4x s3fs: {4 * s:.0f})")
    print(f"  first run only (the mount uploads new bytes too): committed {mb[1][0]:.2f} "
          f"MB/s vs s3fs {mb[2][0]:.2f} MB/s, ratio {mb[1][0] / mb[2][0]:.2f}")
    for who, peak in rss.items():
        print(f"  peak memory (VmHWM) of the {who} process: {peak / MiB:.0f} MiB "
              f"(file {big_mib} MiB)")


def bench_write_small(tmp: Path, count: int, runs: int) -> None:
    print(f"\n== write {count} small files (4-64 KB, cp -r) into the mount, S3 store")
    rng = random.Random(3)
    src = tmp / "small"
    src.mkdir()
    for i in range(count):
        (src / f"tex{i:04d}.png").write_bytes(rng.randbytes(rng.randint(4096, 65536)))
    m = WriteMount(tmp, "wsmall")
    bucket = new_bucket()
    try:
        with s3fs_mounted(bucket, tmp / "s3fs-wsmall", tmp) as f:
            def ours(i: int) -> tuple[float, float]:
                rev = m.head() + 1
                t = time.perf_counter()
                subprocess.run(["cp", "-r", str(src), str(m.latest / f"set{i}")], check=True)
                returned = time.perf_counter() - t
                m.committed(rev)
                return returned, time.perf_counter() - t

            a, b, c = both(runs, ours, lambda i: timed(lambda: subprocess.run(
                ["cp", "-r", str(src), str(f / f"set{i}")], check=True)))
    finally:
        m.close()
    report("vstudio mount: cp -r returned", a, "s")
    o = report(f"vstudio mount: committed (settle {SETTLE} s)", b, "s")
    s = report("s3fs: cp -r returned", c, "s")
    print(f"  ratio mount committed / s3fs: {o / s:.2f}  (goal <= 0.1)")


def blend_versions(mb: int) -> list[bytes]:
    rng = random.Random(4)
    v = bytearray(rng.randbytes(mb * 1000 * 1000))
    out = [bytes(v)]
    for _ in range(2):
        for _edit in range(12):  # small scattered edits, as a re-save after a tweak
            at = rng.randrange(len(v) - 4096)
            v[at:at + 4096] = rng.randbytes(4096)
        out.append(bytes(v))
    return out


def save_pattern(folder: Path, data: bytes) -> None:
    """What Blender does: write NAME@, keep the old file as NAME1, rename the temp over."""
    tmp, dst, backup = folder / "scene.blend@", folder / "scene.blend", folder / "scene.blend1"
    with open(tmp, "wb") as f:
        f.write(data)
    if dst.exists():
        os.replace(dst, backup)
    os.replace(tmp, dst)


def bench_blend(tmp: Path, mb: int) -> None:
    print(f"\n== Blender's save pattern, {mb} MB .blend, 3 saves with small edits, S3 store")
    versions = blend_versions(mb)
    m = WriteMount(tmp, "wblend")
    wc_bucket, fs_bucket = new_bucket(), new_bucket()
    wc_url = make_studio(tmp, "wcblend", s3_store(wc_bucket))
    wc = tmp / "wc-blend"
    vs("checkout", wc_url, str(wc))
    rows: list[tuple[str, float, int, float, int, float, int]] = []
    try:
        with s3fs_mounted(fs_bucket, tmp / "s3fs-blend", tmp) as f:
            for n, data in enumerate(versions, 1):
                warn_load()
                before = bucket_bytes(m.bucket)
                t = time.perf_counter()
                save_pattern(m.latest, data)
                m.committed(n)
                ours = time.perf_counter() - t
                grown = bucket_bytes(m.bucket) - before
                before = bucket_bytes(wc_bucket)
                (wc / "scene.blend").write_bytes(data)
                c = timed(lambda: vs("commit", "-m", f"save {n}", cwd=wc))  # noqa: B023
                wc_grown = bucket_bytes(wc_bucket) - before
                before = bucket_bytes(fs_bucket)
                s = timed(lambda: save_pattern(f, data))  # noqa: B023
                rows.append((f"save {n}", ours, grown, c, wc_grown, s,
                             bucket_bytes(fs_bucket) - before))
    finally:
        m.close()
    print(f"  {'':8} {'mount s':>8} {'mount +MB':>10} {'commit s':>9} {'commit +MB':>11} "
          f"{'s3fs s':>8} {'s3fs +MB':>9}")
    for label, o, og, c, cg, s, sg in rows:
        print(f"  {label:8} {o:8.2f} {og / 1e6:10.2f} {c:9.2f} {cg / 1e6:11.2f} "
              f"{s:8.2f} {sg / 1e6:9.2f}")
    print(f"  (mount times are until committed, settle {SETTLE} s; 'commit s' excludes the "
          "write of the file into the working copy)")


def bench_listing_after_writes(tmp: Path, count: int, runs: int) -> None:
    print(f"\n== ls -lR of {count} files written through the mount (one tar -x), S3 store")
    archive = tmp / "many.tar"
    names = [f"shot{i // 500:03d}/sub{(i // 50) % 10}/frame{i:05d}.png" for i in range(count)]
    with tarfile.open(archive, "w") as tar:
        import io

        for i, name in enumerate(names):
            data = b"p%d" % i
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    m = WriteMount(tmp, "wlist")
    bucket = new_bucket()
    try:
        t = time.perf_counter()
        subprocess.run(["tar", "-xf", str(archive), "-C", str(m.latest)], check=True)
        untar = time.perf_counter() - t
        m.committed(1)
        print(f"  (tar -x of {count} files into the mount: {untar:.1f} s; committed after "
              f"{time.perf_counter() - t:.1f} s)")
        client = s3()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda n: client.put_object(  # type: ignore[attr-defined]
                Bucket=bucket, Key=n, Body=b"p"), names))
        with s3fs_mounted(bucket, tmp / "s3fs-list", tmp) as f:
            def ls(folder: Path) -> float:
                return timed(lambda: subprocess.run(["ls", "-lR", str(folder)], check=True,
                                                    stdout=subprocess.DEVNULL))
            ours, theirs = [], []
            for _ in range(runs):
                warn_load()
                time.sleep(1.1)  # past the attribute timeout: the kernel asks again
                ours.append(ls(m.latest))
                theirs.append(ls(f))
    finally:
        m.close()
    o = report("vstudio mount --write: ls -lR latest/", ours, "s")
    s = report("s3fs: ls -lR", theirs, "s")
    print(f"  ratio mount / s3fs: {o / s:.2f}")


def bench_write_new(tmp: Path, big_mib: int, runs: int) -> None:
    """Like ``bench_write_big``, but every run copies a file of new random bytes with each
    tool: nothing the store holds already, so the mount chunks, hashes and uploads all of
    it every run, as s3fs does (like with like: no run profits from an earlier one)."""
    print(f"\n== write a new {big_mib} MiB file each run (cp) into the mount, S3 store (moto)")
    m = WriteMount(tmp, "wnew")
    bucket = new_bucket()
    try:
        with s3fs_mounted(bucket, tmp / "s3fs-wnew", tmp) as f:
            def fresh(i: int, who: str) -> Path:
                src = tmp / f"new-{who}.bin"
                write_random(src, big_mib * MiB, 1000 + 2 * i + (who == "s3fs"))
                return src

            def ours(i: int) -> tuple[float, float]:
                return cp_until_committed(m, fresh(i, "mount"), f"new{i}.bin")

            def theirs(i: int) -> float:
                src = fresh(i, "s3fs")
                return timed(lambda: subprocess.run(["cp", str(src), str(f / f"new{i}.bin")],
                                                    check=True))

            a, b, c = both(runs, ours, theirs)
    finally:
        m.close()
    mb = [[big_mib / x for x in xs] for xs in (a, b, c)]
    r = report("vstudio mount: cp returned (in write cache)", mb[0], "MB/s")
    o = report(f"vstudio mount: committed (settle {SETTLE} s)", mb[1], "MB/s")
    s = report("s3fs: cp returned (uploaded)", mb[2], "MB/s")
    print(f"  ratio mount cp returned / s3fs: {r / s:.2f}  (when each tool's save returns)")
    print(f"  ratio mount committed / s3fs: {o / s:.2f}")
    print("  pairwise (run by run) cp returned / s3fs: "
          + ", ".join(f"{x / y:.2f}" for x, y in zip(mb[0], mb[2], strict=True)))


def run_all(tmp: Path, big_mib: int, small: int, listing: int, runs: int,
            blend_mb: int = 80, only: set[str] | None = None) -> None:
    """Every write benchmark, or those named in ``only`` (big, new, small, blend,
    listing)."""
    parts: dict[str, Callable[[], None]] = {
        "big": lambda: bench_write_big(tmp, big_mib, runs),
        "new": lambda: bench_write_new(tmp, big_mib, runs),
        "small": lambda: bench_write_small(tmp, small, runs),
        "blend": lambda: bench_blend(tmp, blend_mb),
        "listing": lambda: bench_listing_after_writes(tmp, listing, runs),
    }
    for name, fn in parts.items():
        if only is None or name in only:
            fn()
