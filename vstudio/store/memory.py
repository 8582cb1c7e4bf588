"""Memory of a process that moves big buffers between threads (the store's writers).

Chunks are allocated on one thread and freed on others; glibc then keeps freed memory in
per-thread arenas and the resident size creeps up. ``tame_malloc`` (once, before the
store's threads exist) and ``release_memory`` (after each uploaded pack) keep it bounded.
"""

from __future__ import annotations

import os
from typing import Any


def tame_malloc() -> None:
    """Two arenas, and trimming once RSS is past ``TRIM_OVER`` (``release_memory``), keep
    a 2 GiB put well under 250 MB.

    Frames and packs (1-16 MiB) come from the arenas and are reused, not mmapped and
    unmapped one by one: each fresh mapping costs a page fault per 4 KiB, and trimming
    after every pack cost a put a fifth of its CPU time in page faults (perf stat)."""
    global _libc
    if _libc is not None:
        return
    try:
        import ctypes

        _libc = ctypes.CDLL("libc.so.6")
        _libc.mallopt(-8, 2)  # M_ARENA_MAX
        _libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD (fixed: no longer adapts)
        _libc.mallopt(-1, 32 << 20)  # M_TRIM_THRESHOLD: free tops are kept for reuse
    except (OSError, AttributeError):
        _libc = False


_libc: Any = None
TRIM_OVER = 160 << 20  # resident bytes above which freed memory goes back to the system


def release_memory() -> None:
    """Give freed memory back to the system once the process holds more than TRIM_OVER."""
    if _libc and _resident() > TRIM_OVER:
        _libc.malloc_trim(0)


def _resident() -> int:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return TRIM_OVER + 1  # unknown: trim as before


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
