"""The API's cached farm reads on a real farm: a job's page survives other people's
submits unchanged (no recomputation), and every change to the job itself, or to the
workers that decide its state, shows at once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.helpers import clear_of_minute_end
from vstudio.api.farm_reads import _JOBS, FarmReads
from vstudio.catalog import accounts
from vstudio.farm.service import Farm
from vstudio.farm.spec import JobSpec
from vstudio.studio import Studio, init_studio


def _spec(name: str, tags: list[str] | None = None) -> JobSpec:
    block = {"name": "render", "type": "command", "params": {"argv": ["true"]},
             "frames": "1-4", "chunk": 2, "tags": tags or []}
    return JobSpec.model_validate({"name": name, "blocks": [block]})


def _run(studio: Studio, body: Callable[[Farm, FarmReads], Awaitable[None]]) -> None:
    """``body`` on a started farm and its cached reads, which only the writer's counters
    may end here (no time bound), then everything closed."""
    async def main() -> None:
        farm = Farm(studio)
        farm.reap_every = 3600
        await farm.start()
        try:
            fr = FarmReads(farm)
            fr.cache.max_age = 60
            await body(farm, fr)
        finally:
            await farm.stop()

    try:
        asyncio.run(main())
    finally:
        studio.close()


def test_job_page_kept_across_submits_and_fresh_after_changes(tmp_path: Path) -> None:
    studio = init_studio(tmp_path / "studio", store_url=None, db_url=None)
    admin = accounts.add_user(studio.engine, "boss", "admin")[0]
    ann = accounts.add_user(studio.engine, "ann", "artist")[0]

    async def body(farm: Farm, fr: FarmReads) -> None:
        clear_of_minute_end()  # a page is kept within the clock's minute
        jid = await farm.submit(ann, _spec("shot", tags=["gpu"]))
        first = await fr.job(ann, jid, False)
        assert json.loads(first)["status"] == "queued"
        others = [await farm.submit(ann, _spec(f"other {i}")) for i in range(5)]
        # the job list reads its own writes: every new job is listed at once
        listed = {j["id"] for j in json.loads(await fr.jobs(ann, None, None, 50, 0))}
        assert set(others) | {jid} <= listed
        # other jobs' submits left this page as it was: the same answer, not recomputed
        assert await fr.job(ann, jid, False) is first
        # a change to the job itself shows at once
        await farm.job_action(ann, jid, "pause")
        paused = json.loads(await fr.job(ann, jid, False))
        assert paused["status"] == "paused"
        await farm.job_action(ann, jid, "resume")
        before = json.loads(await fr.job(ann, jid, False))
        # so does a worker that changes why the job waits (a worker with its tag)
        await farm.register(admin, "w1", 1, ["gpu"], [], True, False)
        after = json.loads(await fr.job(ann, jid, False))
        assert (before["status"], before.get("reason")) != (after["status"],
                                                            after.get("reason"))

    _run(studio, body)


def test_job_list_encoded_once_per_set_of_readable_projects(tmp_path: Path) -> None:
    studio = init_studio(tmp_path / "studio", store_url=None, db_url=None)
    admin = accounts.add_user(studio.engine, "boss", "admin")[0]
    ann = accounts.add_user(studio.engine, "ann", "artist")[0]
    kim = accounts.add_user(studio.engine, "kim", "artist")[0]
    lou = accounts.add_user(studio.engine, "lou", "artist")[0]  # reads what ann reads
    for name in ("film", "secret"):
        accounts.create_project(studio.engine, name)
    accounts.set_right(studio.engine, "secret", "kim", "read", True)

    async def body(farm: Farm, fr: FarmReads) -> None:
        film = await farm.submit(ann, _spec("film shot").model_copy(
            update={"project": "film"}))
        secret = await farm.submit(kim, _spec("secret shot").model_copy(
            update={"project": "secret"}))
        free = await farm.submit(ann, _spec("no project"))
        louse = await farm.submit(lou, _spec("lou's own"))

        def ids(body: bytes) -> set[int]:
            return {j["id"] for j in json.loads(body)}

        seen = await fr.jobs(ann, None, None, 50, 0)
        assert ids(seen) == {film, free}  # not the project ann may not read
        # nor another user's job without a project (issue 12: its owner's alone)
        assert ids(await fr.jobs(kim, None, None, 50, 0)) == {film, secret}
        assert ids(await fr.jobs(lou, None, None, 50, 0)) == {film, louse}  # not ann's
        assert ids(await fr.jobs(admin, None, None, 50, 0)) == {film, secret, free, louse}
        assert await fr.jobs(ann, None, None, 50, 0) is seen  # encoded once
        await farm.submit(ann, _spec("one more"))
        assert len(ids(await fr.jobs(ann, None, None, 50, 0))) == 3  # a write: anew

    _run(studio, body)


def test_job_list_after_submits_equals_a_full_read(tmp_path: Path) -> None:
    """The job list grown by new jobs on top of the last answer is exactly what a full
    read gives, through submits, a pause, a worker and a status filter."""
    from vstudio.farm import reads

    studio = init_studio(tmp_path / "studio", store_url=None, db_url=None)
    admin = accounts.add_user(studio.engine, "boss", "admin")[0]
    ann = accounts.add_user(studio.engine, "ann", "artist")[0]

    async def body(farm: Farm, fr: FarmReads) -> None:
        full_reads = set()  # when each answer of the plain list was last read in full
        for step in range(12):
            await farm.submit(ann, _spec(f"job {step}", tags=["gpu"] if step % 2 else []))
            if step == 5:
                await farm.job_action(ann, 2, "pause")
            if step == 8:
                await farm.register(admin, "w1", 1, [], [], True, False)
            for status in (None, "queued", "paused"):
                got = json.loads(await fr.jobs(ann, None, status, 4, 0))
                full = await reads.jobs(farm, None, status, 4, 0)
                assert got == json.loads(
                    _JOBS.dump_json(_JOBS.validate_python(full))), (step, status)
            full_reads.add(fr._last_lists[(None, None, 4, 0)][1])
        # read in full at first, after the pause and after the worker came: the other
        # answers were grown from the last one
        assert 2 <= len(full_reads) <= 4, full_reads

    _run(studio, body)
