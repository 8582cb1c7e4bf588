"""Reads the store's plain ``read_range`` makes slow: transformed files and many small ones.

- A transformed file (a compressed .blend re-encoded from its block stream) can only be
  rebuilt from its start, so each range read used to rebuild everything before it: the
  mount's 4 MiB block reads of a big file were quadratic.  ``Rebuilt`` keeps rebuilt files
  (each checked against its id while it is written) in a bounded folder of the cache, or
  small ones in memory when the store has no cache folder.
- ``read_many``: small files of one commit sit side by side in a pack, so one ranged
  request carries dozens of them (the mount lists a folder and reads them all).
- ``Recent``: chunks a client just uploaded, so the server's check that a recipe rebuilds
  its file reads them from memory.  (Opened frames are kept by the pack layer: ``store/packs.py``.)
"""

from __future__ import annotations

import os
import struct
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import blake3

from vstudio.errors import CorruptObject, ObjectMissing, StoreError
from vstudio.store import format as fmt

if TYPE_CHECKING:
    from vstudio.store.objects import Store

DISK_LIMIT = 4 << 30  # rebuilt files kept in the cache folder, oldest used dropped first
MEMORY_LIMIT = 64 << 20  # without a cache folder: rebuilt files kept in memory
GAP = 512 * 1024  # read across holes up to this size rather than make another request
SPAN = 16 << 20  # at most this much per ranged request
SMALL_FILE = 4 << 20
RECENT_LIMIT = 128 << 20  # read_many rebuilds transformed or segmented files up to this size


class Rebuilt:
    """Rebuilt bytes of transformed files, for range reads."""

    def __init__(self, store: Store, root: Path | None, disk_limit: int = DISK_LIMIT,
                 memory_limit: int = MEMORY_LIMIT) -> None:
        self.store = store
        self.root = root
        self.disk_limit = disk_limit
        self.memory_limit = memory_limit
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._memory_used = 0
        self.builds = 0  # rebuilds done (tests and the benchmark look)

    def read(self, oid: str, size: int, offset: int, end: int) -> bytes | None:
        """Bytes ``offset:end`` of the file, or None when it cannot be cached (too big for
        memory and no cache folder): the caller then streams up to the range."""
        if self.root is None and size > self.memory_limit:
            return None
        with self._lock:
            lock = self._building.setdefault(oid, threading.Lock())
        with lock:  # one rebuild per file, however many readers wait for it
            if self.root is None:
                return self._from_memory(oid)[offset:end]
            path = self.root / oid
            try:
                with open(path, "rb") as f:
                    if os.fstat(f.fileno()).st_size == size:
                        os.utime(f.fileno())  # most recently used: evicted last
                        return os.pread(f.fileno(), end - offset, offset)
            except FileNotFoundError:
                pass
            except OSError:
                return None
            try:
                self._build(oid, path)
            except OSError:  # a full or read-only cache folder: read the slow way
                return None
        with open(path, "rb") as f:
            return os.pread(f.fileno(), end - offset, offset)

    def _from_memory(self, oid: str) -> bytes:
        with self._lock:
            hit = self._memory.get(oid)
            if hit is not None:
                self._memory.move_to_end(oid)
                return hit
        data = self.store.get_bytes(oid)  # checked against the id
        self.builds += 1
        with self._lock:
            self._memory[oid] = data
            self._memory_used += len(data)
            while self._memory_used > self.memory_limit and len(self._memory) > 1:
                _, dropped = self._memory.popitem(last=False)
                self._memory_used -= len(dropped)
        return data

    def _build(self, oid: str, path: Path) -> None:
        assert self.root is not None
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{oid}.{uuid.uuid4().hex[:8]}"
        try:
            with open(tmp, "wb") as f:
                for block in self.store.iter_file(oid):  # raises at the end if wrong
                    f.write(block)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        self.builds += 1
        self._evict(keep=path)

    def _evict(self, keep: Path) -> None:
        assert self.root is not None
        files = []
        for p in self.root.iterdir():
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            files.append((st.st_mtime, st.st_size, p))
        total = sum(size for _, size, _ in files)
        for _, size, p in sorted(files, key=lambda x: x[0]):
            if total <= self.disk_limit:
                break
            if p != keep and not p.name.startswith("."):
                p.unlink(missing_ok=True)
                total -= size


class Recent:
    """Chunks a client just uploaded (each checked against its id on arrival), kept a while
    so the server's check that a recipe rebuilds its file reads them from memory instead of
    back from the bucket.  Bounded; least recently used dropped first."""

    def __init__(self, limit: int = RECENT_LIMIT) -> None:
        self.limit = limit
        self._items: OrderedDict[bytes, bytes] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()
        self.hits = 0

    def put(self, key: bytes, data: bytes) -> None:
        if len(data) > self.limit // 4:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = data
            self._used += len(data)
            while self._used > self.limit:
                _, dropped = self._items.popitem(last=False)
                self._used -= len(dropped)

    def get(self, key: bytes) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
                self.hits += 1
            return data


