"""In-process wake-ups for long-polling workers and the event stream for watchers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any


class Notifier:
    """Wakes every waiting ``next`` call when work may have become available.

    Lives on the event loop; other threads call ``wake`` via ``loop.call_soon_threadsafe``.
    A waiter passes the generation it saw before its claim attempt, so a wake-up that
    happened during the attempt is never missed.
    """

    def __init__(self) -> None:
        self.generation = 0
        self._event = asyncio.Event()

    def wake(self) -> None:
        self.generation += 1
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, generation: int, timeout: float) -> None:
        if generation != self.generation or timeout <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)


class EventBus:
    """Fan-out of job/task/worker changes to server-sent-event subscribers."""

    def __init__(self, queue_size: int = 2000) -> None:
        self._subs: set[asyncio.Queue[tuple[int, str, dict[str, Any]]]] = set()
        self._size = queue_size
        self.seq = 0

    @property
    def listening(self) -> bool:
        return bool(self._subs)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        self.seq += 1
        for q in self._subs:
            try:
                q.put_nowait((self.seq, kind, data))
            except asyncio.QueueFull:
                # A slow reader misses events; it gets a "resync" hint to reload.
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
                q.put_nowait((self.seq, "resync", {}))

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[tuple[int, str, dict[str, Any]]]]:
        q: asyncio.Queue[tuple[int, str, dict[str, Any]]] = asyncio.Queue(self._size)
        self._subs.add(q)
        try:
            yield q
        finally:
            self._subs.discard(q)
