"""Store upkeep: statistics, consistency checks and garbage collection.

Garbage collection is safe while other processes write, in two phases:

1. A run finds blobs that nothing reaches (from the refs and the ids the caller passes)
   and records them with the time in a new generation object ``gc/doomed-NNN``. Writers
   never deduplicate against a doomed blob: they store a fresh copy instead.
2. A later run, at least ``grace`` seconds on, deletes the doomed blobs that are still
   unreached, in packs older than ``grace``. A writer that deduplicated against a blob
   before it was doomed has had ``grace`` seconds to reference it.

Every write batch (and ``missing``/``has``, at most a second stale) first looks which
generation is the newest: one LIST. A process that opened the store long ago (``vstudio
serve``) thereby learns both the new doomed set and, by re-reading the index, which packs
the last gc deleted; it never deduplicates against a blob that is gone or about to go.

Writer batches leave a marker ``writers/ID`` while open, written before the batch reads
the generation; a batch that may have read an older generation than a doomed blob's (its
marker is older than ``grace`` minus ``SLACK``) and is still open holds deletion back.
``grace=0`` deletes at once (no concurrent writers).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import blake3

from vstudio.errors import CorruptObject, ObjectMissing, StoreError
from vstudio.store import format as fmt
from vstudio.store.gcstate import (
    DOOMED,
    SLACK,
    STALE_WRITER,
    WRITERS,
    generations,
    latest_generation,
    load_doomed,
    store_generation,
)
from vstudio.store.index import INDEX_PREFIX, PACK_PREFIX, index_object, pack_object
from vstudio.store.objects import Store

if TYPE_CHECKING:
    from vstudio.store.api import ObjectStore
    from vstudio.store.writer import Writer

_HEX = re.compile(rb"[0-9a-f]{64}")


def opened(store: ObjectStore) -> Store:
    """``store`` as the store this process opened itself: upkeep reads its packs."""
    if not isinstance(store, Store):
        raise StoreError("stats, check and gc need the studio's store itself, not a client "
                         "of a server (which runs them when asked: 'vstudio store --server')")
    return store


def stats(objects: ObjectStore) -> dict[str, Any]:
    """Sizes and counts: bytes put, bytes the backend holds, chunks, packs, refs."""
    store = opened(objects)
    store.index.refresh()
    stored = sum(o.size for o in store.backend.list(""))
    temp = store.backend.features.temp
    stored += temp.temp_bytes() if temp is not None else 0  # a local folder's half-written files
    logical = chunks = 0
    chunkers: Counter[str] = Counter()
    for _, e in store.index.blobs.values():
        kind = e.base_kind
        if kind == fmt.CHUNK:
            chunks += 1
        if kind == fmt.RECIPE:
            logical += e.file_size
            chunkers[e.chunker] += 1
        elif e.kind & fmt.FILE_FLAG:
            logical += e.raw_length
            chunkers[e.chunker] += 1
    return {"backend": store.describe(), "encrypted": store.codec.encrypted,
            "logical_bytes": logical, "stored_bytes": stored, "chunks": chunks,
            "packs": len(store.index.packs), "chunkers": dict(chunkers),
            "refs": len(store.list_refs())}


def _children(store: Store, key: bytes, e: fmt.IndexEntry) -> Iterator[bytes]:
    """Blobs a recipe or segment uses, plus ids named in a transform's parameters, and
    the base of a delta chunk (gc must keep a base while any patch against it lives)."""
    if e.is_delta:
        yield e.base
    if e.base_kind == fmt.RECIPE:
        r = fmt.decode_recipe(store.blob(key), f"recipe of {key.hex()}")
        entries = r.entries
        for m in _HEX.findall(json.dumps(r.params).encode()):
            yield bytes.fromhex(m.decode())
    elif e.base_kind == fmt.SEGMENT:
        entries = fmt.decode_segment(store.blob(key), f"segment {key.hex()}")
    else:
        return
    for ent in entries:
        if ent.type != fmt.E_INLINE:
            yield ent.id


def reachable(store: Store, roots: Iterable[bytes],
              seen: set[bytes] | None = None) -> tuple[set[bytes], list[str]]:
    """Blobs reached from ``roots`` (added to ``seen``, walked only once) and problems."""
    seen = set() if seen is None else seen
    problems: list[str] = []
    todo = list(roots)
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        hit = store.index.get(key)
        if hit is None:
            problems.append(f"object {key.hex()} is missing")
            continue
        seen.add(key)
        try:
            todo.extend(_children(store, key, hit[1]))
        except StoreError as err:
            problems.append(err.message)
    return seen, problems


def ids_in(value: bytes) -> set[bytes]:
    """Every 64-hex id written anywhere in a ref's value keeps that object alive."""
    return {bytes.fromhex(m.decode()) for m in _HEX.findall(value)}


