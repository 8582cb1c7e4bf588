"""Render node benchmark (run by hand): python bench/bench_worker.py [--runs N]

1. 200 trivial `command` tasks (`true`) on 2 workers: total time and the median gap between
   a task's end and the same worker's next start (server-side times).
2. A 48-frame 64x36 Blender job vs one local `blender -a` call (wall time, overhead %), on
   2 workers with warm Blender sessions (the default), on 2 workers with
   --no-warm-blender, and on one worker with --slots 2 (one render thread per slot).
3. Resident memory of an idle worker.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import free_port, wait_for  # noqa: E402
from vstudio.jobtypes.samples import make_blend  # noqa: E402

VS = [sys.executable, "-m", "vstudio"]


class Bench:
    def __init__(self, tmp: Path) -> None:
        from vstudio.catalog import accounts
        from vstudio.studio import init_studio

        self.tmp = tmp
        self.studio_dir = tmp / "studio"
        s = init_studio(self.studio_dir, store_url=None, db_url=None)
        self.admin = accounts.add_user(s.engine, "boss", "admin")[1]
        self.wtoken = accounts.add_user(s.engine, "nodes", "worker")[1]
        self.store = s.store
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []
        log = open(tmp / "server.log", "ab")  # noqa: SIM115
        self.procs.append(subprocess.Popen([*VS, "serve", "--studio", str(self.studio_dir),
                                            "--port", str(self.port)], stdout=log, stderr=log))
        try:
            wait_for(lambda: httpx.get(self.url + "/openapi.json").status_code == 200, 30,
                     "server")
        except AssertionError:
            self.close()
            raise AssertionError((tmp / "server.log").read_text()[-2000:]) from None
        self.http = httpx.Client(base_url=self.url, timeout=60,
                                 headers={"Authorization": f"Bearer {self.admin}"})

    def worker(self, name: str, *extra: str) -> subprocess.Popen[bytes]:
        args = [*VS, "worker", "--server", self.url, "--token", self.wtoken, "--name", name,
                "--cache", str(self.tmp / f"cache-{name}"), "--poll", "10", *extra]
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115
        p = subprocess.Popen(args, stdout=log, stderr=log)
        self.procs.append(p)
        wait_for(lambda: "registered" in (self.tmp / f"{name}.log").read_text(), 30, name)
        return p

    def submit(self, spec: dict[str, Any]) -> int:
        r = self.http.post("/api/jobs", json=spec)
        r.raise_for_status()
        return int(r.json()["id"])

    def wait(self, job_id: int, timeout: float = 600) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.http.get(f"/api/jobs/{job_id}").json()
            if job["status"] in ("done", "failed", "canceled"):
                return job
            time.sleep(0.05)
        raise TimeoutError(job_id)

    def close(self) -> None:
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _children_rss(pid: int) -> float:
    """Resident memory of a process's children (a warm worker's Blender)."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += rss_mb(int(child))
    return total


