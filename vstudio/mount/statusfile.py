"""``latest/.vstudio-status``: the writable mount's state as a file any program can read.

It holds what ``vstudio mount-status`` prints (pending changes, the last commit, a failing
commit's error, whether the server answers, the write cache's use), made afresh at each
``open``. It is virtual: read-only (EACCES on any change), never committed, and left out of
listings, so ``cp -r``, ``rsync`` and ``find`` of ``latest/`` neither copy nor count it;
``cat latest/.vstudio-status`` opens it by name.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from typing import Any

from vstudio.mount.control import describe
from vstudio.mount.writefs import fuse_error
from vstudio.mount.writens import WriteOps

STATUS_FILE = ".vstudio-status"


class StatusFileOps(WriteOps):
    """``WriteOps`` with the virtual ``latest/.vstudio-status``."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._status_reads: dict[int, bytes] = {}  # open handle -> the text it saw
        self._status_lock = threading.Lock()

    def _status_text(self) -> bytes:
        return ("\n".join(describe(self.state())) + "\n").encode()

    def _rel_or_rofs(self, path: str) -> str:
        rel = super()._rel_or_rofs(path)
        if rel == STATUS_FILE:
            raise fuse_error(errno.EACCES)
        return rel

    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        if self._rel(path) != STATUS_FILE:
            return super().getattr(path, fh)
        return self._stat_of(False, 0o444, len(self._status_text()), time.time())

    def access(self, path: str, amode: int) -> int:
        if self._rel(path) == STATUS_FILE and amode & (os.W_OK | os.X_OK):
            raise fuse_error(errno.EACCES)
        return super().access(path, amode)

    def open(self, path: str, fi: Any) -> int:
        if self._rel(path) != STATUS_FILE:
            return super().open(path, fi)
        if fi.flags & os.O_ACCMODE != os.O_RDONLY or fi.flags & os.O_TRUNC:
            raise fuse_error(errno.EACCES)
        with self._lock:
            fh = next(self._ids)
        with self._status_lock:
            self._status_reads[fh] = self._status_text()
        fi.fh = fh
        fi.direct_io = 1  # its length changes: reads go to EOF, not to a cached size
        return 0

    def create(self, path: str, mode: int, fi: Any) -> int:
        if self._rel(path) == STATUS_FILE:
            raise fuse_error(errno.EACCES)
        return super().create(path, mode, fi)

    def truncate(self, path: str, length: int, fh: Any = None) -> int:
        if self._rel(path) == STATUS_FILE:
            raise fuse_error(errno.EACCES)
        return super().truncate(path, length, fh)

    def read_span(self, path: str | None, size: int, offset: int,
                  fi: Any) -> tuple[bytes, int, int]:
        text = self._status_reads.get(fi.fh)
        if text is None:
            return super().read_span(path, size, offset, fi)
        n = max(0, min(size, len(text) - offset))
        return text, min(offset, len(text)), n

    def release(self, path: str, fi: Any) -> int:
        with self._status_lock:
            if self._status_reads.pop(fi.fh, None) is not None:
                return 0
        return super().release(path, fi)

    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        if self._rel(path) == STATUS_FILE:
            raise fuse_error(errno.ENODATA if name.startswith("user.") else errno.EOPNOTSUPP)
        return super().getxattr(path, name, position)

    def listxattr(self, path: str) -> list[str]:
        return [] if self._rel(path) == STATUS_FILE else super().listxattr(path)