def ref_roots(store: Store) -> set[bytes]:
    roots: set[bytes] = set()
    for name in store.list_refs():
        with contextlib.suppress(ObjectMissing):  # deleted since the listing
            roots.update(ids_in(store.get_ref(name)))
    return roots


def check_roots(store: Store, live: Iterable[str] = ()) -> list[str]:
    """Walk from every root: each ref, then the ids the catalog keeps (``live``).

    Each problem names the root it was reached from, so a dangling ref is named."""
    problems: list[str] = []
    values: dict[str, bytes] = {}
    for name in store.list_refs():  # a failing listing is an error, not "consistent"
        try:
            values[name] = store.get_ref(name)
        except ObjectMissing:
            continue  # deleted since the listing
        except StoreError as err:
            problems.append(f"ref {name}: {err.message}")
    # A ref may name another ref's value by its id (a commit its parent commit, whose
    # bytes live in a ref): such an id is satisfied by that ref, not by an object.
    seen = {blake3.blake3(v).digest() for v in values.values()}
    for name, value in values.items():
        problems += [f"ref {name}: {p}" for p in reachable(store, ids_in(value), seen)[1]]
    live_ids = {bytes.fromhex(x) for x in live}
    problems += [f"catalog: {p}" for p in reachable(store, live_ids, seen)[1]]
    return problems


def check(objects: ObjectStore, read_data: bool = False,
          live: Iterable[str] = ()) -> list[str]:
    """Problems found walking packs, indexes and every root (refs, then ``live``)."""
    store = opened(objects)
    store.index.refresh()
    problems = [f"index of pack {p}: {why}" for p, why in sorted(store.index.bad.items())]
    packs = {o.name.rsplit("/", 1)[-1]: o for o in store.backend.list(PACK_PREFIX)}
    for pack, entries in sorted(store.index.packs.items()):
        obj = packs.get(pack)
        if obj is None:
            problems.append(f"pack {pack} is missing (its index lists {len(entries)} objects)")
            continue
        end = max((e.offset + e.length for e in entries), default=0)
        if obj.size < end:
            problems.append(f"pack {pack} is truncated ({obj.size} of {end}+ bytes)")
            continue
        if read_data:
            problems += _check_pack_data(store, pack, entries)
    files = [(k, e) for k, (_, e) in store.index.blobs.items() if e.base_kind == fmt.RECIPE]
    _, missing = reachable(store, (k for k, _ in files))
    problems += sorted(set(missing))
    return problems + check_roots(store, live)


def _check_pack_data(store: Store, pack: str, entries: list[fmt.IndexEntry]) -> list[str]:
    try:
        data = store.backend.get(pack_object(pack))
    except ObjectMissing:
        return [f"pack {pack} is missing"]
    if blake3.blake3(data).hexdigest() != pack:
        bad = []
        for e in entries:
            try:
                store.packs.open_blob(pack, e, data[e.offset:e.offset + e.length])
            except CorruptObject as err:
                bad.append(err.message.split(":")[0])
        return [f"pack {pack} is corrupt", *bad]
    return []


