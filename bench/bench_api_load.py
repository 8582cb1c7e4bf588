"""The API under many clients: 200 keep-alive connections against a real `vstudio serve`.

Each client loops over a mix of 80% reads (``GET /api/me``, the job list, one job's page
data) and 20% job submits, as artists of one project. Peers, alternating in the same run:
the same load on a SQLite studio and on a PostgreSQL studio. Printed per peer: requests
and reads per second, p50/p99 latency of reads and of submits (medians over the runs),
and the PostgreSQL/SQLite ratio. Target from issue 12: >= 1,000 reads/s, read p99 <= 0.5 s.
With ``--baseline DIR`` (another checkout, e.g. ``git worktree add /tmp/base main``) each
database also gets a server run from that code, alternating with this one: before/after
figures from the same run.

Loopback only; bounded by --seconds per run and --max-requests per run.

    .venv/bin/python bench/bench_api_load.py [--runs 3] [--clients 200] [--seconds 8]
        [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--only sqlite|postgresql]
        [--reads-only] [--baseline DIR] [--profile DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ARTISTS = 20
SEED_JOBS = 200


class Client:
    """One keep-alive HTTP/1.1 connection with a bearer token (cheap for the generator)."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.head = f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                return await self._call(method, path, body)
            except (asyncio.IncompleteReadError, ConnectionError):
                self.close()  # the server dropped an idle connection: one fresh try
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _call(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        data = b"" if body is None else json.dumps(body).encode()
        extra = (f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                 if body is not None else "")
        self.writer.write(f"{method} {path} HTTP/1.1\r\n{self.head}{extra}\r\n".encode() + data)
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, (await self.reader.readexactly(length) if length else b"")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Tally:
    reads: list[float] = field(default_factory=list)
    writes: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)


def job_spec(name: str) -> dict[str, Any]:
    return {"name": name, "project": "film", "blocks": [
        {"name": "render", "type": "command", "params": {"argv": ["true"]},
         "frames": "1-10", "chunk": 5}]}


async def client_loop(c: Client, tally: Tally, job_ids: list[int], until: float,
                      budget: list[int], reads_only: bool, rng: random.Random) -> None:
    while time.perf_counter() < until and budget[0] > 0:
        budget[0] -= 1
        roll = rng.random()
        t = time.perf_counter()
        if roll < 0.2 and not reads_only:
            status, body = await c.call("POST", "/api/jobs", job_spec("load"))
            ok = status == 201
            if ok:
                tally.writes.append(time.perf_counter() - t)
                job_ids.append(json.loads(body)["id"])
            kind = "submit"
        else:
            which = int(roll * 3) % 3
            if which == 0:
                kind, path = "me", "/api/me"
            elif which == 1:
                kind, path = "list", "/api/jobs?limit=50"
            else:
                kind, path = "job", f"/api/jobs/{rng.choice(job_ids)}?tasks=false"
            status, _ = await c.call("GET", path)
            ok = status == 200
            if ok:
                tally.reads.append(time.perf_counter() - t)
        if not ok:
            key = f"{kind} {status}"
            tally.errors[key] = tally.errors.get(key, 0) + 1


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def one_run(port: int, tokens: list[str], job_ids: list[int], pid: int,
                  args: argparse.Namespace) -> dict[str, float]:
    import psutil

    server, me = psutil.Process(pid), psutil.Process()
    clients = [Client(port, tokens[i % len(tokens)]) for i in range(args.clients)]
    await asyncio.gather(*(c.call("GET", "/api/me") for c in clients))  # connect all first
    tally = Tally()
    budget = [args.max_requests]
    cpu0 = (sum(server.cpu_times()[:2]), sum(me.cpu_times()[:2]))
    t0 = time.perf_counter()
    until = t0 + args.seconds
    await asyncio.gather(*(client_loop(c, tally, job_ids, until, budget, args.reads_only,
                                       random.Random(i)) for i, c in enumerate(clients)))
    wall = time.perf_counter() - t0
    cpu = (sum(server.cpu_times()[:2]) - cpu0[0], sum(me.cpu_times()[:2]) - cpu0[1])
    for c in clients:
        c.close()
    if tally.errors:
        print(f"    errors: {tally.errors}")
    return {"req/s": (len(tally.reads) + len(tally.writes)) / wall,
            "reads/s": len(tally.reads) / wall,
            "read p50": pct(tally.reads, 0.5), "read p99": pct(tally.reads, 0.99),
            "submit p50": pct(tally.writes, 0.5), "submit p99": pct(tally.writes, 0.99),
            "server cpu%": 100 * cpu[0] / wall, "client cpu%": 100 * cpu[1] / wall}


