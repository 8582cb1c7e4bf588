"""Cached farm reads across two managers of one database (SQLite and PostgreSQL).

A job page nobody changes is computed once, however long it is watched; a change made
by the other manager shows on this one's cached pages and list within a poll of the
database's version row (``farm.freshness``)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from tests.helpers import clear_of_minute_end
from tests.integration.test_farm_manager import studio  # noqa: F401  (SQLite and PostgreSQL)
from vstudio.api.farm_reads import FarmReads
from vstudio.catalog import accounts
from vstudio.farm import freshness
from vstudio.farm.service import Farm
from vstudio.farm.spec import JobSpec
from vstudio.studio import Studio


def _spec(name: str) -> JobSpec:
    block = {"name": "render", "type": "command", "params": {"argv": ["true"]},
             "frames": "1-4", "chunk": 2}
    return JobSpec.model_validate({"name": name, "blocks": [block]})


async def _until(what: Any, timeout: float) -> float:
    """Seconds until ``await what()`` is true; fails after ``timeout``."""
    t0 = time.monotonic()
    while not await what():
        assert time.monotonic() - t0 < timeout, "the other manager's change never showed"
        await asyncio.sleep(0.01)
    return time.monotonic() - t0


def test_pages_kept_while_nothing_changes_and_fresh_after_the_other_managers_writes(
        studio: Studio) -> None:  # noqa: F811  (the fixture imported above)
    ann = accounts.add_user(studio.engine, "ann", "artist")[0]

    async def main() -> None:
        here, there = Farm(studio), Farm(studio)
        for farm in (here, there):
            farm.reap_every = 3600
            await farm.start()
        try:
            reads = FarmReads(here)
            computed = 0
            plain = here.read

            async def counted(fn: Any) -> Any:
                nonlocal computed
                computed += 1
                return await plain(fn)

            clear_of_minute_end()  # the watch below must not straddle a minute's end
            jid = await here.submit(ann, _spec("shot"))
            first = await reads.job(ann, jid, False)
            here.read = counted  # type: ignore[method-assign]
            # watched for a second with no write anywhere: never computed again (it was
            # dropped every 0.25 s before); only the version row is read, once a poll
            for _ in range(20):
                assert await reads.job(ann, jid, False) is first
                await asyncio.sleep(0.05)
            assert computed == 0

            # the other manager pauses it: this manager's cached page shows it by a poll
            await there.job_action(ann, jid, "pause")

            async def paused() -> bool:
                return bool(json.loads(await reads.job(ann, jid, False))["status"] == "paused")

            assert await _until(paused, 5) < freshness.POLL + 0.5
            # and its submit shows on this manager's (grown) job list
            listed = json.loads(await reads.jobs(ann, None, None, 50, 0))
            new = await there.submit(ann, _spec("other"))

            async def shown() -> bool:
                ids = [j["id"] for j in json.loads(await reads.jobs(ann, None, None, 50, 0))]
                return new in ids

            assert await _until(shown, 5) < freshness.POLL + 0.5
            assert [j["id"] for j in json.loads(await reads.jobs(ann, None, None, 50, 0))] == [
                new, *(j["id"] for j in listed)]
        finally:
            for farm in (here, there):
                await farm.stop()

    asyncio.run(main())


def test_every_write_counts_in_the_version_row(studio: Studio) -> None:  # noqa: F811
    ann = accounts.add_user(studio.engine, "ann", "artist")[0]

    async def main() -> None:
        farm = Farm(studio)
        farm.reap_every = 3600
        await farm.start()
        try:
            async def version() -> tuple[int, int]:
                return await farm.read(lambda r: r.version())

            b0, c0 = await version()
            jid = await farm.submit(ann, _spec("shot"))  # adds only
            b1, c1 = await version()
            assert (b1 > b0, c1) == (True, c0)
            await farm.job_action(ann, jid, "pause")  # changes a job
            b2, c2 = await version()
            assert b2 > b1 and c2 > c1
            # the reaper's passes that find nothing to requeue change nothing cached
            local = farm.writer.changes
            farm.reap_every = 0.02
            farm._reaper.cancel()  # type: ignore[union-attr]
            farm._reaper = asyncio.create_task(farm._reap_forever())
            await asyncio.sleep(0.5)
            b3, c3 = await version()
            assert b3 >= b2 + 2 and (c3, farm.writer.changes) == (c2, local)
        finally:
            await farm.stop()

    asyncio.run(main())
