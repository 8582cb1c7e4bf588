"""Turning a batch of new chunks into stored blobs: frames of neighbours, and deltas.

Runs in the writer's worker threads (BLAKE3 and zstd release the GIL, so two batches
seal on two cores at once).

- **Frames.** Chunks are small (a .blend body group, 16 KiB of FastCDC), and zstd finds
  far less to reuse inside one small chunk than across its neighbours. The new chunks of
  a batch that are not big are compressed together as one *frame*; each keeps its own
  index entry (frame position + where it starts inside), so dedup and random access stay
  per chunk, and every read is still checked against the chunk's hash.
- **Deltas.** When the previous version of the file is known (``put_file(previous=)``),
  a new chunk is paired with the chunk at the same place in that version; if a zstd
  patch against it (``--patch-from``) is much smaller than the chunk compressed alone,
  the patch is stored instead. Chains are bounded: a base more than ``MAX_DEPTH`` deep is
  replaced by its own base, so a read applies at most ``MAX_DEPTH`` patches.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import blake3
import zstandard

from vstudio.errors import StoreError
from vstudio.store import delta as zdelta
from vstudio.store import format as fmt

if TYPE_CHECKING:
    from vstudio.store.objects import Store

FRAME_ALONE = 1 << 20  # chunks this big are compressed on their own
MAX_DEPTH = 4  # patches applied to read a chunk, at most
DELTA_KEEP = 0.5  # keep a patch under this share of the chunk compressed alone
DELTA_GIVE_UP = 16  # failed delta attempts in a row before a file stops trying
SAMPLE = 64 * 1024  # bytes compressed to guess whether a frame is worth compressing


@dataclass
class Blob:
    """One stored blob of a batch: a chunk alone, a patch, or a frame of several chunks.

    ``members``: (key, raw length, offset inside the frame); ``base``/``depth`` for a patch.
    """

    sealed: bytes
    members: list[tuple[bytes, int, int]]
    framed: bool = False
    base: bytes = b""
    depth: int = 0


@dataclass
class Sealed:
    keys: list[bytes]  # per piece: its id (b"" for inline pieces)
    blobs: list[Blob] = field(default_factory=list)


class DeltaPlan:
    """The previous version's chunks in stream order, to pair new chunks with old ones."""

    def __init__(self, entries: list[fmt.Entry]) -> None:
        self.ids: list[bytes] = []
        self.starts: list[int] = []
        self.where: dict[bytes, int] = {}
        pos = 0
        for e in entries:
            if e.type == fmt.E_CHUNK:
                self.where.setdefault(e.id, len(self.ids))
                self.ids.append(e.id)
                self.starts.append(pos)
            pos += e.length
        self.failures = 0  # shared by the batches of one file: a rough budget

    @classmethod
    def of(cls, store: Store, previous: str) -> DeltaPlan | None:
        """The plan for a file whose previous version is ``previous``, or None."""
        try:
            recipe = store.recipe(previous)
            if recipe is None:
                return cls([fmt.Entry(fmt.E_CHUNK, store.size(previous),
                                      id=bytes.fromhex(previous))])
            if recipe.transform == zdelta.TRANSFORM:
                return None  # its pieces are a whole-file patch, nothing to pair with
            return cls(list(store.flat(recipe.entries)))
        except StoreError:
            return None

    def at(self, offset: int) -> int:
        """Index of the old chunk covering stream offset ``offset`` (-1: none)."""
        i = bisect.bisect_right(self.starts, offset) - 1
        return i if 0 <= i < len(self.ids) else -1

    def candidates(self, keys: list[bytes], offsets: list[int]) -> list[int]:
        """Per piece, the index of the old chunk at the same place (-1: none): the one
        after the last piece found unchanged, else the one at the same stream offset."""
        out = []
        cursor = -1
        for key, off in zip(keys, offsets, strict=True):
            if not key:
                out.append(-1)
                continue
            known = self.where.get(key)
            if known is not None:
                out.append(-1)
                cursor = known + 1
                continue
            i = cursor if 0 <= cursor < len(self.ids) else self.at(off)
            out.append(i)
            cursor = i + 1 if i >= 0 else -1
        return out


