"""Where the pointers are in a .blend file's blocks, from the file's own SDNA (DNA1 block).

Blender writes the memory address a block had when saving into its header and into every
pointer that refers to it, so the same unchanged struct is written with different bytes
in each session.  The SDNA catalogue in the ``DNA1`` block describes every struct (field
types and names), so the exact byte offsets of pointer fields are known.  ``swap_pointers``
rewrites the value of every pointer field through a permutation that exchanges each
block address with a small ordinal (1, 2, ... in order of first appearance) and back: it
is its own inverse, so the same call normalises a body at put time and restores it at read
time, and bodies whose only change is the session's addresses become identical.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from vstudio.errors import BadInput

_ARRAY_DIM = re.compile(r"\[(\d+)\]")


class SdnaError(BadInput):
    """The SDNA block of this .blend cannot be read."""


Offsets = tuple[tuple[int, ...], ...]  # per struct index
Derived = tuple[tuple[tuple[tuple[int, int], ...], ...], Offsets, Offsets]


@dataclass(frozen=True)
class Sdna:
    """Struct layouts of one file: per struct index, its size and pointer-field offsets."""

    struct_sizes: tuple[int, ...]
    pointer_offsets: tuple[tuple[int, ...], ...]  # byte offsets of every pointer in a struct
    struct_names: tuple[str, ...] = ()
    fields: tuple[tuple[tuple[int, int, str, str], ...], ...] = ()  # (offset, size, type, name)
    # What codecs derive from the layout, per pointer size: computed once per SDNA (every
    # save of one Blender version shares it; walking it cost 13 ms per file).
    derived: dict[int, Derived] = field(default_factory=dict, compare=False, hash=False,
                                    repr=False)


def _names(data: bytes, pos: int, tag: bytes, endian: str) -> tuple[list[str], int]:
    if data[pos:pos + 4] != tag:
        raise SdnaError(f"SDNA: expected {tag!r} at {pos}")
    (count,) = struct.unpack_from(endian + "i", data, pos + 4)
    pos += 8
    out = []
    for _ in range(count):
        end = data.index(b"\0", pos)
        out.append(data[pos:end].decode("latin-1"))
        pos = end + 1
    return out, (pos + 3) & ~3


@lru_cache(maxsize=8)
def parse_sdna(data: bytes, pointer_size: int, little_endian: bool) -> Sdna:
    """Read a DNA1 block body: names, types, type lengths, structs.

    Cached: every file saved by one Blender version carries the same SDNA, and decoding a
    file parses it again right after the put."""
    e = "<" if little_endian else ">"
    try:
        if data[:4] != b"SDNA":
            raise SdnaError("SDNA: bad magic")
        names, pos = _names(data, 4, b"NAME", e)
        types, pos = _names(data, pos, b"TYPE", e)
        if data[pos:pos + 4] != b"TLEN":
            raise SdnaError("SDNA: expected TLEN")
        tlen = struct.unpack_from(f"{e}{len(types)}h", data, pos + 4)
        pos = (pos + 4 + 2 * len(types) + 3) & ~3
        if data[pos:pos + 4] != b"STRC":
            raise SdnaError("SDNA: expected STRC")
        (nstruct,) = struct.unpack_from(e + "i", data, pos + 4)
        pos += 8
        structs: list[tuple[int, list[tuple[int, int]]]] = []
        for _ in range(nstruct):
            type_idx, nfields = struct.unpack_from(e + "hh", data, pos)
            fields = struct.unpack_from(f"{e}{2 * nfields}h", data, pos + 4)
            structs.append((type_idx, list(zip(fields[::2], fields[1::2], strict=True))))
            pos += 4 + 4 * nfields
        return _layout(names, types, tlen, structs, pointer_size)
    except (struct.error, ValueError, IndexError, KeyError, RecursionError) as err:
        raise SdnaError(f"SDNA is unreadable: {err}") from None


def _layout(names: list[str], types: list[str], tlen: tuple[int, ...],
            structs: list[tuple[int, list[tuple[int, int]]]], psize: int) -> Sdna:
    struct_of_type = {t: i for i, (t, _) in enumerate(structs)}
    offsets: dict[int, tuple[int, ...]] = {}
    visiting: set[int] = set()

    def ptrs(si: int) -> tuple[int, ...]:
        if si in offsets:
            return offsets[si]
        if si in visiting:
            raise SdnaError("SDNA: a struct contains itself")
        visiting.add(si)
        out: list[int] = []
        off = 0
        for ftype, fname in structs[si][1]:
            name = names[fname]
            count = 1
            for dim in _ARRAY_DIM.findall(name):
                count *= int(dim)
            if name.startswith("*") or name.startswith("(*"):
                # Function pointers ("(*func)()") are written too and change per session.
                out.extend(off + k * psize for k in range(count))
                off += psize * count
                continue
            size = tlen[ftype]
            sub = struct_of_type.get(ftype)
            if sub is not None:
                inner = ptrs(sub)
                for k in range(count):
                    out.extend(off + k * size + p for p in inner)
            off += size * count
        visiting.discard(si)
        offsets[si] = tuple(out)
        return offsets[si]

    sizes = []
    for si, (t, _) in enumerate(structs):
        ptrs(si)
        sizes.append(tlen[t])
    return Sdna(tuple(sizes), tuple(offsets[i] for i in range(len(structs))),
                tuple(types[t] for t, _ in structs),
                tuple(_fields(f, names, types, tlen, psize) for _, f in structs))


def _fields(fields: list[tuple[int, int]], names: list[str], types: list[str],
            tlen: tuple[int, ...], psize: int) -> tuple[tuple[int, int, str, str], ...]:
    out = []
    off = 0
    for ftype, fname in fields:
        name = names[fname]
        count = 1
        for dim in _ARRAY_DIM.findall(name):
            count *= int(dim)
        size = (psize if name.startswith(("*", "(*")) else tlen[ftype]) * count
        out.append((off, size, types[ftype], name))
        off += size
    return tuple(out)


# Non-pointer fields that change every session although nothing was edited: moved to the
# side list like pointers that point outside the file.  (struct type, field name)
VOLATILE_FIELDS = {("ID", "session_uuid"), ("ID", "session_uid"), ("ID", "recalc"), ("ID", "tag"),
                   ("ID", "recalc_up_to_undo_push"), ("ID", "recalc_after_undo_push")}
# Pointer fields to run-time data that Blender writes as they are: set in one session,
# NULL in the next.  Always moved to the side list (NULL included), so that flipping does
# not change the body.  Field names without '*' or array sizes.
RUNTIME_POINTERS = {"runtime", "typeinfo", "table", "premultable", "py_instance",
                    "depsgraph_hash", "object_bases_hash", "notifier_queue_set", "message_bus",
                    "context", "interface_type", "autosavetimer", "defaultconf", "addonconf",
                    "userconf", "edittree"}
# The same, for one struct only: (struct type, field name).  The outliner's tree store
# keeps pointers to IDs that may no longer exist, NULL or not depending on the session.
RUNTIME_STRUCT_POINTERS = {("TreeStoreElem", "id")}


ESC = 1  # pointer code: the value is in the side list


class PointerCodec:
    """Rewrites the pointer fields of block bodies into session-independent values.

    A pointer to a block becomes a code relative to the block that holds it: for a target
    that is a data-block (ID), ``4 * zigzag(IDs between them) + 2``; for a DATA block,
    ``4 * zigzag(distinct addresses between them) + 3``.  So inserting a block elsewhere
    changes no code, and adding DATA changes no pointer to an ID.  Zero stays zero.  Any
    other value
    (a runtime pointer to memory that was not written) becomes ``ESC`` (1) and is moved to
    the side list, as are the volatile fields; decoding reads the side list in order.
    """

    def __init__(self, sdna: Sdna, addresses: list[int], is_id: list[bool],
                 pointer_size: int) -> None:
        self.sdna = sdna
        self.psize = pointer_size
        # address -> code offset: 2*index (+1 for DATA blocks); index counts ID blocks for
        # IDs and all blocks for DATA, so adding a DATA block moves no pointer to an ID.
        target: dict[int, tuple[int, int]] = {}
        ids: list[int] = []
        distinct: list[int] = []
        base: list[tuple[int, int]] = []
        for a, id_block in zip(addresses, is_id, strict=True):
            base.append((len(ids), len(distinct)))
            if a and a not in target:
                if id_block:
                    target[a] = (0, len(ids))
                    ids.append(a)
                else:
                    target[a] = (1, len(distinct))
                distinct.append(a)
        self.target = target
        self.ids = ids
        self.distinct = distinct
        self.base = base
        self.top = 4 * len(distinct) + 4  # every code is below this
        if any(a < self.top for a in target):
            raise SdnaError("block addresses collide with pointer codes")
        derived = sdna.derived.get(pointer_size)
        if derived is None:
            volatile = _volatile_offsets(sdna, pointer_size)
            moved = [{m for m, _ in v} for v in volatile]
            mapped = tuple(
                tuple(o for o in offs if o % pointer_size == 0 and o not in moved[si])
                for si, offs in enumerate(sdna.pointer_offsets))
            volatile, mapped = _untangled(sdna.struct_sizes, volatile, mapped, pointer_size)
            words = tuple(tuple(o // pointer_size for o in offs) for offs in mapped)
            derived = sdna.derived[pointer_size] = (volatile, mapped, words)
        self._volatile, self._mapped, self._words = derived

    def rewrites(self, si: int, count: int, length: int) -> bool:
        """Whether ``encode`` would change a body of this shape (else it is left as is)."""
        return self._columns(si, count, length) is not None

    def _columns(self, si: int, count: int, length: int) -> tuple[int, int] | None:
        sdna = self.sdna
        if not 0 <= si < len(sdna.struct_sizes):
            return None
        size = sdna.struct_sizes[si]
        if size <= 0 or size * count != length or size % self.psize:
            return None  # raw data, or a layout this code does not rewrite: left as is
        if not self._mapped[si] and not self._volatile[si]:
            return None
        return size, size // self.psize

    def _positions(self, si: int, count: int, step: int) -> list[int] | tuple[int, ...]:
        """Word indices of the mapped pointers, field by field then element by element."""
        idx = self._words[si]
        if count == 1:
            return idx
        return [e * step + k for k in idx for e in range(count)]

    def encode(self, block: int, si: int, count: int, body: bytes, side: list[int]) -> bytes:
        cols = self._columns(si, count, len(body))
        if cols is None:
            return body
        size, step = cols
        fmt: Literal["Q", "I"] = "Q" if self.psize == 8 else "I"
        buf = bytearray(body)
        words = memoryview(buf).cast(fmt)
        bases = self.base[block]
        target = self.target
        for p in self._positions(si, count, step):
            v = words[p]
            if v == 0:
                continue
            t = target.get(v)
            if t is None:
                side.append(v)
                words[p] = ESC
            else:
                d = t[1] - bases[t[0]]
                words[p] = ((d << 1 if d >= 0 else (-d << 1) - 1) << 1) + 2 + t[0]
        words.release()
        self._move_volatile(buf, si, size, side, None)
        return bytes(buf)

    def decode(self, block: int, si: int, count: int, body: bytes, side: Iterator[int]) -> bytes:
        cols = self._columns(si, count, len(body))
        if cols is None:
            return body
        size, step = cols
        fmt: Literal["Q", "I"] = "Q" if self.psize == 8 else "I"
        buf = bytearray(body)
        words = memoryview(buf).cast(fmt)
        bases = self.base[block]
        tables, top = (self.ids, self.distinct), self.top
        try:
            for p in self._positions(si, count, step):
                v = words[p]
                if v == 0:
                    continue
                if v == ESC:
                    words[p] = next(side)
                    continue
                z = v - 2
                kind, r = z & 1, z >> 1
                j = bases[kind] + ((r >> 1) if not r & 1 else -((r + 1) >> 1))
                table = tables[kind]
                if not 0 <= j < len(table) or v >= top:
                    raise SdnaError(f"bad pointer code {v} in block {block}")
                words[p] = table[j]
        except StopIteration:
            raise SdnaError("pointer side list is cut short") from None
        except (ValueError, OverflowError):
            raise SdnaError("pointer side list holds a value too large") from None
        finally:
            words.release()
        # Same order as encode: pointer escapes first, then volatile fields.
        self._move_volatile(buf, si, size, None, side)
        return bytes(buf)

    def _move_volatile(self, buf: bytearray, si: int, size: int, out: list[int] | None,
                       src: Iterator[int] | None) -> None:
        fields = self._volatile[si]
        if not fields:
            return
        for start in range(0, len(buf), size):
            for off, n in fields:
                at = start + off
                if out is not None:
                    out.append(int.from_bytes(buf[at:at + n], "little"))
                    buf[at:at + n] = bytes(n)
                else:
                    assert src is not None
                    try:
                        buf[at:at + n] = next(src).to_bytes(n, "little")
                    except (StopIteration, OverflowError):
                        raise SdnaError("volatile side list is cut short or wrong") from None


def _untangled(sizes: tuple[int, ...], volatile: tuple[tuple[tuple[int, int], ...], ...],
               mapped: tuple[tuple[int, ...], ...], psize: int
               ) -> tuple[tuple[tuple[tuple[int, int], ...], ...], tuple[tuple[int, ...], ...]]:
    """The fields to rewrite, with nothing for a struct whose fields overlap or pass its
    size (a damaged SDNA): a byte rewritten twice, or written past the body, would not be
    restored by decoding, so such a struct's bodies are kept as they are."""
    vol, ptr = list(volatile), list(mapped)
    for si, size in enumerate(sizes):
        end = 0
        for o, n in sorted([*vol[si], *((o, psize) for o in ptr[si])]):
            if o < end:
                end = size + 1
                break
            end = o + n
        if end > size:
            vol[si], ptr[si] = (), ()
    return tuple(vol), tuple(ptr)


