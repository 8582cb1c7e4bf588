"""FUSE operations of the writable mount, part one: opening, reading and writing files.

Writes go to the write cache (``writecache``), the namespace to the ``Overlay``, and the
``AutoCommitter`` turns settled changes into revisions. ``close()`` and ``fsync()`` return
once the bytes and the journal line are on disk. Files under a needs-lock rule are
read-only unless the mount's user holds the lock. Renames, folders, attributes and locks
are in ``writens``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mfusepy

from vstudio.errors import VStudioError
from vstudio.mount.fs import Handle, MountOps, PlusFUSE
from vstudio.mount.overlay import Node, Overlay
from vstudio.mount.streaming import START_OVER, GrowingFile
from vstudio.mount.writecache import Pending, start_writeback
from vstudio.repo import paths as P
from vstudio.repo.api import Entry
from vstudio.repo.backend import WcBackend

LATEST = "/latest"
BLKSIZE = 1024 * 1024
# Every this many bytes written to a data file, the disk starts writing them out, so the
# fdatasync of close() waits for the last few MiB instead of the whole file.
WRITEBACK = 8 * 1024 * 1024
XLOCK = "user.vstudio.lock"


def fuse_error(code: int) -> mfusepy.FuseOSError:
    return mfusepy.FuseOSError(code)


@dataclass(eq=False)
class WHandle:
    """An open file whose bytes are in the write cache (writing, or reading them)."""

    pending: Pending
    fd: int
    write: bool
    dirty: bool = False
    unsynced: int = 0  # bytes written since the disk was last asked to write them out


class WriteFUSE(PlusFUSE):
    """Passes ``rename``'s flags on (mfusepy drops them): ``mv -n`` needs NOREPLACE; hands
    ``write`` the kernel's buffer itself."""

    def write(self, path: bytes | None, buf: Any, size: int, offset: int, fip: Any) -> int:
        # mfusepy copies each 1 MiB write into a new bytes object first (an allocation and
        # its page faults per write); the operation only pwrite()s the bytes before it
        # returns, so a view of libfuse's buffer is enough.
        data = memoryview((ctypes.c_char * size).from_address(
            ctypes.cast(buf, ctypes.c_void_p).value or 0)).cast("B")
        decoded = None if path is None else path.decode(self.encoding, self.errors)
        return int(self.operations.write(decoded, data, offset, fip.contents))

    def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
        return int(self.operations.rename(old.decode(self.encoding, self.errors),
                                          new.decode(self.encoding, self.errors), flags) or 0)


