"""Byte layouts of what the store writes: blobs, pack indexes, recipes and segments.

Every layout starts with a 4-byte magic and version so a reader fails clearly on
anything else. Integers are little-endian.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from vstudio.errors import CorruptObject

# Blob kinds in a pack (the low bits); FILE_FLAG marks a chunk that is a whole file.
CHUNK = 0
RECIPE = 1
SEGMENT = 2
FILE_FLAG = 0x80
# A chunk compressed together with its neighbours: ``offset``/``length`` are the shared
# frame's, ``inner`` is where the chunk starts in the frame's plain bytes.
IN_FRAME = 0x40
# A chunk stored as a zstd patch against another chunk (``base``), ``depth`` deltas deep.
DELTA = 0x20
KIND_MASK = 0x1F

# Recipe entry types.
E_CHUNK = 0
E_SEGMENT = 1
E_INLINE = 2

INDEX_MAGIC = b"VSI1"
INDEX_MAGIC_2 = b"VSI2"  # entries may carry IN_FRAME / DELTA extras
FRAME_AAD = b"vstudio-frame"  # members are checked by their own hashes after opening
RECIPE_MAGIC = b"VSR1"
SEGMENT_MAGIC = b"VSS1"

_ENTRY = struct.Struct("<32sBBIII")
_RECIPE_EXTRA = struct.Struct("<32sQ")
_FRAME_EXTRA = struct.Struct("<I")
_DELTA_EXTRA = struct.Struct("<32sB")


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """Where one blob lives: in ``pack`` at ``offset``, ``length`` stored bytes."""

    key: bytes  # the blob's id (for a recipe: the id of the file it rebuilds)
    kind: int
    chunker: str
    offset: int
    length: int
    raw_length: int
    check: bytes = b""  # recipes only: BLAKE3 of the recipe's own bytes
    file_size: int = 0  # recipes only: the size of the file it rebuilds
    inner: int = 0  # IN_FRAME only: the chunk's offset in its frame's plain bytes
    base: bytes = b""  # DELTA only: the chunk this one is a patch against
    depth: int = 0  # DELTA only: deltas to apply to read it (1 = its base is whole)

    @property
    def base_kind(self) -> int:
        return self.kind & KIND_MASK

    @property
    def in_frame(self) -> bool:
        return bool(self.kind & IN_FRAME)

    @property
    def is_delta(self) -> bool:
        return bool(self.kind & DELTA)

    @property
    def aad(self) -> bytes:
        """What the sealed bytes were authenticated with (see ``codec``)."""
        return FRAME_AAD if self.in_frame else self.key


def encode_index(entries: list[IndexEntry]) -> bytes:
    names = sorted({e.chunker for e in entries})
    pos = {n: i for i, n in enumerate(names)}
    extended = any(e.kind & (IN_FRAME | DELTA) for e in entries)
    # Version 1 when no entry needs the extras, so such stores stay readable by older builds.
    out = bytearray(INDEX_MAGIC_2 if extended else INDEX_MAGIC)
    out += struct.pack("<H", len(names))
    for n in names:
        raw = n.encode()
        out += struct.pack("<B", len(raw)) + raw
    out += struct.pack("<I", len(entries))
    for e in entries:
        out += _ENTRY.pack(e.key, e.kind, pos[e.chunker], e.offset, e.length, e.raw_length)
        if e.base_kind == RECIPE:
            out += _RECIPE_EXTRA.pack(e.check, e.file_size)
        if e.kind & IN_FRAME:
            out += _FRAME_EXTRA.pack(e.inner)
        if e.kind & DELTA:
            out += _DELTA_EXTRA.pack(e.base, e.depth)
    return bytes(out)


def decode_index(data: bytes, what: str) -> list[IndexEntry]:
    try:
        if data[:4] not in (INDEX_MAGIC, INDEX_MAGIC_2):
            raise ValueError("bad magic")
        extended = data[:4] == INDEX_MAGIC_2
        (n_names,) = struct.unpack_from("<H", data, 4)
        pos = 6
        names = []
        for _ in range(n_names):
            ln = data[pos]
            names.append(data[pos + 1:pos + 1 + ln].decode())
            pos += 1 + ln
        (count,) = struct.unpack_from("<I", data, pos)
        pos += 4
        out = []
        for _ in range(count):
            key, kind, ci, off, ln, raw = _ENTRY.unpack_from(data, pos)
            pos += _ENTRY.size
            check, fsize, inner, base, depth = b"", 0, 0, b"", 0
            if not extended and kind & (IN_FRAME | DELTA):
                raise ValueError(f"kind {kind} in a version 1 index")
            if kind & KIND_MASK == RECIPE:
                check, fsize = _RECIPE_EXTRA.unpack_from(data, pos)
                pos += _RECIPE_EXTRA.size
            if kind & IN_FRAME:
                (inner,) = _FRAME_EXTRA.unpack_from(data, pos)
                pos += _FRAME_EXTRA.size
            if kind & DELTA:
                base, depth = _DELTA_EXTRA.unpack_from(data, pos)
                pos += _DELTA_EXTRA.size
            out.append(IndexEntry(key, kind, names[ci], off, ln, raw, check, fsize, inner,
                                  base, depth))
        if pos != len(data):
            raise ValueError("trailing bytes")
        return out
    except (ValueError, IndexError, struct.error, UnicodeDecodeError) as e:
        raise CorruptObject(f"{what} is corrupt ({e}): run 'vstudio store check'") from None


@dataclass(frozen=True, slots=True)
class Entry:
    """One step of a recipe: a chunk, a segment (a list of chunks) or inline bytes."""

    type: int
    length: int
    id: bytes = b""
    data: bytes = b""


@dataclass
class Recipe:
    """How to rebuild a file: entries in order, then an optional transform."""

    entries: list[Entry]
    size: int  # the file's size
    transform: str = ""
    params: dict[str, Any] = field(default_factory=dict)


def _encode_entries(out: bytearray, entries: list[Entry]) -> None:
    for e in entries:
        out += struct.pack("<BI", e.type, e.length)
        out += e.data if e.type == E_INLINE else e.id


def _decode_entries(data: bytes, pos: int) -> Iterator[Entry]:
    n = len(data)
    while pos < n:
        typ, ln = struct.unpack_from("<BI", data, pos)
        pos += 5
        if typ == E_INLINE:
            body = data[pos:pos + ln]
            if len(body) != ln:
                raise ValueError("truncated inline entry")
            yield Entry(typ, ln, data=body)
            pos += ln
        elif typ in (E_CHUNK, E_SEGMENT):
            ident = data[pos:pos + 32]
            if len(ident) != 32:
                raise ValueError("truncated entry")
            yield Entry(typ, ln, id=ident)
            pos += 32
        else:
            raise ValueError(f"unknown entry type {typ}")


def encode_recipe(r: Recipe) -> bytes:
    out = bytearray(RECIPE_MAGIC)
    t = r.transform.encode()
    p = json.dumps(r.params, sort_keys=True, separators=(",", ":")).encode() if r.params else b""
    out += struct.pack("<QH", r.size, len(t)) + t + struct.pack("<I", len(p)) + p
    _encode_entries(out, r.entries)
    return bytes(out)


def decode_recipe(data: bytes, what: str) -> Recipe:
    try:
        if data[:4] != RECIPE_MAGIC:
            raise ValueError("bad magic")
        size, tl = struct.unpack_from("<QH", data, 4)
        pos = 14
        t = data[pos:pos + tl].decode()
        pos += tl
        (pl,) = struct.unpack_from("<I", data, pos)
        pos += 4
        params = json.loads(data[pos:pos + pl]) if pl else {}
        pos += pl
        return Recipe(list(_decode_entries(data, pos)), size, t, params)
    except (ValueError, IndexError, struct.error, UnicodeDecodeError) as e:
        raise CorruptObject(f"{what} is corrupt ({e}): run 'vstudio store check'") from None


def encode_segment(entries: list[Entry]) -> bytes:
    out = bytearray(SEGMENT_MAGIC)
    _encode_entries(out, entries)
    return bytes(out)


def decode_segment(data: bytes, what: str) -> list[Entry]:
    try:
        if data[:4] != SEGMENT_MAGIC:
            raise ValueError("bad magic")
        entries = list(_decode_entries(data, 4))
        if any(e.type == E_SEGMENT for e in entries):
            raise ValueError("nested segment")
        return entries
    except (ValueError, IndexError, struct.error) as e:
        raise CorruptObject(f"{what} is corrupt ({e}): run 'vstudio store check'") from None
