"""The merged index: which pack holds each blob, loaded from the bucket's index objects.

Each pack ``packs/XX/NAME`` has one index object ``index/NAME``, written after the pack,
so an index entry never points at missing data. The decoded index objects are cached in
``cache_dir`` (rebuildable from the bucket at any time), so opening a store on S3 costs
one LIST plus a GET for each index not seen before.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vstudio.errors import CorruptObject, ObjectMissing
from vstudio.store.api import Backend
from vstudio.store.codec import Codec
from vstudio.store.format import IndexEntry, decode_index

INDEX_PREFIX = "index/"
PACK_PREFIX = "packs/"


def pack_object(pack: str) -> str:
    return f"{PACK_PREFIX}{pack[:2]}/{pack}"


def index_object(pack: str) -> str:
    return INDEX_PREFIX + pack


def index_aad(pack: str) -> bytes:
    return b"index/" + pack.encode()


class Index:
    """Blob id -> (pack, entry); thread-safe for concurrent readers and writers."""

    def __init__(self, backend: Backend, codec: Codec, cache_dir: Path | None) -> None:
        self.backend = backend
        self.codec = codec
        self.cache_dir = cache_dir
        self.blobs: dict[bytes, tuple[str, IndexEntry]] = {}
        self.packs: dict[str, list[IndexEntry]] = {}
        self.bad: dict[str, str] = {}  # pack -> why its index object is unreadable
        self._lock = threading.Lock()

    def add(self, pack: str, entries: list[IndexEntry], raw: bytes | None = None) -> None:
        with self._lock:
            self.packs[pack] = entries
            for e in entries:
                self.blobs[e.key] = (pack, e)
        if raw is not None:
            self._cache_put(pack, raw)

    def get(self, key: bytes) -> tuple[str, IndexEntry] | None:
        return self.blobs.get(key)

    def remove_packs(self, packs: Iterable[str]) -> None:
        with self._lock:
            for p in packs:
                self.packs.pop(p, None)
                if self.cache_dir:
                    (self.cache_dir / p).unlink(missing_ok=True)
            self.blobs = {e.key: (p, e) for p, es in self.packs.items() for e in es}

    def _cache_put(self, pack: str, raw: bytes) -> None:
        if not self.cache_dir:
            return
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_dir / f".{uuid.uuid4().hex}"
            tmp.write_bytes(raw)
            os.replace(tmp, self.cache_dir / pack)
        except OSError:
            pass  # the cache is an optimisation only

    def _cache_get(self, pack: str) -> bytes | None:
        if not self.cache_dir:
            return None
        try:
            return (self.cache_dir / pack).read_bytes()
        except OSError:
            return None

    def fetch(self, pack: str) -> bytes:
        """The plain bytes of one index object, straight from the backend."""
        stored = self.backend.get(index_object(pack))
        return self.codec.open(index_aad(pack), stored, f"index of pack {pack}")

    def refresh(self) -> None:
        """Load index objects not seen yet and forget packs that are gone (after a gc)."""
        listed = {o.name[len(INDEX_PREFIX):] for o in self.backend.list(INDEX_PREFIX)}
        gone = set(self.packs) - listed
        if gone:
            self.remove_packs(gone)
        new = [p for p in listed if p not in self.packs]
        if not new:
            return

        def load(pack: str) -> tuple[str, list[IndexEntry]] | None:
            raw = self._cache_get(pack)
            if raw is not None:
                with contextlib.suppress(Exception):
                    return pack, decode_index(raw, f"cached index of pack {pack}")
            try:
                raw = self.fetch(pack)
                entries = decode_index(raw, f"index of pack {pack}")
            except ObjectMissing:
                return None  # deleted between LIST and GET by a concurrent gc
            except CorruptObject as e:
                self.bad[pack] = e.message  # reported by 'store check', skipped here
                return None
            self._cache_put(pack, raw)
            return pack, entries

        workers = 1 if len(new) < 4 else 8
        with ThreadPoolExecutor(workers) as pool:
            for result in pool.map(load, new):
                if result is not None:
                    self.add(*result)
        if self.cache_dir and self.cache_dir.is_dir():
            for f in self.cache_dir.iterdir():
                if not f.name.startswith(".") and f.name not in listed:
                    f.unlink(missing_ok=True)
