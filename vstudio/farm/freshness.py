"""How fresh a cached answer about the farm is: this manager's writes and everyone's.

A cached job page or job list is good while nothing it shows has changed. This manager
knows its own writes the moment they commit (its writer counts them), so a client always
reads its own changes. Other writers of the same database (manager replicas on
PostgreSQL, a second server on the same studio) stamp a one-row version table in every
write transaction (``FarmWrites.stamp``); one read of that row, shared by every request
and made at most every ``POLL`` seconds, tells this manager whether anything changed
anywhere. Before, every cached answer was simply dropped after 0.25 s: on a studio of
200 watched jobs that re-read every job page four times a second although nothing had
changed.

What the clock alone changes (a render node's hours beginning or ending, which turns a
queued job's reason) is covered by the minute in the key: hours are set in minutes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

POLL = 0.2  # seconds between reads of the shared version: other managers' writes show by then


@dataclass(frozen=True)
class Freshness:
    """Generations of cached answers: equal generations, equal answers."""

    batches: tuple[int, ...]  # any write (also a job added), the minute: the job list
    changes: tuple[int, ...]  # writes that changed existing records, the minute: a job


class SharedVersion:
    """The database's version row, read at most every ``POLL`` seconds; concurrent
    callers share one read."""

    def __init__(self, read: Callable[[], Awaitable[tuple[int, int]]],
                 poll: float = POLL) -> None:
        self._read = read
        self.poll = poll
        self._last: tuple[float, tuple[int, int]] | None = None
        self._pending: asyncio.Future[tuple[int, int]] | None = None

    async def get(self) -> tuple[int, int]:
        """(batches, changes) as every writer stamped them, at most ``poll`` s old."""
        now = time.monotonic()
        if self._last is not None and now - self._last[0] < self.poll:
            return self._last[1]
        if self._pending is not None:
            return await asyncio.shield(self._pending)
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self._pending = future
        try:
            version = await self._read()
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # retrieved: no warning when nobody else waited
            raise
        finally:
            self._pending = None
        self._last = (now, version)
        future.set_result(version)
        return version


def freshness(local_batches: int, local_changes: int, shared: tuple[int, int],
              now: float | None = None) -> Freshness:
    minute = int((time.time() if now is None else now) // 60)
    return Freshness((local_batches, shared[0], minute), (local_changes, shared[1], minute))
