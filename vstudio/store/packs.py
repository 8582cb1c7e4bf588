"""The pack and index layer: where a blob is, and its checked plain bytes.

Below it: the backend (``store/api.py``), the codec and the index (``store/index.py``).
Above it: files and refs (``store/objects.py`` and the modules that read and write for
it), then maintenance. Those use only this public interface:

- ``Packs.locate(key)``: the pack and index entry of a blob (re-reading the index once
  when another process may have written it since);
- ``Packs.fetch(pack, offset, length)``: stored bytes of a pack; ``PackGone`` when the
  pack is not in the backend (a gc repacked it: ``refresh`` and locate again);
- ``Packs.open_blob(pack, entry, stored)``: plain bytes from stored bytes, checked
  against the blob's hash (framed chunks and deltas included);
- ``Packs.blob(key)`` / ``Packs.blobs(keys)``: the two together, neighbours in one request;
- ``joins_run``/``follows``: which neighbouring blobs one ranged request carries.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import blake3

from vstudio.errors import CorruptObject, ObjectMissing
from vstudio.store import format as fmt
from vstudio.store.api import Backend
from vstudio.store.codec import Codec
from vstudio.store.index import Index, pack_object

COALESCE = 4 << 20  # read neighbouring chunks of one pack in one request, up to this
FRAMES_KEPT = 8  # opened frames kept (at most ~4 MiB each): readers in a few threads
WRITING = "(being written)"  # the pack name of blobs still in a writer's memory


class PackGone(CorruptObject):
    """A pack the index names is not in the backend."""


class Frames:
    """Plain bytes of recently opened frames, by (pack, offset): a frame's chunks are
    usually read one after the other, and each would otherwise decompress it again."""

    def __init__(self, kept: int = FRAMES_KEPT) -> None:
        self.kept = kept
        self._items: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, pack: str, offset: int, load: Callable[[], bytes]) -> bytes:
        if pack.startswith("("):  # a pack being written: offsets are not final names
            return load()
        with self._lock:
            hit = self._items.get((pack, offset))
            if hit is not None:
                self._items.move_to_end((pack, offset))
                return hit
        data = load()
        with self._lock:
            self._items[(pack, offset)] = data
            while len(self._items) > self.kept:
                self._items.popitem(last=False)
        return data


def joins_run(first: fmt.IndexEntry, prev: fmt.IndexEntry, e: fmt.IndexEntry) -> bool:
    """Whether ``e`` (after ``prev``, in a run starting at ``first``, all in one pack) comes
    with the same ranged read.  Chunks of one frame always do: the frame is read whole anyway,
    and a frame can be a little over ``COALESCE`` (incompressible data), which must not make
    each of its chunks a read of the whole frame."""
    if e.in_frame and prev.in_frame and e.offset == prev.offset:
        return True
    return follows(prev, e) and e.offset + e.length - first.offset <= COALESCE


def follows(prev: fmt.IndexEntry, e: fmt.IndexEntry) -> bool:
    """Whether ``e`` is stored right after ``prev`` (or in the same frame), so both come
    with one ranged read."""
    return e.offset == prev.offset + prev.length or (
        e.in_frame and prev.in_frame and e.offset == prev.offset)


class Packs:
    """Blobs in packs, found through the index."""

    def __init__(self, backend: Backend, codec: Codec, cache_dir: Path | None) -> None:
        self.backend = backend
        self.codec = codec
        self.index = Index(backend, codec, cache_dir)
        self.frames = Frames()  # plain bytes of the last frames read
        self._refresh_lock = threading.Lock()

    def refresh(self) -> None:
        """Re-read the index: another process wrote, or a gc repacked, since."""
        with self._refresh_lock:
            self.index.refresh()

    def locate(self, key: bytes) -> tuple[str, fmt.IndexEntry]:
        hit = self.index.get(key)
        if hit is None:
            self.refresh()  # another process may have written it since we opened
            hit = self.index.get(key)
        if hit is None:
            raise ObjectMissing(f"no object {key.hex()} in the store")
        return hit

    def fetch(self, pack: str, offset: int, length: int) -> bytes:
        try:
            return self.backend.get_range(pack_object(pack), offset, length)
        except ObjectMissing:
            raise PackGone(f"pack {pack} is missing from the store: run "
                           "'vstudio store check'") from None

    def open_blob(self, pack: str, e: fmt.IndexEntry, stored: bytes) -> bytes:
        """A blob's plain bytes from its stored bytes (for a framed chunk: the frame's),
        checked against its hash."""
        what = f"object {e.key.hex()} in pack {pack}"
        if len(stored) != e.length:
            raise CorruptObject(f"{what} is truncated: run 'vstudio store check'")
        if e.in_frame:
            frame = self.frames.get(pack, e.offset, lambda: self.codec.open(
                fmt.FRAME_AAD, stored, f"frame at {e.offset} of pack {pack}"))
            plain = frame[e.inner:e.inner + e.raw_length]
        else:
            plain = self.codec.open(e.key, stored, what)
        if e.is_delta:
            plain = self._undelta(e, plain, what)
        want = e.check if e.base_kind == fmt.RECIPE else e.key
        if len(plain) != e.raw_length or blake3.blake3(plain).digest() != want:
            raise CorruptObject(f"{what} is corrupt (it does not match its hash): "
                                "run 'vstudio store check'")
        return plain

    def _undelta(self, e: fmt.IndexEntry, patch: bytes, what: str) -> bytes:
        from vstudio.store.delta import DeltaError, decompress

        try:
            base = self.blob(e.base)  # at most ``depth`` more of these (writer bounds it)
        except ObjectMissing:
            raise CorruptObject(f"{what} is a delta against {e.base.hex()}, which is "
                                "missing: run 'vstudio store check'") from None
        try:
            return decompress(patch, base, e.raw_length)
        except DeltaError as err:
            raise CorruptObject(f"{what} does not apply to its base ({err.message}): "
                                "run 'vstudio store check'") from None

    def blob(self, key: bytes) -> bytes:
        pack, e = self.locate(key)
        try:
            return self.open_blob(pack, e, self.fetch(pack, e.offset, e.length))
        except PackGone:
            self.refresh()  # a gc repacked it: learn the new place
            pack2, e = self.locate(key)
            if pack2 == pack:
                raise
            return self.open_blob(pack2, e, self.fetch(pack2, e.offset, e.length))

    def blobs(self, keys: Iterable[bytes]) -> Iterator[bytes]:
        """Blobs in order; neighbours in one pack are read with one request."""
        run: list[tuple[str, fmt.IndexEntry]] = []

        def flush() -> Iterator[bytes]:
            pack, first = run[0]
            last = run[-1][1]
            try:
                data = self.fetch(pack, first.offset, last.offset + last.length - first.offset)
            except PackGone:
                keys = [e.key for _, e in run]
                run.clear()
                for k in keys:
                    yield self.blob(k)
                return
            for _, e in run:
                start = e.offset - first.offset
                yield self.open_blob(pack, e, data[start:start + e.length])
            run.clear()

        for key in keys:
            pack, e = self.locate(key)
            if run:
                rp, re_ = run[-1]
                if rp != pack or not joins_run(run[0][1], re_, e):
                    yield from flush()
            run.append((pack, e))
        if run:
            yield from flush()
