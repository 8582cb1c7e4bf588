"""Object store benchmark (run by hand): ``.venv/bin/python bench/bench_store.py [--quick]``.

Data (the issue's): one 200 MiB random file plus 500 files of 4-64 KB. Peers in the same
run when installed: restic (local repo and the same moto S3 server), raw boto3 multipart.
Prints medians of N runs and ratios. ``--rss`` adds the 2 GiB peak-memory run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
MiB = 1 << 20


def make_data(base: Path, big_mib: int) -> tuple[Path, Path, int]:
    rnd = random.Random(42)
    big = base / "data" / "big.bin"
    small = base / "data" / "small"
    small.mkdir(parents=True)
    with open(big, "wb") as f:
        for _ in range(big_mib):
            f.write(rnd.randbytes(MiB))
    total = big_mib * MiB
    for i in range(500):
        n = rnd.randint(4000, 64000)
        (small / f"tex{i:03}.bin").write_bytes(rnd.randbytes(n))
        total += n
    return big, small, total


def timed(fn: Callable[[], object], runs: int, setup: Callable[[], object] | None = None
          ) -> float:
    times = []
    for _ in range(runs):
        if setup:
            setup()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run(*args: str, env: dict[str, str] | None = None) -> str:
    p = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if p.returncode:
        raise SystemExit(f"{' '.join(args)} failed: {p.stderr[-2000:]}")
    return p.stdout


def vstudio_put(studio: Path, *paths: Path) -> None:
    run(PY, "-m", "vstudio", "store", "put", "--studio", str(studio), "--json",
        *map(str, paths))


def new_studio(base: Path, name: str, store: str | None = None) -> Path:
    d = base / name
    if d.exists():
        shutil.rmtree(d)
    args = [PY, "-m", "vstudio", "init", str(d)]
    if store:
        args += ["--store", store]
    run(*args)
    return d


def stats(studio: Path) -> dict[str, int]:
    return json.loads(run(PY, "-m", "vstudio", "store", "stats", "--json", "--studio",
                          str(studio)))  # type: ignore[no-any-return]


def small_files(small: Path) -> list[Path]:
    return sorted(small.iterdir())


def load() -> str:
    la = os.getloadavg()[0]
    return f"load {la:.2f}" + (" BUSY" if la > 2 else "")


def bench_local(base: Path, big: Path, small: Path, total: int, runs: int) -> None:
    """vstudio put and restic backup of the same data, alternated run by run."""
    env = {"RESTIC_PASSWORD": "bench", "RESTIC_CACHE_DIR": str(base / "rcache")}
    repo = base / "restic"
    has_restic = shutil.which("restic") is not None
    vst: list[float] = []
    rst: list[float] = []
    for i in range(runs):
        studio = new_studio(base, "local")
        status = load()
        t = time.perf_counter()
        vstudio_put(studio, big, *small_files(small))
        vst.append(time.perf_counter() - t)
        check_clean(studio)
        line = f"  run {i + 1}: vstudio {vst[-1]:.2f} s ({status})"
        if has_restic:
            shutil.rmtree(repo, ignore_errors=True)
            run("restic", "init", "-q", "-r", str(repo), env=env)
            status = load()
            t = time.perf_counter()
            run("restic", "backup", "-q", "-r", str(repo), str(base / "data"), env=env)
            rst.append(time.perf_counter() - t)
            line += f", restic {rst[-1]:.2f} s ({status}), ratio {rst[-1] / vst[-1]:.2f}x"
        print(line, flush=True)
    t = statistics.median(vst)
    print(f"local put (CLI, incl. start-up): {t:.2f} s = {total / t / 1e6:.0f} MB/s")
    if rst:
        tr = statistics.median(rst)
        print(f"local restic backup:             {tr:.2f} s = {total / tr / 1e6:.0f} MB/s; "
              f"vstudio is {tr / t:.2f}x restic's speed (medians; goal >= 2.0)")
    else:
        print("restic is not installed: no peer figure (apt-get install restic)")


def check_clean(studio: Path) -> None:
    out = subprocess.run([PY, "-m", "vstudio", "store", "check", "--read-data", "--studio",
                          str(studio)], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"store check --read-data failed: {out.stdout}{out.stderr}")


def bench_growth(base: Path, big: Path) -> None:
    s = new_studio(base, "growth")
    work = base / "edit.bin"
    shutil.copy(big, work)
    vstudio_put(s, work)
    before = stats(s)["stored_bytes"]
    size = work.stat().st_size
    with open(work, "r+b") as f:
        f.seek(size // 2)
        f.write(random.Random(1).randbytes(MiB))
    vstudio_put(s, work)
    after = stats(s)["stored_bytes"]
    print(f"after a 1 MiB overwrite in the middle: +{(after - before) / MiB:.3f} MiB "
          "(target <= 1.1)")
    data = work.read_bytes()
    work.write_bytes(data[:50 * MiB] + random.Random(2).randbytes(100) + data[50 * MiB:])
    del data
    vstudio_put(s, work)
    after2 = stats(s)["stored_bytes"]
    print(f"after a 100-byte insert at 50 MiB:     +{(after2 - after) / MiB:.3f} MiB "
          "(target <= 0.25)")
    if shutil.which("restic"):
        env = {"RESTIC_PASSWORD": "bench", "RESTIC_CACHE_DIR": str(base / "rcache")}
        repo = base / "restic-growth"
        shutil.rmtree(repo, ignore_errors=True)
        run("restic", "init", "-q", "-r", str(repo), env=env)
        shutil.copy(big, work)
        run("restic", "backup", "-q", "-r", str(repo), str(work), env=env)
        b = sum(p.stat().st_size for p in repo.rglob("*") if p.is_file())
        with open(work, "r+b") as f:
            f.seek(size // 2)
            f.write(random.Random(1).randbytes(MiB))
        run("restic", "backup", "-q", "-r", str(repo), str(work), env=env)
        a = sum(p.stat().st_size for p in repo.rglob("*") if p.is_file())
        print(f"restic after the same 1 MiB overwrite:  +{(a - b) / MiB:.3f} MiB")


def _wait_http(endpoint: str, name: str) -> None:
    from tests.helpers import wait_for

    def up() -> bool:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(endpoint + "/", timeout=1) as r:
                return r.status < 500
        except urllib.error.HTTPError as e:
            return e.code < 500

    wait_for(up, 30, name)


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    from tests.helpers import free_port

    port = free_port()
    exe = str(Path(PY).parent / "moto_server")
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    _wait_http(endpoint, "moto_server")
    return proc, endpoint


S3RVER = ROOT / "bench" / "node" / "node_modules" / ".bin" / "s3rver"


def start_s3rver(base: Path) -> tuple[subprocess.Popen[bytes], str]:
    from tests.helpers import free_port

    port = free_port()
    data = base / "s3rver"
    data.mkdir(exist_ok=True)
    proc = subprocess.Popen([str(S3RVER), "-d", str(data), "-a", "127.0.0.1", "-p", str(port),
                             "--silent", "--allow-mismatched-signatures"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    _wait_http(endpoint, "s3rver")
    return proc, endpoint


def bench_s3(base: Path, big: Path, small: Path, total: int, runs: int) -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "S3RVER")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "S3RVER")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    servers = [("moto", lambda: start_moto())]
    if S3RVER.exists():
        servers.append(("s3rver", lambda: start_s3rver(base)))
    else:
        print("s3rver is not installed (scripts/setup.sh --tests): S3 figures on moto only")
    for name, start in servers:
        proc, endpoint = start()
        try:
            print(f"-- S3 server: {name}")
            bench_s3_on(base, big, endpoint, runs)
        finally:
            proc.terminate()
            proc.wait()


def bench_s3_on(base: Path, big: Path, endpoint: str, runs: int) -> None:
    """200 MiB to S3: vstudio put and boto3's managed multipart upload, alternated."""
    import boto3
    from boto3.s3.transfer import TransferConfig

    s3 = boto3.client("s3", endpoint_url=endpoint)
    s3.create_bucket(Bucket="raw")
    cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=16 * MiB,
                         max_concurrency=4)
    vst: list[float] = []
    raw: list[float] = []
    for i in range(runs):
        s3.create_bucket(Bucket=f"bench-{i}")
        studio = new_studio(base, "s3", f"s3://bench-{i}/st?endpoint={endpoint}")
        status = load()
        t = time.perf_counter()
        vstudio_put(studio, big)
        vst.append(time.perf_counter() - t)
        check_clean(studio)
        status2 = load()
        t = time.perf_counter()
        s3.upload_file(str(big), "raw", f"big-{i}.bin", Config=cfg)
        raw.append(time.perf_counter() - t)
        print(f"  run {i + 1}: vstudio {vst[-1]:.2f} s ({status}), boto3 multipart "
              f"{raw[-1]:.2f} s ({status2}), ratio {vst[-1] / raw[-1]:.2f}x", flush=True)
    tv, tb = statistics.median(vst), statistics.median(raw)
    size = big.stat().st_size
    print(f"S3 put of the 200 MiB file: vstudio {tv:.2f} s = {size / tv / 1e6:.0f} MB/s, "
          f"boto3 multipart {tb:.2f} s = {size / tb / 1e6:.0f} MB/s; "
          f"{tv / tb:.2f}x boto3's time (medians; goal <= 1.3)")


