"""Benchmark of the web page in headless Chromium (run by hand, not in pytest).

    .venv/bin/python bench/bench_web.py [--runs 5] [--tasks 10000] [--jobs 2000] [--workers 100]

Measures, on a fresh studio served by a real ``vstudio serve``:
  1. the job page of a job with 10,000 tasks: first contentful paint and load (budget 1.0 s);
  2. the jobs list with ``--jobs`` jobs (2,000 by default; budget 1.0 s), and the same list
     sorted by each of its sortable columns (the sorts by progress, frames, elapsed and
     time left build every job's row first), alternating the sorts within each run;
  3. live-update latency from a task's progress report (HTTP POST by a simulated render
     node) to the new value in the page (budget 0.3 s), while ``--workers`` simulated
     render nodes report progress on tasks of the same job (about one report per node
     per second), and the share of the browser's main thread that is busy meanwhile
     (Chrome's TaskDuration over wall time; budget 20%).
Peers in the same run: the budgets from the issue, and the server's own JSON API for the
same data (``GET /api/jobs/ID``, ``GET /api/jobs?limit=1000``) fetched by the browser, so
the page's cost can be read against the cost of just moving the data; each sort is also
read against the default order (newest first) measured in the same runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import start_server  # noqa: E402
from vstudio.studio import init_studio  # noqa: E402
from vstudio.web.jobs_list import SORTS  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def submit(c: Any, name: str, frames: str, chunk: int) -> int:
    r = c.post("/api/jobs", json={"name": name, "blocks": [
        {"name": "render", "type": "command", "params": {"argv": ["true"]},
         "frames": frames, "chunk": chunk}]})
    r.raise_for_status()
    return int(r.json()["id"])


def paint_times(page: Any, url: str) -> tuple[float, float]:
    """(first contentful paint, load event) in seconds from the navigation's start."""
    page.goto("about:blank")  # a cross-document start: no paint holding from the last page
    page.goto(url, wait_until="load")
    # The paint entry can be recorded after the load event on a fast page: wait for it.
    fcp = page.evaluate("""() => new Promise(done => {
        new PerformanceObserver(list => {
            const e = list.getEntriesByName('first-contentful-paint')[0];
            if (e) done(e.startTime);
        }).observe({type: 'paint', buffered: true});
        setTimeout(() => done(-1000), 3000); })""")
    load = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
    return fcp / 1000.0, load / 1000.0


def take_task(c: Any, name: str) -> dict[str, Any]:
    w = c.post("/api/workers", json={"name": name, "slots": 1, "tags": [],
                                     "job_types": ["command"], "allow_commands": True,
                                     "idle_only": False}).json()
    r = c.post(f"/api/workers/{w['id']}/next", json={"timeout": 5})
    assert r.status_code == 200, (r.status_code, r.text, w)
    task: dict[str, Any] = r.json()["task"]
    task["worker_id"] = w["id"]
    return task


class Heartbeats:
    """Keeps the simulated nodes' leases (the measurements take minutes: without
    heartbeats the reaper requeues their tasks and every progress report is refused)."""

    def __init__(self, url: str, token: str, nodes: list[dict[str, Any]]) -> None:
        import threading

        self.url, self.token, self.nodes = url, token, nodes
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import httpx

        with httpx.Client(base_url=self.url, timeout=30,
                          headers={"Authorization": f"Bearer {self.token}"}) as c:
            while not self.stop.wait(10):
                for n in self.nodes:
                    r = c.post(f"/api/workers/{n['worker_id']}/heartbeat", json={})
                    assert r.status_code == 200, (r.status_code, r.text)

    def __enter__(self) -> Heartbeats:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()


