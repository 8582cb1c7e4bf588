"""Work off Blender's main thread: calls run in threads, results are applied by a timer.

``Runner.start`` runs a blocking function (a ``core`` call) in a daemon thread; its result
waits in a queue until ``pump`` — called by a ``bpy.app.timers`` timer on the main thread,
or by ``drain`` in scripts and tests where no event loop runs — hands it to the callback.
Callbacks therefore may touch ``bpy`` freely; the thread never does. No ``bpy`` here.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

Done = Callable[[Any], None]
Failed = Callable[[BaseException], None]


class Runner:
    """Background calls keyed by name: one call per key at a time."""

    def __init__(self, schedule: Callable[[], None] = lambda: None) -> None:
        self.schedule = schedule  # makes sure ``pump`` will be called (registers the timer)
        self.results: queue.Queue[tuple[Callable[[Any], None], Any]] = queue.Queue()
        self.running: dict[str, threading.Thread] = {}
        self.lock = threading.Lock()

    def busy(self, key: str) -> bool:
        with self.lock:
            return key in self.running

    def start(self, key: str, fn: Callable[[], Any], done: Done, failed: Failed,
              delay: float = 0.0) -> bool:
        """Run ``fn`` in a thread; False when a call with this key is still running."""
        def work() -> None:
            if delay:
                time.sleep(delay)
            try:
                item: tuple[Callable[[Any], None], Any] = (done, fn())
            except Exception as e:  # every failure reaches the artist as a report
                item = (failed, e)
            with self.lock:
                self.running.pop(key, None)
            self.results.put(item)

        with self.lock:
            if key in self.running:
                return False
            t = threading.Thread(target=work, name=f"vstudio-{key}", daemon=True)
            self.running[key] = t
        t.start()
        self.schedule()
        return True

    def pump(self) -> float | None:
        """Apply finished results (main thread); the next interval, or None when idle."""
        while True:
            try:
                callback, value = self.results.get_nowait()
            except queue.Empty:
                break
            callback(value)
        with self.lock:
            idle = not self.running
        return None if idle and self.results.empty() else 0.1

    def drain(self, timeout: float = 300.0) -> None:
        """Wait for every call, including the ones callbacks start, applying results."""
        deadline = time.monotonic() + timeout
        while self.pump() is not None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"vstudio calls still running: {sorted(self.running)}")
            time.sleep(0.02)
