"""Blocks of file content: fetched lazily, prefetched in threads, cached on disk.

A read touches only the blocks under it; each block is one ``read_range`` of the store,
which fetches and hash-checks only the chunks it needs. Fetched blocks go to a bounded
on-disk LRU (``BlockCache``) shared by every mount on the machine (file names are
content ids, so mounts of different projects or servers never clash) and to a small
in-memory LRU that serves the many 128 KiB kernel reads of one block.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import blake3

from vstudio.errors import CorruptObject

BLOCK_SIZE = 4 * 1024 * 1024
_MAGIC = b"VSB1"
_HEADER = len(_MAGIC) + 32  # magic + BLAKE3 of the block, checked on every load


def default_cache_dir() -> Path:
    env = os.environ.get("VSTUDIO_CACHE")
    if env:
        return Path(env).expanduser() / "blocks"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vstudio" / "blocks"


class BlockCache:
    """A bounded on-disk LRU of verified blocks, safe across threads and processes.

    Writes are temp file + rename, so a reader in another process sees a whole block or
    none. Recency is the file's mtime (touched on hit); when the total passes ``max_bytes``
    the oldest files go until it is under 90% of it. A damaged file is dropped, not served.
    """

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        if not root.is_dir():
            # Plain bytes of possibly encrypted stores end up here: keep them private.
            root.mkdir(parents=True, mode=0o700, exist_ok=True)
        self._lock = threading.Lock()
        self._total = self._scan_total()
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def _scan_total(self) -> int:
        total = 0
        for _, size, _ in self._entries():
            total += size
        return total

    def _entries(self) -> list[tuple[Path, int, float]]:
        out = []
        for sub in os.scandir(self.root):
            if len(sub.name) != 2 or not sub.is_dir():
                continue  # only the two-hex-digit folders this class makes
            for f in os.scandir(sub.path):
                try:
                    st = f.stat()
                except FileNotFoundError:  # evicted by another process meanwhile
                    continue
                out.append((Path(f.path), st.st_size, st.st_mtime))
        return out

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            self.misses += 1
            return None
        data = raw[_HEADER:]
        if raw[:4] != _MAGIC or blake3.blake3(data).digest() != raw[4:_HEADER]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            self.misses += 1
            return None
        with contextlib.suppress(OSError):
            os.utime(path)
        self.hits += 1
        return data

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{key}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(_MAGIC + blake3.blake3(data).digest())
                f.write(data)
            os.replace(tmp, path)
        except OSError:  # a full or read-only cache disk must not fail the read
            with contextlib.suppress(OSError):
                tmp.unlink()
            return
        with self._lock:
            self._total += len(data) + _HEADER
            over = self._total > self.max_bytes
        if over:
            self.evict()

    def evict(self) -> None:
        """Drop least recently used blocks until the cache is under 90% of its bound."""
        with self._lock:
            entries = sorted(self._entries(), key=lambda e: e[2])
            total = sum(size for _, size, _ in entries)
            goal = int(self.max_bytes * 0.9)
            for path, size, _ in entries:
                if total <= goal:
                    break
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                total -= size
            self._total = total


ReadFn = Callable[[str, int, int], bytes]
# Optional: whole small files by id in one go, yielding (id, bytes) as they come. A store
# that keeps small files side by side in packs answers many with one request. What it
# yields is checked against the id here, so a wrong or partial answer costs only a retry.
ReadManyFn = Callable[[list[str]], Iterator[tuple[str, bytes]]]


class BlockReader:
    """Serves ``read(oid, size, offset, length)`` from blocks; fetches run in a pool."""

    def __init__(self, read_fn: ReadFn, cache: BlockCache | None, *,
                 read_many: ReadManyFn | None = None,
                 block_size: int = BLOCK_SIZE, threads: int = 12,
                 memory_bytes: int = 128 * 1024 * 1024, readahead_blocks: int = 12) -> None:
        self._read_fn = read_fn
        self._read_many = read_many
        self.cache = cache
        self.block_size = block_size
        self.readahead_blocks = readahead_blocks
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="vstudio-block")
        self._saver = ThreadPoolExecutor(1, thread_name_prefix="vstudio-cache")
        # Reentrant: a future that is already done runs its callback in the caller's thread.
        self._lock = threading.RLock()
        self._memory: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._memory_bytes = memory_bytes
        self._memory_used = 0
        self._inflight: dict[tuple[str, int], Future[bytes]] = {}
        self.fetched = 0  # blocks fetched from the store, for tests and the benchmark

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._saver.shutdown(wait=True)  # blocks being saved are kept, not half-written

    def _key(self, oid: str, index: int) -> str:
        return f"{oid}.{self.block_size}.{index}"

    def _fetch(self, oid: str, size: int, index: int) -> bytes:
        key = self._key(oid, index)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        start = index * self.block_size
        want = min(self.block_size, size - start)
        data = self._read_fn(oid, start, want)
        if len(data) != want:
            raise CorruptObject(f"object {oid}: expected {want} bytes at {start}, got {len(data)}")
        self.fetched += 1
        if self.cache is not None:
            # Off the critical path: the waiting reader gets the block before it is saved.
            self._saver.submit(self.cache.put, key, data)
        return data

    def _future(self, oid: str, size: int, index: int) -> Future[bytes] | bytes:
        """The block if in memory, else the (possibly shared) future that fetches it."""
        k = (oid, index)
        with self._lock:
            hit = self._memory.get(k)
            if hit is not None:
                self._memory.move_to_end(k)
                return hit
            fut = self._inflight.get(k)
            if fut is None:
                fut = self._pool.submit(self._fetch, oid, size, index)
                self._inflight[k] = fut
                fut.add_done_callback(lambda f, k=k: self._landed(k, f))  # type: ignore[misc]
            return fut

    def _landed(self, k: tuple[str, int], fut: Future[bytes]) -> None:
        with self._lock:
            self._inflight.pop(k, None)
            if fut.cancelled() or fut.exception() is not None:
                return  # errors reach the waiting reader; nothing is remembered
            data = fut.result()
            old = self._memory.pop(k, None)
            self._memory_used += len(data) - (len(old) if old is not None else 0)
            self._memory[k] = data
            while self._memory_used > self._memory_bytes and len(self._memory) > 1:
                _, dropped = self._memory.popitem(last=False)
                self._memory_used -= len(dropped)

    def block(self, oid: str, size: int, index: int) -> bytes:
        got = self._future(oid, size, index)
        return got if isinstance(got, bytes) else got.result()

    def prefetch(self, oid: str, size: int, first: int, count: int) -> None:
        last = min((size - 1) // self.block_size if size else -1, first + count - 1)
        for index in range(first, last + 1):
            self._future(oid, size, index)

    def read(self, oid: str, size: int, offset: int, length: int,
             sequential: bool = False) -> bytes:
        """Bytes ``[offset, offset+length)`` of a file of ``size`` bytes (fewer at the end)."""
        data, start, n = self.read_span(oid, size, offset, length, sequential)
        return data[start:start + n] if (start, n) != (0, len(data)) else data

    def read_span(self, oid: str, size: int, offset: int, length: int,
                  sequential: bool = False) -> tuple[bytes, int, int]:
        """Like ``read`` but without the final copy: ``(buffer, start, count)``.

        The FUSE layer copies ``buffer[start:start+count]`` straight into the kernel's
        buffer, saving one copy of every byte on the hot path.
        """
        end = min(size, offset + length)
        if offset >= end:
            return b"", 0, 0
        bs = self.block_size
        first, last = offset // bs, (end - 1) // bs
        if sequential and self.readahead_blocks:
            self.prefetch(oid, size, last + 1, self.readahead_blocks)
        if first == last:
            return self.block(oid, size, first), offset - first * bs, end - offset
        futures = [self._future(oid, size, i) for i in range(first, last + 1)]
        parts = [f if isinstance(f, bytes) else f.result() for f in futures]
        return b"".join(parts), offset - first * bs, end - offset

    def warm(self, oid: str, size: int) -> None:
        """Fetch a small file's first block in the background (directory read-ahead)."""
        if size > 0:
            self._future(oid, size, 0)

    def warm_many(self, files: list[tuple[str, int]], min_batch: int = 1) -> None:
        """Fetch whole small files (one block each) in the background, batched if possible.

        Unless the first file is missing, nothing is asked for until ``min_batch`` files
        are, so a reader walking a folder causes a few big batches, not one per file.
        """
        small = [(oid, size) for oid, size in files if 0 < size <= self.block_size]
        if self._read_many is None:
            for oid, size in small:
                self._future(oid, size, 0)
            return
        mine: dict[str, tuple[int, Future[bytes]]] = {}
        with self._lock:
            missing = [f for f in small
                       if (f[0], 0) not in self._memory and (f[0], 0) not in self._inflight]
            first_missing = bool(small) and bool(missing) and missing[0] == small[0]
            if not first_missing and len(missing) < min_batch:
                return
            for oid, size in missing:
                k = (oid, 0)
                if k in self._memory or k in self._inflight or oid in mine:
                    continue
                fut: Future[bytes] = Future()
                self._inflight[k] = fut
                fut.add_done_callback(lambda f, k=k: self._landed(k, f))  # type: ignore[misc]
                mine[oid] = (size, fut)
        if mine:
            self._pool.submit(self._fetch_many, mine)

    def _fetch_many(self, wanted: dict[str, tuple[int, Future[bytes]]]) -> None:
        pending = dict(wanted)
        cached = self.cache
        try:
            if cached is not None:
                for oid in list(pending):
                    hit = cached.get(self._key(oid, 0))
                    if hit is not None:
                        pending.pop(oid)[1].set_result(hit)
            if pending and self._read_many is not None:
                for oid, data in self._read_many(list(pending)):
                    item = pending.get(oid)
                    if item is None or len(data) != item[0]:
                        continue
                    if blake3.blake3(data).hexdigest() != oid:
                        continue  # not the file's bytes (e.g. a multi-chunk file's recipe)
                    del pending[oid]
                    self.fetched += 1
                    if cached is not None:
                        self._saver.submit(cached.put, self._key(oid, 0), data)
                    item[1].set_result(data)
        except Exception:  # the batch is only a shortcut; single reads below say what failed
            pass
        for oid, (size, fut) in pending.items():  # the rest one by one, in parallel
            self._pool.submit(self._fetch_into, oid, size, fut)

    def _fetch_into(self, oid: str, size: int, fut: Future[bytes]) -> None:
        try:
            fut.set_result(self._fetch(oid, size, 0))
        except Exception as e:
            fut.set_exception(e)
