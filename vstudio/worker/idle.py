"""Is the machine's user away? What ``--idle-only`` measures, in order of trust:

1. X11 input idle time from ``xprintidle`` (milliseconds since the last key or pointer
   event), when a display and the program exist;
2. otherwise keyboard/mouse/USB-HID interrupt counts in ``/proc/interrupts``: any change
   means someone touched an input device (works on consoles and Wayland too);
3. CPU used by other programs, from ``/proc/stat`` (all CPUs busy time), sampled only while
   this worker renders nothing, since our own renders would count otherwise.

The user is idle when no input happened for ``idle_after`` seconds and, while we are not
rendering, the other programs' CPU use is under ``cpu_limit`` percent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

_INPUT_IRQ_WORDS = ("i8042", "keyboard", "mouse", "hid", "xhci", "ehci", "ohci", "uhci",
                    "touchpad", "i2c_hid")


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


class IdleMonitor:
    def __init__(self, idle_after: float = 300.0, cpu_limit: float = 30.0) -> None:
        self.idle_after = idle_after
        self.cpu_limit = cpu_limit
        self._xprintidle = shutil.which("xprintidle") if os.environ.get("DISPLAY") else None
        self._irq = _input_interrupts()
        self._last_input = time.monotonic()
        self._cpu = _cpu_times()
        self.reason = "starting"

    def input_idle_seconds(self) -> float:
        if self._xprintidle:
            try:
                out = subprocess.run([self._xprintidle], capture_output=True, text=True,
                                     timeout=5).stdout.strip()
                return int(out) / 1000.0
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        irq = _input_interrupts()
        if irq is not None and irq != self._irq:
            self._irq = irq
            self._last_input = time.monotonic()
        return time.monotonic() - self._last_input

    def other_cpu_percent(self) -> float:
        now = _cpu_times()
        before, self._cpu = self._cpu, now
        if not now or not before or now[1] == before[1]:
            return 0.0
        return 100.0 * (now[0] - before[0]) / (now[1] - before[1])

    def idle(self, rendering: bool) -> bool:
        """True when the user is away; ``reason`` says why not."""
        away = self.input_idle_seconds()
        if away < self.idle_after:
            self.reason = f"input {away:.0f} s ago (< {self.idle_after:.0f} s)"
            return False
        if not rendering:
            cpu = self.other_cpu_percent()
            if cpu > self.cpu_limit:
                self.reason = f"other programs use {cpu:.0f}% CPU"
                return False
        self.reason = "idle"
        return True
