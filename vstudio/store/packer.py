"""The pack being filled: sealed blobs in, packs and their indexes out to the backend.

A ``Writer`` (``store/writer.py``) turns files into sealed blobs; its ``Packer`` appends
them, with an index entry each, until the pack reaches ``PACK_TARGET``, then seals the
pack and uploads it on the store's upload threads. Packs upload in parallel, but each
pack's index object is written only after every earlier pack's, so a recipe is never
indexed before the chunks it uses. A crash leaves at worst a pack without an index.
"""

from __future__ import annotations

import struct
from concurrent.futures import Future
from dataclasses import replace
from typing import TYPE_CHECKING

import blake3

from vstudio.store import format as fmt
from vstudio.store.index import index_aad, index_object, pack_object
from vstudio.store.memory import release_memory
from vstudio.store.packs import WRITING
from vstudio.store.sealing import Blob

if TYPE_CHECKING:
    from vstudio.store.objects import Store

PACK_TARGET = 16 << 20


class Packer:
    """Blobs of one write batch, packed; ``written`` holds every blob the batch stored."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.written: dict[bytes, int] = {}  # blobs of this batch -> kind
        self._parts: list[bytes] = []  # sealed blobs of the pack being filled
        self._pending: dict[bytes, int] = {}  # their keys -> position in _entries
        self._part_of: list[int] = []  # per entry of _entries: its position in _parts
        self._size = 0
        self._entries: list[fmt.IndexEntry] = []
        self._uploads: list[Future[None]] = []

    # --- adding blobs ------------------------------------------------------------------------

    def add_blob(self, blob: Blob, chunker: str) -> None:
        """One sealed blob of a batch: its members not stored meanwhile get entries."""
        members = [m for m in blob.members if m[0] not in self.written]
        if not members:
            return  # another batch in flight stored the same chunk(s) first
        kind = fmt.CHUNK | (fmt.IN_FRAME if blob.framed else 0) | (fmt.DELTA if blob.base else 0)
        part = len(self._parts)
        for key, raw_len, inner in members:
            self._entry(fmt.IndexEntry(key, kind, chunker, self._size, len(blob.sealed),
                                       raw_len, inner=inner, base=blob.base, depth=blob.depth),
                        part)
        self._add_part(blob.sealed)

    def add(self, key: bytes, kind: int, chunker: str, raw_len: int, sealed: bytes,
            check: bytes = b"", file_size: int = 0) -> None:
        """One sealed blob on its own (a recipe, a segment, the empty chunk)."""
        self._entry(fmt.IndexEntry(key, kind, chunker, self._size, len(sealed), raw_len, check,
                                   file_size), len(self._parts))
        self._add_part(sealed)

    def copy_stored(self, entries: list[fmt.IndexEntry], sealed: bytes) -> None:
        """Copy one stored blob (a chunk, or a frame with the entries of its chunks) from
        another pack as it is (``store gc`` repacking)."""
        entries = [e for e in entries if e.key not in self.written]
        if entries:
            part = len(self._parts)
            for e in entries:
                self._entry(replace(e, offset=self._size, length=len(sealed)), part)
            self._add_part(sealed)

    def mark_file(self, key: bytes, chunker: str) -> None:
        """Flag a chunk of the pack being filled as a whole file (for stats)."""
        pos = self._pending.get(key)
        if pos is not None:
            ent = self._entries[pos]
            if not ent.kind & fmt.FILE_FLAG:
                self._entries[pos] = replace(ent, kind=ent.kind | fmt.FILE_FLAG, chunker=chunker)

    def _entry(self, e: fmt.IndexEntry, part: int) -> None:
        self.written[e.key] = e.kind
        self._pending[e.key] = len(self._entries)
        self._entries.append(e)
        self._part_of.append(part)

    def _add_part(self, sealed: bytes) -> None:
        """Append sealed bytes (entries pointing at them added first)."""
        self._parts.append(sealed)
        self._size += len(sealed)
        if self._size >= PACK_TARGET:
            self.seal()

    # --- blobs of the pack being filled (not in the index yet) ---------------------------------

    def pending_entry(self, key: bytes) -> fmt.IndexEntry | None:
        pos = self._pending.get(key)
        return None if pos is None else self._entries[pos]

    def read_pending(self, key: bytes) -> bytes | None:
        """The plain bytes of a blob of the pack being filled, or None."""
        pos = self._pending.get(key)
        if pos is None:
            return None
        part = self._parts[self._part_of[pos]]
        return self.store.packs.open_blob(WRITING, self._entries[pos], part)

    # --- sealing and uploading ---------------------------------------------------------------

    def seal(self) -> None:
        """Seal the pack being filled and upload it (with its index) in the background."""
        if not self._entries:
            return
        codec, backend, index = self.store.codec, self.store.backend, self.store.index
        entries, self._entries = self._entries, []
        parts = self._parts
        self._parts, self._size, self._pending, self._part_of = [], 0, {}, []
        prev = self._uploads[-1] if self._uploads else None

        def upload() -> None:
            # Joining, hashing and sealing the index happen here, off the chunking thread.
            raw_index = fmt.encode_index(entries)
            # The pack ends with a copy of its own index, so the bucket alone can rebuild it.
            trailer = codec.seal(b"pack-index", raw_index)
            parts.extend([trailer, struct.pack("<I", len(trailer))])
            h = blake3.blake3()
            for part in parts:
                h.update(part)
            pack = h.hexdigest()
            writes_parts = backend.features.parts
            if writes_parts is not None:  # a local folder writes the parts as they are
                writes_parts.put_parts(pack_object(pack), parts)
            else:
                backend.put(pack_object(pack), b"".join(parts))
            parts.clear()
            # Packs upload in parallel, but indexes appear in order: a recipe's pack is
            # indexed only once every earlier pack (holding its chunks) is.
            if prev is not None:
                prev.result()
            backend.put(index_object(pack), codec.seal(index_aad(pack), raw_index))
            index.add(pack, entries, raw_index)
            release_memory()

        # Bounded: at most a few packs in memory waiting for the backend.
        while len([u for u in self._uploads if not u.done()]) >= self.store.upload_threads:
            next(u for u in self._uploads if not u.done()).exception()
        self._uploads.append(self.store.submit("upload", upload))

    def wait(self) -> None:
        """Wait for the packs on their way; raise the first upload error."""
        errors = [e for e in (u.exception() for u in self._uploads) if e is not None]
        if errors:
            raise errors[0]

    def flush(self) -> None:
        """Seal and upload everything added so far; raise the first upload error."""
        self.seal()
        uploads, self._uploads = self._uploads, []
        errors = [e for e in (u.exception() for u in uploads) if e is not None]
        if errors:
            raise errors[0]
