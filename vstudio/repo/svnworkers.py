"""Helper processes that store .blend texts for ``svn-import`` on the machine's other cores.

Splitting a .blend into its blocks is Python work that holds the interpreter lock, and it
is most of an import's time: while the importer reads the dump and commits, these
processes store the .blend texts into the same local store. A helper keeps one write
batch open across its texts (a pack and a sync to disk per batch, not per text) until
``sync``, which the importer calls before it commits the revisions naming them. Every
version of one path goes to the same process, in order, so each finds the blocks of the
versions before it in its own store index and stores only what changed.

From a dump file, a helper is given where a text lies in it (``submit_range``): it checks
the text's MD5 and SHA-1 there itself, so the importer only reads headers and its texts
never pass through it or a pipe.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

_STORE: Any = None  # the store of this helper process, opened by its first job
_BATCH = contextlib.ExitStack()  # holds the helper's open write batch
_WRITER: Any = None


def _store(studio_root: str) -> Any:
    global _STORE
    if _STORE is None:
        from vstudio.studio import Studio

        _STORE = Studio.open(studio_root).store
    return _STORE


def _put(studio_root: str, path: str) -> str:
    global _WRITER
    if _WRITER is None:
        _WRITER = _BATCH.enter_context(_store(studio_root).writer())
    return str(_WRITER.put_file(Path(path)))


def _sync() -> None:
    """Close the helper's write batch: the texts it stored so far are durable."""
    global _WRITER
    _WRITER = None
    _BATCH.close()


def _put_range(studio_root: str, dump: str, offset: int, length: int, md5: str, sha1: str,
               tmp: str) -> str:
    """Store ``length`` bytes of ``dump`` at ``offset`` after checking their digests
    (hex; empty: none given). The store chunks files: the text is written to ``tmp``
    (from a memory map of the dump: no copy through this process's reads)."""
    from vstudio.repo.svndump import TextCheck

    with open(dump, "rb") as f:
        lead = offset % mmap.ALLOCATIONGRANULARITY
        with mmap.mmap(f.fileno(), lead + length, access=mmap.ACCESS_READ,
                       offset=offset - lead) as m, memoryview(m) as whole:
            text = whole[lead:]
            try:
                check = TextCheck(md5, sha1)
                check.update(text)
                check.check()
                with open(tmp, "wb") as out:
                    out.write(text)
            finally:
                text.release()
    try:
        return _put(studio_root, tmp)
    finally:
        os.unlink(tmp)


def _put_delta(studio_root: str, dump: str, offset: int, length: int, base: str | None,
               md5: str, sha1: str, out: str) -> tuple[str, int]:
    """Apply the svndiff delta at ``offset`` of ``dump`` to the file ``base`` (None: an
    empty base) into ``out``, check the result's digests and store it. ``out`` stays: a
    later delta of the same helper may apply to it (the importer removes it)."""
    from vstudio.repo import svndiff
    from vstudio.repo.svndump import BadDump, TextCheck

    with open(dump, "rb") as f:
        delta = io.BytesIO(os.pread(f.fileno(), length, offset))
    check = TextCheck(md5, sha1)
    with open(base or os.devnull, "rb") as src, open(out, "wb") as dst:
        def write(b: bytes) -> None:
            dst.write(b)
            check.update(b)

        try:
            svndiff.apply(delta, lambda at, n: os.pread(src.fileno(), n, at), write)
        except svndiff.BadDelta as e:
            raise BadDump(e.message) from None
    check.check()
    return _put(studio_root, out), os.path.getsize(out)


