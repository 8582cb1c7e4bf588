"""Writing: files become chunks and recipes, sealed in batches, handed to the packer.

A ``Writer`` is one batch of puts. It cuts a file (a format-aware chunker's split when
it rebuilds the file exactly, else FastCDC), hashes and seals the pieces in the store's
threads, skips those the store holds, and records the file's recipe; ``store/packer.py``
packs the sealed blobs and uploads them. Order of writes (what makes a crash harmless):
a pack object first, then its index object; a reference is written only by callers,
after the batch that stored its ids has closed.
"""

from __future__ import annotations

import logging
import stat
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import blake3

from vstudio.errors import BadInput, CorruptObject, ObjectMissing
from vstudio.store import format as fmt
from vstudio.store.api import NO_PROGRESS, Progress
from vstudio.store.chunking import FASTCDC, Piece, Split, pick_chunker, plugin_splits, transform
from vstudio.store.delta import TRANSFORM as DELTA_TRANSFORM
from vstudio.store.packer import Packer
from vstudio.store.sealing import BatchSealer, DeltaPlan, Sealed, segments
from vstudio.store.verify import StreamCheck, hash_file

if TYPE_CHECKING:
    from vstudio.store.objects import Store


log = logging.getLogger("vstudio.store")
T = TypeVar("T")

# Files of more chunks than this get a two-level recipe, cut into segments where a chunk
# id hits a boundary, so an edit rewrites one segment and the short top list only.
SEGMENT_OVER = 128
# Pieces hashed and sealed together in a worker thread; the new chunks of a batch are
# compressed as one frame (store/sealing.py): 4 MiB frames cost a quarter less than 1 MiB
# ones on .blend bodies, and a random read decompresses at most one frame.
BATCH_BYTES = 4 << 20
IN_FLIGHT = 4  # batches being sealed at once


def _digest(data: bytes) -> bytes:
    return blake3.blake3(data).digest()


