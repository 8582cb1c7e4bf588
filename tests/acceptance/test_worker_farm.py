"""Render nodes as real processes against a real ``vstudio serve``, with real renderers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import VSTUDIO, free_port, need, wait_for
from vstudio import __version__
from vstudio.jobtypes.samples import make_sif

FINAL = ("done", "failed", "canceled")
SCENE_FRAMES = 15  # a.blend of the shared ``scenes`` fixture


@dataclass
class Farm:
    tmp: Path
    studio: Path
    port: int
    admin: str
    worker_token: str
    server: subprocess.Popen[bytes] | None = None
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_server(self) -> None:
        log = open(self.tmp / "server.log", "ab")  # noqa: SIM115 - owned by the child
        self.server = subprocess.Popen([*VSTUDIO, "serve", "--studio", str(self.studio),
                                        "--port", str(self.port)], stdout=log, stderr=log)
        wait_for(lambda: httpx.get(self.url + "/openapi.json", timeout=2).status_code == 200,
                 30, "the server to start")

    def kill_server(self) -> None:
        assert self.server is not None
        self.server.kill()
        self.server.wait(10)

    def worker(self, name: str, *extra: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        args = [*VSTUDIO, "worker", "--server", self.url, "--token", self.worker_token,
                "--name", name, "--cache", str(self.tmp / f"cache-{name}"), "--poll", "2",
                *extra]
        p = subprocess.Popen(args, stdout=log, stderr=log)
        self.workers[name] = p
        return p

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def call(self, method: str, path: str, body: Any = None) -> Any:
        r = httpx.request(method, self.url + path, json=body, timeout=30,
                          headers={"Authorization": f"Bearer {self.admin}"})
        assert r.status_code < 300, r.text
        return r.json()

    def put(self, path: Path) -> str:
        from vstudio.studio import Studio

        s = Studio.open(self.studio)
        try:
            return s.store.put_file(path)
        finally:
            s.close()

    def submit(self, blocks: list[dict[str, Any]], inputs: dict[str, Path] | None = None,
               **job: Any) -> int:
        spec = {"name": job.pop("name", "t"), "blocks": blocks, **job,
                "inputs": [{"path": k, "oid": self.put(v)} for k, v in (inputs or {}).items()]}
        return int(self.call("POST", "/api/jobs", spec)["id"])

    def job(self, job_id: int) -> Any:
        return self.call("GET", f"/api/jobs/{job_id}")

    def wait(self, job_id: int, timeout: float = 120) -> Any:
        job = wait_for(lambda: (j := self.job(job_id))["status"] in FINAL and j, timeout,
                       f"job {job_id} to finish")
        return job

    def outputs(self, job_id: int) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/api/jobs/{job_id}/outputs"))

    def stop(self) -> None:
        for p in [*self.workers.values(), self.server]:
            if p is not None and p.poll() is None:
                p.terminate()
        for p in [*self.workers.values(), self.server]:
            if p is not None:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()


@pytest.fixture
def farm(studio_dir: Path, tmp_path: Path) -> Iterator[Farm]:
    need("blender", "apt-get install blender")
    need("ffmpeg", "apt-get install ffmpeg")
    from vstudio.catalog import accounts
    from vstudio.studio import Studio

    with open(studio_dir / "studio.toml", "a") as f:  # a short lease: lost tasks come back fast
        f.write("\n[farm]\nlease_seconds = 4\n")
    s = Studio.open(studio_dir)
    try:
        admin = accounts.add_user(s.engine, f"boss{uuid.uuid4().hex[:6]}", "admin")[1]
        wt = accounts.add_user(s.engine, f"nodes{uuid.uuid4().hex[:6]}", "worker")[1]
    finally:
        s.close()
    f = Farm(tmp_path, studio_dir, free_port(), admin, wt)
    f.start_server()
    try:
        yield f
    finally:
        f.stop()


def _tasks(job: Any, block: str) -> list[Any]:
    return [t for t in job["tasks"] if t["block"] == block]


def test_blender_chunks_on_two_workers_with_an_early_encode(farm: Farm, scenes: Path) -> None:
    farm.worker("w1")
    farm.worker("w2")
    job_id = farm.submit([
        # five render chunks on two workers: while one renders the last chunk the other is
        # free, so an encode chunk must start before the render block is done (with an even
        # count both workers may finish their last chunks at the same moment)
        {"name": "render", "type": "blender", "frames": "1-15", "chunk": 3,
         "params": {"file": "shots/a.blend", "samples": 4, "resolution": [64, 36]}},
        # encode per chunk, frame by frame after the render; then join the parts
        {"name": "encode", "type": "ffmpeg", "chunk": 3,
         "params": {"block": "render", "fps": 12, "output": "part.mp4"}},
        {"name": "final", "type": "ffmpeg", "params": {"block": "encode", "output": "a.mp4"}},
    ], {"shots/a.blend": scenes / "a.blend"})
    job = farm.wait(job_id, 180)
    assert job["status"] == "done", job
    render, encode = _tasks(job, "render"), _tasks(job, "encode")
    assert len(render) == 5 and {t["worker"] for t in render} == {"w1", "w2"}
    # A worker that ran out of render chunks while the other still rendered took an encode
    # chunk then; only when both rendered to the (nearly) same end was none free for one.
    ends = sorted(max(t["finished"] for t in render if t["worker"] == w) for w in ("w1", "w2"))
    assert min(t["started"] for t in encode) < ends[1] or ends[1] - ends[0] < 0.5, ends
    outs = farm.outputs(job_id)
    frames = [o["frame"] for o in outs if o["block"] == "render"]
    assert sorted(frames) == list(range(1, 16))  # each frame once
    assert all(o["thumbnail_oid"] and o["seconds"] is not None
               for o in outs if o["block"] == "render")
    final = next(o for o in outs if o["block"] == "final")
    video = farm.tmp / "a.mp4"
    from vstudio.studio import Studio

    s = Studio.open(farm.studio)
    s.store.get_file(final["oid"], video)
    s.close()
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                            "-show_entries", "stream=nb_read_frames,width,height", "-of",
                            "csv=p=0", str(video)], capture_output=True, text=True)
    assert probe.stdout.strip() == "64,36,15"
    log = farm.call("GET", f"/api/tasks/{render[0]['id']}/log")["lines"]
    assert any(line["line"].startswith("Saved:") for line in log)


def test_synfig_job(farm: Farm, tmp_path: Path) -> None:
    need("synfig", "apt-get install synfig")
    sif = make_sif(tmp_path / "ball.sif", frames=8)
    farm.worker("w1")
    job_id = farm.submit([{"name": "r", "type": "synfig", "frames": "0-7", "chunk": 4,
                           "params": {"file": "ball.sif", "width": 64, "height": 36}}],
                         {"ball.sif": sif})
    assert farm.wait(job_id)["status"] == "done"
    assert sorted(o["name"] for o in farm.outputs(job_id)) == \
        [f"frame.{i:04d}.png" for i in range(8)]


def test_a_node_on_the_studios_own_store_reports_its_outputs(farm: Farm,
                                                            tmp_path: Path) -> None:
    """``worker --store``: outputs go straight to the studio's store, which hands out no
    read grants, so the node signs them with the studio's key; the server accepts them."""
    need("synfig", "apt-get install synfig")
    from vstudio.studio import Studio

    s = Studio.open(farm.studio)
    store_url = s.config.store_url
    s.close()
    farm.worker("direct", "--store", store_url)
    job_id = farm.submit([{"name": "r", "type": "synfig", "frames": "0-1",
                           "params": {"file": "ball.sif", "width": 64, "height": 36}}],
                         {"ball.sif": make_sif(tmp_path / "ball.sif", frames=2)})
    assert farm.wait(job_id, timeout=60)["status"] == "done", farm.log("direct")[-3000:]
    assert sorted(o["name"] for o in farm.outputs(job_id)) == ["frame.0000.png",
                                                                "frame.0001.png"]


