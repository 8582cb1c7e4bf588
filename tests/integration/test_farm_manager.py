"""The farm manager (writer, claim, reports, reaper) on real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vstudio.catalog import accounts
from vstudio.catalog.accounts import User
from vstudio.errors import Conflict, PermissionDenied
from vstudio.farm import reads
from vstudio.farm.service import Farm
from vstudio.farm.spec import JobSpec
from vstudio.studio import Studio, init_studio

OID = "ab" * 32


@pytest.fixture(params=["sqlite", "postgresql"])
def studio(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Studio]:
    db = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    s = init_studio(tmp_path / "studio", store_url=None, db_url=db)
    try:
        yield s
    finally:
        s.close()


def run(studio: Studio, body: Callable[[Farm, User, User], Awaitable[None]],
        lease: float = 60) -> None:
    admin = accounts.add_user(studio.engine, "boss", "admin")[0]
    artist = accounts.add_user(studio.engine, "ann", "artist")[0]

    async def main() -> None:
        farm = Farm(studio, lease_seconds=lease)
        farm.reap_every = 3600  # tests call the reaper themselves
        await farm.start()
        try:
            await body(farm, admin, artist)
        finally:
            await farm.stop()

    asyncio.run(main())


def cmd(name: str, frames: str, chunk: int = 1, **kw: Any) -> dict[str, Any]:
    return {"name": name, "type": "command", "params": {"argv": ["true"]}, "frames": frames,
            "chunk": chunk, **kw}


def spec(*blocks: dict[str, Any], **kw: Any) -> JobSpec:
    return JobSpec.model_validate({"name": "job", "blocks": list(blocks), **kw})


async def worker(farm: Farm, user: User, name: str, **kw: Any) -> int:
    return await farm.register(user, name, kw.pop("slots", 1), kw.pop("tags", []), [], True,
                               False)


async def finish(farm: Farm, user: User, task: dict[str, Any]) -> None:
    outs = [{"frame": f, "oid": OID, "name": f"f{f}.png"} for f in task["frames"]]
    await farm.done(user, task["id"], task["attempt"], outs)


def test_frame_by_frame_dependency(studio: Studio) -> None:
    async def body(farm: Farm, admin: User, ann: User) -> None:
        await farm.submit(ann, spec(cmd("render", "1-6", 2),
                                    {"name": "encode", "type": "ffmpeg", "chunk": 2,
                                     "params": {"block": "render"}}))
        w = await worker(farm, admin, "w1")
        first = await farm.next_task(admin, w, 0)
        assert first is not None and first["block"] == "render" and first["frames"] == [1, 2]
        await finish(farm, admin, first)
        # within a job, earlier blocks go first while they have queued tasks
        second = await farm.next_task(admin, w, 0)
        assert second is not None and second["block"] == "render"
        await finish(farm, admin, second)
        t = await farm.next_task(admin, w, 0)
        assert t is not None and t["block"] == "render" and t["frames"] == [5, 6]
        # render 5-6 still running: encode 1-2 and 3-4 may start, 5-6 may not
        enc = [await farm.next_task(admin, w2, 0) for w2 in
               [await worker(farm, admin, "w2"), await worker(farm, admin, "w3"),
                await worker(farm, admin, "w4")]]
        assert [e["frames"] if e else None for e in enc] == [[1, 2], [3, 4], None]
        assert enc[0] is not None
        assert [u["frame"] for u in enc[0]["upstream"]] == [1, 2]
        await finish(farm, admin, t)
        last = await farm.next_task(admin, w, 0)
        assert last is not None and last["block"] == "encode" and last["frames"] == [5, 6]

    run(studio, body)


def test_stale_attempts_and_lost_workers(studio: Studio) -> None:
    async def body(farm: Farm, admin: User, ann: User) -> None:
        job = await farm.submit(ann, spec(cmd("c", "1")))
        w1, w2 = await worker(farm, admin, "w1"), await worker(farm, admin, "w2")
        t1 = await farm.next_task(admin, w1, 0)
        assert t1 is not None and t1["attempt"] == 1
        assert await farm.progress(admin, t1["id"], 1, 10.0, 1, ["line"]) is False
        # the reaper a second later (an injected clock): the 0.5 s lease has ended
        await farm._write(lambda tx, now=time.time() + 1: tx.reap(now, 0.5, now))
        t2 = await farm.next_task(admin, w2, 0)
        assert t2 is not None and t2["id"] == t1["id"] and t2["attempt"] == 2
        for call in (farm.progress(admin, t1["id"], 1, 50.0, None, []),
                     farm.done(admin, t1["id"], 1, []), farm.fail(admin, t1["id"], 1, "x")):
            with pytest.raises(Conflict):
                await call
        shown = await reads.job(farm, job)
        assert shown["tasks"][0]["status"] == "running" and shown["tasks"][0]["worker"] == "w2"
        await finish(farm, admin, t2)
        log = await reads.task_log(farm, t1["id"])
        assert any("lease expired" in x["line"] for x in log["lines"])

    run(studio, body, lease=0.5)


def test_retries_blocklist_and_clear(studio: Studio) -> None:
    async def body(farm: Farm, admin: User, ann: User) -> None:
        job = await farm.submit(ann, spec(cmd("c", "1-4", retries=5), blocklist_after=2))
        bad, good = await worker(farm, admin, "bad"), await worker(farm, admin, "good")
        for _ in range(2):
            t = await farm.next_task(admin, bad, 0)
            assert t is not None
            await farm.fail(admin, t["id"], t["attempt"], "boom")
        assert await farm.next_task(admin, bad, 0) is None  # kept off this job
        t = await farm.next_task(admin, good, 0)
        assert t is not None
        await farm.job_action(ann, job, "clear-blocklist")
        assert await farm.next_task(admin, bad, 0) is not None

    run(studio, body)


def test_after_pause_cancel_and_rights(studio: Studio) -> None:
    async def body(farm: Farm, admin: User, ann: User) -> None:
        first = await farm.submit(ann, spec(cmd("c", "1")))
        second = await farm.submit(ann, spec(cmd("c", "1"), after=[first], priority=90))
        w = await worker(farm, admin, "w")
        t = await farm.next_task(admin, w, 0)
        assert t is not None and t["job_id"] == first
        await farm.job_action(ann, second, "pause")
        await finish(farm, admin, t)
        assert await farm.next_task(admin, w, 0) is None  # after met, but paused
        await farm.job_action(ann, second, "resume")
        t = await farm.next_task(admin, w, 0)
        assert t is not None and t["job_id"] == second
        await farm.job_action(admin, second, "cancel")
        assert await farm.progress(admin, t["id"], t["attempt"], 5.0, None, []) is True
        bob = accounts.add_user(farm.studio.engine, "bob", "artist")[0]
        with pytest.raises(PermissionDenied):
            await farm.job_action(bob, first, "delete")
        viewer = accounts.add_user(farm.studio.engine, "vic", "viewer")[0]
        with pytest.raises(PermissionDenied):
            await farm.submit(viewer, spec(cmd("c", "1")))

    run(studio, body)


def test_long_poll_wakes_on_submit_and_timeouts_fail(studio: Studio) -> None:
    async def body(farm: Farm, admin: User, ann: User) -> None:
        w = await worker(farm, admin, "w")
        t0 = time.monotonic()
        waiting = asyncio.create_task(farm.next_task(admin, w, 10))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await farm.submit(ann, spec(cmd("c", "1", timeout=0.2, retries=0)))
        task = await asyncio.wait_for(waiting, 5)
        assert task is not None and time.monotonic() - t0 < 1.5
        # the reaper a second later: past the task's 0.2 s timeout
        await farm._write(lambda tx, now=time.time() + 1: tx.reap(now, 60, now))
        job = await reads.job(farm, task["job_id"])
        assert job["status"] == "failed" and "timed out" in job["tasks"][0]["error"]

    run(studio, body)


def test_repository_references_become_store_ids(studio: Studio) -> None:
    from vstudio.errors import BadInput, NotFound
    from vstudio.repo.api import Entry
    from vstudio.repo.service import Change, RepoService

    accounts.create_project(studio.engine, "film")
    oid = studio.store.put_bytes(b"a blend file")
    RepoService(studio).commit("film", "ann", "shot", [
        Change("shots/a.blend", None, Entry("shots/a.blend", oid, 12))])

    async def body(farm: Farm, admin: User, ann: User) -> None:
        job = await farm.submit(ann, spec(cmd("c", "1"), project="film", inputs=[
            {"path": "a.blend", "ref": "film@1:shots/a.blend"},
            {"path": "b.blend", "ref": "film@HEAD:shots/a.blend"}]))
        shown = await reads.job(farm, job)
        assert shown["inputs"] == [{"path": "a.blend", "oid": oid},
                                   {"path": "b.blend", "oid": oid}]
        for ref in ("film@1:nope.blend", "film@x:shots/a.blend", "nofilm@1:a"):
            with pytest.raises((BadInput, NotFound)):
                await farm.submit(ann, spec(cmd("c", "1"), inputs=[{"path": "a", "ref": ref}]))

    run(studio, body)


def test_references_need_read_rights(studio: Studio) -> None:
    accounts.create_project(studio.engine, "secret")
    accounts.add_user(studio.engine, "keeper", "artist")
    accounts.set_right(studio.engine, "secret", "keeper", "write", True)

    async def body(farm: Farm, admin: User, ann: User) -> None:
        with pytest.raises(PermissionDenied):
            await farm.submit(ann, spec(cmd("c", "1"), inputs=[
                {"path": "a", "ref": "secret@1:a.blend"}]))

    run(studio, body)


def test_waiting_workers_wake_when_work_appears(studio: Studio) -> None:
    async def body(farm: Farm, admin: User, ann: User) -> None:
        await farm.submit(ann, spec(cmd("c", "1-2"), max_running=1))
        await farm.submit(ann, spec(cmd("render", "1-2", 2),
                                    {"name": "encode", "type": "ffmpeg",
                                     "params": {"block": "render"}}, priority=10))
        a, b = (await worker(farm, admin, "a", slots=2), await worker(farm, admin, "b", slots=2))
        first = await farm.next_task(admin, a, 0)
        render = await farm.next_task(admin, b, 0)
        assert first and render and render["block"] == "render"
        for holder, task in ((a, first), (b, render)):
            # the other task of the limited job / the encode is not ready yet
            other = a if holder == b else b
            waiting = asyncio.create_task(farm.next_task(admin, other, 10))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            t0 = time.monotonic()
            await finish(farm, admin, task)
            got = await asyncio.wait_for(waiting, 5)
            assert got is not None and time.monotonic() - t0 < 1
            await finish(farm, admin, got)

    run(studio, body)


def test_status_filter_in_sql_matches_the_derived_status(studio: Studio) -> None:
    async def body(farm: Farm, admin: User, ann: User) -> None:
        w = await worker(farm, admin, "w", slots=8)
        queued = await farm.submit(ann, spec(cmd("c", "1-2")))
        paused = await farm.submit(ann, spec(cmd("c", "1")))
        await farm.job_action(ann, paused, "pause")
        canceled = await farm.submit(ann, spec(cmd("c", "1")))
        await farm.job_action(ann, canceled, "cancel")
        failed = await farm.submit(ann, spec(cmd("c", "1", retries=0), priority=99))
        t = await farm.next_task(admin, w, 0)
        assert t is not None and t["job_id"] == failed
        await farm.fail(admin, t["id"], t["attempt"], "boom")
        done = await farm.submit(ann, spec(cmd("c", "1"), priority=98))
        t = await farm.next_task(admin, w, 0)
        assert t is not None and t["job_id"] == done
        await finish(farm, admin, t)
        running = await farm.submit(ann, spec(cmd("c", "1"), priority=97))
        t = await farm.next_task(admin, w, 0)
        assert t is not None and t["job_id"] == running
        expect = {"queued": [queued], "paused": [paused], "canceled": [canceled],
                  "failed": [failed], "done": [done], "running": [running]}
        every = await reads.jobs(farm)
        assert {s: [j["id"] for j in every if j["status"] == s] for s in expect} == expect
        for status, ids in expect.items():
            got = await reads.jobs(farm, status=status)
            assert [j["id"] for j in got] == ids, status
        # limit and offset apply after the filter
        for _ in range(3):
            await farm.submit(ann, spec(cmd("c", "1")))
        page = await reads.jobs(farm, status="queued", limit=2, offset=1)
        assert len(page) == 2 and all(j["status"] == "queued" for j in page)

    run(studio, body)


def test_worker_offline_and_back_are_events(studio: Studio) -> None:
    async def body(farm: Farm, admin: User, ann: User) -> None:
        w = await worker(farm, admin, "w")
        async with farm.events.subscribe() as q:
            # the reaper a second later: no call within the 0.5 s lease, the worker is lost
            await farm._write(lambda tx, now=time.time() + 1: tx.reap(now, 0.5, now))
            offline = ("worker", {"id": w, "name": "w", "state": "offline"})
            while (await asyncio.wait_for(q.get(), 5))[1:] != offline:
                pass  # events reach the loop after the commit
            await farm.heartbeat(admin, w, "idle")
            got = (await asyncio.wait_for(q.get(), 5))[1:]
            assert got == ("worker", {"id": w, "name": "w", "state": "idle"})
            await farm.heartbeat(admin, w, "idle")  # no change, no event
            await asyncio.sleep(0.05)
            assert q.empty()

    run(studio, body, lease=0.5)


def test_batched_progress_and_done_writes(studio: Studio) -> None:
    """Many reports in one batch (on PostgreSQL one array statement per kind of write)."""
    async def body(farm: Farm, admin: User, ann: User) -> None:
        job = await farm.submit(ann, spec(cmd("c", "1-6")))
        ws = [await worker(farm, admin, f"w{i}") for i in range(6)]
        tasks = await asyncio.gather(*(farm.next_task(admin, w, 0) for w in ws))
        assert all(t is not None for t in tasks)
        ts = [t for t in tasks if t is not None]
        await asyncio.gather(*(farm.progress(admin, t["id"], t["attempt"], 10.0 * i,
                                             None if i % 2 else i, [f"l{i}"])
                               for i, t in enumerate(ts)))
        shown = {x["id"]: x for x in
                 (await reads.job(farm, job))["tasks"]}
        for i, t in enumerate(ts):
            assert shown[t["id"]]["progress"] == 10.0 * i
            assert shown[t["id"]]["frame"] == (None if i % 2 else i)
        await asyncio.gather(*(finish(farm, admin, t) for t in ts[:4]))
        shown = {x["id"]: x for x in
                 (await reads.job(farm, job))["tasks"]}
        assert [shown[t["id"]]["status"] for t in ts] == ["done"] * 4 + ["running"] * 2
        outs = await reads.job_outputs(farm, job)
        assert sorted(o["frame"] for o in outs) == sorted(f for t in ts[:4] for f in t["frames"])
        workers = {w["name"]: w for w in await reads.workers(farm, admin)}
        assert sum(1 for w in workers.values() if w["state"] == "busy") == 6

    run(studio, body)


def test_submits_batched_together_keep_their_own_blocks_and_refusals(studio: Studio) -> None:
    """Submits that reach the writer together are inserted by one handler call: each job
    gets its own blocks, tasks and block dependencies, and a refused one (no right on its
    project, an unknown --after job) refuses only itself."""
    accounts.create_project(studio.engine, "film")
    accounts.create_project(studio.engine, "secret")
    accounts.add_user(studio.engine, "kim", "artist")
    accounts.set_right(studio.engine, "secret", "kim", "read", True)  # ann now has none

    async def body(farm: Farm, admin: User, ann: User) -> None:
        first = await farm.submit(ann, spec(cmd("c", "1")))
        enc = {"name": "enc", "type": "ffmpeg", "chunk": 3, "params": {"block": "r"}}
        specs = [spec(cmd("r", f"1-{3 + i}", 2), enc, name=f"shot {i}", project="film")
                 for i in range(12)]
        specs.insert(3, spec(cmd("r", "1"), name="forbidden", project="secret"))
        specs.insert(7, spec(cmd("r", "1"), name="lost", after=[first + 10_000]))
        specs.append(spec(cmd("r", "1-2"), name="later", after=[first]))
        batches = farm.writer.batches
        got = await asyncio.gather(*(farm.submit(ann, s) for s in specs),
                                   return_exceptions=True)
        assert farm.writer.batches - batches < len(specs)  # they were batched
        assert isinstance(got[3], PermissionDenied)
        assert "unknown job" in str(got[7])
        ids = [g for g in got if isinstance(g, int)]
        assert len(ids) == len(specs) - 2 and len(set(ids)) == len(ids)
        for i, jid in enumerate(ids[:-1]):
            job = await reads.job(farm, jid, True)
            frames = 3 + i
            assert job["name"] == f"shot {i}" and job["project"] == "film"
            assert [b["name"] for b in job["blocks"]] == ["r", "enc"]
            assert job["blocks"][1]["depends_on"] == [{"block": "r", "mode": "frame"}]
            assert job["tasks_total"] == (frames + 1) // 2 + (frames + 2) // 3
            renders = [t for t in job["tasks"] if t["block"] == "r"]
            assert renders[-1]["end"] == frames and all(t["status"] == "queued"
                                                        for t in renders)
        later = await reads.job(farm, ids[-1], False)
        assert later["after"] == [first] and later["status"] == "waiting"

    run(studio, body)
