"""The farm pages' own reads of the catalog, run off the event loop.

The pages show more than the farm's API answers (frame grids, charts, blocklists, the
samples of the load chart), so they ask ``vstudio.catalog.web_queries`` and
``farm_queries`` themselves, on the studio's engine, one connection per call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from vstudio.farm.service import Farm

T = TypeVar("T")


async def catalog_read(farm: Farm, fn: Callable[[Connection], T]) -> T:
    """``fn(conn)`` on a connection of the studio's catalog, in a thread."""
    def run() -> T:
        with farm.studio.engine.connect() as conn:
            return fn(conn)

    return await asyncio.to_thread(run)