def test_corrupt_blend_and_missing_texture_fail_clearly(farm: Farm, scenes: Path,
                                                        tmp_path: Path) -> None:
    bad = tmp_path / "bad.blend"
    bad.write_bytes((scenes / "a.blend").read_bytes()[:4000])
    farm.worker("w1")
    corrupt = farm.submit([{"type": "blender", "frames": "1", "retries": 0,
                            "params": {"file": "bad.blend"}}], {"bad.blend": bad})
    # the texture is not among the inputs: Blender alone would render magenta, exit 0
    missing = farm.submit([{"type": "blender", "frames": "1", "retries": 0,
                            "params": {"file": "tex.blend"}}], {"tex.blend": scenes / "tex.blend"})
    # with the texture among the inputs, at the path the .blend expects, it renders
    present = farm.submit([{"type": "blender", "frames": "1", "retries": 0,
                            "params": {"file": "shots/tex.blend"}}],
                          {"shots/tex.blend": scenes / "tex.blend",
                           "shots/tex.png": scenes / "tex.png"})
    j1, j2 = farm.wait(corrupt), farm.wait(missing)
    assert farm.wait(present)["status"] == "done"
    assert j1["status"] == j2["status"] == "failed"
    assert "Failed to read blend file" in j1["tasks"][0]["error"]
    assert j2["tasks"][0]["error"] == "blender exited with code 3: missing input files: //tex.png"
    assert farm.outputs(missing) == []


