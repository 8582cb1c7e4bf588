"""Run one invocation as a child process in its own process group and read its output.

The child gets a new session, so cancelling kills the whole tree (Blender's and ffmpeg's
helpers included) with one ``killpg``. Output is read as bytes and split on ``\\r`` as well
as ``\\n`` because Synfig and ffmpeg redraw progress lines with carriage returns.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vstudio.jobtypes.base import Invocation


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    # If the worker is killed (kill -9), its renders must not run on as orphans.
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


try:
    import ctypes

    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True) \
        if sys.platform.startswith("linux") else None
except OSError:
    _LIBC = None

# ``preexec_fn`` for a renderer's process: dies with the worker (Linux), else nothing.
DIE_WITH_PARENT: Callable[[], None] | None = _die_with_parent if _LIBC is not None else None

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_SPLIT = re.compile(rb"[\r\n]")


@dataclass
class FrameOutput:
    frame: int
    path: Path
    name: str
    seconds: float | None = None
    peak_mem: int | None = None


@dataclass
class RunResult:
    returncode: int
    outputs: list[FrameOutput] = field(default_factory=list)
    error: str | None = None  # why the task failed; None when it succeeded
    canceled: bool = False
    seconds: float = 0.0


def ignore(*_: object) -> None:
    pass


class Run:
    """A started child process; ``wait()`` reads its output and checks its outputs."""

    def __init__(self, inv: Invocation,
                 on_progress: Callable[[float, int | None], None] = ignore,
                 on_log: Callable[[str], None] = ignore,
                 on_saved: Callable[[int, Path], None] = ignore) -> None:
        self._init_state(inv, on_progress, on_log, on_saved)
        env = {**os.environ, **(inv.env or {})}
        self.proc = subprocess.Popen(
            inv.argv, cwd=inv.cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=DIE_WITH_PARENT)
        self.pgid = self.proc.pid  # a new session leader's pid is its group id

    def _init_state(self, inv: Invocation, on_progress: Callable[[float, int | None], None],
                    on_log: Callable[[str], None],
                    on_saved: Callable[[int, Path], None]) -> None:
        self.inv = inv
        self.on_progress = on_progress
        self.on_log = on_log
        self.on_saved = on_saved  # a frame's file is complete: it may be stored already
        self.canceled = False
        self._started = time.monotonic()
        self._errors: list[str] = []
        self._saved_at: dict[int, float] = {}
        self._seconds: dict[int, float] = {}
        self._peak: dict[int, int] = {}

    def kill(self, grace: float = 3.0) -> None:
        """Stop the whole process tree: SIGTERM, then SIGKILL after ``grace`` seconds."""
        self.canceled = True
        self._signal(signal.SIGTERM)

        def later() -> None:
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                if self.proc.poll() is not None and not self._group_alive():
                    return
                time.sleep(0.05)
            self._signal(signal.SIGKILL)

        threading.Thread(target=later, daemon=True).start()

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, sig)

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.pgid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def _line(self, raw: bytes) -> None:
        line = _ANSI.sub("", raw.decode("utf-8", "replace")).rstrip()
        if not line:
            return
        ev = self.inv.parser.feed(line)
        if ev.saved is not None:
            if ev.saved not in self._saved_at:
                self._saved_at[ev.saved] = time.monotonic()
                if ev.saved in self.inv.outputs:
                    self.on_saved(ev.saved, self.inv.outputs[ev.saved])
            if ev.seconds is not None:
                self._seconds[ev.saved] = ev.seconds
            if ev.peak_mem:
                self._peak[ev.saved] = ev.peak_mem
        if ev.error:
            self._errors.append(ev.error)
            del self._errors[:-20]
        if ev.keep:
            self.on_log(line)
        if ev.progress is not None or ev.frame is not None:
            self.on_progress(ev.progress if ev.progress is not None else -1.0, ev.frame)

    def wait(self) -> RunResult:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buf = b""
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            *lines, buf = _SPLIT.split(buf)
            for raw in lines:
                self._line(raw)
        if buf:
            self._line(buf)
        code = self.proc.wait()
        if self.canceled:  # reap what the group left behind before the folder goes away
            self._signal(signal.SIGKILL)
        return self._result(code, time.monotonic() - self._started)

    def _result(self, code: int, seconds: float) -> RunResult:
        res = RunResult(returncode=code, canceled=self.canceled, seconds=seconds)
        if self.canceled:
            res.error = "canceled"
            return res
        label = self.inv.label or Path(self.inv.argv[0]).name
        if code != 0:
            why = self._best_error()
            res.error = f"{label} exited with code {code}" + (f": {why}" if why else "")
            return res
        missing = [f for f, p in self.inv.outputs.items()
                   if not p.is_file() or p.stat().st_size == 0]
        if missing:
            why = self._best_error()
            res.error = (f"{label} exited 0 but wrote no output for frame"
                         f"{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(str(f) for f in missing[:10])}"
                         + (f" ({why})" if why else ""))
            return res
        res.outputs = self._frames(seconds)
        return res

    def _best_error(self) -> str | None:
        # Our own checks speak plainest; then the renderer's last error line.
        for e in self._errors:
            if e.startswith("missing input"):
                return e
        return self._errors[-1][:500] if self._errors else None

    def _frames(self, total: float) -> list[FrameOutput]:
        frames = sorted(self.inv.outputs)
        even = total / max(1, len(frames))
        out = []
        prev = self._started
        for f in frames:
            secs = self._seconds.get(f)
            if secs is None:
                at = self._saved_at.get(f)
                secs = (at - prev) if at is not None else even
                prev = at if at is not None else prev
            out.append(FrameOutput(f, self.inv.outputs[f], self.inv.names.get(
                f, self.inv.outputs[f].name), round(secs, 3), self._peak.get(f)))
        return out