def _start(parent: int) -> None:
    """A helper's first moments: it leaves with the importer (a killed import must not
    leave its helpers behind) and imports the store and its chunkers while the importer
    is still starting (imports are most of a helper's start-up)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
    # what opening a local store loads
    import vstudio.store.backends.local
    import vstudio.store.objects
    import vstudio.studio  # noqa: F401
    from vstudio.store.chunking import chunkers

    chunkers()  # the format-aware chunkers' plug-ins


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
    """``count`` helper processes, started with the first text given to one of them: an
    import that stores no .blend (a rerun whose revisions are all in the project) starts
    none."""

    def __init__(self, studio_root: Path | None, count: int) -> None:
        self.root = str(studio_root) if studio_root is not None else ""  # see ``use``
        self.count = count
        self.pools: list[ProcessPoolExecutor] = []  # empty until the first text
        self.helper_of: dict[str, int] = {}  # a path (any case) -> its helper
        self.load = [0] * count  # bytes given to each helper
        self.unsynced: set[int] = set()  # helpers given texts since the last sync

    @property
    def started(self) -> int:
        """How many helper processes were started."""
        return len(self.pools)

    def _pool(self, which: int) -> ProcessPoolExecutor:
        if not self.pools:
            # spawn: the importer has threads (the store's pools), which fork would copy
            # badly. All start at once, each with a job (a process starts with its first):
            # they start up side by side while the importer goes on reading.
            ctx = multiprocessing.get_context("spawn")
            self.pools = [ProcessPoolExecutor(1, mp_context=ctx, initializer=_start,
                                              initargs=(os.getpid(),))
                          for _ in range(self.count)]
            for pool in self.pools:
                pool.submit(int)
        return self.pools[which]

    def use(self, studio_root: Path) -> None:
        """The studio whose store the texts go to (helpers started before it was known)."""
        self.root = str(studio_root)

    def submit(self, path: Path, key: str) -> Future[str]:
        """Store the file at ``path``; ``key`` (the node path) picks the process: the one
        its earlier versions went to, or for a new path the one given the fewest bytes."""
        return self._pool(self._pick(key, path.stat().st_size)).submit(
            _put, self.root, str(path))

    def submit_range(self, dump: str, offset: int, length: int, md5: str, sha1: str,
                     key: str, tmp: Path) -> Future[str]:
        """Store the text at ``offset`` of the dump file ``dump`` once its digests (hex,
        empty: not given) match; ``tmp``: a file name the helper may use; ``key`` as for
        ``submit``. A mismatch fails the future with ``BadDump``."""
        return self._pool(self._pick(key, length)).submit(
            _put_range, self.root, dump, offset, length, md5, sha1, str(tmp))

    def submit_delta(self, dump: str, offset: int, length: int, base: Path | None,
                     md5: str, sha1: str, key: str, out: Path, base_key: str | None
                     ) -> Future[tuple[str, int]]:
        """Apply the delta at ``offset`` of ``dump`` to ``base`` into ``out`` and store
        it, as ``submit_range`` does (the future gives its id and size); ``base_key``: the
        path whose helper made ``base`` (its jobs run in order there, so the file is
        written before this one reads it)."""
        which = self.helper_of.get(base_key.lower()) if base_key else None
        if which is not None:
            self.helper_of.setdefault(key.lower(), which)
        return self._pool(self._pick(key, length, which)).submit(
            _put_delta, self.root, dump, offset, length, str(base) if base else None, md5,
            sha1, str(out))

    def _pick(self, key: str, size: int, which: int | None = None) -> int:
        if which is None:
            which = self.helper_of.setdefault(key.lower(), self.load.index(min(self.load)))
        self.load[which] += size
        self.unsynced.add(which)
        return which

    def sync(self) -> None:
        """Make every text the helpers stored so far durable (after their jobs before)."""
        for f in self.sync_later():
            f.result()

    def sync_later(self) -> list[Future[None]]:
        """``sync`` without waiting: each helper syncs after the jobs given so far, and
        goes on with the jobs given after."""
        done = [self.pools[i].submit(_sync) for i in sorted(self.unsynced)]
        self.unsynced.clear()
        return done

    def close(self) -> None:
        for pool in self.pools:
            pool.shutdown(wait=True, cancel_futures=True)
