"""How files are cut into chunks: a registry of chunkers, with FastCDC as the fallback.

A **chunker** turns a file into **pieces** whose concatenation is the file's bytes (or,
with a transform, the bytes of a *decoded* stream that the transform re-encodes into the
file byte for byte). The store checks every chunker's output against the file and falls
back to FastCDC when a chunker raises or is wrong, so a plug-in can never lose bytes.

Plug-ins (``store/blend.py``, ``store/delta.py``) use:

- ``@register_chunker`` on a class or instance with ``name``, ``detect(head) -> bool``
  (``head`` = the file's first 4 KiB) and ``split(path)``, which returns an iterator of
  ``Piece`` or a ``Split`` (pieces plus the name and parameters of a transform);
- ``@register_transform("name")`` on ``factory(params, source) -> encode`` where
  ``encode(decoded_chunks) -> Iterator[bytes]`` yields the file's bytes and ``source``
  reads other objects of the store (for deltas against a base);
- ``register_delta(hook)``: ``hook(path, previous_id, source) -> Split | None`` is asked
  first when ``put_file(..., previous=ID)`` names the previous version of the same path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from vstudio.store.format import Recipe

log = logging.getLogger("vstudio.store")

HEAD_BYTES = 4096

# FastCDC sizes, measured (bench/bench_store.py): 16 KiB average (+4 KiB minimum) keeps a
# 1 MiB overwrite of a 200 MiB file under 1.1 MiB stored and still cuts at > 1 GB/s.
CDC_AVG = 16 * 1024
CDC_MIN = 4 * 1024
CDC_MAX = 64 * 1024
BLOCK = 8 << 20  # bytes read and cut at once


@dataclass(frozen=True)
class Piece:
    """A part of a file. ``inline`` pieces (tiny headers) live inside the recipe."""

    data: bytes
    inline: bool = False


@dataclass
class Split:
    """A chunker's answer when it needs a transform to rebuild the file.

    ``params`` may be filled while ``pieces`` is consumed; the store reads it after.
    """

    pieces: Iterable[Piece]
    transform: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Chunker(Protocol):
    name: str

    def detect(self, head: bytes) -> bool: ...
    def split(self, path: Path) -> Iterator[Piece] | Split: ...


class ObjectSource(Protocol):
    """What a transform may read from the store."""

    def read_range(self, oid: str, offset: int, length: int) -> bytes: ...
    def get_bytes(self, oid: str) -> bytes: ...
    def size(self, oid: str) -> int: ...


class RecipeSource(ObjectSource, Protocol):
    """What a delta hook reads: also a stored file's recipe (None: a single chunk), to
    find where the previous version sits in its delta chain."""

    def recipe(self, oid: str) -> Recipe | None: ...


Encoder = Callable[[Iterator[bytes]], Iterator[bytes]]
TransformFactory = Callable[[dict[str, Any], ObjectSource], Encoder]
DeltaHook = Callable[[Path, str, RecipeSource], "Split | None"]

_CHUNKERS: list[Chunker] = []
_TRANSFORMS: dict[str, TransformFactory] = {}
_DELTA_HOOKS: list[tuple[str, DeltaHook]] = []  # (chunker name recorded, hook)

C = TypeVar("C")


def register_chunker(chunker: C) -> C:
    """Register a chunker (a class, instantiated without arguments, or an instance)."""
    inst = chunker() if isinstance(chunker, type) else chunker
    if not isinstance(inst, Chunker):
        raise TypeError(f"{chunker!r} is not a Chunker (name, detect, split)")
    _CHUNKERS[:] = [c for c in _CHUNKERS if c.name != inst.name]
    _CHUNKERS.append(inst)
    return chunker


def register_transform(name: str) -> Callable[[TransformFactory], TransformFactory]:
    def deco(factory: TransformFactory) -> TransformFactory:
        _TRANSFORMS[name] = factory
        return factory

    return deco


def register_delta(hook: DeltaHook, chunker_name: str = "delta") -> DeltaHook:
    """Add a hook that may store a file as a change to its previous version; the index
    records ``chunker_name`` as the chunker of what it stores."""
    _DELTA_HOOKS.append((chunker_name, hook))
    return hook


def transform(name: str) -> TransformFactory:
    _load_plugins()
    try:
        return _TRANSFORMS[name]
    except KeyError:
        from vstudio.errors import StoreError

        raise StoreError(f"this object needs the '{name}' transform, which this build of "
                         "vstudio does not have: upgrade vstudio") from None


def delta_hooks() -> list[tuple[str, DeltaHook]]:
    _load_plugins()
    return list(_DELTA_HOOKS)


_plugins_loaded = False


def _load_plugins() -> None:
    """Import the optional chunker modules so they can register themselves."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib import import_module

    for mod in ("vstudio.store.blend", "vstudio.store.delta"):
        try:
            import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                log.warning("chunker plug-in %s failed to load: %s", mod, e)
        except Exception as e:  # a broken plug-in must not break the store
            log.warning("chunker plug-in %s failed to load: %s", mod, e)