def _volatile_offsets(sdna: Sdna, psize: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Per struct, (offset, size) of volatile fields and run-time pointers, through
    embedded structs."""
    by_name = {n: i for i, n in enumerate(sdna.struct_names)}
    memo: dict[int, tuple[tuple[int, int], ...]] = {}

    def walk(si: int, depth: int) -> tuple[tuple[int, int], ...]:
        if si in memo:
            return memo[si]
        out: list[tuple[int, int]] = []
        if depth < 32:
            name = sdna.struct_names[si]
            for off, size, ftype, fname in sdna.fields[si]:
                if fname.startswith(("*", "(*")):
                    bare = _ARRAY_DIM.sub("", fname.lstrip("*(").split(")")[0]).lstrip("*")
                    runtime = bare in RUNTIME_POINTERS or (name, bare) in RUNTIME_STRUCT_POINTERS
                    if runtime and off % psize == 0:
                        out.extend((off + k, psize) for k in range(0, size, psize))
                    continue
                if (name, fname) in VOLATILE_FIELDS and size == 4:
                    out.append((off, 4))
                    continue
                sub = by_name.get(ftype)
                if sub is not None and sdna.struct_sizes[sub] > 0:
                    inner = walk(sub, depth + 1)
                    step = sdna.struct_sizes[sub]
                    out.extend((off + k * step + p, n) for k in range(size // step)
                               for p, n in inner)
        memo[si] = tuple(out)
        return memo[si]

    return tuple(walk(i, 0) for i in range(len(sdna.struct_names)))
