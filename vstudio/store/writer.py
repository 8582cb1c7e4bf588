"""Writing: files become chunks, chunks are sealed into packs, packs get an index.

Order of writes (what makes a crash harmless): a pack object first, then its index
object; a reference is written only by callers, after the batch that stored its ids has
closed. A crash leaves at worst a pack without an index, which ``store gc`` removes.
"""

from __future__ import annotations

import io
import logging
import struct
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import blake3

from vstudio.errors import BadInput, StoreError
from vstudio.store import format as fmt
from vstudio.store.api import NO_PROGRESS, Progress
from vstudio.store.chunking import FASTCDC, Chunker, Piece, Split, delta_hooks, pick_chunker
from vstudio.store.index import index_aad, index_object, pack_object

if TYPE_CHECKING:
    from vstudio.store.objects import Store

log = logging.getLogger("vstudio.store")

PACK_TARGET = 16 << 20
# Files of more chunks than this get a two-level recipe, cut into segments where a chunk
# id hits a boundary, so an edit rewrites one segment and the short top list only.
SEGMENT_OVER = 128
SEGMENT_MASK = 63  # about 64 chunks per segment
SEGMENT_MIN, SEGMENT_MAX = 8, 512
IN_FLIGHT = 32  # chunks being compressed at once


def _digest(data: bytes) -> bytes:
    return blake3.blake3(data).digest()