class Reporters:
    """Simulated render nodes reporting progress, each about once a second, in threads."""

    def __init__(self, url: str, token: str, tasks: list[dict[str, Any]]) -> None:
        import threading

        self.url, self.token, self.tasks = url, token, tasks
        self.stop = threading.Event()
        self.sent = 0
        self.refused = 0  # reports the manager did not take (a lost lease): a broken run
        self.threads = [threading.Thread(target=self._run, args=(tasks[i::8],), daemon=True)
                        for i in range(min(8, len(tasks)))]

    def _run(self, mine: list[dict[str, Any]]) -> None:
        import httpx

        with httpx.Client(base_url=self.url, timeout=30,
                          headers={"Authorization": f"Bearer {self.token}"}) as c:
            step = 0
            while not self.stop.is_set():
                t0 = time.perf_counter()
                step += 1
                for t in mine:
                    r = c.post(f"/api/tasks/{t['id']}/progress", json={
                        "attempt": t["attempt"], "progress": float(step % 100), "log": []})
                    self.sent += 1
                    self.refused += r.status_code != 200
                self.stop.wait(max(0.0, 1.0 - (time.perf_counter() - t0)))

    def __enter__(self) -> Reporters:
        for th in self.threads:
            th.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for th in self.threads:
            th.join(30)


def load() -> str:
    one, five, _ = __import__("os").getloadavg()
    flag = "  (above the core count: figures are loaded)" if one > (__import__(
        "os").cpu_count() or 1) else ""
    return f"load average {one:.2f} {five:.2f}{flag}"


