"""Direct reads benchmark (run by hand): ``.venv/bin/python bench/bench_direct.py [--runs N]``.

A client reads files of a ``vstudio serve`` whose store is on S3 (s3rver when
``scripts/setup.sh --tests`` installed it, else moto): straight from the bucket by the
server's read plan, and through the server (the peer), alternated run by run. Files: one
of 64 MiB random bytes (few runs), and one of 400 small pieces taken from it apart from
new bytes between them (hundreds of runs: one pre-signed URL each). Prints the plan's
time alone, medians, ratios and the load average of each run.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MiB = 1 << 20


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    from bench.bench_store import S3RVER, start_moto, start_s3rver
    from tests.conftest import start_server
    from vstudio.store.remote import RemoteStore
    from vstudio.studio import init_studio

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "S3RVER")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "S3RVER")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # the server is started from this tree too, whatever the caller's PYTHONPATH
    os.environ["PYTHONPATH"] = str(ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        proc, endpoint = start_s3rver(base) if S3RVER.exists() else start_moto()
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="direct")
        init_studio(base / "st", store_url=f"s3://direct/st?endpoint={endpoint}",
                    db_url=None).close()
        srv = start_server(base / "st", base / "server.log")
        try:
            print(f"vstudio from {ROOT}; S3 server: {'s3rver' if S3RVER.exists() else 'moto'}")
            client = RemoteStore(srv.url, srv.admin_token)
            through = RemoteStore(srv.url, srv.admin_token, direct=False)
            rng = random.Random(5)
            big = rng.randbytes(64 * MiB)
            pieces = b"".join(big[i * 150_000:i * 150_000 + 40_000] + rng.randbytes(30_000)
                              for i in range(400))
            for name, data in (("64 MiB file", big), ("400-piece file", pieces)):
                oid = client.put_bytes(data)
                plan = client.read_plan(oid)
                if plan is None:
                    raise SystemExit("the server gave no direct plan")
                runs = sum("inline" not in p for p in plan["parts"])
                direct_t, server_t, plan_t = [], [], []
                for i in range(args.runs):
                    status = load()
                    plan_t.append(timed(lambda o=oid: client.read_plan(o)))
                    got: list[bytes] = []
                    direct_t.append(timed(lambda o=oid, g=got: g.append(client.get_bytes(o))))
                    server_t.append(timed(lambda o=oid, g=got: g.append(through.get_bytes(o))))
                    if any(g != data for g in got):
                        raise SystemExit("a read returned different bytes!")
                    print(f"  {name} run {i + 1}: plan {plan_t[-1] * 1000:.0f} ms, direct "
                          f"{direct_t[-1]:.2f} s, through the server {server_t[-1]:.2f} s "
                          f"({status})", flush=True)
                d, s, p = (statistics.median(x) for x in (direct_t, server_t, plan_t))
                print(f"{name} ({len(data) / MiB:.1f} MiB, {runs} runs in its plan): "
                      f"plan {p * 1000:.0f} ms, direct {d:.2f} s = "
                      f"{len(data) / d / 1e6:.0f} MB/s, through the server {s:.2f} s = "
                      f"{len(data) / s / 1e6:.0f} MB/s; direct/server {d / s:.2f}x "
                      f"(medians of {args.runs}; {load()})")
        finally:
            srv.stop()
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
