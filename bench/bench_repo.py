"""Benchmark the repository against Subversion 1.14 in the same run, on the same files.

    .venv/bin/python bench/bench_repo.py [--files 20000] [--big-mib 200] [--runs 5]

Measures (medians; ratio = vstudio / svn):
- status on an unchanged working copy of N small files (vstudio's fast path vs svn status)
- checkout of N small files; commit of them (vstudio commit vs svn import)
- checkout of N small files through ``vstudio serve`` (HTTP) against the embedded one
- commit after a 1 MiB edit in a big file
- working-copy disk use against the files' own size
Everything runs in a temporary folder, embedded studio (SQLite + local store) and a
file:// Subversion repository.

vstudio runs without ``PYTHONDONTWRITEBYTECODE`` (set on some CI machines): an installed
package has compiled ``.pyc`` files, and compiling ``vstudio`` on every start costs ~5 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VSTUDIO = [str(Path(sys.executable).parent / "vstudio")]
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, env=env or ENV)
    return time.perf_counter() - t


def start_server(studio: Path, log: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    import socket
    import urllib.request

    out = subprocess.run([*VSTUDIO, "user", "add", "bench", "--role", "admin", "--studio",
                          str(studio)], check=True, capture_output=True, text=True, env=ENV)
    token = out.stdout.strip().splitlines()[-1].split()[-1]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([*VSTUDIO, "serve", "--studio", str(studio), "--port", str(port)],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=ENV)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/openapi.json", timeout=1).close()
            return proc, url, token
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"vstudio serve did not start: {log.read_text()[-2000:]}")


def disk_use(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            st = os.lstat(os.path.join(dirpath, f))
            total += st.st_blocks * 512
    return total


def files_size(path: Path, skip: str) -> int:
    total = 0
    for dirpath, dirs, files in os.walk(path):
        if skip in dirs:
            dirs.remove(skip)
        for f in files:
            st = os.lstat(os.path.join(dirpath, f))
            total += st.st_blocks * 512
    return total


def make_files(root: Path, n: int) -> None:
    rnd = random.Random(1)
    per = 100
    for i in range(n):
        d = root / f"assets/set{i // per:04d}"
        if i % per == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"tex{i:05d}.txt").write_bytes(rnd.randbytes(rnd.randint(100, 2000)))


def row(name: str, ours: float, theirs: float, unit: str = "s") -> None:
    print(f"{name:<44} vstudio {ours:8.3f}{unit}   svn {theirs:8.3f}{unit}   "
          f"ratio {ours / theirs:5.2f}x", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--big-mib", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-repo-"))
    try:
        bench(tmp, args.files, args.big_mib, args.runs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench(tmp: Path, n: int, big_mib: int, runs: int) -> None:
    env_note = f"{n} files, {big_mib} MiB big file, {runs} runs, {os.cpu_count()} cores"
    print(f"# bench_repo: {env_note}")
    studio = tmp / "studio"
    subprocess.run([*VSTUDIO, "init", str(studio)], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*VSTUDIO, "project", "create", "film", "--studio", str(studio)],
                   check=True, stdout=subprocess.DEVNULL)
    svnrepo = tmp / "svnrepo"
    subprocess.run(["svnadmin", "create", str(svnrepo)], check=True)
    url = f"file://{svnrepo}"

    # -- commit of N small files: vstudio commit (in a fresh checkout) vs svn import ----
    wc = tmp / "wc"
    subprocess.run([*VSTUDIO, "checkout", f"{studio}/film", str(wc)], check=True,
                   stdout=subprocess.DEVNULL)
    src = tmp / "src"
    make_files(src, n)
    shutil.copytree(src / "assets", wc / "assets")
    ours = run([*VSTUDIO, "commit", "-m", "import"], cwd=wc)
    theirs = run(["svn", "import", "-q", "-m", "import", str(src), url])
    row(f"commit of {n} small files (svn import)", ours, theirs)

    # -- checkout of N small files ------------------------------------------------------
    co_ours, co_svn = [], []
    for i in range(2):  # alternated, so both see the same machine load
        co_ours.append(run([*VSTUDIO, "checkout", f"{studio}/film", str(tmp / f"co{i}")]))
        co_svn.append(run(["svn", "checkout", "-q", url, str(tmp / f"svnco{i}")]))
    row(f"checkout of {n} small files", statistics.median(co_ours),
        statistics.median(co_svn))

    # -- the same checkout through vstudio serve (HTTP, local store) ---------------------
    proc, server, token = start_server(studio, tmp / "serve.log")
    try:
        co_http = [run([*VSTUDIO, "checkout", f"{server}/film", str(tmp / f"hco{i}"),
                        "--token", token]) for i in range(2)]
    finally:
        proc.terminate()
        proc.wait(10)
    co_http_m = statistics.median(co_http)
    print(f"{'checkout through vstudio serve (HTTP)':<44} vstudio {co_http_m:8.3f}s   "
          f"embedded {statistics.median(co_ours):8.3f}s   svn {statistics.median(co_svn):8.3f}s"
          f"   ratio to svn {co_http_m / statistics.median(co_svn):5.2f}x", flush=True)

    # -- status on the unchanged working copies, alternated -----------------------------
    run([*VSTUDIO, "status"], tmp / "co0")
    run(["svn", "status"], tmp / "svnco0")
    st_ours, st_svn = [], []
    for _ in range(runs):
        st_ours.append(run([*VSTUDIO, "status"], tmp / "co0"))
        st_svn.append(run(["svn", "status"], tmp / "svnco0"))
    row(f"status, {n} unchanged files", statistics.median(st_ours), statistics.median(st_svn))

    # -- disk use -----------------------------------------------------------------------
    ours_d = disk_use(tmp / "co0") / files_size(tmp / "co0", ".vstudio")
    svn_d = disk_use(tmp / "svnco0") / files_size(tmp / "svnco0", ".svn")
    row("working copy disk use / files' size", ours_d, svn_d, "x")

    # -- commit after a 1 MiB edit in a big file ----------------------------------------
    rnd = random.Random(2)
    big = rnd.randbytes(big_mib << 20)
    for d in (tmp / "co0", tmp / "svnco0"):
        (d / "big.bin").write_bytes(big)
    run([*VSTUDIO, "commit", "-m", "big"], cwd=tmp / "co0")
    subprocess.run(["svn", "add", "-q", "big.bin"], cwd=tmp / "svnco0", check=True)
    run(["svn", "commit", "-q", "-m", "big"], cwd=tmp / "svnco0")
    edited = bytearray(big)
    at = len(big) // 3
    edited[at:at + (1 << 20)] = rnd.randbytes(1 << 20)
    for d in (tmp / "co0", tmp / "svnco0"):
        (d / "big.bin").write_bytes(bytes(edited))
    ours = run([*VSTUDIO, "commit", "-m", "edit"], cwd=tmp / "co0")
    theirs = run(["svn", "commit", "-q", "-m", "edit"], cwd=tmp / "svnco0")
    row(f"commit after 1 MiB edit in {big_mib} MiB file", ours, theirs)


if __name__ == "__main__":
    main()
