"""``vstudio demo``: the whole studio on one machine, as real processes.

A studio folder, ``vstudio serve``, two ``vstudio worker`` processes, a generated animated
Blender scene (and a Synfig one when Synfig is installed) checked into a project, a job
that renders it in chunks and encodes the frames to MP4 frame by frame as they arrive.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vstudio.errors import VStudioError

PROJECT = "demo"


class DemoError(VStudioError):
    """The demo could not finish."""


def _end_with_us() -> None:  # pragma: no cover - runs in the child
    # A demo killed outright must not leave its server and render nodes running.
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DemoSettings:
    root: Path
    frames: int = 24
    size: tuple[int, int] = (320, 180)
    samples: int = 8
    chunk: int = 4
    workers: int = 2
    timeout: float = 600.0
    say: Callable[[str], None] = print


@dataclass
class Demo:
    s: DemoSettings
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    url: str = ""
    admin_token: str = ""
    worker_token: str = ""
    videos: list[Path] = field(default_factory=list)

    @property
    def studio_dir(self) -> Path:
        return self.s.root / "studio"

    # --- set-up ---

    def make_studio(self) -> None:
        from vstudio.catalog import accounts
        from vstudio.studio import Studio, init_studio

        if (self.studio_dir / "studio.toml").is_file():
            studio = Studio.open(self.studio_dir)
        else:
            studio = init_studio(self.studio_dir, store_url=None, db_url=None)
        try:
            if PROJECT not in {p.name for p in accounts.list_projects(studio.engine)}:
                accounts.create_project(studio.engine, PROJECT)
            suffix = f"{int(time.time()) % 100000}-{os.getpid()}"
            self.admin_token = accounts.add_user(studio.engine, f"director-{suffix}", "admin")[1]
            self.worker_token = accounts.add_user(studio.engine, f"nodes-{suffix}", "worker")[1]
        finally:
            studio.close()
        self.s.say(f"studio: {self.studio_dir}")

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        logs = self.s.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen([sys.executable, "-m", "vstudio", *args], stdout=out,
                                stderr=out, stdin=subprocess.DEVNULL, preexec_fn=_end_with_us)
        out.close()
        self.procs.append((name, proc))
        return proc

    def start_server(self) -> None:
        import httpx

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        proc = self._spawn("server", ["serve", "--studio", str(self.studio_dir),
                                      "--port", str(port)])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DemoError(f"the server stopped (see {self.s.root / 'logs/server.log'})")
            try:
                if httpx.get(self.url + "/openapi.json", timeout=2).status_code == 200:
                    self.s.say(f"server: {self.url}/")
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise DemoError("the server did not start within 60 s")

    def start_workers(self) -> None:
        for i in range(1, self.s.workers + 1):
            self._spawn(f"worker-{i}", [
                "worker", "--server", self.url, "--token", self.worker_token,
                "--name", f"demo-node-{i}", "--cache", str(self.s.root / "worker-cache"),
                "--poll", "5"])
        self.s.say(f"workers: {self.s.workers} render nodes started")

    def stop(self) -> None:
        """SIGTERM every process (workers first), then SIGKILL what is left."""
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _, proc in reversed(self.procs):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()

    # --- content ---

    def make_scenes(self) -> dict[str, Path]:
        from vstudio.jobtypes.samples import make_blend, make_sif

        work = self.s.root / "scenes"
        scenes = {"shot.blend": make_blend(work / "shot.blend", self.s.frames, self.s.size)}
        if shutil.which("synfig"):
            scenes["ball.sif"] = make_sif(work / "ball.sif", self.s.frames, self.s.size)
        self.s.say(f"scenes: {', '.join(scenes)} ({self.s.frames} frames, "
                   f"{self.s.size[0]}x{self.s.size[1]})")
        return scenes

    def check_in(self, scenes: dict[str, Path]) -> list[dict[str, str]]:
        """Commit the scenes to the project; the job's inputs (``ref`` or ``oid``)."""
        try:
            return self._commit(scenes)
        except (VStudioError, OSError, ImportError, subprocess.SubprocessError) as e:
            self.s.say(f"repository not available ({e}); uploading to the store instead")
        from vstudio.studio import Studio

        studio = Studio.open(self.studio_dir)
        try:
            return [{"path": name, "oid": studio.store.put_file(path)}
                    for name, path in scenes.items()]
        finally:
            studio.close()

    def _commit(self, scenes: dict[str, Path]) -> list[dict[str, str]]:
        from vstudio.repo import open_reader
        from vstudio.studio import Studio

        wc = self.s.root / "checkout"
        env = {**os.environ, "VSTUDIO_TOKEN": self.admin_token}

        def vs(*args: str, cwd: Path | None = None) -> None:
            p = subprocess.run([sys.executable, "-m", "vstudio", *args], cwd=cwd, env=env,
                               capture_output=True, text=True, timeout=120)
            if p.returncode != 0:
                raise DemoError(f"vstudio {args[0]}: {(p.stderr or p.stdout).strip()[-300:]}")

        if not (wc / ".vstudio").exists():
            shutil.rmtree(wc, ignore_errors=True)
            vs("checkout", f"{self.studio_dir}/{PROJECT}", str(wc))
        for name, path in scenes.items():
            shutil.copyfile(path, wc / name)
        vs("add", *scenes, cwd=wc)
        vs("commit", "-m", "demo scenes", cwd=wc)
        studio = Studio.open(self.studio_dir)
        try:
            reader = open_reader(studio)
            rev = reader.head(PROJECT)
            tree = reader.tree(PROJECT, rev)
        finally:
            studio.close()
        missing = [name for name in scenes if name not in tree]
        if missing:
            raise DemoError(f"the commit lacks {', '.join(missing)}")
        self.s.say(f"checked in: {PROJECT} r{rev}")
        # the manager resolves repository references to store ids when the job is submitted
        return [{"path": name, "ref": f"{PROJECT}@{rev}:{name}"} for name in scenes]

    # --- the job ---

    def job_spec(self, inputs: list[dict[str, str]]) -> dict[str, Any]:
        last = self.s.frames
        blocks: list[dict[str, Any]] = [
            {"name": "render", "type": "blender", "frames": f"1-{last}", "chunk": self.s.chunk,
             "params": {"file": "shot.blend", "samples": self.s.samples,
                        "resolution": list(self.s.size)}},
            # one video; its task waits for every frame, chunked encodes start earlier
            {"name": "encode", "type": "ffmpeg",
             "params": {"block": "render", "fps": 24, "codec": "h264", "output": "demo.mp4"}},
        ]
        if any(i["path"] == "ball.sif" for i in inputs):
            blocks += [
                {"name": "render2d", "type": "synfig", "frames": f"0-{last - 1}",
                 "chunk": max(1, self.s.frames // 2),
                 "params": {"file": "ball.sif", "width": self.s.size[0],
                            "height": self.s.size[1]}},
                {"name": "encode2d", "type": "ffmpeg",
                 "params": {"block": "render2d", "fps": 24, "output": "ball.mp4"}},
            ]
        return {"name": "demo", "project": PROJECT, "priority": 60, "inputs": inputs,
                "blocks": blocks}

    def run_job(self, spec: dict[str, Any]) -> dict[str, Any]:
        from vstudio.client.manager import ManagerApi

        api = ManagerApi(self.url, self.admin_token)
        try:
            job_id = api.send("POST", "/api/jobs", spec).json()["id"]
            self.s.say(f"job {job_id}: {sum(1 for _ in spec['blocks'])} blocks submitted")
            deadline = time.monotonic() + self.s.timeout
            shown = -1
            while time.monotonic() < deadline:
                job = api.send("GET", f"/api/jobs/{job_id}").json()
                tasks = job.get("tasks") or []
                pct = int(sum(float(t.get("progress") or 0) for t in tasks) / max(1, len(tasks)))
                done = sum(1 for t in tasks if t.get("status") == "done")
                if pct // 5 != shown // 5 or job.get("status") in ("done", "failed", "canceled"):
                    self.s.say(f"  {job.get('status')}: {done}/{len(tasks)} tasks, {pct}%")
                    shown = pct
                if job.get("status") in ("done", "failed", "canceled"):
                    return dict(job)
                self.check_alive()
                time.sleep(0.5)
            raise DemoError(f"the job did not finish within {self.s.timeout:.0f} s")
        finally:
            api.close()

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise DemoError(f"{name} stopped (see {self.s.root / 'logs' / (name + '.log')})")

    def fetch_videos(self, job: dict[str, Any]) -> list[Path]:
        """The job's videos from the studio's store into ``output/``."""
        from vstudio.client.manager import ManagerApi
        from vstudio.studio import Studio

        out_dir = self.s.root / "output"
        out_dir.mkdir(parents=True, exist_ok=True)
        api = ManagerApi(self.url, self.admin_token)
        try:
            outputs = api.send("GET", f"/api/jobs/{job['id']}/outputs").json()
        finally:
            api.close()
        videos = []
        studio = Studio.open(self.studio_dir)
        try:
            for o in outputs:
                name = Path(str(o["name"])).name
                if Path(name).suffix.lower() in (".mp4", ".webm"):
                    studio.store.get_file(o["oid"], out_dir / name)
                    videos.append(out_dir / name)
        finally:
            studio.close()
        return videos

    def run(self) -> Path:
        self.make_studio()
        self.start_server()
        self.start_workers()
        inputs = self.check_in(self.make_scenes())
        job = self.run_job(self.job_spec(inputs))
        if job.get("status") != "done":
            raise DemoError(f"the job ended {job.get('status')}: see "
                            f"{self.url}/ and {self.s.root / 'logs'}")
        self.videos = self.fetch_videos(job)
        main = [v for v in self.videos if v.name == "demo.mp4"]
        if not main:
            raise DemoError(f"no demo.mp4 among the job's outputs in {self.s.root / 'output'}")
        return main[0].resolve()
