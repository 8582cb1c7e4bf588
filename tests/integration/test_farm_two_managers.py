"""Two manager processes on one PostgreSQL database never hand one task out twice, and a
watcher of one manager sees the changes made through the other."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import start_server
from tests.helpers import wait_for
from vstudio.studio import init_studio

TASKS = 300
WORKERS = 24


def test_two_managers_share_one_database(pg_url: str, tmp_path: Path) -> None:
    root = tmp_path / "studio"
    init_studio(root, store_url=None, db_url=pg_url).close()
    a = start_server(root, tmp_path / "a.log")
    b = start_server(root, tmp_path / "b.log")
    handed: list[tuple[int, int]] = []
    try:
        headers = {"Authorization": f"Bearer {a.admin_token}"}
        # LISTEN/NOTIFY: a worker waiting on manager B wakes when A accepts a job
        wid = httpx.post(b.url + "/api/workers", headers=headers,
                         json={"name": "waiter", "allow_commands": True}).json()["id"]
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(httpx.post, f"{b.url}/api/workers/{wid}/next",
                                  headers=headers, json={"timeout": 20}, timeout=30)
            time.sleep(1.0)
            t0 = time.monotonic()
            httpx.post(a.url + "/api/jobs", headers=headers, json={"name": "wake", "blocks": [
                {"type": "command", "params": {"argv": ["true"]}, "frames": "1"}]})
            got = waiting.result(30)
            assert got.status_code == 200 and time.monotonic() - t0 < 3
        task = got.json()["task"]
        httpx.post(f"{a.url}/api/tasks/{task['id']}/done", headers=headers,
                   json={"attempt": task["attempt"]})
        r = httpx.post(a.url + "/api/jobs", headers=headers, json={"name": "pg", "blocks": [
            {"type": "command", "params": {"argv": ["true"]}, "frames": f"1-{TASKS}"}]})
        job = r.json()["id"]

        async def worker(n: int) -> None:
            async with httpx.AsyncClient(headers=headers, timeout=30) as c:
                urls = [a.url, b.url]
                wid = (await c.post(urls[n % 2] + "/api/workers",
                                    json={"name": f"w{n}", "allow_commands": True})).json()["id"]
                i = n
                while True:
                    url = urls[i % 2]  # alternate managers, as behind a load balancer
                    i += 1
                    r = await c.post(f"{url}/api/workers/{wid}/next", json={"timeout": 0})
                    if r.status_code == 204:
                        return
                    task = r.json()["task"]
                    handed.append((task["id"], task["attempt"]))
                    d = await c.post(f"{urls[i % 2]}/api/tasks/{task['id']}/done",
                                     json={"attempt": task["attempt"], "outputs": []})
                    assert d.status_code == 200, d.text

        async def main() -> None:
            await asyncio.gather(*(worker(n) for n in range(WORKERS)))

        asyncio.run(main())
        twice = [k for k, v in collections.Counter(t for t, _ in handed).items() if v > 1]
        assert twice == [] and len(handed) == TASKS
        shown = httpx.get(f"{b.url}/api/jobs/{job}", headers=headers).json()
        assert shown["status"] == "done" and shown["tasks_done"] == TASKS
    finally:
        for srv in (a, b):
            srv.process.kill()
            srv.process.wait(10)


def test_events_are_relayed_between_managers(pg_url: str, tmp_path: Path) -> None:
    root = tmp_path / "studio"
    init_studio(root, store_url=None, db_url=pg_url).close()
    with open(root / "studio.toml", "a", encoding="utf-8") as f:
        f.write("\n[farm]\nlease_seconds = 1\nreap_seconds = 0.2\n")
    a = start_server(root, tmp_path / "a.log")
    b = start_server(root, tmp_path / "b.log")
    events: list[dict[str, Any]] = []
    connected = threading.Event()

    def listen() -> None:
        with contextlib.suppress(httpx.HTTPError), httpx.Client(timeout=30) as c, c.stream(
                "GET", a.url + "/api/events",
                headers={"Authorization": f"Bearer {a.admin_token}"}) as r:
            kind = ""
            for line in r.iter_lines():
                connected.set()
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    events.append({"kind": kind, **json.loads(line[5:])})

    threading.Thread(target=listen, daemon=True).start()
    try:
        assert connected.wait(10)
        time.sleep(0.5)  # manager B hears that somebody watches A
        with httpx.Client(base_url=b.url, timeout=30,
                          headers={"Authorization": f"Bearer {b.admin_token}"}) as c:
            job = c.post("/api/jobs", json={"name": "relay", "blocks": [
                {"type": "command", "params": {"argv": ["true"]}, "frames": "1"}]}).json()["id"]
            wid = c.post("/api/workers", json={"name": "via-b", "allow_commands": True}
                         ).json()["id"]
            task = c.post(f"/api/workers/{wid}/next", json={"timeout": 5}).json()["task"]
            c.post(f"/api/tasks/{task['id']}/progress",
                   json={"attempt": task["attempt"], "progress": 42})
            assert c.post(f"/api/tasks/{task['id']}/done",
                          json={"attempt": task["attempt"]}).status_code == 200
            # every change was made through B; the watcher is connected to A only
            wait_for(lambda: any(e["kind"] == "job" and e.get("id") == job for e in events),
                     10, "the job event on manager A")
            wait_for(lambda: any(e["kind"] == "task" and e.get("progress") == 42
                                 for e in events), 10, "the progress event on manager A")
            wait_for(lambda: any(e["kind"] == "task" and e.get("status") == "done"
                                 and e.get("id") == task["id"] for e in events),
                     10, "the done event on manager A")
            # the worker stops calling: it goes offline (either manager's reaper sees it)
            wait_for(lambda: any(e["kind"] == "worker" and e.get("id") == wid
                                 and e.get("state") == "offline" for e in events),
                     15, "the offline event on manager A")
        assert len({e.get("id") for e in events if e["kind"] == "job"}) >= 1
    finally:
        for srv in (a, b):
            srv.process.kill()
            srv.process.wait(10)
