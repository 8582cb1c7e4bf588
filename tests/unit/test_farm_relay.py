"""Events relayed between managers: only while somebody watches elsewhere, many per
message under PostgreSQL's payload limit, never echoed back, garbage dropped."""

from __future__ import annotations

import asyncio

from vstudio.farm.events import EVENTS, PAYLOAD_MAX, WATCH, EventBus, EventRelay


def test_relay_between_two_buses() -> None:
    async def main() -> None:
        wire: list[tuple[str, str]] = []  # what NOTIFY would carry to every manager
        a_bus, b_bus = EventBus(), EventBus()
        a, b = EventRelay(a_bus, lambda c, p: wire.append((c, p))), \
            EventRelay(b_bus, lambda c, p: wire.append((c, p)))
        a.start()
        b.start()
        try:
            b_bus.publish("job", {"id": 1})  # nobody watches anywhere: nothing sent
            await asyncio.sleep(0.05)
            assert wire == []
            async with a_bus.subscribe() as q:
                assert wire == [(WATCH, a.origin)]  # A says at once that it is watched
                for c, p in wire:
                    a.received(c, p)  # its own notice: no forwarding from A
                    b.received(c, p)
                wire.clear()
                assert b_bus.listening  # B now builds and forwards its events
                big = "x" * 900
                for i in range(40):
                    b_bus.publish("task", {"id": i, "log": big})
                await asyncio.sleep(0.05)  # one flush, split under the payload limit
                assert len(wire) > 1 and all(c == EVENTS and len(p) < PAYLOAD_MAX
                                             for c, p in wire)
                for c, p in wire:
                    b.received(c, p)  # B's own events come back to B: ignored
                    a.received(c, p)
                got = [q.get_nowait() for _ in range(q.qsize())]
                assert [d["id"] for _, kind, d in got if kind == "task"] == list(range(40))
                for junk in ("not json", "[1]", '{"o": "x", "e": 5}',
                             '{"o": "x", "e": [[1], "y", ["job", 3]]}'):
                    a.received(EVENTS, junk)
                assert q.empty()
                wire.clear()
                a_bus.publish("job", {"id": 9})  # A's own change: B does not watch
                await asyncio.sleep(0.05)
                assert wire == []
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(main())