def bench_rss(base: Path) -> None:
    huge = base / "huge.bin"
    with open(huge, "wb") as f:
        for _ in range(2048):
            f.write(os.urandom(MiB))
    s = new_studio(base, "rss")
    t = time.perf_counter()
    proc = subprocess.Popen([PY, "-m", "vstudio", "store", "put", "--studio", str(s),
                             str(huge)], stdout=subprocess.DEVNULL)
    # VmHWM of the child's own address space: ru_maxrss would also count this (big)
    # bench process's pages that the child shared between fork and exec.
    peak_kb = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak_kb = max(peak_kb, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.02)
    proc.wait()
    t = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit("the 2 GiB put failed")
    rss = peak_kb / 1024
    print(f"2 GiB put: {t:.1f} s, peak RSS of the put process {rss:.0f} MB (target <= 250)")
    huge.unlink()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--big-mib", type=int, default=200)
    ap.add_argument("--rss", action="store_true", help="also the 2 GiB peak-memory run")
    ap.add_argument("--only", choices=["local", "growth", "s3", "rss"], default=None)
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="vstudio-bench-"))
    try:
        big, small, total = make_data(base, a.big_mib)
        print(f"data: {total / 1e6:.0f} MB ({a.big_mib} MiB file + 500 small files), "
              f"medians of {a.runs} runs")
        if a.only in (None, "local"):
            bench_local(base, big, small, total, a.runs)
        if a.only in (None, "growth"):
            bench_growth(base, big)
        if a.only in (None, "s3"):
            bench_s3(base, big, small, total, a.runs)
        if a.rss or a.only == "rss":
            bench_rss(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