class Writer:
    """One batch of puts; ids it returns are durable once ``close()`` has returned."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.packer = Packer(store)  # the pack being filled and those on their way
        self._sealing: deque[tuple[list[Piece], str, Future[Sealed]]] = deque()
        self._plan: DeltaPlan | None = None  # the previous version of the file being put
        self._offset = 0  # where the next batch starts in the file's stream
        self._file_entries: list[fmt.Entry] = []
        self.closed = False
        # Repair mode (``store repair``): a stored copy is read and checked before it is
        # reused; a damaged or lost one is stored afresh and noted here (key -> its pack).
        self.verify_existing = False
        self.replaced: dict[bytes, str] = {}

    # --- the Writer protocol -------------------------------------------------------------

    def put_file(self, path: Path, progress: Progress = NO_PROGRESS,
                 previous: str | None = None) -> str:
        path = Path(path)
        try:
            st = path.stat()
            size = st.st_size
            if path.is_dir():
                raise BadInput(f"{path} is a folder: give files")
            if not stat.S_ISREG(st.st_mode):  # a device or pipe might never end
                raise BadInput(f"{path} is not a regular file")
            with open(path, "rb"):
                pass
        except FileNotFoundError:
            raise BadInput(f"{path} does not exist") from None
        except PermissionError:
            raise BadInput(f"{path} is not readable (permission denied)") from None
        progress.start(size, path.name)
        # A file a plug-in may split is hashed first (FastCDC hashes as it cuts), so one
        # the store holds already is not split and checked again.
        digest = None if not previous and pick_chunker(path) is FASTCDC else hash_file(path)
        if digest is not None and self._holds_file(digest):
            progress.advance(size)
            progress.done()
            return digest.hex()
        self._plan = DeltaPlan.of(self.store, previous) if previous else None
        try:
            for split, name in plugin_splits(path, previous, self.store):
                if split.transform == DELTA_TRANSFORM:
                    self._plan = None  # its pieces are one whole-file patch
                oid = self._try_split(path, split, name, size, progress, digest)
                if oid is not None:
                    return oid
            with open(path, "rb", buffering=0) as f:
                return self._put_fastcdc(f, progress, size)
        finally:
            self._plan = None
            progress.done()

    def put_bytes(self, data: bytes) -> str:
        return self._put_pieces(FASTCDC.split_bytes(bytes(data)), FASTCDC.name, NO_PROGRESS)

    def put_stream(self, stream: BinaryIO, progress: Progress = NO_PROGRESS) -> str:
        return self._put_fastcdc(stream, progress)

    # --- chunks and recipes from elsewhere (the HTTP API: clients chunk locally) ------------

    def put_chunks(self, items: Iterable[tuple[bytes, bytes]], chunker: str = "fastcdc") -> int:
        """Store chunks a client sent, each checked against its id; returns how many were new."""
        group: list[tuple[bytes, bytes]] = []
        seen: set[bytes] = set()
        size = new = 0
        for key, data in items:
            if _digest(data) != key:
                raise BadInput(f"chunk {key.hex()} does not match its id")
            self.store.recent.put(key, data)  # the recipe's check reads it from memory
            if key not in seen and not self._exists(key):
                seen.add(key)
                group.append((key, data))  # neighbours of one file: compressed together
                size += len(data)
                new += 1
                if size >= BATCH_BYTES:
                    self._put_group(group, chunker)
                    group, size = [], 0
        self._put_group(group, chunker)
        return new

    def _put_group(self, group: list[tuple[bytes, bytes]], chunker: str) -> None:
        self._drain()
        for blob in BatchSealer(self.store, self._exists).group(group):
            self.packer.add_blob(blob, chunker)

    def _raw_length(self, key: bytes) -> int:
        pending = self.packer.pending_entry(key)
        if pending is not None:
            return pending.raw_length
        hit = self.store.index.get(key)
        if hit is None:
            self.packer.wait()  # in a pack on its way
            hit = self.store.index.get(key)
        return hit[1].raw_length if hit else -1

    def mark_file(self, key: bytes) -> None:
        self.packer.mark_file(key, "fastcdc")

    def missing(self, keys: Iterable[bytes]) -> list[bytes]:
        return [k for k in keys if not self._exists(k)]

    def put_recipe(self, oid: str, entries: list[fmt.Entry], chunker: str = "fastcdc",
                   transform_name: str | None = None,
                   params: dict[str, Any] | None = None) -> str:
        """Store a file made of chunks already stored, after checking it rebuilds to ``oid``
        (through ``transform_name`` with ``params`` for a format-aware chunker's pieces)."""
        absent = self.missing(e.id for e in entries if e.type == fmt.E_CHUNK)
        if absent:
            raise BadInput(f"{len(absent)} chunk(s) are missing, e.g. {absent[0].hex()}: "
                           "upload them first")
        if any(e.type == fmt.E_SEGMENT for e in entries):
            raise BadInput("a file is sent as chunks and inline pieces, not segments")
        for e in entries:
            if e.type == fmt.E_CHUNK and self._raw_length(e.id) != e.length:
                raise BadInput(f"chunk {e.id.hex()} is {self._raw_length(e.id)} bytes, "
                               f"not {e.length}")
        recipe = fmt.Recipe(entries, sum(e.length for e in entries))
        if transform_name:
            transform(transform_name)  # an unknown one: StoreError before any reading
            recipe.transform, recipe.params = transform_name, dict(params or {})
            try:  # the rebuilt size is known only by rebuilding: count it as it passes
                size = 0
                h = blake3.blake3()
                for block in self.store.stream(recipe, self._read_back):
                    h.update(block)
                    size += len(block)
            except (CorruptObject, ObjectMissing):
                raise
            except Exception as e:  # bad params from a client: a clear 400, not a 500
                raise BadInput(f"the pieces sent do not rebuild to {oid} with "
                               f"{transform_name!r}: {e}") from None
            recipe.size = size
            if h.hexdigest() != oid:
                raise BadInput(f"the chunks sent do not rebuild to {oid}")
        elif self.store.hash_recipe(recipe, self._read_back).hex() != oid:
            raise BadInput(f"the chunks sent do not rebuild to {oid}")
        return self._finish(recipe, bytes.fromhex(oid), chunker)

    # --- plug-in chunkers ------------------------------------------------------------------

    def _holds_file(self, key: bytes) -> bool:
        """Whether the store (or this batch) holds the file ``key`` already: storing it
        again would add nothing (in repair mode, every piece is checked instead)."""
        if self.verify_existing or not self._exists(key):
            return False
        kind = self.packer.written.get(key)
        if kind is None:
            hit = self.store.index.get(key)
            kind = hit[1].kind if hit is not None else fmt.CHUNK
        return kind & fmt.KIND_MASK == fmt.RECIPE or bool(kind & fmt.FILE_FLAG)

    def _try_split(self, path: Path, split: Split, name: str, size: int,
                   progress: Progress, digest: bytes | None = None) -> str | None:
        """Store a plug-in's split if it rebuilds the file exactly; None to fall back.

        The rebuild is checked as the pieces stream past (``StreamCheck``), not by reading
        them back through the store; only a chunker that fills its transform's params while
        its pieces are consumed is checked by reading back."""
        wanted = (_done(digest) if digest is not None  # else in parallel (no GIL held)
                  else self.store.submit("hash", hash_file, path))
        try:
            check = StreamCheck(split.transform, split.params, self.store)
            entries, _ = self._store_pieces(check.fed(split.pieces), name, None, NO_PROGRESS)
            got = check.digest()
            recipe = fmt.Recipe(entries, size, split.transform or "", dict(split.params))
            if got is None and check.error is None and check.params_changed:
                got = self.store.hash_recipe(recipe, self._read_back)
            elif got is not None and check.size != size:
                got = None
        except Exception as e:
            log.warning("chunker %s failed on %s: %s; using fastcdc", name, path, e)
            return None
        if check.error is not None:
            log.warning("chunker %s failed on %s: %s; using fastcdc", name, path, check.error)
            return None
        want = wanted.result()
        if got != want:
            log.warning("chunker %s does not rebuild %s exactly; using fastcdc", name, path)
            return None
        progress.advance(size)
        return self._finish(recipe, want, name)

    # --- pieces, recipes, packs --------------------------------------------------------------

    def _put_pieces(self, pieces: Iterable[Piece], chunker: str, progress: Progress) -> str:
        hasher = blake3.blake3()
        entries, size = self._store_pieces(pieces, chunker, hasher, progress)
        return self._finish(fmt.Recipe(entries, size), hasher.digest(), chunker)

    def _put_fastcdc(self, stream: BinaryIO, progress: Progress,
                     size_hint: int | None = None) -> str:
        """FastCDC over a stream; each block is read and feeds the file's hash in the hash
        thread (no GIL held) while the one before is cut here."""
        hasher = blake3.blake3()
        entries, size = self._store_pieces(
            FASTCDC.split_stream(stream, hasher.update, size_hint,
                                partial(self.store.submit, "hash")),
            FASTCDC.name, None, progress)
        return self._finish(fmt.Recipe(entries, size), hasher.digest(), FASTCDC.name)

    def _store_pieces(self, pieces: Iterable[Piece], chunker: str, hasher: blake3.blake3 | None,
                      progress: Progress) -> tuple[list[fmt.Entry], int]:
        """Store pieces: chunk ids and sealing run in threads, ~1 MiB of pieces at a time."""
        self._file_entries = []
        self._offset = 0
        batch: list[Piece] = []
        nbytes = size = 0
        for piece in pieces:
            if hasher is not None:
                hasher.update(piece.data)
            batch.append(piece)
            nbytes += len(piece.data)
            if nbytes >= BATCH_BYTES:
                self._submit(batch, chunker)
                progress.advance(nbytes)
                size += nbytes
                batch, nbytes = [], 0
        if batch:
            if not self._sealing:  # a small file: a thread hand-off would cost more
                self._sealing.append((batch, chunker, _done(self._seal_batch(
                    *self._batch_args(batch)))))
            else:
                self._submit(batch, chunker)
            progress.advance(nbytes)
            size += nbytes
        self._drain()
        entries, self._file_entries = self._file_entries, []
        return entries, size

    def _batch_args(self, batch: list[Piece]) -> tuple[list[bytes | None], list[int]]:
        offsets = []
        for p in batch:
            offsets.append(self._offset)
            self._offset += len(p.data)
        return [None if p.inline else p.data for p in batch], offsets

    def _submit(self, batch: list[Piece], chunker: str) -> None:
        fut = self.store.submit("seal", self._seal_batch, *self._batch_args(batch))
        self._sealing.append((batch, chunker, fut))
        if len(self._sealing) >= IN_FLIGHT:
            self._drain(IN_FLIGHT // 2)

    def _seal_batch(self, datas: list[bytes | None], offsets: list[int]) -> Sealed:
        """Ids of the pieces and the sealed blobs of the new ones, in a worker thread."""
        return BatchSealer(self.store, self._exists).seal(datas, offsets, self._plan)

    def _drain(self, keep: int = 0) -> None:
        while len(self._sealing) > keep:
            batch, chunker, fut = self._sealing.popleft()
            sealed = fut.result()
            for piece, key in zip(batch, sealed.keys, strict=True):
                n = len(piece.data)
                if piece.inline:
                    self._file_entries.append(fmt.Entry(fmt.E_INLINE, n, data=bytes(piece.data)))
                else:
                    self._file_entries.append(fmt.Entry(fmt.E_CHUNK, n, id=key))
            for blob in sealed.blobs:
                self.packer.add_blob(blob, chunker)

    def copy_stored(self, entries: list[fmt.IndexEntry], sealed: bytes) -> None:
        """Copy one stored blob as it is (``store gc`` repacking): see ``Packer``."""
        self.packer.copy_stored(entries, sealed)

    def _finish(self, recipe: fmt.Recipe, digest: bytes, chunker: str) -> str:
        e = recipe.entries
        if (not recipe.transform and len(e) == 1 and e[0].type == fmt.E_CHUNK) or not e:
            if not e:  # the empty file is one empty chunk
                self._add_blob(digest, fmt.CHUNK, b"", chunker)
            self.packer.mark_file(digest, chunker)
            return digest.hex()
        if len(e) > SEGMENT_OVER:
            recipe.entries = segments(
                e, lambda key, raw: self._add_blob(key, fmt.SEGMENT, raw, chunker))
        if not self._exists(digest):
            raw = fmt.encode_recipe(recipe)
            self._add_blob(digest, fmt.RECIPE, raw, chunker, check=_digest(raw),
                           file_size=recipe.size)
        return digest.hex()

    def _exists(self, key: bytes) -> bool:
        if key in self.packer.written:
            return True
        hit = self.store.index.get(key)
        if hit is None or self.store.is_doomed(key):
            return False
        return not self.verify_existing or self._intact(key, hit[0])

    def _intact(self, key: bytes, pack: str) -> bool:
        try:
            self.store.blob(key)
        except (CorruptObject, ObjectMissing):
            self.replaced[key] = pack
            return False
        return True

    def _add_blob(self, key: bytes, kind: int, data: bytes, chunker: str,
                  check: bytes = b"", file_size: int = 0) -> None:
        """Store a recipe, segment or the empty chunk, after every chunk before it."""
        self._drain()
        if not self._exists(key):
            self.packer.add(key, kind, chunker, len(data), self.store.codec.seal(key, data),
                            check, file_size)

    def _read_back(self, keys: list[bytes]) -> Iterator[bytes]:
        """Plain bytes of blobs, including this batch's that are not in the index yet."""
        self._drain()
        for key in keys:
            recent = self.store.recent.get(key)
            if recent is not None:
                yield recent
                continue
            pending = self.packer.read_pending(key)
            if pending is not None:
                yield pending
                continue
            if key in self.packer.written:  # in a pack on its way to the backend
                self.packer.wait()
            yield self.store.blob(key)

    def flush(self) -> None:
        """Seal and upload everything written so far; raise the first upload error."""
        self._drain()
        self.packer.flush()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.flush()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _done(value: T) -> Future[T]:
    fut: Future[T] = Future()
    fut.set_result(value)
    return fut
