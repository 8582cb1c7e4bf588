"""The render node: register, long-poll for tasks, run them, heartbeat, stop cleanly.

Threads: one per slot (poll, then run one task), one heartbeat, one reporter per running
task. The manager being away never stops a render: reports wait and are retried with
backoff, and the finished task is reported when the manager is back.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vstudio.client.manager import ManagerApi, ManagerAway, retrying
from vstudio.errors import NotFound, VStudioError
from vstudio.worker.cache import InputCache
from vstudio.worker.sysinfo import Usage
from vstudio.worker.task import TaskRun
from vstudio.worker.warm import BlenderSession


@dataclass
class WorkerOptions:
    server: str
    token: str | None
    slots: int = 1
    tags: list[str] = field(default_factory=list)
    name: str = ""
    idle_only: bool = False
    idle_after: float = 300.0
    allow_commands: bool = False
    allow_local_paths: bool = False  # tasks may name files on this machine's disk
    cache_dir: Path = Path.home() / ".cache" / "vstudio" / "worker"
    max_cache_bytes: int = 20 << 30
    poll_seconds: float = 10.0
    keep_task_dirs: bool = False
    quiet: bool = False
    warm_blender: bool = True  # keep a Blender process per slot between tasks
    # a slot without work this long ends its Blender (~200 MB) until the next task
    warm_idle_seconds: float = 600.0


# Signs a read grant for (user, object id): how a node that opened the studio's store
# itself (``--store``) vouches for its outputs (``grants.store_signer``).
Sign = Callable[[str, str], str]


class _StoreAdapter:
    """The store over HTTP, with its connection failures seen as the manager being away."""

    def __init__(self, inner: Any, whoami: Callable[[], str] | None = None,
                 sign: Sign | None = None) -> None:
        self.inner = inner
        self.whoami = whoami  # the node's user name, for grants a local store signs
        self.sign = sign
        self._user: str | None = None

    def grant(self, oid: str) -> str | None:
        """The node's read grant for an output it stored: the server's upload answer, or,
        with the studio's own store (``--store``, which hands out none), one ``sign``
        makes with the studio's key."""
        got = self.inner.grant(oid)
        if got is not None or self.sign is None or self.whoami is None:
            return got
        if self._user is None:
            self._user = self.whoami()
        return self.sign(self._user, oid)

    def _call(self, fn: Any, *args: Any) -> Any:
        import httpx

        from vstudio.errors import BackendUnavailable, ServerError

        try:
            return fn(*args)
        except (httpx.TransportError, BackendUnavailable) as e:
            raise ManagerAway(f"store unreachable: {e}") from None
        except ServerError as e:
            if isinstance(e, ManagerAway):
                raise
            raise ManagerAway(f"store: {e.message}") from None

    def get_file(self, oid: str, dest: Path) -> None:
        self._call(self.inner.get_file, oid, dest)

    def remember(self, rows: list[dict[str, Any]]) -> None:
        from vstudio.farm.wire import remember_rows

        remember_rows(self.inner, rows)

    def put_file(self, path: Path) -> str:
        return str(self._call(self.inner.put_file, path))


