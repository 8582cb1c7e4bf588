"""Batches of small files for a working copy behind a server (``get_many``/``put_many``):
one request per small file made a checkout or commit of 20,000 files take a minute."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from vstudio.repo.api import Entry

BATCH_FILE = 1 << 20  # files up to this size travel many to a request
BATCH_BYTES = 8 << 20
BATCH_COUNT = 1000
BATCH_THREADS = 4


T = TypeVar("T")


def batches_by(items: list[T], size: Callable[[T], int]) -> list[list[T]]:
    """Small files cut in groups of at most BATCH_BYTES and BATCH_COUNT."""
    groups: list[list[T]] = []
    cur: list[T] = []
    nbytes = 0
    for e in items:
        n = size(e)
        if cur and (nbytes + n > BATCH_BYTES or len(cur) >= BATCH_COUNT):
            groups.append(cur)
            cur, nbytes = [], 0
        cur.append(e)
        nbytes += n
    if cur:
        groups.append(cur)
    return groups


def batches(entries: list[Entry]) -> list[list[Entry]]:
    return batches_by(entries, lambda e: e.size)
