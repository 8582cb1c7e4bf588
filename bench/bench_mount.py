"""Benchmark of ``vstudio mount`` against s3fs and raw boto3 on the same loopback S3 server.

Run by hand: ``.venv/bin/python bench/bench_mount.py [--big-mib 200] [--small 500]
[--listing 20000] [--runs 3]``. Prints medians and the ratios the issue asks for:

- sequential read of a big file from an S3 store, cold cache, vs s3fs and a parallel
  boto3 download of the same bytes from the same moto server;
- the same from a local-folder store, cold (fresh cache) and warm (cache filled, new mount);
- ``ls -lR`` of a revision with many files;
- reading many small files (``tar -cf - | cat > /dev/null``; GNU tar skips reading when its
  archive is /dev/null itself), cold, vs s3fs;
- ``--only write``: writing through ``mount --write`` vs s3fs (see ``bench_mount_write.py``;
  ``--only write-big,write-new,write-small,write-blend,write-listing`` picks parts; ``--big-mib``
  sets the size of the big file, written piece by piece, so any size fits in memory).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VSTUDIO = [sys.executable, "-m", "vstudio"]
MiB = 1024 * 1024


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {proc.stderr.strip()[-800:]}")
    return proc.stdout


def vs(*args: str, cwd: Path | None = None) -> str:
    return run(*VSTUDIO, *args, cwd=cwd)


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn`` takes; the machine's load average is printed before each run."""
    load = os.getloadavg()
    flag = "  (over the core count: noisy)" if load[0] > (os.cpu_count() or 1) else ""
    print(f"    load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}{flag}", flush=True)
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def read_file(path: Path) -> int:
    n = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(4 * MiB)
            if not b:
                return n
            n += len(b)


def tar_read(folder: Path) -> None:
    subprocess.run(f"tar -cf - -C '{folder}' . | cat > /dev/null", shell=True, check=True)


@contextmanager
def moto() -> Iterator[str]:
    from tests.helpers import free_port, wait_for

    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if not exe:
        raise SystemExit("moto_server is missing: pip install 'moto[server]'")
    port = free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"

    def up() -> bool:
        import urllib.request

        with urllib.request.urlopen(endpoint + "/", timeout=1) as r:
            return r.status == 200

    try:
        wait_for(up, 30, "moto_server")
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(10)


def s3() -> object:
    import boto3

    return boto3.client("s3", endpoint_url=os.environ["BENCH_S3"], region_name="us-east-1")


@contextmanager
def mounted(url: str, mnt: Path, cache: Path) -> Iterator[Path]:
    mnt.mkdir(parents=True, exist_ok=True)
    vs("mount", url, str(mnt), "--cache", str(cache))
    try:
        yield mnt
    finally:
        subprocess.run([*VSTUDIO, "umount", str(mnt)], capture_output=True)


@contextmanager
def s3fs_mounted(bucket: str, mnt: Path, tmp: Path) -> Iterator[Path]:
    pw = tmp / "s3fs.passwd"
    pw.write_text(f"{os.environ['AWS_ACCESS_KEY_ID']}:{os.environ['AWS_SECRET_ACCESS_KEY']}\n")
    pw.chmod(0o600)
    mnt.mkdir(parents=True, exist_ok=True)
    run("s3fs", bucket, str(mnt), "-o",
        f"passwd_file={pw},url={os.environ['BENCH_S3']},use_path_request_style")
    from tests.helpers import wait_for

    wait_for(lambda: os.path.ismount(mnt), 20, "s3fs")
    try:
        yield mnt
    finally:
        subprocess.run(["fusermount", "-u", str(mnt)], capture_output=True)
        subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)


def make_studio(tmp: Path, name: str, store_url: str | None) -> str:
    from vstudio.studio import init_studio

    studio = tmp / name
    init_studio(studio, store_url=store_url, db_url=None).close()
    vs("project", "create", "p", "--studio", str(studio))
    return f"{studio}/p"


def commit_files(url: str, wc: Path, files: dict[str, bytes]) -> None:
    vs("checkout", url, str(wc))
    tops = set()
    for rel, data in files.items():
        p = wc / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        tops.add(rel.split("/")[0])
    vs("add", *sorted(tops), cwd=wc)
    vs("commit", "-m", "bench", cwd=wc)