class WriteFileOps(MountOps):
    """``MountOps`` whose ``latest/`` files can be written (see ``writens.WriteOps``)."""

    def __init__(self, *args: Any, overlay: Overlay, backend: WcBackend, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.overlay = overlay
        self.cache = overlay.cache
        self.backend = backend
        self._whandles: dict[int, WHandle] = {}
        self._started = time.time()
        self.on_closed: Callable[[Pending], None] | None = None  # a file's last writer closed
        # A big file written in order: store it while it grows (``streaming``).
        self.on_growing: Callable[[Pending], GrowingFile | None] | None = None
        self._rules: tuple[float, list[str]] = (-1e9, [])
        self._rules_lock = threading.Lock()

    # -- helpers ------------------------------------------------------------------------
    @staticmethod
    def _rel(path: str | None) -> str | None:
        """The path inside ``latest/``, or None for paths elsewhere."""
        if path is None:
            return None
        if path == LATEST:
            return ""
        if path.startswith(LATEST + "/"):
            return path[len(LATEST) + 1:]
        return None

    def _lookup(self, rel: str) -> Node:
        try:
            return self.overlay.lookup(rel)
        except VStudioError as e:
            raise fuse_error(errno.EIO) from e

    @staticmethod
    def _check_name(rel: str) -> None:
        try:
            P.normalise(rel)
        except P.BadPath:
            raise fuse_error(errno.EINVAL) from None

    def _needs_lock(self, rel: str) -> bool:
        with self._rules_lock:
            when, rules = self._rules
            if time.monotonic() - when > self.view.poll_seconds:
                with contextlib.suppress(VStudioError):  # keep the last known rules
                    rules = self.backend.lock_rules()
                self._rules = (time.monotonic(), rules)
        return bool(rules) and P.matches_any(rel, rules)

    def _read_only(self, rel: str) -> bool:
        """A needs-lock file the mount's user does not hold the lock of."""
        return self._needs_lock(rel) and self.view.lock_holder(rel) != self.backend.user

    def _check_writable(self, rel: str) -> None:
        if self._read_only(rel):
            raise fuse_error(errno.EACCES)

    def _live_stat(self, rel: str, node: Node) -> dict[str, Any]:
        if node is None:
            return self._stat_of(True, 0o755, 0, self._dir_time())
        mode = (node.mode or 0o644) & 0o777
        if self._read_only(rel):
            mode &= ~0o222
        # cp, cat and most programs size their buffers by st_blksize: 1 MiB writes (the
        # mount's max_write) instead of 128 KiB ones, 8x fewer trips through Python.
        return {**self._stat_of(False, mode, node.size, node.mtime), "st_blksize": BLKSIZE}

    def _stat_of(self, is_dir: bool, mode: int, size: int, mtime: float) -> dict[str, Any]:
        from vstudio.mount.view import Node as ViewNode

        return self._stat(ViewNode(is_dir, mode, size, mtime))

    def _dir_time(self) -> float:
        rev = self.overlay.base_rev
        # An empty project has no commit time: its folders date from the mount's start.
        return self.view.commit(rev).time if rev > 0 else self._started

    # -- reading ------------------------------------------------------------------------
    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        rel = self._rel(path)
        if rel is None:
            return super().getattr(path, fh)
        return self._live_stat(rel, self._lookup(rel))

    def _listing(self, path: str) -> list[tuple[str, dict[str, Any]]]:
        rel = self._rel(path)
        if rel is None:
            return super()._listing(path)
        items = self.overlay.listdir(rel)
        here = {**self._stat_of(True, 0o755, 0, 0.0), "st_ino": 1}
        return [(".", here), ("..", here)] + [
            (name, self._live_stat(f"{rel}/{name}" if rel else name, node))
            for name, node in items]

    def open(self, path: str, fi: Any) -> int:
        rel = self._rel(path)
        if rel is None:
            return super().open(path, fi)
        node = self._lookup(rel)
        if node is None:
            raise fuse_error(errno.EISDIR)
        writing = fi.flags & os.O_ACCMODE != os.O_RDONLY or fi.flags & os.O_TRUNC
        with self._lock:
            fh = next(self._ids)
        if writing:
            self._check_writable(rel)
            p = self._writable(rel, node, truncate=bool(fi.flags & os.O_TRUNC))
            self._whandles[fh] = WHandle(p, os.open(self.cache.path_of(str(p.data)), os.O_RDWR),
                                         True)
        elif isinstance(node, Pending) and node.data:
            self._whandles[fh] = WHandle(node, os.open(self.cache.path_of(node.data),
                                                       os.O_RDONLY), False)
        else:
            oid = node.oid if node.oid is not None else ""
            with self._lock:
                self._handles[fh] = Handle(oid, node.size)
        fi.fh = fh
        fi.keep_cache = 0
        return 0

    def read_span(self, path: str | None, size: int, offset: int,
                  fi: Any) -> tuple[bytes, int, int]:
        h = self._whandles.get(fi.fh)
        if h is None:
            return super().read_span(path, size, offset, fi)
        data = os.pread(h.fd, size, offset)
        return data, 0, len(data)

    # -- writing ------------------------------------------------------------------------
    def _writable(self, rel: str, node: Entry | Pending, truncate: bool) -> Pending:
        """The pending version a writer writes to: shared with open writers, else new."""
        with self.overlay.lock:
            if isinstance(node, Pending) and node.data and node.writers and not node.frozen:
                node.writers += 1
                self._unordered(node)  # two writers: no early copy
                if truncate:
                    self._truncate_data(node, 0)
                return node
        data = self.cache.new_data()
        size = 0 if truncate else node.size
        try:
            if size:
                self.cache.reserve(size)
                self._fill(data, node)
        except OSError as e:
            self.cache.drop_data(data)
            raise fuse_error(e.errno or errno.EIO) from None
        except VStudioError as e:
            self.cache.drop_data(data)
            raise fuse_error(errno.EIO) from e
        p = Pending(rel, None, data=data, size=size, mode=(node.mode or 0o644) & 0o777,
                    mtime=time.time() if truncate else node.mtime, writers=1)
        if not size:
            p.extra["order"] = 0  # written from its start: may be stored while it grows
        with self.overlay.lock:
            p.base = self.overlay.base_for(rel)
            self.overlay.put(p, journal=False)
        return p

    def _fill(self, data: str, node: Entry | Pending) -> None:
        """Copy a file's current bytes into a new data file (copy on first write)."""
        dest = self.cache.path_of(data)
        if isinstance(node, Pending) and node.data:
            with open(self.cache.path_of(node.data), "rb") as fin, open(dest, "wb") as fout:
                while chunk := fin.read(4 << 20):
                    fout.write(chunk)
            return
        if node.oid is None:
            raise fuse_error(errno.EIO)
        self.view.reader.get_file(node.oid, Path(dest))  # streamed: big files fit too

    def _truncate_data(self, p: Pending, length: int) -> None:
        self._unordered(p)
        self.cache.reserve(length - p.size)
        os.truncate(self.cache.path_of(str(p.data)), length)
        p.size, p.mtime = length, time.time()

    def create(self, path: str, mode: int, fi: Any) -> int:
        rel = self._rel(path)
        if not rel:
            raise fuse_error(errno.EROFS)
        self._check_name(rel)
        data = self.cache.new_data()
        try:
            p = self.overlay.new_file(rel, data, (mode & 0o777) or 0o644, time.time())
        except OSError:
            self.cache.drop_data(data)
            raise
        with self._lock:
            fh = next(self._ids)
        self._whandles[fh] = WHandle(p, os.open(self.cache.path_of(data), os.O_RDWR), True,
                                     dirty=True)
        p.extra["order"] = 0
        fi.fh = fh
        return 0

    def write(self, path: str, data: bytes | memoryview, offset: int, fi: Any) -> int:
        h = self._whandles.get(fi.fh)
        if h is None or not h.write:
            raise fuse_error(errno.EBADF if h is None else errno.EROFS)
        p = h.pending
        grow = max(0, offset + len(data) - p.size)
        self.cache.reserve(grow)  # ENOSPC when the cache is full: never a silent loss
        try:
            n = os.pwrite(h.fd, data, offset)
        except OSError as e:
            self.cache.reserve(-grow)
            raise fuse_error(e.errno or errno.EIO) from None
        with self.overlay.lock:
            p.size = max(p.size, offset + n)
            p.mtime = time.time()
        h.dirty = True
        h.unsynced += n
        if h.unsynced >= WRITEBACK:
            start_writeback(h.fd)
            h.unsynced = 0
        self.overlay.changed_at = time.monotonic()
        if "order" in p.extra:
            self._follow(p, offset, n)
        return n

    def _follow(self, p: Pending, offset: int, n: int) -> None:
        """Feed an in-order writer's bytes to its early copy (started once it is big)."""
        if offset < p.extra["order"]:  # behind what was written: not in order
            self._unordered(p)
            return
        end = p.extra["order"] = offset + n
        g: GrowingFile | None = p.extra.get("stream")
        if g is None and end >= START_OVER and self.on_growing is not None:
            g = self.on_growing(p)
            if g is None:
                p.extra.pop("order", None)
                return
            p.extra["stream"] = g
        if g is not None:
            g.grew(end)

    @staticmethod
    def _unordered(p: Pending) -> None:
        p.extra.pop("order", None)
        g = p.extra.pop("stream", None)
        if g is not None:
            g.abort()

    def truncate(self, path: str, length: int, fh: Any = None) -> int:
        h = self._whandles.get(fh.fh) if fh is not None else None
        if h is not None and h.write:
            self._truncate_data(h.pending, length)
            h.dirty = True
            return 0
        rel = self._rel(path)
        if not rel:
            raise fuse_error(errno.EROFS)
        node = self._lookup(rel)
        if node is None:
            raise fuse_error(errno.EISDIR)
        self._check_writable(rel)
        p = self._writable(rel, node, truncate=length == 0)
        try:
            self._truncate_data(p, length)
        finally:
            self._done_writing(p, True)
        return 0

    def _acknowledge(self, h: WHandle) -> None:
        """Make what was written durable: the bytes, then the journal line."""
        if not h.dirty:
            return
        os.fdatasync(h.fd)
        self._journal(h.pending)
        h.dirty = False

    def _journal(self, p: Pending) -> None:
        """Record ``p``'s state durably; then the version it replaced can go."""
        prev = None
        with self.overlay.lock:
            if self.overlay.pending.get(p.path) is p:
                self.cache.log([p.record()], sync=False)
                prev = p.extra.pop("prev", None)
            self.overlay.changed_at = time.monotonic()
            self.overlay.changed.set()
        self.cache.sync()  # outside the lock: other operations go on meanwhile
        if prev is not None and prev.data and prev.data != p.data:
            with self.overlay.lock:
                if not (prev.writers or prev.frozen) and prev.data not in self.overlay.datas():
                    self.cache.drop_data(prev.data)

    def _done_writing(self, p: Pending, dirty: bool) -> None:
        if dirty:
            self._journal(p)
        with self.overlay.lock:
            p.writers -= 1
            if self.overlay.pending.get(p.path) is not p and p.writers == 0 and p.data \
                    and not p.frozen:
                self.cache.drop_data(p.data)  # removed while open: nobody needs it
            self.overlay.changed_at = time.monotonic()
            self.overlay.changed.set()
        if p.writers == 0 and self.on_closed is not None:
            self.on_closed(p)

    def flush(self, path: str, fi: Any) -> int:
        h = self._whandles.get(fi.fh)
        if h is not None and h.write:
            self._acknowledge(h)
        return 0

    def fsync(self, path: str, datasync: int, fi: Any) -> int:
        return self.flush(path, fi)

    def release(self, path: str, fi: Any) -> int:
        h = self._whandles.pop(fi.fh, None)
        if h is None:
            return super().release(path, fi)
        try:
            if h.write:
                self._acknowledge(h)
        finally:
            os.close(h.fd)
            if h.write:
                self._done_writing(h.pending, False)
        return 0
