"""Farm manager benchmark: simulated render nodes over real HTTP against `vstudio serve`.

Measures, on SQLite and (with --pg URL) PostgreSQL:
- submit -> first task start (an idle worker long-polling), median of N;
- the gap between one task's completion report and the same worker's next task, median;
- assignments per second (take + report) with many simulated workers and many queued
  tasks, checking that no task is ever handed out twice;
- the manager's resident memory with all those tasks.

Peers (figures from the issue, measured on this kind of machine): Afanasy 3.4.1 takes 2 s
from submit to first start and ~2 s per task; its default cap is 100 tasks/s.

    .venv/bin/python bench/bench_farm.py [--workers 1000] [--tasks 100000] [--seconds 20]
                                         [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Conn:
    """A minimal keep-alive HTTP/1.1 client: the simulated workers must cost little CPU."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.auth = f"Authorization: Bearer {token}\r\n"
        self.r: asyncio.StreamReader | None = None
        self.w: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        try:
            return await self._post(path, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            # the server closes idle keep-alive connections; reconnect once
            self.close()
            self.w = None
            return await self._post(path, body)

    async def _post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if self.w is None:
            self.r, self.w = await asyncio.open_connection(self.host, self.port)
        data = json.dumps(body).encode()
        self.w.write((f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.auth}"
                      f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                      ).encode() + data)
        assert self.r is not None
        head = await self.r.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        payload = await self.r.readexactly(length) if length else b""
        return status, (json.loads(payload) if payload else None)

    def close(self) -> None:
        if self.w is not None:
            self.w.close()


def start_manager(db: str | None, tmp: Path) -> tuple[subprocess.Popen[bytes], str, int, str]:
    from tests.helpers import free_port, wait_for
    from vstudio.catalog import accounts
    from vstudio.studio import Studio, init_studio

    root = tmp / f"studio-{uuid.uuid4().hex[:6]}"
    init_studio(root, store_url=None, db_url=db).close()
    s = Studio.open(root)
    token = accounts.add_user(s.engine, "bench", "admin")[1]
    s.close()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "vstudio", "serve", "--studio", str(root),
                             "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=open(tmp / f"serve-{port}.log", "wb"))  # noqa: SIM115
    import httpx

    wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/openapi.json").status_code == 200,
             30, "the manager")
    return proc, "127.0.0.1", port, token


def job(n: int, name: str = "bench") -> dict[str, Any]:
    return {"name": name, "blocks": [{"type": "command", "params": {"argv": ["true"]},
                                      "frames": f"1-{n}", "chunk": 1}]}


async def latency(host: str, port: int, token: str, trials: int) -> tuple[float, float]:
    """(median submit -> first start, median done -> next task gap) in seconds."""
    w, s = Conn(host, port, token), Conn(host, port, token)
    wid = (await w.post("/api/workers", {"name": "lat", "allow_commands": True}))[1]["id"]
    starts = []
    for i in range(trials):
        poll = asyncio.create_task(w.post(f"/api/workers/{wid}/next", {"timeout": 30}))
        await asyncio.sleep(0.05)  # the worker is waiting
        t0 = time.perf_counter()
        await s.post("/api/jobs", job(1, f"lat{i}"))
        status, body = await poll
        starts.append(time.perf_counter() - t0)
        assert status == 200
        task = body["task"]
        await w.post(f"/api/tasks/{task['id']}/done", {"attempt": task["attempt"]})
    await s.post("/api/jobs", job(trials * 5, "gap"))
    gaps = []
    status, body = await w.post(f"/api/workers/{wid}/next", {"timeout": 5})
    for _ in range(trials * 5 - 1):
        task = body["task"]
        t0 = time.perf_counter()
        await w.post(f"/api/tasks/{task['id']}/done", {"attempt": task["attempt"]})
        status, body = await w.post(f"/api/workers/{wid}/next", {"timeout": 5})
        gaps.append(time.perf_counter() - t0)
        assert status == 200
    w.close()
    s.close()
    return statistics.median(starts), statistics.median(gaps)