def new_bucket() -> str:
    name = f"bench-{uuid.uuid4().hex[:10]}"
    s3().create_bucket(Bucket=name)  # type: ignore[attr-defined]
    return name


def mbps(nbytes: int, seconds: float) -> float:
    return nbytes / MiB / seconds


def report(label: str, values: list[float], unit: str) -> float:
    med = statistics.median(values)
    print(f"  {label:<44} median {med:8.2f} {unit}   runs: "
          + ", ".join(f"{v:.2f}" for v in values))
    return med


def bench_big_s3(tmp: Path, big: bytes, runs: int) -> None:
    print(f"\n== sequential read of a {len(big) // MiB} MiB file from S3 (moto), cold")
    bucket = new_bucket()
    url = make_studio(tmp, "s3studio", f"s3://{bucket}/studio?endpoint={os.environ['BENCH_S3']}"
                      "&region=us-east-1")
    commit_files(url, tmp / "wc-s3", {"big.bin": big})
    raw_bucket = new_bucket()
    client = s3()
    client.put_object(Bucket=raw_bucket, Key="big.bin", Body=big)  # type: ignore[attr-defined]
    ours: list[float] = []
    fs3: list[float] = []
    boto: list[float] = []
    from boto3.s3.transfer import TransferConfig

    cfg = TransferConfig(max_concurrency=10, multipart_chunksize=8 * MiB,
                         multipart_threshold=8 * MiB)
    for i in range(runs):
        def vstudio_run(i: int = i) -> None:
            with mounted(url, tmp / f"m-s3-{i}", tmp / f"cache-s3-{i}") as m:
                ours.append(mbps(len(big), timed(lambda m=m: read_file(m / "r/1/big.bin"))))

        def s3fs_run(i: int = i) -> None:
            if shutil.which("s3fs"):
                with s3fs_mounted(raw_bucket, tmp / f"s3fs-{i}", tmp) as m:
                    fs3.append(mbps(len(big), timed(lambda m=m: read_file(m / "big.bin"))))

        def boto_run() -> None:
            boto.append(mbps(len(big), timed(lambda: client.download_fileobj(  # type: ignore[attr-defined]
                raw_bucket, "big.bin", io.BytesIO(), Config=cfg))))

        order = [vstudio_run, s3fs_run, boto_run]
        for fn in order[i % 3:] + order[:i % 3]:  # who goes first changes run by run
            fn()
    o = report("vstudio mount (cold cache)", ours, "MB/s")
    b = report("boto3 parallel download (10 threads)", boto, "MB/s")
    print(f"  ratio mount / boto3: {o / b:.2f}  (goal >= 0.8)")
    if fs3:
        f = report("s3fs", fs3, "MB/s")
        print(f"  ratio mount / s3fs: {o / f:.2f}  (goal >= 1.0)")
    else:
        print("  s3fs not installed: no comparison")


def bench_big_local(tmp: Path, big: bytes, runs: int) -> None:
    print(f"\n== sequential read of a {len(big) // MiB} MiB file from a local-folder store")
    url = make_studio(tmp, "localstudio", None)
    commit_files(url, tmp / "wc-local", {"big.bin": big})
    from vstudio.studio import Studio

    studio = Studio.open(url.rsplit("/", 1)[0])
    import blake3

    oid = blake3.blake3(big).hexdigest()
    cold, warm, direct = [], [], []
    for i in range(runs):
        # A local-folder store is its own cache: no block cache is kept for it, so every
        # new mount reads (decompresses, hash-checks) the store's packs again.
        with mounted(url, tmp / f"m-local-{i}", tmp / f"cache-local-{i}") as m:
            cold.append(mbps(len(big), timed(lambda m=m: read_file(m / "r/1/big.bin"))))
            warm.append(mbps(len(big), timed(lambda m=m: read_file(m / "r/1/big.bin"))))
        direct.append(mbps(len(big), timed(lambda: studio.store.get_bytes(oid))))
    studio.close()
    c = report("cold: new mount (goal >= 300)", cold, "MB/s")
    report("warm: read again (kernel cache; goal >= 500)", warm, "MB/s")
    d = report("peer: store.get_bytes in-process, no FUSE", direct, "MB/s")
    print(f"  ratio cold mount / in-process store read: {c / d:.2f}")


