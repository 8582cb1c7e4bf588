"""Batched reads of small files for the mount: the store's own ``read_many``.

Why: reading 500 small files one ``read_range`` at a time costs ~1.5 requests per file
(a recipe, then its chunks); through S3 that was slower than s3fs. The store keeps the
files of one commit side by side in a pack, and its ``read_many`` carries dozens of them
per ranged request (frames and deltas included). Every file it yields is checked against
its id by ``BlockReader``; whatever it skips is read the normal way.
"""

from __future__ import annotations

from typing import Any

from vstudio.mount.blocks import ReadManyFn


def store_read_many(store: Any) -> ReadManyFn | None:
    """The store's batch read, or None for a store without one (each file read alone)."""
    read_many: ReadManyFn | None = getattr(store, "read_many", None)
    return read_many