async def throughput(host: str, port: int, token: str, workers: int, tasks: int,
                     seconds: float, cpu: Any = lambda: 0.0
                     ) -> tuple[float, int, int, float, float]:
    """(assignments/s, tasks handed out, tasks handed out twice, manager CPU seconds per
    assignment, the simulated workers' own CPU seconds per assignment) over a timed
    window."""
    import resource

    def own_cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    admin = Conn(host, port, token)
    t0 = time.perf_counter()
    status, _ = await admin.post("/api/jobs", job(tasks, "throughput"))
    assert status == 201, status
    print(f"  submitted {tasks} tasks in {time.perf_counter() - t0:.1f} s", flush=True)
    conns = [Conn(host, port, token) for _ in range(workers)]
    ids = []
    run_id = uuid.uuid4().hex[:6]
    for i, c in enumerate(conns):
        status, body = await c.post("/api/workers", {"name": f"sim{i}-{run_id}",
                                                     "allow_commands": True})
        assert status == 200, (status, body)
        ids.append(body["id"])
    seen: dict[int, int] = {}
    count = 0
    counting = False
    stop = False

    async def run(c: Conn, wid: int) -> None:
        nonlocal count
        while not stop:
            status, body = await c.post(f"/api/workers/{wid}/next", {"timeout": 1})
            if status != 200:
                continue
            task = body["task"]
            seen[task["id"]] = seen.get(task["id"], 0) + 1
            status, _ = await c.post(f"/api/tasks/{task['id']}/done",
                                     {"attempt": task["attempt"]})
            if counting and status == 200:
                count += 1

    runners = [asyncio.create_task(run(c, wid)) for c, wid in zip(conns, ids, strict=True)]
    await asyncio.sleep(3)  # warm up: every worker connected and cycling
    counting = True
    t0 = time.perf_counter()
    c0, o0 = cpu(), own_cpu()
    await asyncio.sleep(seconds)
    counting = False
    rate = count / (time.perf_counter() - t0)
    cpu_each = (cpu() - c0) / max(1, count)
    own_each = (own_cpu() - o0) / max(1, count)
    stop = True
    await asyncio.wait(runners, timeout=10)
    for c in conns:
        c.close()
    admin.close()
    return rate, len(seen), sum(1 for v in seen.values() if v > 1), cpu_each, own_each


def rss_mb(pid: int) -> float:
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / 2**20


def bench(db: str | None, label: str, args: argparse.Namespace, tmp: Path) -> None:
    proc, host, port, token = start_manager(db, tmp)
    try:
        print(f"{label}: manager pid {proc.pid}, idle RSS {rss_mb(proc.pid):.0f} MB", flush=True)
        start, gap = asyncio.run(latency(host, port, token, args.trials))
        print(f"{label}: submit -> first task start, median of {args.trials}: "
              f"{start * 1000:.1f} ms (Afanasy: 2000 ms; ratio {2.0 / start:.0f}x)")
        print(f"{label}: done -> next task gap, median: {gap * 1000:.1f} ms "
              f"(Afanasy: ~2000 ms per task; ratio {2.0 / gap:.0f}x)", flush=True)
        import psutil

        server = psutil.Process(proc.pid)

        def cpu() -> float:
            t = server.cpu_times()
            return float(t.user + t.system)

        rate, handed, twice, each, client = asyncio.run(throughput(host, port, token, args.workers,
                                                           args.tasks, args.seconds, cpu))
        print(f"{label}: {rate:.0f} assignments/s (take + report) with {args.workers} workers, "
              f"{args.tasks} tasks queued; {handed} handed out, {twice} twice "
              f"(Afanasy default cap: 100/s; ratio {rate / 100:.0f}x)")
        print(f"{label}: manager CPU per assignment {each * 1000:.2f} ms "
              f"(=> {1 / each if each else 0:.0f}/s per fully used core); the simulated "
              f"workers' CPU per assignment {client * 1000:.2f} ms; "
              f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"{label}: manager RSS with {args.tasks} tasks: {rss_mb(proc.pid):.0f} MB",
              flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=1000)
    p.add_argument("--tasks", type=int, default=100_000)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--pg", default=None, help="admin URL of a PostgreSQL server to also test")
    p.add_argument("--only", choices=["sqlite", "postgresql"], default=None)
    args = p.parse_args()
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))
    try:  # the simulated workers' side as cheap as the manager's (uvicorn uses uvloop too)
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    with tempfile.TemporaryDirectory(prefix="bench-farm-") as tmp:
        if args.only != "postgresql":
            bench(None, "sqlite", args, Path(tmp))
        if args.pg and args.only != "sqlite":
            import psycopg

            name = f"bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(args.pg, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            try:
                bench(args.pg.rsplit("/", 1)[0] + "/" + name, "postgresql", args, Path(tmp))
            finally:
                with psycopg.connect(args.pg, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    sys.stdout.flush()


if __name__ == "__main__":
    main()