def bench_listing(tmp: Path, count: int, runs: int) -> None:
    print(f"\n== ls -lR of a revision with {count} files (local-folder store)")
    url = make_studio(tmp, "liststudio", None)
    files = {f"shot{i // 500:03d}/sub{(i // 50) % 10}/frame{i:05d}.png": b"p%d" % i
             for i in range(count)}
    t = timed(lambda: commit_files(url, tmp / "wc-list", files))
    print(f"  (commit of {count} files took {t:.1f} s)")
    cold, again = [], []
    for i in range(runs):
        with mounted(url, tmp / f"m-list-{i}", tmp / "cache-list") as m:
            def ls(m: Path = m) -> None:
                subprocess.run(["ls", "-lR", str(m / "r/1")], stdout=subprocess.DEVNULL,
                               check=True)
            cold.append(timed(ls))
            time.sleep(1.2)  # attributes expire after 1 s: the kernel asks again
            again.append(timed(ls))
    report("first ls -lR on a new mount (goal <= 1.0)", cold, "s")
    report("ls -lR after the attribute timeout", again, "s")


def bench_small(tmp: Path, count: int, runs: int) -> None:
    print(f"\n== reading {count} small files (4-64 KB): tar | cat > /dev/null, cold, S3")
    rng = random.Random(5)
    files = {f"lib/tex{i:04d}.png": rng.randbytes(rng.randint(4096, 65536)) for i in range(count)}
    bucket = new_bucket()
    url = make_studio(tmp, "smallstudio", f"s3://{bucket}/studio?endpoint="
                      f"{os.environ['BENCH_S3']}&region=us-east-1")
    commit_files(url, tmp / "wc-small", files)
    raw_bucket = new_bucket()
    client = s3()
    for rel, data in files.items():
        client.put_object(Bucket=raw_bucket, Key=rel, Body=data)  # type: ignore[attr-defined]
    ours, fs3 = [], []
    for i in range(runs):
        with mounted(url, tmp / f"m-small-{i}", tmp / f"cache-small-{i}") as m:
            ours.append(timed(lambda m=m: tar_read(m / "r/1/lib")))
        if shutil.which("s3fs"):
            with s3fs_mounted(raw_bucket, tmp / f"s3fs-small-{i}", tmp) as m:
                fs3.append(timed(lambda m=m: tar_read(m / "lib")))
    o = report("vstudio mount", ours, "s")
    if fs3:
        f = report("s3fs", fs3, "s")
        print(f"  ratio mount / s3fs: {o / f:.2f}  (goal <= 0.5)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big-mib", type=int, default=200)
    ap.add_argument("--small", type=int, default=500)
    ap.add_argument("--listing", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="s3,local,listing,small,write")
    ap.add_argument("--blend-mb", type=int, default=80)
    args = ap.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench-secret")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    only = set(args.only.split(","))
    big = random.Random(1).randbytes(args.big_mib * MiB) if only & {"s3", "local"} else b""
    with tempfile.TemporaryDirectory(prefix="bench-mount-") as t, moto() as endpoint:
        os.environ["BENCH_S3"] = endpoint
        tmp = Path(t)
        if "s3" in only:
            bench_big_s3(tmp, big, args.runs)
        if "local" in only:
            bench_big_local(tmp, big, args.runs)
        if "listing" in only:
            bench_listing(tmp, args.listing, args.runs)
        if "small" in only:
            bench_small(tmp, args.small, args.runs)
        writes = {w.removeprefix("write-") for w in only if w.startswith("write")}
        if writes:  # "write" runs them all; "write-big", "write-small"... one each
            from bench_mount_write import run_all

            run_all(tmp, args.big_mib, args.small, args.listing, args.runs, args.blend_mb,
                    None if "write" in writes else writes)


if __name__ == "__main__":
    main()