def api_fetch(page: Any, path: str) -> float:
    ms = page.evaluate("""async (p) => { const t = performance.now();
        const r = await fetch(p); await r.json(); return performance.now() - t; }""", path)
    return float(ms) / 1000.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--jobs", type=int, default=2_000)
    ap.add_argument("--workers", type=int, default=100)
    ap.add_argument("--watch", type=float, default=10.0, help="seconds of live load")
    args = ap.parse_args()

    import httpx
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="vst-bench-web-"))
    root = tmp / "studio"
    init_studio(root, store_url=None, db_url=None).close()
    srv = start_server(root, tmp / "server.log")
    try:
        c = httpx.Client(base_url=srv.url, timeout=120,
                         headers={"Authorization": f"Bearer {srv.admin_token}"})
        t = time.perf_counter()
        big = submit(c, "big job", f"1-{args.tasks}", 1)
        print(f"setup: submitted a {args.tasks}-task job in {time.perf_counter() - t:.2f} s")
        t = time.perf_counter()
        for i in range(args.jobs - 1):
            submit(c, f"shot {i:04d}", "1-20", 5)
        print(f"setup: submitted {args.jobs - 1} more jobs in {time.perf_counter() - t:.1f} s")
        c.post(f"/api/jobs/{big}/priority", json={"priority": 100})
        nodes = [take_task(c, f"bench-node-{i:03d}") for i in range(max(1, args.workers))]
        task = nodes[0]
        assert all(n["job_id"] == big for n in nodes), nodes[0]
        print(f"setup: {len(nodes)} simulated render nodes hold a task of the big job")
        beats = Heartbeats(srv.url, srv.admin_token, nodes).__enter__()

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM,
                                         args=["--no-sandbox", "--headless", "--disable-gpu"])
            # CSP bypassed only so Playwright can evaluate its probes in the page.
            ctx = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
            ctx.add_cookies([{"name": "vstudio_session", "value": srv.admin_token,
                              "url": srv.url}])
            page = ctx.new_page()
            page.goto(srv.url + "/farm")  # warm-up: templates compiled, caches filled

            job_fcp, job_load, job_api = [], [], []
            for _ in range(args.runs):
                print(f"job page run: {load()}")
                f, ld = paint_times(page, f"{srv.url}/jobs/{big}")
                job_fcp.append(f)
                job_load.append(ld)
                job_api.append(api_fetch(page, f"/api/jobs/{big}"))
            cells = page.locator(".grid i").count()
            assert cells == args.tasks, cells

            list_fcp, list_load, list_api = [], [], []
            for _ in range(args.runs):
                print(f"jobs list run: {load()}")
                f, ld = paint_times(page, f"{srv.url}/jobs")
                list_fcp.append(f)
                list_load.append(ld)
                list_api.append(api_fetch(page, "/api/jobs?limit=1000"))
            pages_total = page.locator("nav.pager span").inner_text()

            # Every sort of the list, alternating within each run so that load drifts
            # hit all of them alike.
            by_sort: dict[str, tuple[list[float], list[float]]] = {
                s: ([], []) for s, _ in SORTS}
            for _ in range(args.runs):
                print(f"sorted list run: {load()}")
                for key in by_sort:
                    f, ld = paint_times(page, f"{srv.url}/jobs?sort={key}")
                    by_sort[key][0].append(f)
                    by_sort[key][1].append(ld)
            newest = med(by_sort["newest"][0])
            print(f"\njobs list of {args.jobs} jobs by sort ({args.runs} runs, alternating; "
                  "medians)")
            print(f"{'sort':<12}{'first paint':>12}{'load':>9}{'budget':>8}{'ratio':>7}"
                  f"{'vs newest':>11}")
            for key, (fcps, loads) in by_sort.items():
                m = med(fcps)
                print(f"{key:<12}{m:11.3f}s{med(loads):8.3f}s{1.0:7.1f}s{m / 1.0:7.2f}"
                      f"{m / newest:10.2f}x")
            print(load())

            # Live latency: the page waits for the bar to change and stamps the moment.
            page.goto(f"{srv.url}/jobs/{big}")
            page.wait_for_function("document.getElementById('live').classList.contains('on')")
            lat: list[float] = []
            missed = 0  # updates not seen within 5 s
            cdp = ctx.new_cdp_session(page)
            cdp.send("Performance.enable")

            def busy() -> float:
                m = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
                return float(m["TaskDuration"])

            print(f"live run: {load()}")
            reporters = Reporters(srv.url, srv.admin_token, nodes[1:])
            reporters.__enter__()
            t_busy, t_wall = busy(), time.perf_counter()
            for i in range(max(args.runs * 2, int(args.watch / 0.5))):
                value = float(10 + i * 4)
                # One task of 10,000 barely moves the job's bar: watch the task's own
                # progress cell, which the same event updates.
                page.evaluate("""(id) => { window.__seen = null;
                    const el = document.querySelector('#tr' + id + ' [data-tprogress]');
                    const was = el.textContent;
                    const tick = () => { if (el.textContent !== was) window.__seen = Date.now();
                                         else requestAnimationFrame(tick); };
                    requestAnimationFrame(tick); }""", task["id"])
                sent = time.time()
                r = c.post(f"/api/tasks/{task['id']}/progress",
                           json={"attempt": task["attempt"], "progress": value, "log": []})
                assert r.status_code == 200, ("the watched task's report refused", r.text)
                try:
                    page.wait_for_function("window.__seen !== null", timeout=5000)
                except PlaywrightTimeout:  # counted and reported, the run goes on
                    missed += 1
                    continue
                lat.append(page.evaluate("window.__seen") / 1000.0 - sent)
                time.sleep(0.3)
            busy_share = (busy() - t_busy) / (time.perf_counter() - t_wall)
            wall = time.perf_counter() - t_wall
            reporters.__exit__()
            beats.__exit__()
            print(f"live: {reporters.sent} progress reports from {len(nodes) - 1} nodes in "
                  f"{wall:.1f} s ({reporters.sent / wall:.0f}/s), {reporters.refused} refused")
            browser.close()

        print(f"\nweb page benchmark ({args.runs} runs; medians; Chromium headless, 2 cores)")
        print(f"{'measure':<46}{'median':>9}{'budget':>8}{'ratio':>7}{'JSON API':>10}")

        def line(name: str, xs: list[float], budget: float, api: list[float] | None) -> None:
            m = med(xs)
            peer = f"{med(api):8.3f}s" if api else "        –"
            print(f"{name:<46}{m:8.3f}s{budget:7.1f}s{m / budget:7.2f}{peer:>10}")

        line(f"job page, {args.tasks} tasks: first paint", job_fcp, 1.0, job_api)
        line(f"job page, {args.tasks} tasks: load event", job_load, 1.0, None)
        line(f"jobs list, {args.jobs} jobs: first paint", list_fcp, 1.0, list_api)
        line(f"jobs list, {args.jobs} jobs: load event", list_load, 1.0, None)
        if lat:
            line(f"live update under {len(nodes) - 1} reporting nodes", lat, 0.3, None)
        print(f"{'main thread busy while watching':<46}{busy_share * 100:7.1f}% {20:6d}% "
              f"{busy_share / 0.2:6.2f}")
        print(f"(jobs list shows {pages_total.lower()}; live latency max "
              f"{max(lat, default=float('nan')):.3f} s; {missed} of {len(lat) + missed} "
              f"updates not seen within 5 s)")
    finally:
        srv.process.terminate()
        srv.process.wait(10)


if __name__ == "__main__":
    main()
