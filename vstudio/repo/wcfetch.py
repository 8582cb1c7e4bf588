"""Writing stored files into a working copy, for checkout and update.

Small files are read in one request and written in one call each (through a server,
many to a request); big ones stream from the store. Several threads share the work, one
task per thread, and each file is written beside its target and renamed over it when
``replace`` (an update must never leave a half-written file where the user's was).
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from vstudio.repo import wcindex as W
from vstudio.repo.api import Entry
from vstudio.repo.wc import writable
from vstudio.repo.wcbatch import BATCH_FILE, BATCH_THREADS, batches
from vstudio.store.api import Progress

if TYPE_CHECKING:
    from vstudio.repo.wc import WorkingCopy

FETCH_THREADS = 8
SMALL_FILE = 4 << 20


def fetch(wc: WorkingCopy, entries: list[Entry], progress: Progress, *, replace: bool,
          name_of: dict[str, str] | None = None) -> dict[str, os.stat_result]:
    """Write each entry's content to its path (or ``name_of[path]``); return stats."""
    progress.start(sum(e.size for e in entries), "fetch")
    f = _Fetch(wc, progress, replace, {e.path: (name_of or {}).get(e.path, e.path)
                                       for e in entries})
    checked: set[str] = set()
    for e in entries:  # folders first, in one thread: creating them races otherwise
        wc.safe_parent(f.targets[e.path], checked)
    batched = wc.backend.small_files
    if batched is not None:
        groups = batches([e for e in entries if e.size <= BATCH_FILE])
        entries = [e for e in entries if e.size > BATCH_FILE]

        def fetch_group(group: list[Entry]) -> None:
            for e, data in zip(group, batched.get_many([e.oid for e in group]), strict=True):
                f.one(e, data)

        if groups:
            with ThreadPoolExecutor(min(BATCH_THREADS, len(groups))) as pool:
                list(pool.map(fetch_group, groups))
    n = FETCH_THREADS if len(entries) >= 4 else 1
    if n == 1:
        f.some(entries)
    else:  # one task per thread, not per file: 20,000 futures cost seconds
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(f.some, [entries[i::n] for i in range(n)]))
    progress.done()
    return f.stats


class _Fetch:
    """One fetch's shared state: where each file goes, and the stats written so far."""

    def __init__(self, wc: WorkingCopy, progress: Progress, replace: bool,
                 targets: dict[str, str]) -> None:
        self.wc = wc
        self.store = wc.backend.store
        self.progress = progress
        self.replace = replace
        self.targets = targets
        self.root = str(wc.root)
        self.tmpdir = wc.root / W.META / "tmp"
        self.tmpdir.mkdir(exist_ok=True)
        self.lock = threading.Lock()
        self.stats: dict[str, os.stat_result] = {}

    def some(self, part: list[Entry]) -> None:
        for e in part:
            self.one(e)

    def one(self, e: Entry, data: bytes | None = None) -> None:
        wc = self.wc
        target = self.root + "/" + self.targets[e.path]
        mode = writable(e.mode, wc.needs_lock(e.path) and e.path not in wc.index.locks)
        dest = self.tmpdir / f"{threading.get_ident()}.tmp" if self.replace else Path(target)
        if e.size <= SMALL_FILE:
            # Small files in one read and one write: the store's own get_file makes
            # a temporary file and renames it, which doubles the cost per file.
            s = self._write(dest, self.store.get_bytes(e.oid) if data is None else data, mode)
        else:
            self.store.get_file(e.oid, dest)
            os.chmod(dest, mode)
            s = os.lstat(dest)
        if self.replace:
            os.replace(dest, target)
        with self.lock:
            self.stats[e.path] = s
            self.progress.advance(e.size)

    def _write(self, dest: Path, data: bytes, mode: int) -> os.stat_result:
        if self.replace:  # a fresh file takes ``mode`` (less the umask)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dest)
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            return os.fstat(fd)
        finally:
            os.close(fd)
