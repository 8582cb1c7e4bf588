"""The FUSE operations: a thin translation of kernel calls onto ``RepoView`` and blocks.

Errors: a path that does not exist is ENOENT; any write is EROFS; a store failure
(corrupt chunk, missing object, unreachable backend) is EIO, so a reader never gets wrong
bytes and the mount stays up.
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import logging
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")  # read by mfusepy when it is imported

import mfusepy

from vstudio.errors import NotFound, VStudioError
from vstudio.mount.blocks import BlockReader
from vstudio.mount.view import Node, RepoView

log = logging.getLogger("vstudio.mount")

SMALL_FILE = 1024 * 1024  # files up to this size trigger read-ahead of their next siblings
SIBLING_READAHEAD = 64
ATTR_CACHE = 200_000  # attributes of paths in numbered revisions, kept until this many


@dataclass
class Handle:
    """An open file: the content id is fixed at open, so reads stay consistent."""

    oid: str
    size: int
    next_offset: int = 0


FILL_DIR_PLUS = 2  # libfuse3's FUSE_FILL_DIR_PLUS: the entry carries valid attributes


class PlusFUSE(mfusepy.FUSE):
    """mfusepy's FUSE, with directory entries that carry full attributes (libfuse3).

    mfusepy passes only the file type to libfuse, so the kernel then sends one LOOKUP per
    entry for the ``stat`` that ``ls -l``, ``find`` and ``rsync`` make. Entries given with
    FUSE_FILL_DIR_PLUS *and a non-zero offset* (libfuse ignores the attributes in its
    all-at-once mode) reach the kernel as readdirplus: no round trip per file. The
    listing is taken once per open folder (``MountOps.opendir``) and served in pieces.
    """

    def readdir_fuse_3(self, path: bytes | None, buf: Any, filler: Any, offset: int,
                       fip: Any, flags: int) -> int:
        st = mfusepy.c_stat()
        items = self.operations.dir_items(fip.contents.fh)
        for i in range(offset, len(items)):
            name, attrs = items[i]
            ctypes.memset(ctypes.byref(st), 0, ctypes.sizeof(st))
            mfusepy.set_st_attrs(st, attrs, use_ns=True)
            if filler(buf, name.encode(self.encoding, self.errors), st, i + 1, FILL_DIR_PLUS):
                break  # the kernel's buffer is full: it asks again from offset i+1
        return 0

    def read(self, path: bytes | None, buf: Any, size: int, offset: int, fip: Any) -> int:
        # One copy from the block into the kernel's buffer (mfusepy would slice first).
        decoded = None if path is None else path.decode(self.encoding, self.errors)
        data, start, n = self.operations.read_span(decoded, size, offset, fip.contents)
        if n:
            base = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0
            ctypes.memmove(buf, base + start, n)
        return int(n)


class MountOps(mfusepy.Operations):
    """Read-only operations over one project's history."""

    use_ns = True

    def __init__(self, view: RepoView, blocks: BlockReader, *,
                 on_ready: Any = None) -> None:
        self.view = view
        self.blocks = blocks
        self._handles: dict[int, Handle] = {}
        self._attrs: dict[str, dict[str, Any]] = {}
        self._dirs: dict[int, list[tuple[str, dict[str, Any]]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._on_ready = on_ready
        self._uid, self._gid = os.getuid(), os.getgid()

    # -- helpers ------------------------------------------------------------------------
    def _node(self, path: str) -> Node:
        try:
            return self.view.lookup(path)
        except NotFound:
            raise mfusepy.FuseOSError(errno.ENOENT) from None
        except VStudioError as e:
            log.error("%s: %s", path, e.message)
            raise mfusepy.FuseOSError(errno.EIO) from None

    def _stat(self, node: Node) -> dict[str, Any]:
        ns = int(node.mtime * 1e9)
        kind = stat.S_IFDIR if node.is_dir else stat.S_IFREG
        return {"st_mode": kind | node.mode, "st_nlink": 2 if node.is_dir else 1,
                "st_size": node.size, "st_uid": self._uid, "st_gid": self._gid,
                "st_atime": ns, "st_mtime": ns, "st_ctime": ns,
                "st_blocks": (node.size + 511) // 512, "st_blksize": 128 * 1024}

    # -- life cycle ---------------------------------------------------------------------
    def init_with_config(self, conn: Any, config: Any) -> None:
        if conn is not None:
            # Bigger kernel reads mean fewer trips through Python per MiB.
            conn.max_readahead = max(int(conn.max_readahead), 1024 * 1024)
        if self._on_ready is not None:
            self._on_ready()

    def destroy(self, path: str) -> None:
        self.blocks.close()

    # -- reading ------------------------------------------------------------------------
    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        hit = self._attrs.get(path)
        if hit is not None:
            return hit
        node = self._node(path)
        attrs = self._stat(node)
        if node.immutable:  # r/N/... never changes; the kernel re-asks every second
            if len(self._attrs) >= ATTR_CACHE:
                self._attrs.clear()
            self._attrs[path] = attrs
        return attrs

    def _listing(self, path: str) -> list[tuple[str, dict[str, Any]]]:
        try:
            items = self.view.listdir(path)
        except NotFound:
            raise mfusepy.FuseOSError(errno.ENOENT) from None
        except VStudioError as e:
            log.error("%s: %s", path, e.message)
            raise mfusepy.FuseOSError(errno.EIO) from None
        # glibc hides entries whose inode number is 0, which libfuse leaves for the dots
        here = {**self._stat(Node(True, 0o555, 0, 0.0)), "st_ino": 1}
        return [(".", here), ("..", here)] + [(n, self._stat(node)) for n, node in items]

    def opendir(self, path: str) -> int:
        listing = self._listing(path)
        with self._lock:
            fh = next(self._ids)
            self._dirs[fh] = listing
        return fh

    def dir_items(self, fh: int) -> list[tuple[str, dict[str, Any]]]:
        return self._dirs.get(fh, [])

    def releasedir(self, path: str | None, fh: int) -> int:
        with self._lock:
            self._dirs.pop(fh, None)
        return 0

    def readdir(self, path: str, fh: Any) -> Iterator[tuple[str, dict[str, Any], int]]:
        """Plain mfusepy readdir (unused by ``PlusFUSE``, which reads ``dir_items``)."""
        for name, attrs in self._dirs.get(fh) or self._listing(path):
            yield name, attrs, 0

    def open(self, path: str, fi: Any) -> int:
        if fi.flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND):
            raise mfusepy.FuseOSError(errno.EROFS)
        node = self._node(path)
        if node.is_dir or node.entry is None:
            raise mfusepy.FuseOSError(errno.EISDIR)
        with self._lock:
            fh = next(self._ids)
            self._handles[fh] = Handle(node.entry.oid, node.size)
        fi.fh = fh
        # Revisions never change: let the kernel keep cached pages across opens.
        fi.keep_cache = 1 if node.immutable else 0
        if node.size <= SMALL_FILE:
            self._read_ahead_siblings(path, node)
        return 0

    def _read_ahead_siblings(self, path: str, node: Node) -> None:
        try:
            nxt = self.view.siblings_after(path, SIBLING_READAHEAD)
            here = [(node.entry.oid, node.size)] if node.entry else []
            self.blocks.warm_many(here + [(e.oid, e.size) for e in nxt if e.size <= SMALL_FILE],
                                  min_batch=SIBLING_READAHEAD // 2)
        except VStudioError:
            pass  # read-ahead is a bonus; the real read reports errors

    def read(self, path: str, size: int, offset: int, fi: Any) -> bytes:
        data, start, n = self.read_span(path, size, offset, fi)
        return data[start:start + n]

    def read_span(self, path: str | None, size: int, offset: int,
                  fi: Any) -> tuple[bytes, int, int]:
        handle = self._handles.get(fi.fh)
        if handle is None:
            raise mfusepy.FuseOSError(errno.EBADF)
        sequential = offset == handle.next_offset and offset > 0
        try:
            span = self.blocks.read_span(handle.oid, handle.size, offset, size, sequential)
        except VStudioError as e:
            log.error("%s: %s", path, e.message)
            raise mfusepy.FuseOSError(errno.EIO) from None
        except OSError as e:  # network or disk trouble below the store
            log.error("%s: %s", path, e)
            raise mfusepy.FuseOSError(errno.EIO) from None
        handle.next_offset = offset + span[2]
        return span

    def release(self, path: str, fi: Any) -> int:
        with self._lock:
            self._handles.pop(fi.fh, None)
        return 0

    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        if not name.startswith("user."):
            # ENOTSUP (not ENODATA) for ACLs and security labels: ls, cp and rsync remember
            # it per file system and stop asking, which halves the cost of 'ls -lR'.
            raise mfusepy.FuseOSError(errno.EOPNOTSUPP)
        try:
            value = self.view.xattr(path, name)
        except NotFound:
            raise mfusepy.FuseOSError(errno.ENOENT) from None
        except VStudioError:
            raise mfusepy.FuseOSError(errno.EIO) from None
        if value is None:
            raise mfusepy.FuseOSError(errno.ENODATA)
        return value

    def listxattr(self, path: str) -> list[str]:
        try:
            return self.view.xattr_names(path)
        except NotFound:
            raise mfusepy.FuseOSError(errno.ENOENT) from None
        except VStudioError:
            raise mfusepy.FuseOSError(errno.EIO) from None

    def statfs(self, path: str) -> dict[str, int]:
        return {"f_bsize": 4096, "f_frsize": 4096, "f_blocks": 0, "f_bfree": 0,
                "f_bavail": 0, "f_files": 0, "f_ffree": 0, "f_namemax": 255}

    def access(self, path: str, amode: int) -> int:
        if amode & os.W_OK:
            raise mfusepy.FuseOSError(errno.EROFS)
        self._node(path)
        return 0

    # -- every change is refused --------------------------------------------------------
    def _readonly(self, *args: Any) -> int:
        raise mfusepy.FuseOSError(errno.EROFS)

    create = mkdir = mknod = rmdir = unlink = rename = symlink = link = _readonly
    chmod = chown = truncate = utimens = write = setxattr = removexattr = _readonly
