"""FUSE operations of the writable mount, part two: the namespace, attributes and locks.

Not supported, with the errno a program sees: hard links and symbolic links (EPERM),
device files and pipes (EPERM), ``renameat2(RENAME_EXCHANGE)`` (EINVAL), owners (chown is
accepted and ignored). Permission bits other than the executable bit are not versioned.
A needs-lock file's lock is taken with ``setfattr -n user.vstudio.lock -v MESSAGE FILE``
and dropped with ``setfattr -x user.vstudio.lock FILE``.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from vstudio.errors import VStudioError

# user.vstudio.mount: the mount's state; removing user.vstudio.lock.force breaks a lock.
from vstudio.mount.control import XLOCK_FORCE, XMOUNT
from vstudio.mount.writecache import Pending
from vstudio.mount.writefs import XLOCK, WriteFileOps, fuse_error

log = logging.getLogger("vstudio.mount")

RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
# On latest/: how many changes wait for a commit; the last commit failure, if any.
STATUS = ("user.vstudio.pending", "user.vstudio.error")
# On the mount's top folder and latest/: the mount's state as JSON (``vstudio mount-status``).


class WriteOps(WriteFileOps):
    """``MountOps`` with a writable ``latest/``."""

    status: Callable[[], tuple[int, str | None]] | None = None
    report: Callable[[], dict[str, Any]] | None = None  # the committer's state
    about: dict[str, Any] | None = None  # the project and user this mount writes as

    def state(self) -> dict[str, Any]:
        """What ``vstudio mount-status`` shows: project, user, commits, server, cache."""
        try:
            state = self.report() if self.report is not None else {}
        except VStudioError as e:
            state = {"error": e.message}
        return {**(self.about or {}), **state}

    # -- the namespace ------------------------------------------------------------------
    def _rel_or_rofs(self, path: str) -> str:
        rel = self._rel(path)
        if not rel:
            raise fuse_error(errno.EROFS)  # r/, tags/ and the top stay read-only
        return rel

    def unlink(self, path: str) -> int:
        rel = self._rel_or_rofs(path)
        self._check_writable(rel)
        self.overlay.remove(rel)
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        rel = self._rel_or_rofs(path)
        self._check_name(rel)
        self.overlay.mkdir(rel)
        return 0

    def rmdir(self, path: str) -> int:
        self.overlay.rmdir(self._rel_or_rofs(path))
        return 0

    def rename(self, old: str, new: str, flags: int = 0) -> int:
        src, dst = self._rel_or_rofs(old), self._rel_or_rofs(new)
        if flags & RENAME_EXCHANGE:
            raise fuse_error(errno.EINVAL)
        self._check_name(dst)
        for rel in (src, dst):
            if self._read_only(rel):
                raise fuse_error(errno.EACCES)
        self.overlay.rename(src, dst, no_replace=bool(flags & RENAME_NOREPLACE))
        return 0

    def _restat(self, path: str, mode: int | None = None, mtime: float | None = None) -> None:
        """chmod/utimens: a new pending state with the same bytes."""
        rel = self._rel_or_rofs(path)
        with self.overlay.lock:
            node = self._lookup(rel)
            if node is None:
                return  # folders carry no versioned attributes
            if isinstance(node, Pending):
                p = node
            else:
                p = Pending(rel, node.oid, oid=node.oid, size=node.size,
                            mode=node.mode or 0o644, mtime=node.mtime)
            if mode is not None:
                p.mode = mode & 0o777
            if mtime is not None:
                p.mtime = mtime
            if isinstance(node, Pending):
                if not p.writers:
                    self.cache.log([p.record()], sync=False)
                self.overlay.changed_at = time.monotonic()
                self.overlay.changed.set()
            else:
                self.overlay.put(p)

    def chmod(self, path: str, mode: int) -> int:
        self._restat(path, mode=mode)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        self._restat(path, mtime=times[1] / 1e9 if times else time.time())
        return 0

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        self.cache.sync()  # renames and removals in the folder become durable
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        self._rel_or_rofs(path)
        return 0  # one owner for everything in the mount: accepted, not kept

    def _unsupported(self, *args: Any) -> int:
        raise fuse_error(errno.EPERM)

    symlink = link = mknod = _unsupported

    def _listing(self, path: str) -> list[tuple[str, dict[str, Any]]]:
        items = super()._listing(path)
        if path == "/":  # latest/ is writable here
            items = [(n, {**a, "st_mode": a["st_mode"] | 0o200} if n == "latest" else a)
                     for n, a in items]
        return items

    def access(self, path: str, amode: int) -> int:
        rel = self._rel(path)
        if rel is None:
            return super().access(path, amode)
        self._lookup(rel)
        if amode & os.W_OK and rel and self._read_only(rel):
            raise fuse_error(errno.EACCES)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        # What the write cache can still take: programs that check free space first
        # (and 'df') see the real limit.
        total = self.cache.max_bytes // 4096
        free = max(0, self.cache.max_bytes - self.cache.used) // 4096
        return {"f_bsize": 4096, "f_frsize": 4096, "f_blocks": total, "f_bfree": free,
                "f_bavail": free, "f_files": 1 << 30, "f_ffree": 1 << 30, "f_namemax": 255}

    # -- locks as an extended attribute ---------------------------------------------------
    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        rel = self._rel(path)
        if name == XMOUNT and (rel == "" or path == "/"):
            return json.dumps(self.state()).encode()
        if rel == "" and name in STATUS and self.status is not None:
            # latest/'s own attributes say whether everything is committed yet.
            pending, error = self.status()
            value = str(pending) if name == STATUS[0] else error
            if value is None:
                raise fuse_error(errno.ENODATA)
            return value.encode()
        if rel and isinstance(self._lookup(rel), Pending):
            if name == XLOCK and self.view.lock_holder(rel):
                return str(self.view.lock_holder(rel)).encode()
            raise fuse_error(errno.ENODATA if name.startswith("user.") else errno.EOPNOTSUPP)
        return super().getxattr(path, name, position)

    def listxattr(self, path: str) -> list[str]:
        rel = self._rel(path)
        if rel and isinstance(self._lookup(rel), Pending):
            return [XLOCK] if self.view.lock_holder(rel) else []
        if rel == "" and self.status is not None:
            return [*super().listxattr(path), *STATUS[:1 if self.status()[1] is None else 2],
                    XMOUNT]
        if path == "/":
            return [*super().listxattr(path), XMOUNT]
        return super().listxattr(path)

    def setxattr(self, path: str, name: str, value: bytes, options: int,
                 position: int = 0) -> int:
        rel = self._rel_or_rofs(path)
        if name != XLOCK:
            raise fuse_error(errno.EOPNOTSUPP)
        if self._lookup(rel) is None:
            raise fuse_error(errno.EISDIR)
        try:
            self.backend.lock(rel, value.decode("utf-8", "replace"))
        except VStudioError as e:
            log.warning("lock of %s refused: %s", rel, e.message)  # errno says little
            raise fuse_error(errno.EBUSY if "locked by" in e.message else errno.EACCES) from e
        self.view.forget("locks")  # the mode the kernel shows follows within attr_timeout
        return 0

    def removexattr(self, path: str, name: str) -> int:
        rel = self._rel_or_rofs(path)
        if name not in (XLOCK, XLOCK_FORCE):
            raise fuse_error(errno.EOPNOTSUPP)
        if self._lookup(rel) is None:
            raise fuse_error(errno.EISDIR)
        try:
            self.backend.unlock(rel, name == XLOCK_FORCE)
        except VStudioError as e:
            log.warning("unlock of %s refused: %s", rel, e.message)
            raise fuse_error(errno.ENODATA if "not locked" in e.message else errno.EACCES) from e
        self.view.forget("locks")  # the mode the kernel shows follows within attr_timeout
        return 0

    def init_with_config(self, conn: Any, config: Any) -> None:
        if conn is not None:
            conn.max_write = 1024 * 1024  # fewer trips through Python per MiB written
        super().init_with_config(conn, config)
