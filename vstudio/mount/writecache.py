"""The writable mount's durable cache: pending file bytes and a journal of pending changes.

Layout of one cache folder (one per project, user and server)::

    data/N      the bytes of one pending file version (written in place by the mount)
    journal     JSON lines, one per change of the pending state, replayed at start
    lock        held (flock) by the serving process: two mounts never share a cache

A file's new content is *acknowledged* when ``close()`` or ``fsync()`` of it returns, and
the mount answers those only after the bytes and the journal line are on disk (fdatasync).
Renames, removals, folders and attributes are journaled at once (a killed mount keeps
them) and are on disk after the next such close, or an ``fsync`` of a folder, as POSIX asks.
After a crash the next mount replays the journal and commits what it holds; a file that was
open for writing and never closed keeps its previous, acknowledged state.

The journal's lines (``k`` is the kind)::

    {"k": "f", "p": PATH, "b": BASE, "d": DATA, "o": OID, "s": SIZE, "m": MODE, "t": MTIME}
    {"k": "x", "p": PATH, "b": BASE}      removed (BASE: the id it had when the mount saw it)
    {"k": "u", "p": PATH}                 no pending change any more
    {"k": "D", "p": PATH} / {"k": "R", "p": PATH}   a local folder made / removed
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import itertools
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vstudio.errors import VStudioError

log = logging.getLogger("vstudio.mount")


@dataclass
class WriteOptions:
    """``vstudio mount --write``'s settings."""

    cache_root: Path  # the mount cache's root; the write cache goes below it
    max_bytes: int = 20 * 1024**3
    settle: float = 2.0  # seconds without changes before a commit
    max_retry_wait: float = 60.0  # a failing commit is retried, waiting 1, 2, 4 ... s up to this


@dataclass(eq=False)
class Pending:
    """A path's change not committed yet: new content, or removal (``gone``).

    Content is either a local data file (``data``) or an object already in the store
    (``oid``: a renamed or backed-up file). ``base`` is the id the path had in the
    revision the mount showed when the change began (None: a new path); a commit that finds
    another id there has met someone else's change, and keeps both.
    """

    path: str
    base: str | None
    data: str | None = None
    oid: str | None = None
    size: int = 0
    mode: int = 0o644
    mtime: float = 0.0
    gone: bool = False
    writers: int = 0  # open handles writing the data file
    frozen: bool = False  # being uploaded: a new writer copies the data first
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        if self.gone:
            return {"k": "x", "p": self.path, "b": self.base}
        return {"k": "f", "p": self.path, "b": self.base, "d": self.data, "o": self.oid,
                "s": self.size, "m": self.mode, "t": self.mtime}


class CacheBusy(VStudioError):
    """Another mount uses this write cache."""


class CacheFull(OSError):
    def __init__(self) -> None:
        super().__init__(errno.ENOSPC, "the mount's write cache is full")