def _running(farm: Farm, job_id: int, worker: str | None = None) -> Any:
    def check() -> Any:
        for t in farm.job(job_id)["tasks"]:
            if t["status"] == "running" and (worker is None or t["worker"] == worker) \
                    and t["progress"] > 0:
                return t
        return None

    return wait_for(check, 60, "a task to be running")


def test_worker_killed_mid_task_is_requeued_and_finished_elsewhere(farm: Farm,
                                                                   scenes: Path) -> None:
    w1 = farm.worker("w1")
    job_id = farm.submit([{"type": "blender", "frames": "1-6", "chunk": 6,
                           "params": {"file": "a.blend", "samples": 400}}],
                         {"a.blend": scenes / "a.blend"})
    _running(farm, job_id, "w1")
    os.kill(w1.pid, signal.SIGKILL)
    w1.wait(10)
    farm.worker("w2")
    job = farm.wait(job_id, 180)
    assert job["status"] == "done"
    (task,) = job["tasks"]
    assert task["worker"] == "w2" and task["attempt"] >= 2
    outs = farm.outputs(job_id)
    assert sorted(o["frame"] for o in outs) == [1, 2, 3, 4, 5, 6]  # no duplicates
    # the killed worker's Blender did not live on
    ps = subprocess.run(["pgrep", "-f", "cache-w1/tasks"], capture_output=True, text=True)
    assert ps.stdout.strip() == ""


def test_manager_restarted_mid_job(farm: Farm, scenes: Path) -> None:
    # a lease longer than the outage: the running task stays the worker's
    farm.kill_server()
    toml = farm.studio / "studio.toml"
    toml.write_text(toml.read_text().replace("lease_seconds = 4", "lease_seconds = 60"))
    farm.start_server()
    # a cold Blender per task: a warm one can finish a chunk before the outage begins
    farm.worker("w1", "--no-warm-blender")
    job_id = farm.submit([{"type": "blender", "frames": "1-6", "chunk": 3,
                           # enough samples that a warm Blender is still rendering
                           # a chunk through the whole outage
                           "params": {"file": "a.blend", "samples": 4000}}],
                         {"a.blend": scenes / "a.blend"})
    running = _running(farm, job_id)
    farm.kill_server()
    time.sleep(3)
    farm.start_server()
    job = farm.wait(job_id, 180)
    assert job["status"] == "done"
    first = next(t for t in job["tasks"] if t["id"] == running["id"])
    assert first["attempt"] == running["attempt"]  # kept going and reported when back
    assert sorted(o["frame"] for o in farm.outputs(job_id)) == [1, 2, 3, 4, 5, 6]
    assert "manager" in farm.log("w1")