@contextmanager
def serving(db_url: str | None, tmp: Path, code: Path | None = None,
            profile: Path | None = None) -> Iterator[tuple[int, list[str], list[int], int]]:
    """A fresh studio served by `vstudio serve`: its port, artist tokens, seeded job ids.
    With ``profile``, the server runs under py-spy (raw samples written there)."""
    import httpx
    import psutil

    from tests.helpers import free_port, wait_for
    from vstudio.catalog import accounts
    from vstudio.studio import Studio, init_studio

    root = tmp / f"studio-{uuid.uuid4().hex[:6]}"
    init_studio(root, store_url=None, db_url=db_url).close()
    s = Studio.open(root)
    try:
        accounts.create_project(s.engine, "film")
        tokens = [accounts.add_user(s.engine, f"artist{i}", "artist")[1] for i in range(ARTISTS)]
    finally:
        s.close()
    port = free_port()
    with open(tmp / f"serve-{port}.log", "wb") as log:
        env = dict(os.environ, PYTHONPATH=str(code or ROOT))
        argv = [sys.executable, "-m", "vstudio", "serve", "--studio", str(root), "--port",
                str(port)]
        if profile is not None:  # attaching to a running pyenv Python fails here: wrap it
            argv = [str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking",
                    "-r", "100", "-f", "raw", "-o", str(profile), "--", *argv]
        proc = subprocess.Popen(argv, stdout=log, stderr=log, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(base + "/openapi.json").status_code == 200, 120, "the server")
        with httpx.Client(base_url=base, timeout=60) as h:
            ids = []
            for i in range(SEED_JOBS):
                r = h.post("/api/jobs", json=job_spec(f"seed {i}"),
                           headers={"Authorization": f"Bearer {tokens[i % ARTISTS]}"})
                r.raise_for_status()
                ids.append(int(r.json()["id"]))
        pid = proc.pid
        if profile is not None:  # the server is py-spy's child
            pid = wait_for(lambda: (psutil.Process(proc.pid).children() or [None])[0], 30,
                           "the profiled server").pid
        yield port, tokens, ids, pid
    finally:
        if profile is not None:  # stop the server; py-spy then writes its samples
            for child in psutil.Process(proc.pid).children():
                child.terminate()
            proc.wait(60)
        else:
            proc.terminate()
            proc.wait(10)


def pg_database(admin_url: str) -> tuple[str, str]:
    import psycopg

    name = f"vst_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name, name


def drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--max-requests", type=int, default=60_000, help="cap per run")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--only", choices=["sqlite", "postgresql"], default=None)
    ap.add_argument("--reads-only", action="store_true", help="no submits in the mix")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="also serve from this checkout (before/after in one run)")
    ap.add_argument("--profile", type=Path, default=None, metavar="DIR",
                    help="run each server under py-spy; raw samples to DIR/PEER.txt "
                         "(figures are then not comparable)")
    args = ap.parse_args()
    if not (1 <= args.clients <= 1000 and 0 < args.seconds <= 120 and 1 <= args.runs <= 20):
        ap.error("keep it bounded: 1-1000 clients, at most 120 s and 20 runs")

    if args.baseline is not None and not (args.baseline / "vstudio" / "__init__.py").is_file():
        ap.error(f"--baseline {args.baseline}: not a vstudio checkout")
    dbs = [p for p in ("sqlite", "postgresql") if args.only in (None, p)]
    peers = [f"{db}{tag}" for db in dbs
             for tag in ("", " baseline")[:2 if args.baseline else 1]]
    results: dict[str, list[dict[str, float]]] = {p: [] for p in peers}
    with tempfile.TemporaryDirectory(prefix="vst-bench-load-") as tmp, ExitStack() as stack:
        pg_urls: list[str] = []
        try:
            servers: dict[str, tuple[int, list[str], list[int], int]] = {}
            for peer in peers:
                db_url = None
                if peer.startswith("postgresql"):
                    db_url, name = pg_database(args.pg)
                    pg_urls.append(name)
                code = args.baseline if peer.endswith("baseline") else None
                prof = (args.profile / f"{peer.replace(' ', '-')}.txt"
                         if args.profile else None)
                servers[peer] = stack.enter_context(serving(db_url, Path(tmp), code, prof))
            for run in range(args.runs):
                # alternating, in turned order every other run (ABBA): drift and any
                # advantage of going first or second hit every peer alike
                for peer in (peers if run % 2 == 0 else peers[::-1]):
                    port, tokens, ids, pid = servers[peer]
                    print(f"run {run + 1} {peer}: load average "
                          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
                    r = asyncio.run(one_run(port, tokens, ids, pid, args))
                    results[peer].append(r)
                    print("    " + "  ".join(f"{k} {v:.0f}" if k.endswith(("/s", "%"))
                                             else f"{k} {v:.3f} s" for k, v in r.items()))
        finally:
            stack.close()
            for name in pg_urls:
                drop_database(args.pg, name)
    report(results, args)


def report(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    mix = "reads only" if args.reads_only else "80% reads, 20% submits"
    print(f"\nmedians over {args.runs} runs, {args.clients} clients, {mix}:")
    med: dict[str, dict[str, float]] = {}
    for peer, runs in results.items():
        med[peer] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        m = med[peer]
        print(f"  {peer:<20} {m['req/s']:7.0f} req/s  {m['reads/s']:7.0f} reads/s  "
              f"read p50 {m['read p50']:.3f} s  p99 {m['read p99']:.3f} s  "
              f"submit p50 {m['submit p50']:.3f} s  p99 {m['submit p99']:.3f} s  "
              f"CPU server {m['server cpu%']:.0f}% client {m['client cpu%']:.0f}%")
        ok = m["reads/s"] >= 1000 and m["read p99"] <= 0.5
        print(f"  {'':<20} target (>= 1000 reads/s, read p99 <= 0.5 s): "
              f"{'met' if ok else 'NOT met'}")
    pairs = [("postgresql", "sqlite"), ("sqlite", "sqlite baseline"),
             ("postgresql", "postgresql baseline")]
    for a_name, b_name in pairs:
        if a_name in med and b_name in med:
            a, b = med[a_name], med[b_name]
            print(f"  {a_name}/{b_name}: reads/s x{a['reads/s'] / b['reads/s']:.2f}, "
                  f"read p99 x{a['read p99'] / b['read p99']:.2f}")


if __name__ == "__main__":
    main()
