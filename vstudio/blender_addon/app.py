"""The add-on's state in this Blender session and the glue between threads and ``bpy``.

Operators ask ``APP`` to start a ``core`` call; the result comes back on the main thread
(through ``bpy.app.timers``) and lands in ``APP``'s fields, which the panel and the status
bar draw. Every message an artist sees is a Blender report, also kept in ``messages``.
"""

import os
import time
from typing import Any

import bpy

from . import core
from .tasks import Runner

ADDON = __package__  # "vstudio_blender", or "bl_ext.<repo>.vstudio" as a 4.2+ extension


def _schedule() -> None:
    if not bpy.app.timers.is_registered(_pump):
        bpy.app.timers.register(_pump, first_interval=0.05, persistent=True)


def _pump() -> float | None:
    return APP.runner.pump()


class App:
    def __init__(self) -> None:
        self.runner = Runner(_schedule)
        self.states: dict[str, dict[str, Any]] = {}  # file -> ``vstudio blender state``
        self.errors: dict[str, str] = {}  # file -> why its state is unknown
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.revisions: dict[str, tuple[str, int]] = {}  # read-only copy -> (file, rev)
        self.jobs: dict[int, dict[str, Any]] = {}  # job id -> last answer (+ "file")
        self.renders: dict[str, list[dict[str, Any]]] = {}
        self.messages: list[tuple[str, str]] = []

    # -- for operators ------------------------------------------------------------------
    def settings(self) -> core.Settings:
        addon = bpy.context.preferences.addons.get(ADDON)
        prefs = getattr(addon, "preferences", None)
        if prefs is None:
            return core.Settings()
        return core.Settings(command=prefs.command, server=prefs.server, token=prefs.token)

    def state(self, file: str) -> dict[str, Any] | None:
        return self.states.get(os.path.abspath(file)) if file else None

    def call(self, key: str, fn: Any, done: Any = None, delay: float = 0.0) -> bool:
        """Run ``fn`` off the main thread; errors become ERROR reports with the CLI's line."""
        def failed(e: BaseException) -> None:
            self.report("ERROR", str(e) if isinstance(e, core.CliError)
                        else f"error: {type(e).__name__}: {e}")
            redraw()

        def ok(value: Any) -> None:
            if done is not None:
                done(value)
            redraw()

        started = self.runner.start(key, fn, ok, failed, delay)
        if not started and not delay:
            self.report("WARNING", f"{key.split(':')[0]} is still running")
        return started

    def report(self, level: str, text: str) -> None:
        self.messages.append((level, text))
        del self.messages[:-50]
        try:
            bpy.ops.vstudio.report(level=level, message=text)
        except (RuntimeError, AttributeError):  # no context for operators: keep the log
            print(f"vstudio {level}: {text}")

    # -- repository state -----------------------------------------------------------------
    def refresh(self, file: str, then: Any = None) -> None:
        """Ask for ``file``'s state; ``then(state)`` runs when it arrives."""
        if not file:
            return
        file = os.path.abspath(file)
        s = self.settings()

        def done(state: dict[str, Any]) -> None:
            self.states[file] = state
            self.errors.pop(file, None)
            if then is not None:
                then(state)
            redraw()

        def failed(e: BaseException) -> None:
            self.states.pop(file, None)
            self.errors[file] = str(e)
            redraw()

        if core.working_copy(os.path.dirname(file)) is None:
            self.errors[file] = "not in a working copy"
            return
        self.runner.start("state:" + file, lambda: core.file_state(s, file),
                          done, failed)

    # -- farm jobs ---------------------------------------------------------------------------
    def watch(self, job_id: int, file: str, delay: float = 0.0) -> None:
        """Follow a job until it ends; its progress shows in the status bar."""
        s = self.settings()

        def done(j: dict[str, Any]) -> None:
            self.jobs[job_id] = {**j, "file": file, "seen": time.time()}
            if j["status"] in core.FINAL:
                level = "INFO" if j["status"] == "done" else "ERROR"
                self.report(level, f"{core.job_line(j)}: {j['name']}")
            else:
                self.watch(job_id, file, delay=2.0)

        self.call(f"job:{job_id}", lambda: core.job(s, file, job_id), done, delay)


APP = App()


def redraw() -> None:
    wm = getattr(bpy.context, "window_manager", None)
    for window in getattr(wm, "windows", []):
        for area in window.screen.areas:
            area.tag_redraw()


def current_file() -> str:
    return bpy.data.filepath
