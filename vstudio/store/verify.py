"""Checking a chunker's output while it streams past, instead of reading it back.

A plug-in chunker's pieces are trusted only if they rebuild the file byte for byte.  Reading
every piece back through the store after the put (decompressing it again, and on S3
downloading what was just uploaded) cost ~40% of a first .blend put.  ``StreamCheck`` runs
the transform's encoder on the pieces as the writer takes them, and hashes what the encoder
yields: the same check, on bytes already in memory.  The encoder runs in the caller's
thread, pulled only as far as the writer has taken pieces: an encoder is Python work that
holds the interpreter lock, so a thread of its own bought nothing but a queue hand-off per
piece (a .blend has thousands).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import blake3

from vstudio.errors import StoreError
from vstudio.store.chunking import ObjectSource, Piece, transform


class _PiecesFailed(Exception):
    """The chunker's own pieces raised (not the encoder): re-raised as it was."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class StreamCheck:
    """The BLAKE3 of what ``transform(params)`` rebuilds from the pieces passed through
    ``fed``.

    Without a transform the pieces themselves are the file and are hashed as they come.
    ``digest()`` returns None when the check could not be made (the encoder raised, read
    fewer pieces than given, or the chunker changed ``params`` while its pieces were
    consumed): the caller then checks another way or falls back.  An encoder's failure
    never stops the pieces: they still all pass, unchecked, and ``error`` says why.
    """

    def __init__(self, name: str | None, params: dict[str, Any],
                 source: ObjectSource) -> None:
        self._hasher = blake3.blake3()
        self._params = params
        self._snapshot = _frozen(params)
        self.size = 0
        self.error: BaseException | None = None
        self.params_changed = False
        self._encode = transform(name)(params, source) if name else None

    def digest(self) -> bytes | None:
        self.params_changed = _frozen(self._params) != self._snapshot
        if self.error is not None or self.params_changed:
            return None
        return self._hasher.digest()

    def fed(self, pieces: Iterable[Piece]) -> Iterator[Piece]:
        """``pieces`` unchanged, checked on their way. Pieces the encoder has read wait
        here until the caller takes them, so at most the encoder's read-ahead is held."""
        if self._encode is None:
            for piece in pieces:
                self._hasher.update(piece.data)
                self.size += len(piece.data)
                yield piece
            return
        taken: deque[Piece] = deque()  # read by the encoder, not yet by the caller
        source = iter(pieces)

        def chunks() -> Iterator[bytes]:
            while True:
                try:
                    piece = next(source)
                except StopIteration:
                    return
                except Exception as e:
                    raise _PiecesFailed(e) from e
                taken.append(piece)
                yield piece.data

        out = self._encode(chunks())
        try:
            while self.error is None:
                while taken:
                    yield taken.popleft()
                if not self._rebuild_one(out):
                    break
        finally:
            close = getattr(out, "close", None)
            if close is not None:
                close()  # an encoder's threads end now, not when it is collected
        yield from taken
        for piece in source:  # left after the encoder stopped: more than it reads
            if self.error is None:
                self.error = ValueError("the pieces are longer than what the transform reads")
            yield piece

    def _rebuild_one(self, out: Iterator[bytes]) -> bool:
        """Hash the encoder's next block; False once it has ended or failed."""
        try:
            block = next(out)
        except StopIteration:
            return False
        except _PiecesFailed as e:
            raise e.cause from None
        except Exception as e:  # reported by digest(); the pieces go on unchecked
            self.error = e
            return False
        self._hasher.update(block)
        self.size += len(block)
        return True


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
