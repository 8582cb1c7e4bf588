"""One task on a render node: fetch inputs, run, stream progress and logs, store outputs."""

from __future__ import annotations

import shutil
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vstudio.client.manager import ManagerAway, StaleAttempt, retrying
from vstudio.errors import VStudioError
from vstudio.worker.runner import Run, RunResult
from vstudio.worker.thumbs import thumbnails
from vstudio.worker.warm import WarmRun

if TYPE_CHECKING:
    from vstudio.jobtypes import Invocation
    from vstudio.worker.node import Worker

MAX_LOG_BATCH = 200  # lines per progress report
MAX_LOG_BACKLOG = 2000  # lines kept while the manager is away
MAX_LINE = 2000


@dataclass
class Reports:
    """What the renderer said since the last report (shared with the reporter thread)."""

    progress: float = 0.0
    frame: int | None = None
    lines: list[str] = field(default_factory=list)
    dropped: int = 0
    changed: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)


class TaskRun:
    def __init__(self, worker: Worker, task: dict[str, Any], slot: int = 0) -> None:
        self.w = worker
        self.slot = slot  # whose warm Blender session the task may use
        self.task = task
        self.id = task["id"]
        self.attempt = int(task.get("attempt", 0))
        self.dir = worker.tasks_dir / f"{self.id}-{self.attempt}"
        self.reports = Reports()
        self.run: Run | None = None
        self.lost = False  # the manager took the task away (stale attempt or cancel)
        self.given_back = False
        self.timed_out = False
        self.t_start = time.monotonic()
        self.prepared = 0.0  # seconds from taking the task to starting the renderer
        self.early: dict[Path, Future[str]] = {}  # frames stored during the render
        self._done = threading.Event()

    @property
    def label(self) -> str:
        frames = self.task.get("frames") or []
        span = f"{frames[0]}-{frames[-1]}" if frames else "?"
        return f"task {self.id} ({self.task.get('type')}, {self.task.get('job_name', '')} " \
               f"frames {span})"

    # --- callbacks from the runner (reader thread) ---

    def on_saved(self, frame: int, path: Path) -> None:
        """Store a finished frame while the next one renders."""
        self.early[path] = self.w.uploads.submit(self.w.store().put_file, path)

    def on_progress(self, progress: float, frame: int | None) -> None:
        with self.reports.lock:
            if progress >= 0:
                self.reports.progress = max(self.reports.progress, progress)
            if frame is not None:
                self.reports.frame = frame
            self.reports.changed = True

    def on_log(self, line: str) -> None:
        r = self.reports
        with r.lock:
            r.lines.append(line[:MAX_LINE])
            if len(r.lines) > MAX_LOG_BACKLOG:
                r.dropped += len(r.lines) - MAX_LOG_BACKLOG
                del r.lines[:-MAX_LOG_BACKLOG]
            r.changed = True

    # --- the task's life ---

    def execute(self) -> None:
        reporter = threading.Thread(target=self._report_loop, daemon=True,
                                    name=f"report-{self.id}")
        reporter.start()
        try:
            result = self._render()
        except VStudioError as e:
            result = RunResult(returncode=-1, error=e.message)
        except OSError as e:
            result = RunResult(returncode=-1, error=f"{e.strerror or e}: {e.filename or ''}")
        finally:
            self._done.set()
        reporter.join(timeout=5)
        try:
            self._finish(result)
        finally:
            if not self.w.opts.keep_task_dirs:
                shutil.rmtree(self.dir, ignore_errors=True)

    def _render(self) -> RunResult:
        self.w.say(f"{self.label}: starting")
        self.t_start = time.monotonic()
        shutil.rmtree(self.dir, ignore_errors=True)
        (self.dir / "files").mkdir(parents=True)
        self._fetch_inputs()
        if self.lost or self.w.stopping.is_set():
            return RunResult(returncode=-1, canceled=True, error="stopped before rendering")
        inv = self._invocation()
        self.prepared = time.monotonic() - self.t_start
        session = self.w.warm_session(self.slot) if inv.warm is not None else None
        if session is not None and session.stale_for(inv):
            # a trusted file ran its own scripts in this Blender: what they left behind (app
            # handlers, modules) must not meet another file
            self.w.close_session(self.slot)
            session = self.w.warm_session(self.slot)
        if session is not None:
            self.run = WarmRun(session, inv, on_progress=self.on_progress, on_log=self.on_log,
                               on_saved=self.on_saved)
        else:
            self.run = Run(inv, on_progress=self.on_progress, on_log=self.on_log,
                           on_saved=self.on_saved)
        if self.lost:  # canceled while starting
            self.run.kill()
        timer = None
        limit = self.task.get("timeout")
        if limit:
            timer = threading.Timer(float(limit), self._time_out, args=(float(limit),))
            timer.daemon = True
            timer.start()
        try:
            result = self.run.wait()
            if isinstance(self.run, WarmRun) and self.run.session_lost and not (
                    self.lost or self.timed_out or self.w.stopping.is_set()):
                result = self._cold_again(result)
        finally:
            if timer is not None:
                timer.cancel()
        if self.timed_out:
            result.canceled, result.error = False, f"timed out after {limit} s"
        return result

    def _invocation(self) -> Invocation:
        from vstudio import jobtypes

        opts = self.w.opts
        return jobtypes.build(self.task, self.dir, allow_commands=opts.allow_commands,
                              allow_local_paths=opts.allow_local_paths)

    def _cold_again(self, warm: RunResult) -> RunResult:
        """The warm session died on its own: render the task with a fresh ``blender``."""
        self.on_log(f"vstudio: {warm.error}; rendering with a fresh blender process")
        inv = self._invocation()
        self.run = Run(inv, on_progress=self.on_progress, on_log=self.on_log,
                       on_saved=self.on_saved)
        if self.lost or self.timed_out:  # stopped while the new process started
            self.run.kill()
        return self.run.wait()

    def _time_out(self, limit: float) -> None:
        self.timed_out = True
        self.on_log(f"vstudio: the task ran longer than its timeout ({limit:g} s): stopping it")
        if self.run is not None:
            self.run.kill()

    def _fetch_inputs(self) -> None:
        from vstudio.jobtypes.base import inputs_to_fetch

        inputs = inputs_to_fetch(self.task)
        if not inputs:
            return
        store = self.w.store()
        # the read grants the manager handed out with the task: the only reads it allows
        store.remember([*(self.task.get("inputs") or []), *(self.task.get("upstream") or [])])
        self.on_log(f"vstudio: fetching {len(inputs)} input file(s)")
        def place(oid: str, rel: str) -> None:
            retrying(lambda: self.w.cache.place(store, oid, self.dir / "files" / rel),
                     self.w.stopping)

        for rel, oid in inputs:
            place(oid, rel)

    def kill(self, why: str) -> None:
        self.lost = True
        if self.run is not None:
            self.w.say(f"{self.label}: stopping ({why})")
            self.run.kill()

    def _report_loop(self) -> None:
        api = self.w.api
        keepalive = max(1.0, self.w.lease_seconds / 4)
        last = 0.0
        while not self._done.wait(0.25):
            now = time.monotonic()
            r = self.reports
            if not (r.changed and now - last >= self.w.report_every) and now - last < keepalive:
                continue
            with r.lock:
                body: dict[str, Any] = {"attempt": self.attempt,
                                        "progress": round(r.progress, 2),
                                        "log": r.lines[:MAX_LOG_BATCH]}
                if r.frame is not None:
                    body["frame"] = r.frame
                r.changed = False
            try:
                cancel = api.progress(self.id, body)
                self.w.manager_back()
            except ManagerAway as e:
                self.w.manager_away(e)
                last = now  # keep rendering; the lines wait for the manager
                continue
            except StaleAttempt:
                self.kill("the manager gave the task to another worker")
                return
            except VStudioError as e:
                self.w.say(f"{self.label}: progress report refused: {e.message}")
                last = now
                continue
            with r.lock:
                del r.lines[:len(body["log"])]
            last = now
            if cancel:
                self.kill("canceled on the manager")
                return

    def _flush_logs(self) -> None:
        r = self.reports
        while r.lines:
            with r.lock:
                batch = r.lines[:MAX_LOG_BATCH]
            self.w.api.progress(self.id, {"attempt": self.attempt,
                                          "progress": round(r.progress, 2), "log": batch})
            with r.lock:
                del r.lines[:len(batch)]

    def _finish(self, result: RunResult) -> None:
        api = self.w.api
        stop = None if self.w.stopping.is_set() else self.w.stopping
        try:
            if result.error is None and not self.lost:
                t0 = time.monotonic()
                try:
                    outputs = self._store_outputs(result)
                except (VStudioError, OSError) as e:
                    why = e.message if isinstance(e, VStudioError) else str(e)
                    retrying(lambda: api.fail(self.id, self.attempt,
                                              f"could not store the outputs: {why}"), stop)
                    self.w.say(f"{self.label}: failed storing outputs: {why}")
                    return
                stored = time.monotonic() - t0
                retrying(self._flush_logs, stop)
                retrying(lambda: api.done(self.id, self.attempt, outputs), stop)
                self.w.say(f"{self.label}: done in {time.monotonic() - self.t_start:.2f} s "
                           f"(inputs {self.prepared:.2f} s, render {result.seconds:.2f} s, "
                           f"{len(outputs)} output(s) stored {stored:.2f} s after)")
                self.w.tasks_done += 1
            elif self.given_back or self.w.stopping.is_set():
                retrying(lambda: api.release(self.id, self.attempt, "worker stopping"),
                         give_up=10)
                self.given_back = True
                self.w.say(f"{self.label}: given back")
            elif self.lost:
                self.w.say(f"{self.label}: dropped ({result.error or 'taken away'})")
            else:
                self.on_log(f"vstudio: task failed: {result.error}")
                retrying(self._flush_logs, stop)
                retrying(lambda: api.fail(self.id, self.attempt, result.error or "failed"), stop)
                self.w.say(f"{self.label}: failed: {result.error}")
        except StaleAttempt:
            self.w.say(f"{self.label}: the manager had given the task to another worker")
        except ManagerAway as e:
            self.w.say(f"{self.label}: could not report ({e.message})")
        except VStudioError as e:  # the manager refused the report: say so, keep working
            self.w.say(f"{self.label}: report refused: {e.message}")

    def _put_patiently(self, store: Any, path: Path) -> str:
        return retrying(lambda: str(store.put_file(path)), self.w.stopping)

    def _store_outputs(self, result: RunResult) -> list[dict[str, Any]]:
        store = self.w.store()
        thumbs = thumbnails({fo.frame: fo.path for fo in result.outputs}, self.dir / "thumbs")
        files = [fo.path for fo in result.outputs]
        files += [thumbs[f] for f in sorted(thumbs) if thumbs[f] not in files]
        pending = {p: self.early.get(p) or self.w.uploads.submit(store.put_file, p)
                   for p in files}
        by_path: dict[Path, str] = {}
        for path, fut in pending.items():
            try:
                by_path[path] = fut.result()
            except ManagerAway:  # stored again, patiently, once the manager is back
                by_path[path] = self._put_patiently(store, path)
        out = []
        for fo in result.outputs:
            oid = by_path[fo.path]
            item: dict[str, Any] = {"frame": fo.frame, "oid": oid, "name": fo.name,
                                    "grant": store.grant(oid)}
            if fo.seconds is not None:
                item["seconds"] = fo.seconds
            if fo.peak_mem:
                item["peak_mem"] = fo.peak_mem
            if fo.frame in thumbs:
                item["thumbnail_oid"] = by_path[thumbs[fo.frame]]
                item["thumbnail_grant"] = store.grant(item["thumbnail_oid"])
            out.append(item)
        return out
