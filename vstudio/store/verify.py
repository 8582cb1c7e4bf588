"""Checking a chunker's output while it streams past, instead of reading it back.

A plug-in chunker's pieces are trusted only if they rebuild the file byte for byte.  Reading
every piece back through the store after the put (decompressing it again, and on S3
downloading what was just uploaded) cost ~40% of a first .blend put.  ``StreamCheck`` runs
the transform's encoder in a thread instead, fed the pieces' bytes as the writer stores
them, and hashes what the encoder yields: the same check, on bytes already in memory.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import blake3

from vstudio.errors import StoreError
from vstudio.store.chunking import ObjectSource, Piece, transform

QUEUE = 32  # pieces waiting for the encoder: bounds memory, keeps both threads busy
_END = None


class StreamCheck:
    """The BLAKE3 of what ``transform(params)`` rebuilds from the pieces fed to it.

    Without a transform the pieces themselves are the file and are hashed as they come.
    ``digest()`` returns None when the check could not be made (the encoder raised, or the
    chunker changed ``params`` while its pieces were consumed): the caller then checks
    another way or falls back.  Never blocks the feeder for good: a failed encoder drains.
    """

    def __init__(self, name: str | None, params: dict[str, Any],
                 source: ObjectSource) -> None:
        self._hasher = blake3.blake3()
        self._params = params
        self._snapshot = _frozen(params)
        self.size = 0
        self.error: BaseException | None = None
        self.params_changed = False
        self._thread: threading.Thread | None = None
        if name:
            encode = transform(name)(params, source)
            self._queue: queue.Queue[bytes | None] = queue.Queue(QUEUE)
            self._thread = threading.Thread(target=self._run, args=(encode,), daemon=True,
                                            name="vstudio-verify")
            self._thread.start()

    def feed(self, data: bytes) -> None:
        if self._thread is None:
            self._hasher.update(data)
            self.size += len(data)
        else:
            self._queue.put(data)

    def digest(self) -> bytes | None:
        if self._thread is not None:
            self._queue.put(_END)
            self._thread.join()
        self.params_changed = _frozen(self._params) != self._snapshot
        if self.error is not None or self.params_changed:
            return None
        return self._hasher.digest()

    def fed(self, pieces: Iterable[Piece]) -> Iterator[Piece]:
        """``pieces`` unchanged, each fed to the check on its way."""
        for piece in pieces:
            self.feed(piece.data)
            yield piece

    def _chunks(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is None:
                self._ended = True
                return
            yield item

    def _run(self, encode: Any) -> None:
        self._ended = False
        try:
            for block in encode(self._chunks()):
                self._hasher.update(block)
                self.size += len(block)
        except BaseException as e:  # reported by digest(); the thread must not die loudly
            self.error = e
        # An encoder that stopped early (or failed) leaves pieces behind: take them so the
        # feeder never blocks, and count the leftovers as a mismatch.
        while not self._ended:
            if self._queue.get() is None:
                break
            if self.error is None:
                self.error = ValueError("the pieces are longer than what the transform reads")


def _frozen(params: dict[str, Any]) -> str:
    try:
        return json.dumps(params, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(params)


def hash_file(path: Path) -> bytes:
    """The BLAKE3 of a file: the id a put of it must give."""
    h = blake3.blake3()
    try:
        with open(path, "rb", buffering=0) as f:
            while True:
                block = f.read(4 << 20)
                if not block:
                    break
                h.update(block)
    except OSError as e:
        raise StoreError(f"cannot read {path}: {e.strerror}") from None
    return h.digest()
