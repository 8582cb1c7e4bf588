"""Helper processes that store .blend texts for ``svn-import`` on the machine's other cores.

Splitting a .blend into its blocks is Python work that holds the interpreter lock, and it
is most of an import's time: while the importer reads the dump and commits, these
processes store the .blend texts into the same local store (each text durable when its
job returns, before a revision naming it is committed). Every version of one path goes to
the same process, in order, so each finds the blocks of the versions before it in its
own store index and stores only what changed.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

_STORE: Any = None  # the store of this helper process, opened by its first job


def _put(studio_root: str, path: str) -> str:
    global _STORE
    if _STORE is None:
        from vstudio.studio import Studio

        _STORE = Studio.open(studio_root).store
    with _STORE.writer() as w:
        return str(w.put_file(Path(path)))


def _watch_parent(parent: int) -> None:
    """Leave with the importer: a killed import must not leave its helpers behind."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def helpers_wanted() -> int:
    """How many helper processes: one per core and one more (the importer itself needs a
    share of a core, and one path's versions go to one helper in order: with more
    helpers than cores the busy paths spread and the cores stay busy), at most four.
    ``VSTUDIO_IMPORT_HELPERS=N`` sets it (0: none, all in the importer)."""
    raw = os.environ.get("VSTUDIO_IMPORT_HELPERS", "")
    if raw.strip().isdigit():
        return min(16, int(raw))
    return min(4, (os.cpu_count() or 1) + 1)


class BlendWorkers:
    def __init__(self, studio_root: Path, count: int) -> None:
        self.root = str(studio_root)
        # spawn: the importer has threads (the store's pools), which fork would copy badly
        ctx = multiprocessing.get_context("spawn")
        self.pools = [ProcessPoolExecutor(1, mp_context=ctx, initializer=_watch_parent,
                                          initargs=(os.getpid(),)) for _ in range(count)]
        self.helper_of: dict[str, int] = {}  # a path (any case) -> its helper
        self.load = [0] * count  # bytes given to each helper

    def submit(self, path: Path, key: str) -> Future[str]:
        """Store the file at ``path``; ``key`` (the node path) picks the process: the one
        its earlier versions went to, or for a new path the one given the fewest bytes."""
        which = self.helper_of.setdefault(key.lower(), self.load.index(min(self.load)))
        self.load[which] += path.stat().st_size
        return self.pools[which].submit(_put, self.root, str(path))

    def close(self) -> None:
        for pool in self.pools:
            pool.shutdown(wait=True, cancel_futures=True)
