"""What a render node tells the manager about itself: version, OS, CPU and memory.

Shown on the workers page so a wrangler can tell why one node renders slower, or which
one still runs an old version. Every value is best effort: a field it cannot read is
left empty rather than stopping the node from registering.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from vstudio import __version__


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                return value.strip()[:200]
    except OSError:
        pass
    return (platform.processor() or platform.machine())[:200]


def _memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # not on every system (Windows, macOS)
        return 0


def _os() -> str:
    try:
        release = platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except OSError:
        release = ""
    kernel = f"{platform.system()} {platform.release()}".strip()
    return (f"{release} ({kernel})" if release else kernel)[:200]


def system_info() -> dict[str, Any]:
    return {"version": __version__[:64], "os": _os(), "cpu": _cpu_model(),
            "cores": os.cpu_count() or 0, "memory": _memory()}


def _cpu_jiffies(path: Path = Path("/proc/stat")) -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot."""
    try:
        values = [int(v) for v in path.read_text().splitlines()[0].split()[1:]]
    except (OSError, IndexError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


def _memory_used_percent(path: Path = Path("/proc/meminfo")) -> float | None:
    fields: dict[str, int] = {}
    try:
        for line in path.read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("MemTotal", "MemAvailable"):
                fields[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return None
    total, free = fields.get("MemTotal"), fields.get("MemAvailable")
    if not total or free is None:
        return None
    return max(0.0, min(100.0, 100.0 * (total - free) / total))


class Usage:
    """The machine's CPU use (all programs, since the previous look) and memory in use,
    in percent, sent with every heartbeat; None where the system does not tell (not Linux)."""

    def __init__(self) -> None:
        self._last = _cpu_jiffies()

    def now(self) -> tuple[float, float] | None:
        before, cpu = self._last, _cpu_jiffies()
        self._last = cpu
        mem = _memory_used_percent()
        if cpu is None or before is None or mem is None or cpu[1] <= before[1]:
            return None
        busy = 100.0 * (cpu[0] - before[0]) / (cpu[1] - before[1])
        return round(max(0.0, min(100.0, busy)), 1), round(mem, 1)