def test_cancel_kills_the_process_tree(farm: Farm, tmp_path: Path) -> None:
    marker = tmp_path / "grandchild.pid"
    farm.worker("w1", "--allow-commands")
    job_id = farm.submit([{"type": "command", "frames": "1",
                           "params": {"argv": ["sh", "-c",
                                               f"sleep 300 & echo $! > {marker}; wait"]}}])
    pid = int(wait_for(lambda: marker.is_file() and marker.read_text().strip(), 60,
                       "the command to start"))
    farm.call("POST", f"/api/jobs/{job_id}/cancel")

    def gone() -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
        except FileNotFoundError:
            return True

    wait_for(gone, 15, "the grandchild process to be killed")
    assert farm.job(job_id)["status"] == "canceled"


def test_worker_without_allow_commands_never_runs_commands(farm: Farm, tmp_path: Path) -> None:
    for args, message in ((["--token", "nope"], "invalid token"),
                          (["--token", farm.worker_token, "--name", "bad name!"], "body.name")):
        p = subprocess.run([*VSTUDIO, "worker", "--server", farm.url, *args],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 1 and message in p.stderr.strip().splitlines()[-1]
    marker = tmp_path / "ran"
    farm.worker("plain")
    # --idle-only on a machine with no input source (this one: no display, no session, no
    # keyboard interrupts) refuses instead of calling the machine idle forever
    p = subprocess.run([*VSTUDIO, "worker", "--server", farm.url, "--token", farm.worker_token,
                        "--allow-commands", "--idle-only"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "cannot tell whether the user is away" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    job_id = farm.submit([{"type": "command", "frames": "1",
                           "params": {"argv": ["touch", str(marker)]}}])
    wait_for(lambda: "registered" in farm.log("plain"), 30, "the worker to register")
    time.sleep(3)
    assert not marker.exists() and farm.job(job_id)["tasks"][0]["status"] == "queued"
    workers = {w["name"]: w for w in farm.call("GET", "/api/workers")}
    assert "command" not in workers["plain"]["job_types"]
    # What the node said about itself, for the workers page.
    assert workers["plain"]["system"]["version"] == __version__
    assert workers["plain"]["system"]["cores"] >= 1 and workers["plain"]["system"]["memory"] > 0
    farm.worker("trusted", "--allow-commands")
    assert farm.wait(job_id)["tasks"][0]["worker"] == "trusted" and marker.exists()


def test_sigterm_gives_the_task_back(farm: Farm, scenes: Path) -> None:
    w1 = farm.worker("w1")
    job_id = farm.submit([{"type": "blender", "frames": "1-6", "chunk": 6,
                           "params": {"file": "a.blend", "samples": 400}}],
                         {"a.blend": scenes / "a.blend"})
    _running(farm, job_id, "w1")
    t0 = time.monotonic()
    w1.terminate()
    assert w1.wait(60) == 0 and time.monotonic() - t0 < 30
    task = farm.job(job_id)["tasks"][0]
    assert task["status"] == "queued" and task["failures"] == 0
    assert "given back" in farm.log("w1")


def test_worker_usage_errors() -> None:
    p = subprocess.run([*VSTUDIO, "worker", "--server", "http://127.0.0.1:1"],
                       capture_output=True, text=True, env={**os.environ, "VSTUDIO_TOKEN": ""},
                       timeout=60)
    assert p.returncode == 2 and "no token" in p.stderr
    assert sys.executable


def test_a_real_node_reports_its_cpu_and_memory_use_with_its_heartbeat(farm: Farm) -> None:
    farm.worker("w-use")

    def reported() -> Any:
        for w in farm.call("GET", "/api/workers"):
            if w["name"] == "w-use" and w["cpu_use"] is not None:
                return w
        return None

    w = wait_for(reported, 30, "w-use's heartbeat with its CPU and memory use")
    assert 0 <= w["cpu_use"] <= 100 and 0 < w["mem_use"] < 100