class BatchSealer:
    """Seals one batch; ``exists`` says whether a chunk is stored (or being stored)."""

    def __init__(self, store: Store, exists: Callable[[bytes], bool]) -> None:
        self.store = store
        self.exists = exists
        self.codec = store.codec

    def seal(self, datas: list[bytes | None], offsets: list[int],
             plan: DeltaPlan | None) -> Sealed:
        keys = [b"" if d is None else blake3.blake3(d).digest() for d in datas]
        out = Sealed(keys)
        bases = plan.candidates(keys, offsets) if plan is not None else [-1] * len(keys)
        group: list[tuple[bytes, bytes]] = []
        seen: set[bytes] = set()
        for data, key, b in zip(datas, keys, bases, strict=True):
            if data is None or key in seen or self.exists(key):
                continue
            seen.add(key)
            patch = self._delta(key, data, plan, b) if plan is not None and b >= 0 else None
            if patch is not None:
                out.blobs.append(patch)
            else:
                group.append((key, data))
        out.blobs += self.group(group)
        return out

    def group(self, chunks: list[tuple[bytes, bytes]]) -> list[Blob]:
        """New chunks as blobs: big ones alone, the others in one frame."""
        out = []
        small = []
        for key, data in chunks:
            if len(data) >= FRAME_ALONE:
                out.append(Blob(self.codec.seal(key, data), [(key, len(data), 0)]))
            else:
                small.append((key, data))
        if len(small) == 1:
            key, data = small[0]
            out.append(Blob(self.codec.seal(key, data), [(key, len(data), 0)]))
        elif small:
            out.append(self._frame(small))
        return out

    def _frame(self, group: list[tuple[bytes, bytes]]) -> Blob:
        members = []
        pos = 0
        for key, data in group:
            members.append((key, len(data), pos))
            pos += len(data)
        parts = [d for _, d in group]
        return Blob(self.codec.seal_parts(fmt.FRAME_AAD, parts, _worth_compressing(parts)),
                    members, framed=True)

    def _delta(self, key: bytes, data: bytes, plan: DeltaPlan, i: int) -> Blob | None:
        if plan.failures >= DELTA_GIVE_UP:
            return None
        base_key = plan.ids[i]
        base = self._base(base_key)
        if base is None:
            return None
        base_key, depth = base
        try:
            base_plain = self.store.blob(base_key)
            patch = zdelta.compress(data, base_plain)
        except StoreError:
            return None
        alone = len(patch) * 4 < len(data) and len(
            zstandard.ZstdCompressor(level=3).compress(data))
        if not alone or len(patch) >= DELTA_KEEP * alone:
            plan.failures += 1
            return None
        plan.failures = 0
        return Blob(self.codec.seal(key, patch, compress=False), [(key, len(data), 0)],
                    base=base_key, depth=depth + 1)

    def _base(self, key: bytes) -> tuple[bytes, int] | None:
        """The base to patch against (``key`` or, past the depth bound, one of its bases)
        and its depth; None when it is not safely stored (gc may be about to delete it)."""
        while True:
            hit = self.store.index.get(key)
            if hit is None or self.store.is_doomed(key):
                return None
            e = hit[1]
            if e.base_kind != fmt.CHUNK:
                return None
            if not e.is_delta or e.depth < MAX_DEPTH:
                return key, e.depth if e.is_delta else 0
            key = e.base


def _worth_compressing(parts: list[bytes]) -> bool:
    """Random or already compressed data costs compression time for nothing: try a
    sample (the first parts) first."""
    if sum(map(len, parts)) <= 2 * SAMPLE:
        return True
    head = []
    n = 0
    for p in parts:
        head.append(p)
        n += len(p)
        if n >= SAMPLE:
            break
    sample = b"".join(head)[:SAMPLE]
    return len(zstandard.ZstdCompressor(level=1).compress(sample)) < len(sample) * 0.97


SEGMENT_MASK = 63  # about 64 chunks per segment
SEGMENT_MIN, SEGMENT_MAX = 8, 512


def segments(entries: list[fmt.Entry],
             store: Callable[[bytes, bytes], None]) -> list[fmt.Entry]:
    """A long recipe's entries cut into segments where a chunk id hits a boundary (an edit
    rewrites one segment and the short top list only); ``store(key, raw)`` keeps each."""
    top: list[fmt.Entry] = []
    group: list[fmt.Entry] = []

    def close() -> None:
        raw = fmt.encode_segment(group)
        key = blake3.blake3(raw).digest()
        store(key, raw)
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
