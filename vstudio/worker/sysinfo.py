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
