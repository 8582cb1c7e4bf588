"""Answers of the most common reads (job list, a job's page data), shared while valid.

Two hundred clients polling the job list ask the same question many times a second; the
answer changes only when the farm writes. An entry is reused while its generation stands
still (for the farm: ``farm.freshness``, which sees this server's writes at once, so a
client always reads its own writes, and every other writer's within a poll) and for at
most ``max_age`` seconds (for answers that follow something no generation counts, such
as rights changed with the CLI). Concurrent misses share one computation, so an
invalidation costs one query, not one per waiting client. Entries are treated as
immutable by every reader.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

MAX_AGE = 0.25


class ReadCache:
    def __init__(self, max_age: float = MAX_AGE, limit: int = 4096) -> None:
        self.max_age = max_age
        self.limit = limit
        self._entries: dict[Hashable, tuple[Hashable, float, Any]] = {}
        self._pending: dict[tuple[Hashable, Hashable], asyncio.Future[Any]] = {}

    async def get(self, key: Hashable, generation: Hashable,
                  compute: Callable[[], Awaitable[Any]], max_age: float | None = None) -> Any:
        now = time.monotonic()
        hit = self._entries.get(key)
        fresh_for = self.max_age if max_age is None else max_age
        if hit is not None and hit[0] == generation and now - hit[1] < fresh_for:
            return hit[2]
        flight = (key, generation)
        waiting = self._pending.get(flight)
        if waiting is not None:
            return await asyncio.shield(waiting)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[flight] = future
        try:
            value = await compute()
        except BaseException as e:  # errors (not found, denied) are never cached
            future.set_exception(e)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            self._pending.pop(flight, None)
        if len(self._entries) >= self.limit:
            self._entries.clear()
        self._entries[key] = (generation, now, value)
        future.set_result(value)
        return value