def read_many(store: Store, oids: list[str]) -> Iterator[tuple[str, bytes]]:
    """``(id, bytes)`` of the files among ``oids`` that can be read, neighbours in a pack
    with one ranged request.  Every file yielded is checked against its id; a missing or
    damaged one is left out (reading it alone says what is wrong)."""
    located: dict[str, tuple[str, fmt.IndexEntry]] = {}
    for oid in dict.fromkeys(oids):
        try:
            located[oid] = store.packs.locate(bytes.fromhex(oid))
        except (ObjectMissing, ValueError):
            continue
    first = _fetch(store, located)
    recipes: dict[str, fmt.Recipe] = {}
    for oid, data in first.items():
        e = located[oid][1]
        if e.base_kind == fmt.CHUNK:
            yield oid, data  # checked: a chunk's id is its hash
        elif e.base_kind == fmt.RECIPE:
            try:
                recipes[oid] = fmt.decode_recipe(data, f"recipe of {oid}")
            except CorruptObject:
                continue
    plain = {oid: r for oid, r in recipes.items()
             if not r.transform and all(x.type != fmt.E_SEGMENT for x in r.entries)}
    wanted: dict[str, tuple[str, fmt.IndexEntry]] = {}
    for r in plain.values():
        for x in r.entries:
            if x.type == fmt.E_CHUNK and x.id.hex() not in wanted:
                try:
                    wanted[x.id.hex()] = store.packs.locate(x.id)
                except ObjectMissing:
                    continue
    chunks = _fetch(store, wanted)
    for oid, r in plain.items():
        parts = [x.data if x.type == fmt.E_INLINE else chunks.get(x.id.hex()) for x in r.entries]
        found = [p for p in parts if p is not None]
        if len(found) != len(parts):
            continue
        data = b"".join(found)
        if blake3.blake3(data).hexdigest() == oid:
            yield oid, data
    for oid, r in recipes.items():  # transformed or long files: the usual way, if small
        if oid not in plain and r.size <= SMALL_FILE:
            try:
                yield oid, store.get_bytes(oid)
            except StoreError:
                continue


def _fetch(store: Store, located: dict[str, tuple[str, fmt.IndexEntry]]) -> dict[str, bytes]:
    """Plain bytes of blobs by name; runs of one pack read together; bad blobs left out."""
    by_pack: dict[str, list[tuple[str, fmt.IndexEntry]]] = {}
    for name, (pack, e) in located.items():
        by_pack.setdefault(pack, []).append((name, e))
    out: dict[str, bytes] = {}
    for pack, items in by_pack.items():
        items.sort(key=lambda it: it[1].offset)
        runs: list[list[tuple[str, fmt.IndexEntry]]] = []
        for item in items:
            run = runs[-1] if runs else None
            if (run is None or item[1].offset - _end(run[-1][1]) > GAP
                    or _end(item[1]) - run[0][1].offset > SPAN):
                runs.append([item])
            else:
                run.append(item)
        for run in runs:
            start = run[0][1].offset
            try:
                data = store.packs.fetch(pack, start, max(_end(e) for _, e in run) - start)
            except StoreError:
                continue
            for name, e in run:
                at = e.offset - start
                try:
                    out[name] = store.packs.open_blob(pack, e, data[at:at + e.length])
                except CorruptObject:
                    continue
    return out


def _end(e: fmt.IndexEntry) -> int:
    return e.offset + e.length


PIECES_MAGIC = b"VSP1"


def range_pieces(store: Store, oid: str, offset: int, length: int) -> bytes | None:
    """The whole pieces covering ``offset:offset+length`` of a file, for a client that
    checks each chunk against its id before it slices the range out (``RemoteStore``):
    ``VSP1 | first piece's offset (u64) | records``, each record ``type (u8) | id (32) |
    length (u32) | bytes`` (inline pieces have a zero id).  None for a transformed file,
    whose bytes are not its pieces'."""
    recipe = store.recipe(oid)
    out = bytearray(PIECES_MAGIC)
    if recipe is None:  # a one-chunk file: the chunk, whose id is the file's
        key = bytes.fromhex(oid)
        data = store.blob(key)
        out += struct.pack("<Q", 0) + _record(fmt.E_CHUNK, key, data)
        return bytes(out)
    if recipe.transform:
        return None
    end = min(offset + length, recipe.size)
    wanted: list[fmt.Entry] = []
    first = -1
    pos = 0
    for ent in recipe.entries:
        if pos >= end:
            break
        if pos + ent.length > offset:
            inner = store.segment(ent.id) if ent.type == fmt.E_SEGMENT else [ent]
            for sub in inner:
                if pos < end and pos + sub.length > offset:
                    first = pos if first < 0 else first
                    wanted.append(sub)
                pos += sub.length
        else:
            pos += ent.length
    out += struct.pack("<Q", max(first, 0))
    for ent, data in zip(wanted, store.decoded(wanted), strict=True):
        out += _record(ent.type, ent.id if ent.type == fmt.E_CHUNK else bytes(32), data)
    return bytes(out)


def _record(typ: int, key: bytes, data: bytes) -> bytes:
    return struct.pack("<B32sI", typ, key, len(data)) + data


def parse_pieces(body: bytes, oid: str, offset: int, length: int) -> bytes:
    """The range from ``range_pieces``' answer, every chunk checked against its id."""
    if body[:4] != PIECES_MAGIC or len(body) < 12:
        raise CorruptObject(f"the server's answer for {oid} is not a piece list")
    (first,) = struct.unpack_from("<Q", body, 4)
    pos, parts = 12, []
    while pos < len(body):
        if pos + 37 > len(body):
            raise CorruptObject(f"the server's piece list for {oid} is truncated")
        typ, key, n = struct.unpack_from("<B32sI", body, pos)
        data = body[pos + 37:pos + 37 + n]
        if len(data) != n:
            raise CorruptObject(f"the server's piece list for {oid} is truncated")
        if typ == fmt.E_CHUNK and blake3.blake3(data).digest() != key:
            raise CorruptObject(f"chunk {key.hex()} of {oid} arrived corrupt")
        parts.append(data)
        pos += 37 + n
    joined = b"".join(parts)
    start = offset - first
    if start < 0:
        raise CorruptObject(f"the server's piece list for {oid} starts after the range")
    return joined[start:start + length]