class WriteCache:
    """Data files and the journal of one writable mount; thread-safe."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._lock_fd = os.open(root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise CacheBusy(f"another mount of this project as this user is running (its "
                            f"write cache is {root}): unmount it first") from None
        self._journal_path = root / "journal"
        self._journal = os.open(self._journal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        names = [int(n) for n in os.listdir(self.data_dir) if n.isdigit()]
        self._ids = itertools.count(max(names, default=0) + 1)
        self.used = sum(self._size_of(str(n)) for n in names)

    def close(self) -> None:
        for fd in (self._journal, self._lock_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- data files ---------------------------------------------------------------------
    def path_of(self, data: str) -> str:
        return str(self.data_dir / data)

    def _size_of(self, data: str) -> int:
        try:
            return os.stat(self.path_of(data)).st_size
        except FileNotFoundError:
            return 0

    def new_data(self) -> str:
        data = str(next(self._ids))
        fd = os.open(self.path_of(data), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        return data

    def reserve(self, grow: int) -> None:
        """Count ``grow`` more bytes in the cache, or fail with ENOSPC (never truncate)."""
        with self._lock:
            if grow > 0 and self.used + grow > self.max_bytes:
                raise CacheFull()
            self.used += grow

    def drop_data(self, data: str) -> None:
        size = self._size_of(data)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path_of(data))
        with self._lock:
            self.used = max(0, self.used - size)

    # -- journal ------------------------------------------------------------------------
    def log(self, records: list[dict[str, Any]], sync: bool = True) -> None:
        """Append records; with ``sync`` they are on disk when this returns."""
        if not records:
            return
        line = "".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n"
                       for r in records).encode()
        with self._lock:
            os.write(self._journal, line)
            if sync:
                os.fdatasync(self._journal)

    def sync(self) -> None:
        """Make every journal line written so far durable."""
        with self._lock:
            os.fdatasync(self._journal)

    def replay(self) -> tuple[dict[str, Pending], set[str]]:
        """The pending changes and local folders the journal describes."""
        pending: dict[str, Pending] = {}
        dirs: set[str] = set()
        try:
            text = self._journal_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return pending, dirs
        for n, line in enumerate(text.splitlines(), 1):
            try:
                rec = json.loads(line)
                _apply(rec, pending, dirs)
            except (ValueError, KeyError, TypeError):
                # Only a line cut by a crash can be bad, and only the last one.
                log.warning("write cache journal line %d is unreadable; ignored", n)
        for p in list(pending.values()):
            if p.data is None:
                continue
            try:
                actual = os.stat(self.path_of(p.data)).st_size
            except FileNotFoundError:
                log.error("%s: its cached bytes are missing; the change is dropped", p.path)
                del pending[p.path]
                continue
            if actual > p.size:  # written after the last close/fsync: never acknowledged
                os.truncate(self.path_of(p.data), p.size)
            elif actual < p.size:
                log.error("%s: %d cached bytes of %d survived", p.path, actual, p.size)
                p.size = actual
        return pending, dirs

    def compact(self, pending: dict[str, Pending], dirs: set[str]) -> None:
        """Rewrite the journal as the current state; drop data files nothing refers to."""
        records = [{"k": "D", "p": d} for d in sorted(dirs)]
        records += [p.record() for p in pending.values()]
        tmp = self.root / "journal.tmp"
        data = "".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n"
                       for r in records).encode()
        with self._lock:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self._journal_path)
            os.close(self._journal)
            self._journal = os.open(self._journal_path, os.O_WRONLY | os.O_APPEND)
            dfd = os.open(self.root, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def sweep(self, live: set[str]) -> None:
        """Delete data files no pending change refers to (left by a crash mid-write)."""
        for name in os.listdir(self.data_dir):
            if name not in live:
                self.drop_data(name)


SYNC_FILE_RANGE_WRITE = 2  # start writing dirty pages out; do not wait for them


def _sync_file_range() -> Any:
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):  # not Linux: close() syncs everything, as before
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_SYNC_RANGE = _sync_file_range()


def start_writeback(fd: int) -> None:
    """Ask the disk to start writing ``fd``'s dirty pages without waiting (Linux's
    sync_file_range): a later fdatasync then finds little left to write. Durability
    still comes from that fdatasync; this only moves the disk's work earlier."""
    if _SYNC_RANGE is not None:
        _SYNC_RANGE(fd, 0, 0, SYNC_FILE_RANGE_WRITE)


def _apply(rec: dict[str, Any], pending: dict[str, Pending], dirs: set[str]) -> None:
    kind, path = rec["k"], str(rec["p"])
    if kind == "f":
        pending[path] = Pending(path, rec["b"], rec["d"], rec["o"], int(rec["s"]),
                                int(rec["m"]), float(rec["t"]))
    elif kind == "x":
        pending[path] = Pending(path, rec["b"], gone=True)
    elif kind == "u":
        pending.pop(path, None)
    elif kind == "D":
        dirs.add(path)
    elif kind == "R":
        dirs.discard(path)
    else:
        raise ValueError(kind)
