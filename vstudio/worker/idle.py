"""Is the machine's user away? What ``--idle-only`` measures, in order of trust:

1. X11 input idle time from ``xprintidle`` (milliseconds since the last key or pointer
   event), when a display and the program exist;
2. the desktop session's idle hint from logind (``loginctl``; GNOME and KDE set it on
   Wayland too), when the worker runs inside such a session;
3. otherwise keyboard/mouse/USB-HID interrupt counts in ``/proc/interrupts``: any change
   means someone touched an input device (works on consoles too);
4. CPU used by other programs, from ``/proc/stat`` (all CPUs' busy time minus this
   process's own and its reaped children's), judged only over a window in which this worker
   rendered nothing: a window that contains one of our renders says nothing about the user.

The user is idle when no input happened for ``idle_after`` seconds and the other programs'
CPU use is under ``cpu_limit`` percent. Without any input source (1-3) idleness cannot be
measured, and the monitor refuses to start rather than call the machine idle forever.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

from vstudio.errors import VStudioError

_INPUT_IRQ_WORDS = ("i8042", "keyboard", "mouse", "hid", "xhci", "ehci", "ohci", "uhci",
                    "touchpad", "i2c_hid")
MIN_CPU_WINDOW = 2.0  # seconds: shorter windows are noise (one jiffy is 10 ms)


class IdleUnavailable(VStudioError):
    """No way to see the user's input on this machine."""


def _input_interrupts(path: Path = Path("/proc/interrupts")) -> int | None:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    total = 0
    found = False
    for line in lines[1:]:
        low = line.lower()
        if any(w in low for w in _INPUT_IRQ_WORDS):
            found = True
            for field in line.split()[1:]:
                if field.isdigit():
                    total += int(field)
                else:
                    break
    return total if found else None


def _cpu_times(path: Path = Path("/proc/stat")) -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs."""
    try:
        fields = path.read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


def _own_cpu() -> int:
    """Jiffies this process and its reaped children used (renders, encoders, uploads)."""
    t = os.times()
    ticks = os.sysconf("SC_CLK_TCK")
    return int((t.user + t.system + t.children_user + t.children_system) * ticks)


def _logind_session() -> str | None:
    """The logind session to ask for an idle hint, if this runs inside one."""
    if not shutil.which("loginctl"):
        return None
    session = os.environ.get("XDG_SESSION_ID")
    if not session:
        return None
    return session if _logind_idle_seconds(session) is not None else None


def _logind_idle_seconds(session: str) -> float | None:
    try:
        out = subprocess.run(
            ["loginctl", "show-session", session, "--value",
             "-p", "IdleHint", "-p", "IdleSinceHintMonotonic"],
            capture_output=True, text=True, timeout=5)
        hint, since = out.stdout.split()[:2]
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    if hint != "yes":
        return 0.0
    # logind's monotonic clock is CLOCK_MONOTONIC in microseconds, as time.monotonic()
    return max(0.0, time.monotonic() - int(since) / 1e6)


NO_SOURCE = ("--idle-only cannot tell whether the user is away on this machine: no X display "
             "with xprintidle (apt install xprintidle), no logind desktop session idle hint "
             "and no keyboard/mouse interrupts in /proc/interrupts; run the worker from the "
             "desktop session, or without --idle-only")


class IdleMonitor:
    def __init__(self, idle_after: float = 300.0, cpu_limit: float = 30.0) -> None:
        self.idle_after = idle_after
        self.cpu_limit = cpu_limit
        self._xprintidle = shutil.which("xprintidle") if os.environ.get("DISPLAY") else None
        self._logind = None if self._xprintidle else _logind_session()
        self._irq = _input_interrupts()
        if not (self._xprintidle or self._logind or self._irq is not None):
            raise IdleUnavailable(NO_SOURCE)
        self._last_input = time.monotonic()
        self._cpu = self._sample()
        self._rendering = False
        self._lock = threading.Lock()  # the heartbeat and the slots both look
        self.reason = "starting"

    def source(self) -> str:
        return ("xprintidle" if self._xprintidle else "logind idle hint" if self._logind
                else "input interrupts")

    def input_idle_seconds(self) -> float:
        if self._xprintidle:
            try:
                out = subprocess.run([self._xprintidle], capture_output=True, text=True,
                                     timeout=5).stdout.strip()
                return int(out) / 1000.0
            except (OSError, ValueError, subprocess.TimeoutExpired):
                return 0.0  # unknown counts as present: never render over the user
        if self._logind:
            away = _logind_idle_seconds(self._logind)
            return 0.0 if away is None else away
        irq = _input_interrupts()
        if irq is None or irq != self._irq:
            self._irq = irq
            self._last_input = time.monotonic()
        return time.monotonic() - self._last_input

    @staticmethod
    def _sample() -> tuple[float, int, int] | None:
        cpu = _cpu_times()
        return None if cpu is None else (time.monotonic(), cpu[0] - _own_cpu(), cpu[1])

    def other_cpu_percent(self, rendering: bool) -> float | None:
        """Other programs' CPU use since the baseline, or None while it says nothing yet.

        A render (ours) restarts the baseline: the first look after it only starts a new
        window, so our own work never reads as the user's.
        """
        now = self._sample()
        with self._lock:
            after_render, self._rendering = self._rendering, rendering
            if rendering or after_render or now is None or self._cpu is None:
                self._cpu = now
                return None
            return self._cpu_since(self._cpu, now)

    def _cpu_since(self, before: tuple[float, int, int],
                   now: tuple[float, int, int]) -> float | None:
        if now[0] - before[0] < MIN_CPU_WINDOW or now[2] == before[2]:
            return None  # keep the older baseline: the window grows until it means something
        self._cpu = now
        return max(0.0, min(100.0, 100.0 * (now[1] - before[1]) / (now[2] - before[2])))

    def idle(self, rendering: bool) -> bool:
        """True when the user is away; ``reason`` says why not."""
        cpu = self.other_cpu_percent(rendering)
        away = self.input_idle_seconds()
        if away < self.idle_after:
            self.reason = f"input {away:.0f} s ago (< {self.idle_after:.0f} s)"
            return False
        if cpu is not None and cpu > self.cpu_limit:
            self.reason = f"other programs use {cpu:.0f}% CPU"
            return False
        self.reason = "idle"
        return True
