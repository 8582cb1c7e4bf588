"""Repairing damaged packs from the original files (``vstudio store repair FILE…``).

A put deduplicates against stored copies without reading them, so putting the original
of a damaged file again changes nothing. Repair puts the files in a batch that reads and
checks every stored copy it would reuse; a damaged or lost copy is stored afresh. Each
pack that held such a copy is then rewritten without it (its other blobs move as they
are), so every process and every later open finds only the good copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vstudio.errors import ObjectMissing
from vstudio.store.api import NO_PROGRESS, Progress
from vstudio.store.format import IndexEntry
from vstudio.store.index import pack_object
from vstudio.store.maintenance import move_blobs

if TYPE_CHECKING:
    from vstudio.store.objects import Store


@dataclass
class Repaired:
    files: list[tuple[str, str]] = field(default_factory=list)  # (path, id)
    objects: int = 0  # damaged or lost blobs stored afresh
    packs: int = 0  # packs rewritten without their damaged copies


def repair(store: Store, paths: Iterable[Path], progress: Progress = NO_PROGRESS) -> Repaired:
    out = Repaired()
    store.index.refresh()
    with store.writer() as w:
        w.verify_existing = True
        for p in paths:
            out.files.append((str(p), w.put_file(p, progress)))
    damaged: dict[str, set[bytes]] = {}
    for key, pack in w.replaced.items():
        damaged.setdefault(pack, set()).add(key)
    for pack, keys in damaged.items():
        if pack not in store.index.packs:
            continue  # already gone (a gc, or a pack listed twice)
        try:
            data = store.backend.get(pack_object(pack))
        except ObjectMissing:
            data = b""  # a lost pack: only its index is left to drop
        # Other damaged blobs of the pack move as they are: still reported by check.
        move_blobs(store, pack, data, _keep(keys, bool(data)))
    out.objects, out.packs = len(w.replaced), len(damaged)
    return out


def _keep(dropped: set[bytes], readable: bool) -> Callable[[IndexEntry], bool]:
    return lambda e: readable and e.key not in dropped