def gaps(job: Any) -> list[float]:
    by_worker: dict[str, list[Any]] = {}
    for t in job["tasks"]:
        by_worker.setdefault(t["worker"], []).append(t)
    out = []
    for tasks in by_worker.values():
        tasks.sort(key=lambda t: t["started"])
        out += [b["started"] - a["finished"] for a, b in itertools.pairwise(tasks)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tasks", type=int, default=200)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    try:
        b = Bench(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        w1 = b.worker("w1", "--allow-commands")
        time.sleep(5)
        idle = rss_mb(w1.pid)
        b.worker("w2", "--allow-commands")
        print(f"idle worker RSS: {idle:.1f} MB (target <= 60 MB)")

        totals, medians = [], []
        for _ in range(args.runs):
            t0 = time.monotonic()
            jid = b.submit({"name": "trivial", "blocks": [
                {"type": "command", "frames": f"1-{args.tasks}", "chunk": 1,
                 "params": {"argv": ["true"]}}]})
            job = b.wait(jid)
            totals.append(time.monotonic() - t0)
            assert job["status"] == "done", job["status"]
            medians.append(statistics.median(gaps(job)) * 1000)
        print(f"{args.tasks} 'true' tasks on 2 workers: total {statistics.median(totals):.2f} s "
              f"(runs {', '.join(f'{t:.2f}' for t in totals)}), median end->next start gap "
              f"{statistics.median(medians):.1f} ms (target <= 30 ms; Afanasy ~2000 ms)")

        blend = make_blend(tmp / "b.blend", frames=48, size=(64, 36))
        oid = b.store.put_file(blend)
        exe = shutil.which("blender") or "blender"
        # each farm set-up is a pair of slots on its own tag, so that the runs can alternate
        # and every set-up sees the same machine load
        setups = {"2 workers (warm blender)": "warm",
                  "2 workers --no-warm-blender": "cold",
                  "1 worker --slots 2 (warm, 1 render thread per slot)": "slots2"}
        b.worker("warm1", "--tags", "warm")
        warm1 = b.worker("warm2", "--tags", "warm")
        b.worker("cold1", "--tags", "cold", "--no-warm-blender")
        b.worker("cold2", "--tags", "cold", "--no-warm-blender")
        b.worker("slots", "--tags", "slots2", "--slots", "2")
        local: list[float] = []
        pair: list[float] = []
        farm: dict[tuple[str, int], list[float]] = {}

        def local_argv(start: int, end: int) -> list[str]:
            return [exe, "-b", str(blend), "-Y", "--python-expr",
                    "import bpy; bpy.context.scene.cycles.use_denoising=False",
                    "-o", str(tmp / "local" / "f_####"), "-F", "PNG", "-s", str(start),
                    "-e", str(end), "-a"]

        for _ in range(args.runs):
            shutil.rmtree(tmp / "local", ignore_errors=True)
            t0 = time.monotonic()
            subprocess.run(local_argv(1, 48), capture_output=True, check=True)
            local.append(time.monotonic() - t0)
            # what this machine can do with two processes and no farm at all
            t0 = time.monotonic()
            halves = [subprocess.Popen(local_argv(a, b), stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL) for a, b in ((1, 24), (25, 48))]
            for h in halves:
                h.wait()
            pair.append(time.monotonic() - t0)
            for label, tag in setups.items():
                for chunk in (24, 12):
                    t0 = time.monotonic()
                    jid = b.submit({"name": "blend48",
                                    "inputs": [{"path": "b.blend", "oid": oid}],
                                    "blocks": [{"type": "blender", "frames": "1-48",
                                                "chunk": chunk, "tags": [tag],
                                                "params": {"file": "b.blend"}}]})
                    job = b.wait(jid)
                    assert job["status"] == "done", job
                    farm.setdefault((label, chunk), []).append(time.monotonic() - t0)
        lm = statistics.median(local)
        print(f"48 frames 64x36, one local blender -a: {lm:.2f} s "
              f"(runs {', '.join(f'{t:.2f}' for t in local)})")
        pm = statistics.median(pair)
        print(f"48 frames as two local blender -a processes of 24 in parallel: {pm:.2f} s "
              f"(runs {', '.join(f'{t:.2f}' for t in pair)})")
        for (label, chunk), times in farm.items():
            fm = statistics.median(times)
            print(f"48 frames on {label}, chunk {chunk}: {fm:.2f} s "
                  f"(runs {', '.join(f'{t:.2f}' for t in times)}), "
                  f"{100 * (fm - lm) / lm:+.0f}% vs one local call (target overhead <= 15%), "
                  f"{100 * (fm - pm) / pm:+.0f}% vs two local processes")
        print(f"idle worker RSS after the jobs: {rss_mb(warm1.pid):.1f} MB (a warm worker; "
              f"its Blender session is a separate process: "
              f"{_children_rss(warm1.pid):.1f} MB)")
    finally:
        b.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
