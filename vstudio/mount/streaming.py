"""Storing a big file while it is being written: the upload runs beside ``cp``.

A file written from its start in order (``cp``, ``rsync``, a render writing a video) is
read back from the write cache as it grows and fed to the store's chunker, so when it is
closed most of its bytes are chunked, hashed and uploaded, and the commit only names it.
A write behind what was already read (a program patching a header), a truncation or a
second writer makes the early copy useless: it is dropped (``abort``) and the file is
stored from its data file at commit time, as before. Nothing here decides what is
committed: the result counts only when the file's (data, size) still match at commit.
"""

from __future__ import annotations

import io
import os
import threading

START_OVER = 1 << 20  # files smaller than this are stored at commit, whole
# A file still being written this long after its first write is stored as it grows; one
# closed sooner is stored whole right after close (while the changes settle). Storing
# beside a fast writer only slows it: a 200 MiB ``cp`` of new bytes returned at 190-320
# MB/s with the store reading behind it and at ~1,000 MB/s without, and the commit came no
# later (2 cores, loopback S3). A slow writer (a render writing a video, a copy of many
# GiB) still has its bytes stored while it writes.
STREAM_AFTER = 1.0  # seconds


class Aborted(Exception):
    """The file was not written in order: the early copy is dropped."""


class GrowingFile(io.RawIOBase):
    """A data file read as it is written; end of file once its writer has closed it."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_RDONLY)
        self._pos = 0
        self._cond = threading.Condition()
        self.end = 0  # bytes written so far, in order
        self.final: int | None = None  # the size at close
        self.aborted = False
        self.started = False  # the store began reading it (``begin``)

    def readable(self) -> bool:
        return True

    def grew(self, end: int) -> None:
        with self._cond:
            if end > self.end:
                self.end = end
                self._cond.notify_all()

    def finish(self, size: int) -> None:
        with self._cond:
            self.final = size
            self._cond.notify_all()

    def begin(self, after: float = STREAM_AFTER) -> bool:
        """Wait ``after`` seconds; True (reading starts) if the file is still being
        written in order then, False if it was closed or dropped meanwhile."""
        with self._cond:
            self._cond.wait_for(lambda: self.aborted or self.final is not None, after)
            if self.aborted or self.final is not None:
                return False
            self.started = True
            return True

    def drop_if_idle(self) -> bool:
        """At close: True (and dropped) if reading had not begun, so the caller stores
        the file whole; False if the store is reading it already."""
        with self._cond:
            if self.started:
                return False
            self.aborted = True
            self._cond.notify_all()
            return True

    def abort(self) -> None:
        with self._cond:
            self.aborted = True
            self._cond.notify_all()

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        with self._cond:
            while not self.aborted and self.final is None and self._pos >= self.end:
                self._cond.wait()
            if self.aborted or (self.final is not None and self.final < self.end):
                raise Aborted()
            limit = self.end if self.final is None else self.final
        n = min(len(b), limit - self._pos)
        if n <= 0:
            return 0
        got = os.preadv(self._fd, [memoryview(b)[:n]], self._pos)
        self._pos += got
        return got

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()
