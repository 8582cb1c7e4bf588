"""In-process wake-ups for long-polling workers and the event stream for watchers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
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
    """Fan-out of job/task/worker changes to server-sent-event subscribers.

    With several managers on one database, ``forward`` (set by the manager) passes each
    event on to the others, but only while some other manager has said that somebody
    watches there (``remote_watch``): a farm nobody watches pays nothing for events.
    """

    def __init__(self, queue_size: int = 2000) -> None:
        self._subs: set[asyncio.Queue[tuple[int, str, dict[str, Any]]]] = set()
        self._size = queue_size
        self.seq = 0
        self.forward: Callable[[str, dict[str, Any]], None] | None = None
        self.on_subscribe: Callable[[], None] | None = None
        self._remote_until = 0.0

    def remote_watch(self, seconds: float) -> None:
        """Another manager has watchers: forward events for the next ``seconds``."""
        self._remote_until = time.monotonic() + seconds

    @property
    def watched(self) -> bool:
        return bool(self._subs)

    @property
    def listening(self) -> bool:
        return bool(self._subs) or (self.forward is not None
                                    and time.monotonic() < self._remote_until)

    def publish(self, kind: str, data: dict[str, Any], *, relay: bool = True) -> None:
        if relay and self.forward is not None and time.monotonic() < self._remote_until:
            self.forward(kind, data)
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
        if self.on_subscribe is not None:
            self.on_subscribe()
        try:
            yield q
        finally:
            self._subs.discard(q)


EVENTS = "vstudio_farm_events"  # relayed job/task/worker events
WATCH = "vstudio_farm_watch"  # "somebody watches events on manager X"
WATCH_EVERY = 2.0  # seconds between such notices while somebody watches
PAYLOAD_MAX = 7000  # bytes of events per message (PostgreSQL NOTIFY allows < 8000)


class EventRelay:
    """Passes one manager's events to the other managers of a farm and back.

    ``send(channel, payload)`` delivers to every manager (PostgreSQL NOTIFY); what
    arrives is handed to ``received``. A manager with watchers says so every
    ``WATCH_EVERY`` seconds; the others forward their events while they hear it, so a
    web page on manager A sees what manager B changed. Events are collected for 10 ms
    and sent many per message. Lives on the event loop.
    """

    def __init__(self, bus: EventBus, send: Callable[[str, str], None]) -> None:
        self.bus = bus
        self.origin = uuid.uuid4().hex[:12]
        self._send = send
        self._outbox: list[str] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.bus.forward = self._forward
        self.bus.on_subscribe = self._announce
        self._task = asyncio.create_task(self._announce_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._flush()

    async def _announce_forever(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY)
            if self.bus.watched:
                self._announce()

    def _announce(self) -> None:
        self._send(WATCH, self.origin)

    def _forward(self, kind: str, data: dict[str, Any]) -> None:
        if not self._outbox:
            asyncio.get_running_loop().call_later(0.01, self._flush)
        self._outbox.append(json.dumps([kind, data], separators=(",", ":")))

    def _flush(self) -> None:
        events, self._outbox = self._outbox, []
        head = '{"o":"' + self.origin + '","e":['
        chunk: list[str] = []
        size = len(head)
        for e in [*events, ""]:
            if chunk and (not e or size + len(e) + 1 > PAYLOAD_MAX):
                self._send(EVENTS, head + ",".join(chunk) + "]}")
                chunk, size = [], len(head)
            if e and len(head) + len(e) < PAYLOAD_MAX:  # a giant event is not relayed
                chunk.append(e)
                size += len(e) + 1

    def received(self, channel: str, payload: str) -> None:
        if channel == WATCH:
            if payload != self.origin:
                self.bus.remote_watch(3 * WATCH_EVERY)
            return
        try:
            msg = json.loads(payload)
        except ValueError:
            return
        if not isinstance(msg, dict) or msg.get("o") == self.origin \
                or not isinstance(msg.get("e"), list):
            return  # our own events come back too; anything malformed is dropped
        for item in msg["e"]:
            if isinstance(item, list) and len(item) == 2 and isinstance(item[1], dict):
                self.bus.publish(str(item[0]), item[1], relay=False)