def gc(objects: ObjectStore, live: Iterable[str] = (),
       grace_seconds: float = 3600.0) -> dict[str, int]:
    """Delete what no root reaches, in two runs ``grace_seconds`` apart (0: at once).

    Roots: every 64-hex-digit id written anywhere in a ref's value (so a ref may simply
    list the ids it keeps alive), plus the ``live`` ids the caller passes (``vstudio store
    gc`` passes those of ``vstudio.store.roots`` providers, for parts that keep ids only in
    the catalog). Objects reached from a root (a file's chunks) stay. Safe with concurrent
    writers: see the module docstring.
    """
    store, grace = opened(objects), grace_seconds
    now = time.time()
    backend = store.backend
    alive, doomed, deletable = _mark(store, live, grace, now)
    pack_age = {o.name.rsplit("/", 1)[-1]: now - o.mtime for o in backend.list(PACK_PREFIX)}
    removed = freed = repacked = 0
    for pack, entries in list(store.index.packs.items()):
        if pack_age.get(pack, 0.0) < grace:
            continue
        if entries and all(e.key in deletable for e in entries):
            # Index first: a crash between the two leaves an orphan pack, never a dangling index.
            backend.delete(index_object(pack))
            freed += _size(store, pack)
            backend.delete(pack_object(pack))
            store.index.remove_packs([pack])
            removed += 1
            for e in entries:
                doomed.pop(e.key, None)
        elif entries:
            repacked += _maybe_repack(store, pack, entries, deletable, doomed)
    repacked += _compact_small(store, pack_age, grace, deletable, doomed)
    orphans, orphan_bytes = _delete_orphans(store, pack_age, grace)
    temp = backend.features.temp
    if temp is not None:
        temp.clean_temp(max(grace, 60.0))
    # Written after the deletions: a process that reads this generation re-reads the
    # index, so it no longer sees the deleted blobs that this set no longer names.
    name = store_generation(backend, store.codec, doomed)
    store.doomed, store.gc_generation = set(doomed), name
    return {"packs_deleted": removed, "orphan_packs_deleted": orphans,
            "packs_repacked": repacked, "bytes_freed": freed + orphan_bytes,
            "live_objects": len(alive), "doomed_objects": len(doomed)}


def _mark(store: Store, live: Iterable[str], grace: float,
          now: float) -> tuple[set[bytes], dict[bytes, float], set[bytes]]:
    """gc's first phase: the blobs the roots reach, the doomed ones (with when each was
    first doomed) and those of them that may go now."""
    backend = store.backend
    # Open batches are listed before the refs: a batch that closes after this point has
    # written its ids before the refs below are read, or its caller will do so later
    # with ids it checked against the doomed set it read (see the module docstring).
    writers = [o for o in backend.list(WRITERS)]
    store.index.refresh()
    roots = ref_roots(store) | {bytes.fromhex(x) for x in live}
    alive, problems = reachable(store, roots)
    if any("missing" not in p for p in problems):
        # An unreadable recipe hides what it uses: deleting now could delete live data.
        raise StoreError(f"gc stopped, the store has damage ({problems[0]}): run "
                         "'vstudio store check --read-data' and repair it first")
    unreached = set(store.index.blobs) - alive
    doomed = {k: t for k, t in load_doomed(backend, store.codec, latest_generation(backend)).items()
              if k in unreached}
    for k in unreached:
        doomed.setdefault(k, now)
    deletable = {k for k, t in doomed.items() if now - t >= grace}
    for o in writers:
        if now - o.mtime > STALE_WRITER:
            backend.delete(o.name)  # left by a crashed process
    if grace > 0 and any(grace - SLACK < now - o.mtime <= STALE_WRITER for o in writers):
        deletable = set()  # a batch that may not know of the doomed blobs is still open
    return alive, doomed, deletable