def _limit_heap() -> Any:
    """Few malloc arenas, and a way to hand freed memory back after each task.

    Upload and reporter threads each get a glibc arena otherwise, and an idle node would
    keep tens of megabytes it no longer uses.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, 2)  # M_ARENA_MAX
        return libc
    except (OSError, AttributeError):
        return None


class Worker:
    def __init__(self, opts: WorkerOptions, store: Any = None, sign: Sign | None = None) -> None:
        from vstudio import jobtypes

        self.opts = opts
        self.name = opts.name or f"{socket.gethostname()}-{os.getpid()}"
        self.api = ManagerApi(opts.server, opts.token)
        self.job_types = jobtypes.available(opts.allow_commands)
        self.cache = InputCache(opts.cache_dir, opts.max_cache_bytes)
        self.tasks_dir = opts.cache_dir / "tasks" / f"{self.name}.{os.getpid()}"
        self.tasks_dir.mkdir(parents=True, exist_ok=True)
        self.stopping = threading.Event()
        self._libc = _limit_heap()
        self.running: dict[Any, TaskRun] = {}
        self._lock = threading.Lock()
        self._store = _StoreAdapter(store, self._whoami, sign) if store is not None else None
        from concurrent.futures import ThreadPoolExecutor

        # outputs go to the store from a few threads while renders go on; a store the
        # worker opened itself (--store) gets one thread, as its writers expect
        self.uploads = ThreadPoolExecutor(max_workers=4 if store is None else 1,
                                          thread_name_prefix="upload")
        self.worker_id: Any = None
        self.lease_seconds = 60.0
        self.report_every = 0.5
        self.tasks_done = 0
        self.away = False
        self._was_idle: bool | None = None
        self._sessions: dict[int, BlenderSession] = {}
        self.idle_monitor = None
        if opts.idle_only:
            from vstudio.worker.idle import IdleMonitor

            self.idle_monitor = IdleMonitor(opts.idle_after)

    def manager_away(self, e: Exception) -> None:
        """Say once per outage that the manager is away; the work goes on."""
        if not self.away:
            self.away = True
            self.say(f"manager away ({e}); rendering goes on, reports wait")

    def manager_back(self) -> None:
        if self.away:
            self.away = False
            self.say("manager is back; reporting")

    def say(self, msg: str) -> None:
        if not self.opts.quiet:
            print(f"[{time.strftime('%H:%M:%S')}] {self.name}: {msg}", file=sys.stderr,
                  flush=True)

    def warm_session(self, slot: int) -> BlenderSession | None:
        """The slot's live Blender session, started now if there is none; None: cold only.

        Called from the slot's own thread: the session's Blender dies with that thread
        (PDEATHSIG), and slot threads live as long as the worker.
        """
        if not self.opts.warm_blender or "blender" not in self.job_types:
            return None
        s = self._sessions.get(slot)
        if s is not None and s.alive:
            return s
        if s is not None:
            s.close(grace=0)
        threads = None
        if self.opts.slots > 1:  # two renders each using every core only thrash
            threads = max(1, (os.cpu_count() or 1) // self.opts.slots)
        try:
            s = BlenderSession(self.tasks_dir / f"warm-{slot}", threads).start()
        except OSError as e:
            self.say(f"cannot start a warm blender session: {e}")
            self._sessions.pop(slot, None)
            return None
        self._sessions[slot] = s
        return s

    def close_session(self, slot: int) -> None:
        s = self._sessions.pop(slot, None)
        if s is not None:
            s.close()

    def _whoami(self) -> str:
        return str(retrying(lambda: self.api.send("GET", "/api/me").json()["name"],
                            self.stopping))

    def store(self) -> _StoreAdapter:
        if self._store is None:
            from vstudio.store.remote import RemoteStore

            self._store = _StoreAdapter(RemoteStore(self.opts.server, self.opts.token))
        return self._store

    # --- life cycle ---

    def register(self) -> None:
        from vstudio.jobtypes.schema import LOCAL_PATHS_TAG
        from vstudio.worker.sysinfo import system_info

        tags = list(self.opts.tags)
        if self.opts.allow_local_paths and LOCAL_PATHS_TAG not in tags:
            tags.append(LOCAL_PATHS_TAG)  # jobs naming local paths ask for it (see schema)
        info = {"name": self.name, "slots": self.opts.slots, "tags": tags,
                "job_types": self.job_types, "allow_commands": self.opts.allow_commands,
                "idle_only": self.opts.idle_only, "system": system_info()}

        def warn(e: Exception, delay: float) -> None:
            self.say(f"waiting for the manager: {e}")

        reply = retrying(lambda: self.api.register(info), self.stopping, on_wait=warn)
        self.worker_id = reply["id"]
        self.lease_seconds = float(reply.get("lease_seconds", 60))
        self.say(f"registered as worker {self.worker_id} at {self.opts.server} "
                 f"({', '.join(self.job_types)}; {self.opts.slots} slot(s))")

    def run(self) -> int:
        """Work until SIGTERM/SIGINT; returns the exit code."""
        self._install_signals()
        try:
            self.register()
        except ManagerAway:
            return 1 if not self.stopping.is_set() else 0
        threads = [threading.Thread(target=self._slot, args=(i,), name=f"slot-{i}",
                                    daemon=True) for i in range(self.opts.slots)]
        threads.append(threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True))
        for t in threads:
            t.start()
        while not self.stopping.wait(0.5):
            pass
        self.say("stopping: giving running tasks back")
        with self._lock:
            running = list(self.running.values())
        for tr in running:
            tr.kill("worker stopping")
        deadline = time.monotonic() + self.opts.poll_seconds + 15
        for t in threads[:-1]:
            t.join(timeout=max(0.1, deadline - time.monotonic()))
        for slot in list(self._sessions):
            self.close_session(slot)
        self.api.close()
        self.say("stopped")
        return 0

    def stop(self) -> None:
        self.stopping.set()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def _may_work(self, rendering: bool) -> bool:
        if self.idle_monitor is None:
            return True
        ok = self.idle_monitor.idle(rendering)
        if ok != self._was_idle:
            self._was_idle = ok
            self.say("the user is away: taking work" if ok else
                     f"not taking work while the user is here ({self.idle_monitor.reason})")
        return ok

    def _slot(self, slot: int = 0) -> None:
        backoff = 0.25  # grows while the manager is away, so a long outage costs it nothing
        last_task = time.monotonic()
        while not self.stopping.is_set():
            if not self._may_work(rendering=bool(self.running)):
                self.close_session(slot)  # the user's memory back while they work
                self.stopping.wait(5)
                continue
            if time.monotonic() - last_task < self.opts.warm_idle_seconds:
                self.warm_session(slot)  # start-up while waiting for work, not after
            else:
                self.close_session(slot)
            try:
                task = self.api.next_task(self.worker_id, self.opts.poll_seconds)
            except ManagerAway as e:
                self.manager_away(e)
                self.stopping.wait(backoff * (0.75 + random.random() / 2))
                backoff = min(5.0, backoff * 2)
                continue
            except NotFound:  # the manager forgot us (e.g. a fresh database): register again
                self.register()
                continue
            except VStudioError as e:
                self.say(f"cannot take work: {e.message}")
                self.stopping.wait(5)
                continue
            self.manager_back()
            backoff = 0.25
            if task is None:
                continue
            tr = TaskRun(self, task, slot)
            if self.stopping.is_set():
                tr.lost = True
            with self._lock:
                self.running[tr.id] = tr
            try:
                tr.execute()
            except Exception as e:  # a bug must not take the slot down with it
                self.say(f"{tr.label}: internal error: {type(e).__name__}: {e}")
            finally:
                last_task = time.monotonic()
                with self._lock:
                    self.running.pop(tr.id, None)
                    idle = not self.running
                if idle and self._libc is not None:
                    self._libc.malloc_trim(0)

    def heartbeat_state(self) -> str:
        """What the node tells the manager it is doing: "busy", "idle", or "in use" (an
        --idle-only desktop whose user is at it, as its last look for work found)."""
        if self.running:
            return "busy"
        return "in use" if self.idle_monitor is not None and self._was_idle is False \
            else "idle"

    def _heartbeat(self) -> None:
        every = max(0.5, min(10.0, self.lease_seconds / 3))
        usage = Usage()
        while not self.stopping.wait(every):
            state = self.heartbeat_state()
            if self.idle_monitor is not None and self.running and not self.idle_monitor.idle(
                    rendering=True):
                state = "in use"
                with self._lock:
                    running = list(self.running.values())
                for tr in running:  # the user is back: hand the work back
                    tr.given_back = True
                    tr.kill(f"user is back ({self.idle_monitor.reason})")
            try:
                self.api.heartbeat(self.worker_id, state, usage.now())
                self.manager_back()
            except ManagerAway as e:
                self.manager_away(e)
                continue
            except NotFound:
                try:
                    self.register()
                except ManagerAway:
                    continue
            except VStudioError as e:
                self.say(f"heartbeat refused: {e.message}")