class FastCDCChunker:
    """Content-defined chunks of any file; the fallback for every other chunker."""

    name = "fastcdc"

    def __init__(self) -> None:
        from pyfastcdc import FastCDC

        self._cdc = FastCDC(CDC_AVG, min_size=CDC_MIN, max_size=CDC_MAX)

    def detect(self, head: bytes) -> bool:
        return True

    def split(self, path: Path) -> Iterator[Piece]:
        # Streams through a file object: cut_file would mmap the whole file into RSS.
        with open(path, "rb", buffering=0) as f:
            yield from self.split_stream(f)

    def split_stream(self, stream: Any, on_block: Callable[[memoryview], object] | None = None,
                     size_hint: int | None = None,
                     ahead: Callable[..., Future[int]] | None = None
                     ) -> Iterator[Piece]:
        """Chunks of a stream, read in big blocks.

        The last chunk of a block may end only because the block did, so it is cut again
        with the next block's bytes, copied just before them (FastCDC restarts cleanly at
        a chunk boundary, so the cuts equal those over the whole stream). ``on_block``
        sees each block's new bytes once, before they are cut (for hashing).

        With ``ahead`` (``submit`` of a one-thread executor) and a file of more than one
        block, the next block is read and passed to ``on_block`` in that thread while this
        one is cut: reading and hashing release the GIL, so they run on the other core.
        """
        from pyfastcdc import FastCDC

        cdc = FastCDC(CDC_AVG, min_size=CDC_MIN, max_size=CDC_MAX)  # not thread-safe
        block = BLOCK if size_hint is None else max(CDC_MAX, min(BLOCK, size_hint + 1))
        if size_hint is not None and size_hint < block:
            ahead = None  # one block: a thread hand-off would cost more than it saves
        # A block's bytes go at CDC_MAX; the unfinished chunk before them (<= CDC_MAX).
        bufs = [memoryview(bytearray(CDC_MAX + block)) for _ in range(2 if ahead else 1)]
        fill = _filler(stream, block, on_block)
        cur = tail = 0
        pending = ahead(fill, bufs[0]) if ahead else None
        try:
            while True:
                n = pending.result() if pending is not None else fill(bufs[cur])
                nxt = (cur + 1) % len(bufs)
                pending = ahead(fill, bufs[nxt]) if ahead and n else None
                view = bufs[cur][CDC_MAX - tail:CDC_MAX + n]
                end = tail + n
                if not end:
                    return
                chunks = list(cdc.cut_buf(view))
                if n:  # short reads (pipes) are fine too: the tail waits for more bytes
                    chunks.pop()
                for c in chunks:
                    yield Piece(bytes(view[c.offset:c.offset + c.length]))
                if not n:
                    return
                start = chunks[-1].offset + chunks[-1].length if chunks else 0
                tail = end - start
                bufs[nxt][CDC_MAX - tail:CDC_MAX] = view[start:end]
                cur = nxt
        finally:
            if pending is not None:
                pending.exception()  # never leave a read of a closed file running

    def split_bytes(self, data: bytes) -> Iterator[Piece]:
        from pyfastcdc import FastCDC

        cdc = FastCDC(CDC_AVG, min_size=CDC_MIN, max_size=CDC_MAX)
        for chunk in cdc.cut_buf(data):
            yield Piece(bytes(chunk.data))


def _filler(stream: Any, block: int,
            on_block: Callable[[memoryview], object] | None) -> Callable[[memoryview], int]:
    """``fill(view)``: read up to ``block`` bytes of ``stream`` into ``view`` after its
    first CDC_MAX bytes (kept for the unfinished chunk before them), show them to
    ``on_block``, and return how many were read (0: the end)."""
    readinto = getattr(stream, "readinto", None)

    def fill(view: memoryview) -> int:
        if readinto is not None:
            n = readinto(view[CDC_MAX:]) or 0
        else:
            data = stream.read(block) or b""
            n = len(data)
            view[CDC_MAX:CDC_MAX + n] = data
        if n and on_block is not None:
            on_block(view[CDC_MAX:CDC_MAX + n])
        return n

    return fill


FASTCDC = FastCDCChunker()


def chunkers() -> list[Chunker]:
    _load_plugins()
    return list(_CHUNKERS)


def pick_chunker(path: Path) -> Chunker:
    """The first registered chunker that recognises the file's head, else FastCDC."""
    plugins = chunkers()
    if not plugins:
        return FASTCDC
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
    for c in plugins:
        try:
            if c.detect(head):
                return c
        except Exception as e:
            log.warning("chunker %s failed to detect %s: %s", c.name, path, e)
    return FASTCDC


def plugin_splits(path: Path, previous: str | None,
                  store: RecipeSource) -> Iterator[tuple[Split, str]]:
    """What the plug-ins offer for a file, best first, each with the chunker name to
    record: a delta hook's change to ``previous``, then a format-aware chunker's split.
    A plug-in that fails is logged and skipped (the caller falls back to FastCDC)."""
    if previous:
        for name, hook in delta_hooks():
            try:
                split = hook(path, previous, store)
            except Exception as e:
                log.warning("delta hook failed on %s: %s; chunking it whole", path, e)
                continue
            if split is not None:
                yield split, name
    chunker = pick_chunker(path)
    if chunker is not FASTCDC:
        try:
            out = chunker.split(path)
        except Exception as e:
            log.warning("chunker %s failed on %s: %s; using fastcdc", chunker.name, path, e)
            return
        yield (out if isinstance(out, Split) else Split(out)), chunker.name