class Writer:
    """One batch of puts; ids it returns are durable once ``close()`` has returned."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._buf = bytearray()
        self._entries: list[fmt.IndexEntry] = []
        self._written: dict[bytes, int] = {}  # blobs of this batch -> kind
        self._uploads: list[Future[None]] = []
        self._sealing: deque[tuple[bytes, int, str, int, Future[bytes], bytes, int]] = deque()
        self._lock = threading.Lock()
        self.closed = False

    # --- the Writer protocol -------------------------------------------------------------

    def put_file(self, path: Path, progress: Progress = NO_PROGRESS,
                 previous: str | None = None) -> str:
        path = Path(path)
        try:
            size = path.stat().st_size
            if path.is_dir():
                raise BadInput(f"{path} is a folder: give files")
            with open(path, "rb"):
                pass
        except FileNotFoundError:
            raise BadInput(f"{path} does not exist") from None
        except PermissionError:
            raise BadInput(f"{path} is not readable (permission denied)") from None
        progress.start(size, path.name)
        try:
            for split, name in self._plugin_splits(path, previous):
                oid = self._try_split(path, split, name, size, progress)
                if oid is not None:
                    return oid
            with open(path, "rb", buffering=0) as f:
                return self._put_pieces(FASTCDC.split_stream(f), FASTCDC.name, progress)
        finally:
            progress.done()

    def put_bytes(self, data: bytes) -> str:
        return self._put_pieces(FASTCDC.split_bytes(bytes(data)), FASTCDC.name, NO_PROGRESS)

    def put_stream(self, stream: BinaryIO, progress: Progress = NO_PROGRESS) -> str:
        return self._put_pieces(FASTCDC.split_stream(stream), FASTCDC.name, progress)

    # --- plug-in chunkers ------------------------------------------------------------------

    def _plugin_splits(self, path: Path, previous: str | None) -> Iterator[tuple[Split, str]]:
        if previous:
            for hook in delta_hooks():
                try:
                    split = hook(path, previous, self.store)
                except Exception as e:
                    log.warning("delta hook failed on %s: %s; chunking it whole", path, e)
                    continue
                if split is not None:
                    yield split, getattr(hook, "chunker_name", "delta")
        chunker: Chunker = pick_chunker(path)
        if chunker is not FASTCDC:
            try:
                out = chunker.split(path)
            except Exception as e:
                log.warning("chunker %s failed on %s: %s; using fastcdc", chunker.name, path, e)
                return
            yield (out if isinstance(out, Split) else Split(out)), chunker.name

    def _try_split(self, path: Path, split: Split, name: str, size: int,
                   progress: Progress) -> str | None:
        """Store a plug-in's split if it rebuilds the file exactly; None to fall back."""
        want = _hash_file(path)
        try:
            entries, _ = self._store_pieces(split.pieces, name, None, NO_PROGRESS)
            recipe = fmt.Recipe(entries, size, split.transform or "", dict(split.params))
            self.flush()  # the check below reads the pieces back through the store
            got = self.store.hash_recipe(recipe)
        except Exception as e:
            log.warning("chunker %s failed on %s: %s; using fastcdc", name, path, e)
            return None
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

    def _store_pieces(self, pieces: Iterable[Piece], chunker: str, hasher: blake3.blake3 | None,
                      progress: Progress) -> tuple[list[fmt.Entry], int]:
        entries: list[fmt.Entry] = []
        size = 0
        for piece in pieces:
            data = piece.data
            size += len(data)
            if hasher is not None:
                hasher.update(data)
            if piece.inline:
                entries.append(fmt.Entry(fmt.E_INLINE, len(data), data=bytes(data)))
            else:
                key = _digest(data)
                self._add_blob(key, fmt.CHUNK, data, chunker)
                entries.append(fmt.Entry(fmt.E_CHUNK, len(data), id=key))
            progress.advance(len(data))
        return entries, size

    def _finish(self, recipe: fmt.Recipe, digest: bytes, chunker: str) -> str:
        e = recipe.entries
        if (not recipe.transform and len(e) == 1 and e[0].type == fmt.E_CHUNK) or not e:
            if not e:  # the empty file is one empty chunk
                self._add_blob(digest, fmt.CHUNK, b"", chunker)
            self._mark_file(digest, chunker)
            return digest.hex()
        if len(e) > SEGMENT_OVER:
            recipe.entries = self._segments(e, chunker)
        if not self._exists(digest):
            raw = fmt.encode_recipe(recipe)
            self._add_blob(digest, fmt.RECIPE, raw, chunker, check=_digest(raw),
                           file_size=recipe.size)
        return digest.hex()

    def _segments(self, entries: list[fmt.Entry], chunker: str) -> list[fmt.Entry]:
        top: list[fmt.Entry] = []
        group: list[fmt.Entry] = []

        def close() -> None:
            raw = fmt.encode_segment(group)
            key = _digest(raw)
            self._add_blob(key, fmt.SEGMENT, raw, chunker)
            top.append(fmt.Entry(fmt.E_SEGMENT, sum(g.length for g in group), id=key))
            group.clear()

        for ent in entries:
            group.append(ent)
            boundary = ent.type == fmt.E_CHUNK and (ent.id[0] & SEGMENT_MASK) == 0
            if (boundary and len(group) >= SEGMENT_MIN) or len(group) >= SEGMENT_MAX:
                close()
        if group:
            close()
        return top

    def _exists(self, key: bytes) -> bool:
        if key in self._written:
            return True
        return self.store.index.get(key) is not None and not self.store.is_doomed(key)

    def _mark_file(self, key: bytes, chunker: str) -> None:
        """Flag a chunk of this batch as a whole file (for stats)."""
        self._drain()
        with self._lock:
            for i, ent in enumerate(self._entries):
                if ent.key == key and not ent.kind & fmt.FILE_FLAG:
                    self._entries[i] = fmt.IndexEntry(key, ent.kind | fmt.FILE_FLAG, chunker,
                                                      ent.offset, ent.length, ent.raw_length)
                    return

    def _add_blob(self, key: bytes, kind: int, data: bytes, chunker: str,
                  check: bytes = b"", file_size: int = 0) -> None:
        if self._exists(key):
            return
        self._written[key] = kind
        fut = self.store.pool.submit(self.store.codec.seal, key, data)
        self._sealing.append((key, kind, chunker, len(data), fut, check, file_size))
        if len(self._sealing) >= IN_FLIGHT:
            self._drain(IN_FLIGHT // 2)

    def _drain(self, keep: int = 0) -> None:
        while len(self._sealing) > keep:
            key, kind, chunker, raw_len, fut, check, fsize = self._sealing.popleft()
            sealed = fut.result()
            self._entries.append(fmt.IndexEntry(key, kind, chunker, len(self._buf), len(sealed),
                                                raw_len, check, fsize))
            self._buf += sealed
            if len(self._buf) >= PACK_TARGET:
                self._seal_pack()

    def _seal_pack(self) -> None:
        if not self._entries:
            return
        codec, backend, index = self.store.codec, self.store.backend, self.store.index
        entries, self._entries = self._entries, []
        raw_index = fmt.encode_index(entries)
        body = self._buf
        self._buf = bytearray()
        # The pack ends with a copy of its own index, so the bucket alone can rebuild it.
        trailer = codec.seal(b"pack-index", raw_index)
        body += trailer + struct.pack("<I", len(trailer))
        data = bytes(body)
        pack = blake3.blake3(data).hexdigest()
        sealed_index = codec.seal(index_aad(pack), raw_index)

        prev = self._uploads[-1] if self._uploads else None

        def upload() -> None:
            backend.put(pack_object(pack), data)
            # Packs upload in parallel, but indexes appear in order: a recipe's pack is
            # indexed only once every earlier pack (holding its chunks) is.
            if prev is not None:
                prev.result()
            backend.put(index_object(pack), sealed_index)
            index.add(pack, entries, raw_index)

        # Bounded: at most a few packs in memory waiting for the backend.
        while len([u for u in self._uploads if not u.done()]) >= self.store.upload_threads:
            next(u for u in self._uploads if not u.done()).exception()
        self._uploads.append(self.store.upload_pool.submit(upload))

    def flush(self) -> None:
        """Seal and upload everything written so far; raise the first upload error."""
        self._drain()
        self._seal_pack()
        uploads, self._uploads = self._uploads, []
        errors = [e for e in (u.exception() for u in uploads) if e is not None]
        if errors:
            raise errors[0]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.flush()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _hash_file(path: Path) -> bytes:
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


def bytes_reader(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)
