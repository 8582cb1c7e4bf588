"""Reading many chunks fast: prefetching runs of a file, and plans for direct reads.

A *run* is a stretch of neighbouring chunks in one pack, read with one range request.
``prefetched`` keeps a few runs in flight while a file streams out; ``read_plan`` hands
a client the runs, each with a pre-signed URL good for its byte range only, so it can read
from the bucket itself.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from vstudio.store import format as fmt
from vstudio.store.index import pack_object
from vstudio.store.packs import PackGone, joins_run

if TYPE_CHECKING:
    from vstudio.store.objects import Store

PREFETCH = 4  # such requests under way at once while a file is read


def prefetched(store: Store, entries: Iterable[fmt.Entry]) -> Iterator[bytes]:
    """Pieces in order; runs of neighbouring chunks are fetched a few at once."""
    window: deque[tuple[list[tuple[str, fmt.IndexEntry]] | None, Any]] = deque()
    run: list[tuple[str, fmt.IndexEntry]] = []
    fetching = 0

    def close() -> None:
        nonlocal fetching
        window.append((list(run), store.submit("read", _fetch_run, store, list(run))))
        fetching += 1
        run.clear()

    def emit() -> Iterator[bytes]:
        nonlocal fetching
        item, payload = window.popleft()
        if item is None:
            yield payload
            return
        fetching -= 1
        try:
            plains = payload.result()
        except PackGone:
            for _, e in item:
                yield store.blob(e.key)
            return
        yield from plains

    for ent in entries:
        if ent.type == fmt.E_INLINE:
            if run:
                close()
            window.append((None, ent.data))
        else:
            pack, e = store.packs.locate(ent.id)
            if run:
                rp, prev = run[-1]
                if rp != pack or not joins_run(run[0][1], prev, e):
                    close()
            run.append((pack, e))
        while fetching > PREFETCH or (window and window[0][0] is None):
            yield from emit()
    if run:
        close()
    while window:
        yield from emit()

def _fetch_run(store: Store, run: list[tuple[str, fmt.IndexEntry]]) -> list[bytes]:
    """The run's blobs, opened and checked here in a reader thread: decompression and
    hashing release the GIL, so a file streams out on both cores."""
    first, last = run[0][1], run[-1][1]
    data = store.packs.fetch(run[0][0], first.offset, last.offset + last.length - first.offset)
    out = []
    for pack, e in run:
        start = e.offset - first.offset
        out.append(store.packs.open_blob(pack, e, data[start:start + e.length]))
    return out


def read_plan(store: Store, oid: str, expires: int = 3600) -> dict[str, Any] | None:
    """Where a file's chunks sit, each run with a pre-signed URL for exactly its bytes, so
    a client can fetch them from the bucket itself and nothing else of the pack (whose
    other chunks may be other files' or projects'); None when the store cannot (not S3,
    encrypted, transform)."""
    presign = store.backend.features.presign
    if presign is None or store.codec.encrypted:
        return None
    recipe = store.recipe(oid)
    if recipe is None:
        entries = [fmt.Entry(fmt.E_CHUNK, store.size(oid), id=bytes.fromhex(oid))]
    elif recipe.transform:
        return None
    else:
        entries = list(store.flat(recipe.entries))
    parts: list[dict[str, Any]] = []
    run: list[fmt.IndexEntry] = []
    run_pack = ""

    def close() -> None:
        base = run[0].offset
        length = run[-1].offset + run[-1].length - base
        parts.append({"pack": run_pack, "offset": base, "length": length,
                      "url": presign.presign_range(pack_object(run_pack), base, length, expires),
                      "blobs": [[e.key.hex(), e.offset - base, e.length, e.raw_length,
                                 *([e.inner] if e.in_frame else [])] for e in run]})
        run.clear()

    for ent in entries:
        if ent.type == fmt.E_INLINE:
            if run:
                close()
            parts.append({"inline": base64.b64encode(ent.data).decode()})
            continue
        pack, e = store.packs.locate(ent.id)
        if e.is_delta:  # a patch needs its base: the server reads it
            return None
        if run and (pack != run_pack or not joins_run(run[0], run[-1], e)):
            close()
        run_pack = pack
        run.append(e)
    if run:
        close()
    # "ranged": each URL is for its run's bytes; clients that know no such plan (they
    # looked for whole-pack URLs under "packs") are not sent one, see the plan route
    return {"id": oid, "size": store.size(oid), "ranged": True, "parts": parts}