def _delete_orphans(store: Store, pack_age: dict[str, float], grace: float) -> tuple[int, int]:
    """Delete packs without an index older than ``grace`` (a writer died between pack
    and index); how many, and their bytes."""
    indexed = set(store.index.packs) | set(store.index.bad)
    orphans = freed = 0
    for pack, age in pack_age.items():
        if pack not in indexed and age >= grace:
            freed += _size(store, pack)
            store.backend.delete(pack_object(pack))
            orphans += 1
    return orphans, freed


REPACK_WASTE = 0.3  # repack a pack once this share of its bytes is dead or duplicated
SMALL_PACK = 4 << 20  # many puts of a few files leave small packs: merge them
SMALL_PACKS_MIN = 8


def _compact_small(store: Store, pack_age: dict[str, float], grace: float,
                   deletable: set[bytes], doomed: dict[bytes, float]) -> int:
    """Merge many small packs into few, so opening the store lists fewer indexes."""
    small = [p for p, es in store.index.packs.items()
             if pack_age.get(p, 0.0) >= grace and sum(e.length for e in es) < SMALL_PACK]
    if len(small) < SMALL_PACKS_MIN:
        return 0
    with store.writer() as w:
        for pack in small:
            data = store.backend.get(pack_object(pack))

            def keep(e: fmt.IndexEntry, pack: str = pack) -> bool:
                home = store.index.get(e.key)
                return not (e.key in deletable or (home and home[0] != pack))

            copy_blobs(w, data, [e for e in store.index.packs[pack] if keep(e)])
    for pack in small:
        for e in store.index.packs.get(pack, []):
            if e.key in deletable:
                doomed.pop(e.key, None)
        store.backend.delete(index_object(pack))
        store.backend.delete(pack_object(pack))
    store.index.remove_packs(small)
    return len(small)


def _maybe_repack(store: Store, pack: str, entries: list[fmt.IndexEntry],
                  deletable: set[bytes], doomed: dict[bytes, float]) -> int:
    """Copy a mostly dead pack's live blobs into a new pack, then delete the old one."""
    def dead(e: fmt.IndexEntry) -> bool:
        home = store.index.get(e.key)
        return e.key in deletable or (home is not None and home[0] != pack)

    total = sum(e.length for e in entries)
    waste = sum(e.length for e in entries if dead(e))
    if not total or waste / total < REPACK_WASTE:
        return 0
    move_blobs(store, pack, store.backend.get(pack_object(pack)), lambda e: not dead(e))
    for e in entries:
        if e.key in deletable:
            doomed.pop(e.key, None)
    return 1


def move_blobs(store: Store, pack: str, data: bytes,
               keep: Callable[[fmt.IndexEntry], bool]) -> None:
    """Copy the blobs of ``pack`` (its bytes: ``data``) that ``keep`` accepts into a new
    pack, then delete the old pack and its index."""
    with store.writer() as w:
        copy_blobs(w, data, [e for e in store.index.packs.get(pack, []) if keep(e)])
    # The copies are indexed now; the old index goes first, then the pack.
    store.backend.delete(index_object(pack))
    store.backend.delete(pack_object(pack))
    store.index.remove_packs([pack])


def copy_blobs(w: Writer, data: bytes, entries: list[fmt.IndexEntry]) -> None:
    """Copy sealed blobs as they are (their associated data is the blob's id, or the
    frame's): the chunks of one frame share its bytes, so a frame is copied once."""
    by_blob: dict[int, list[fmt.IndexEntry]] = {}
    for e in entries:
        by_blob.setdefault(e.offset, []).append(e)
    for offset, group in by_blob.items():
        w.copy_stored(group, data[offset:offset + group[0].length])


def _size(store: Store, pack: str) -> int:
    try:
        return store.backend.stat(pack_object(pack)).size
    except ObjectMissing:
        return 0


__all__ = ["DOOMED", "INDEX_PREFIX", "check", "gc", "generations", "stats"]
