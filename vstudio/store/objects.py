"""The store: content-addressed files over a backend, and named references."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar

import blake3

from vstudio.errors import BadInput, CorruptObject, ObjectMissing
from vstudio.store import format as fmt
from vstudio.store.api import NO_PROGRESS, Backend, Progress
from vstudio.store.chunking import transform
from vstudio.store.codec import Codec
from vstudio.store.direct import PREFETCH, prefetched, read_plan
from vstudio.store.download import write_file
from vstudio.store.gcstate import latest_generation, load_doomed, writer_marker
from vstudio.store.memory import tame_malloc
from vstudio.store.packs import Packs
from vstudio.store.reads import Rebuilt, Recent, read_many
from vstudio.store.writer import Writer

T = TypeVar("T")
# What the store's own threads do for its writers and readers (``Store.submit``).
Work = Literal["seal", "upload", "hash", "read"]

REF_PREFIX = "refs/"
_REF_NAME = re.compile(r"^[A-Za-z0-9._@+=-]+(/[A-Za-z0-9._@+=-]+)*$")
_HEX_ID = re.compile(r"^[0-9a-f]{64}$")
META_CACHE = 512  # decoded recipes and segments kept in memory
GC_RECHECK = 1.0  # seconds ``missing``/``has`` may lean on the last look at gc's state


def parse_id(oid: str) -> bytes:
    if not isinstance(oid, str) or not _HEX_ID.match(oid):
        raise BadInput(f"{oid!r} is not an object id (64 lowercase hex digits)")
    return bytes.fromhex(oid)


def check_ref_name(name: str) -> str:
    if not _REF_NAME.match(name or "") or ".." in name.split("/"):
        raise BadInput(f"invalid ref name {name!r}: use letters, digits, '._-' and '/'")
    return name


class Store:
    """``ObjectStore`` over a backend: see ``store/__init__.py`` for the terms."""

    def __init__(self, backend: Backend, codec: Codec, cache_dir: Path | None,
                 upload_threads: int = 2, rebuilt_dir: Path | None = None) -> None:
        self.backend = backend
        self.codec = codec
        self.packs = Packs(backend, codec, cache_dir)  # the layer below: store/packs.py
        self.index = self.packs.index
        self.upload_threads = upload_threads
        tame_malloc()  # before the first worker thread exists
        self._pools: dict[Work, ThreadPoolExecutor] = {
            "seal": ThreadPoolExecutor(2, thread_name_prefix="vstudio-seal"),
            "upload": ThreadPoolExecutor(upload_threads, thread_name_prefix="vstudio-up"),
            "hash": ThreadPoolExecutor(1, thread_name_prefix="vstudio-hash"),
            "read": ThreadPoolExecutor(PREFETCH + 1, thread_name_prefix="vstudio-read"),
        }
        self.doomed: set[bytes] = set()  # blobs gc plans to delete: never deduplicate on them
        self.gc_generation: str | None = None  # the doomed set's object that was read
        self._gc_checked = -GC_RECHECK
        self._gc_lock = threading.Lock()
        self._meta: OrderedDict[bytes, Any] = OrderedDict()
        self._meta_lock = threading.Lock()
        self.rebuilt = Rebuilt(self, rebuilt_dir)
        self.recent = Recent()  # chunks clients just uploaded (store/reads.py)
        self.sync_gc(force=True, reindex=True)

    def describe(self) -> str:
        return self.backend.describe()

    def close(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=True)

    def submit(self, work: Work, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on the store's threads for ``work``: sealing packs (2),
        uploading them (``upload_threads``), hashing a file (1), reading ahead
        (``PREFETCH + 1``). Shared by every writer and reader of this store, so
        their sum stays bounded however many are open."""
        return self._pools[work].submit(fn, *args)

    def is_doomed(self, key: bytes) -> bool:
        return key in self.doomed

    def sync_gc(self, force: bool = False, reindex: bool = False) -> None:
        """Learn what the newest gc doomed and deleted (``store/maintenance.py``).

        One LIST; when a gc has run since, read its doomed set and then the index, so
        that this process, however long it has been open, never deduplicates against a
        blob that a gc marked or removed. Without ``force``, at most every GC_RECHECK s."""
        with self._gc_lock:
            now = time.monotonic()
            if not force and now - self._gc_checked < GC_RECHECK:
                return
            name = latest_generation(self.backend)
            self._gc_checked = now
            if name == self.gc_generation and not reindex:
                return
            doomed = set(load_doomed(self.backend, self.codec, name))
            self.packs.refresh()  # after the name: it shows that gc's deletions
            self.doomed, self.gc_generation = doomed, name

    def missing(self, keys: Iterable[bytes]) -> list[bytes]:
        """Which of these blob ids the store lacks (or would not deduplicate against)."""
        self.sync_gc()
        return [k for k in keys if self.index.get(k) is None or k in self.doomed]

    # --- writing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def writer(self) -> Iterator[Writer]:
        w = Writer(self)
        with writer_marker(self.backend):
            self.sync_gc(force=True)  # after the marker: see gcstate.SLACK
            try:
                yield w
            finally:
                w.close()

    def put_file(self, path: Path, progress: Progress = NO_PROGRESS,
                 previous: str | None = None) -> str:
        with self.writer() as w:
            return w.put_file(path, progress, previous=previous)

    def put_bytes(self, data: bytes) -> str:
        with self.writer() as w:
            return w.put_bytes(data)

    def put_stream(self, stream: Any, progress: Progress = NO_PROGRESS) -> str:
        with self.writer() as w:
            return w.put_stream(stream, progress)

    # --- reading blobs ---------------------------------------------------------------------------

    def blob(self, key: bytes) -> bytes:
        return self.packs.blob(key)

    def blobs(self, keys: Iterable[bytes]) -> Iterator[bytes]:
        """Chunks in order; neighbours in one pack are read with one request."""
        return self.packs.blobs(keys)

    # --- reading files ----------------------------------------------------------------------------

    def recipe(self, oid: str) -> fmt.Recipe | None:
        """The recipe of a file, or None when the file is a single chunk."""
        key = parse_id(oid)
        _, e = self.packs.locate(key)
        if e.base_kind == fmt.RECIPE:
            return self._cached(key, lambda: fmt.decode_recipe(self.blob(key),
                                                               f"recipe of {oid}"))
        if e.base_kind != fmt.CHUNK:
            raise ObjectMissing(f"no file {oid} in the store (it is a part of one)")
        return None

    def _cached(self, key: bytes, load: Callable[[], Any]) -> Any:
        """Decoded recipes and segments, kept a while: range reads (the mount, video
        streaming) ask for the same ones over and over, and ids never change content."""
        with self._meta_lock:
            hit = self._meta.get(key)
            if hit is not None:
                self._meta.move_to_end(key)
                return hit
        value = load()
        with self._meta_lock:
            self._meta[key] = value
            while len(self._meta) > META_CACHE:
                self._meta.popitem(last=False)
        return value

    def segment(self, key: bytes) -> list[fmt.Entry]:
        return self._cached(key, lambda: fmt.decode_segment(self.blob(key),
                                                            f"segment {key.hex()}"))

    def flat(self, entries: list[fmt.Entry]) -> Iterator[fmt.Entry]:
        for ent in entries:
            if ent.type == fmt.E_SEGMENT:
                yield from self.segment(ent.id)
            else:
                yield ent

    def decoded(self, entries: Iterable[fmt.Entry],
                 read: Callable[[list[bytes]], Iterator[bytes]] | None = None
                 ) -> Iterator[bytes]:
        """The pieces' bytes in order, reading chunk runs together."""
        if read is None:
            yield from self._prefetched(entries)
            return
        pending: list[bytes] = []
        for ent in entries:
            if ent.type == fmt.E_INLINE:
                if pending:
                    yield from read(pending)
                    pending = []
                yield ent.data
            else:
                pending.append(ent.id)
                if len(pending) >= 256:
                    yield from read(pending)
                    pending = []
        if pending:
            yield from read(pending)

    def _prefetched(self, entries: Iterable[fmt.Entry]) -> Iterator[bytes]:
        return prefetched(self, entries)

    def stream(self, recipe: fmt.Recipe,
                read: Callable[[list[bytes]], Iterator[bytes]] | None = None) -> Iterator[bytes]:
        decoded = self.decoded(self.flat(recipe.entries), read)
        if not recipe.transform:
            return decoded
        return transform(recipe.transform)(recipe.params, self)(decoded)

    def hash_recipe(self, recipe: fmt.Recipe,
                    read: Callable[[list[bytes]], Iterator[bytes]] | None = None) -> bytes:
        """BLAKE3 of the file a recipe rebuilds (``read`` may serve unflushed chunks)."""
        h = blake3.blake3()
        for block in self.stream(recipe, read):
            h.update(block)
        return h.digest()

    def iter_file(self, oid: str) -> Iterator[bytes]:
        """The file's bytes in blocks; raises ``CorruptObject`` at the end if they are wrong."""
        recipe = self.recipe(oid)
        if recipe is None:
            yield self.blob(bytes.fromhex(oid))
            return
        h = blake3.blake3()
        n = 0
        for block in self.stream(recipe):
            h.update(block)
            n += len(block)
            yield block
        if h.hexdigest() != oid or n != recipe.size:
            raise CorruptObject(f"object {oid} does not rebuild to its id: "
                                "run 'vstudio store check'")

    def get_file(self, oid: str, dest: Path, progress: Progress = NO_PROGRESS) -> None:
        write_file(dest, lambda: self.size(oid), lambda: self.iter_file(oid), progress)

    def get_bytes(self, oid: str) -> bytes:
        return b"".join(self.iter_file(oid))

    def size(self, oid: str) -> int:
        _, e = self.packs.locate(parse_id(oid))
        if e.base_kind == fmt.RECIPE:
            return e.file_size
        if e.base_kind != fmt.CHUNK:
            raise ObjectMissing(f"no file {oid} in the store (it is a part of one)")
        return e.raw_length

    def has(self, oid: str) -> bool:
        """Whether the store holds this file and keeps it: a doomed file counts as absent,
        so callers that skip an upload on ``has`` never lean on what gc will delete."""
        key = parse_id(oid)
        self.sync_gc()
        if key in self.doomed:
            return False
        try:
            _, e = self.packs.locate(key)
        except ObjectMissing:
            return False
        return e.base_kind in (fmt.CHUNK, fmt.RECIPE)

    def read_range(self, oid: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise BadInput("offset and length must not be negative")
        recipe = self.recipe(oid)
        if recipe is None:
            return self.blob(bytes.fromhex(oid))[offset:offset + length]
        end = min(offset + length, recipe.size)
        if offset >= end:
            return b""
        if recipe.transform:  # re-encoding is sequential: rebuild once, keep it a while
            hit = self.rebuilt.read(oid, recipe.size, offset, end)
            if hit is not None:
                return hit
            out = bytearray()
            pos = 0
            for block in self.stream(recipe):
                if pos + len(block) > offset:
                    out += block[max(0, offset - pos):end - pos]
                pos += len(block)
                if pos >= end:
                    break
            return bytes(out)
        return b"".join(self._range(recipe.entries, offset, end))

    def read_many(self, oids: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """``(id, bytes)`` of those files that can be read, small neighbours in one request
        per pack run; each checked against its id; missing or damaged ones left out."""
        return read_many(self, list(oids))

    def _range(self, entries: list[fmt.Entry], start: int, end: int) -> Iterator[bytes]:
        pos = 0
        wanted: list[tuple[fmt.Entry, int]] = []
        for ent in entries:
            if pos >= end:
                break
            if pos + ent.length > start:
                if ent.type == fmt.E_SEGMENT:
                    seg = self.segment(ent.id)
                    inner = list(self._range(seg, start - pos, end - pos))
                    wanted.append((fmt.Entry(fmt.E_INLINE, 0, data=b"".join(inner)), -1))
                else:
                    wanted.append((ent, pos))
            pos += ent.length
        datas = self.decoded(e for e, _ in wanted)
        for (_, at), data in zip(wanted, datas, strict=True):
            if at < 0:
                yield data
            else:
                yield data[max(0, start - at):end - at]

    def read_plan(self, oid: str, expires: int = 3600) -> dict[str, Any] | None:
        """Pre-signed URLs and ranges of a file's chunks (see ``store/direct.py``)."""
        return read_plan(self, oid, expires)

    def grant(self, oid: str) -> str | None:
        """None: whoever opened the store directly reads it without a grant."""
        return None

    def remember(self, grants: Mapping[str, str]) -> None:
        """Nothing to keep: see ``grant``."""

    # --- references ---------------------------------------------------------------------------

    def _ref_obj(self, name: str) -> str:
        return REF_PREFIX + check_ref_name(name)

    def put_ref(self, name: str, data: bytes) -> None:
        obj = self._ref_obj(name)
        self.backend.put(obj, self.codec.seal(obj.encode(), bytes(data), compress=False))

    def create_ref(self, name: str, data: bytes) -> bool:
        obj = self._ref_obj(name)
        return self.backend.create(obj, self.codec.seal(obj.encode(), bytes(data),
                                                        compress=False))

    def get_ref(self, name: str) -> bytes:
        obj = self._ref_obj(name)
        try:
            stored = self.backend.get(obj)
        except ObjectMissing:
            raise ObjectMissing(f"no ref {name!r} in the store") from None
        return self.codec.open(obj.encode(), stored, f"ref {name!r}")

    def list_refs(self, prefix: str = "") -> list[str]:
        return sorted(o.name[len(REF_PREFIX):] for o in self.backend.list(REF_PREFIX + prefix))

    def delete_ref(self, name: str) -> None:
        self.backend.delete(self._ref_obj(name))

