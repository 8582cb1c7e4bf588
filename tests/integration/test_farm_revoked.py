"""Issue 12: a right revoked while a job runs stops the job at the farm's next hand-out
(the farm manager on real SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from tests.integration.test_farm_manager import cmd, finish, run, spec, studio, worker
from vstudio.catalog import accounts
from vstudio.catalog.accounts import User
from vstudio.errors import BadInput
from vstudio.farm import reads
from vstudio.farm.service import Farm
from vstudio.repo.api import Entry
from vstudio.repo.service import Change, RepoService
from vstudio.studio import Studio

__all__ = ["studio"]  # the fixture, on both databases


def test_a_job_reading_a_project_stops_when_the_right_is_revoked(studio: Studio) -> None:
    """A job that reads film's files by reference is film's job; once its submitter may no
    longer read film, no node is handed its next task (nor the inputs): the job ends
    canceled, each unfinished task naming why."""
    accounts.create_project(studio.engine, "film")
    accounts.create_project(studio.engine, "book")
    oid = studio.store.put_bytes(b"a blend file")
    for name in ("film", "book"):
        RepoService(studio).commit(name, "ann", "shot", [
            Change("a.blend", None, Entry("a.blend", oid, 12))])

    async def body(farm: Farm, admin: User, ann: User) -> None:
        accounts.set_right(studio.engine, "film", "ann", "read", True)
        job = await farm.submit(ann, spec(cmd("c", "1-3"), inputs=[
            {"path": "a.blend", "ref": "film@1:a.blend"}]))
        assert (await reads.job(farm, job))["project"] == "film"
        with pytest.raises(BadInput, match=r"own project only \(film\), not of book"):
            await farm.submit(ann, spec(cmd("c", "1"), project="film", inputs=[
                {"path": "b.blend", "ref": "book@1:a.blend"}]))
        w = await worker(farm, admin, "w1")
        first = await farm.next_task(admin, w, 0)
        assert first is not None and first["inputs"][0]["oid"] == oid
        await finish(farm, admin, first)
        accounts.set_right(studio.engine, "film", "ann", "read", False)
        assert await farm.next_task(admin, w, 0) is None
        shown = await reads.job(farm, job)
        assert shown["status"] == "canceled"
        assert [t["status"] for t in shown["tasks"]] == ["done", "canceled", "canceled"]
        assert {t["error"] for t in shown["tasks"][1:]} == {
            "refused by the farm: user 'ann' may no longer read project 'film' "
            "(the job was canceled)"}

    run(studio, body)


def _film_job_studio(studio: Studio) -> str:
    """Project film with one committed file; its reference for a job's input."""
    accounts.create_project(studio.engine, "film")
    oid = studio.store.put_bytes(b"a blend file")
    RepoService(studio).commit("film", "ann", "shot", [
        Change("a.blend", None, Entry("a.blend", oid, 12))])
    return "film@1:a.blend"


def test_the_owners_right_is_read_once_a_moment_not_per_task(studio: Studio) -> None:
    """Tasks of a project's job handed out within ``refusals.TTL`` of each other cost one
    read of the owner's right between them, not one each (the claim path's cost)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    ref = _film_job_studio(studio)
    reads_of_rights: list[str] = []

    def count(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if "project_rights" in statement:
            reads_of_rights.append(statement)

    async def body(farm: Farm, admin: User, ann: User) -> None:
        accounts.set_right(studio.engine, "film", "ann", "read", True)
        await farm.submit(ann, spec(cmd("c", "1-12"), inputs=[{"path": "a.blend", "ref": ref}]))
        w = await worker(farm, admin, "w1")
        farm.refusals.ttl = 60.0  # the whole test is within one moment, however slow
        event.listen(Engine, "before_cursor_execute", count)
        try:
            for _ in range(12):
                task = await farm.next_task(admin, w, 0)
                assert task is not None
                await finish(farm, admin, task)
        finally:
            event.remove(Engine, "before_cursor_execute", count)
        assert len(reads_of_rights) <= 2, reads_of_rights  # 12 tasks: 1 check (2 queries)

    run(studio, body)


def test_a_right_revoked_by_another_process_stops_the_job_within_the_bound(
        studio: Studio) -> None:
    """A right revoked outside this process (another manager, a CLI on the database: here
    a plain SQL update) is seen at the first hand-out after ``refusals.TTL``. (One revoked
    through this process's ``accounts`` counts at the next hand-out:
    ``test_a_job_reading_a_project_stops_when_the_right_is_revoked``.)"""
    import asyncio

    from vstudio.catalog.tables import project_rights

    ref = _film_job_studio(studio)

    async def body(farm: Farm, admin: User, ann: User) -> None:
        accounts.set_right(studio.engine, "film", "ann", "read", True)
        job = await farm.submit(ann, spec(cmd("c", "1-4"), inputs=[
            {"path": "a.blend", "ref": ref}]))
        w = await worker(farm, admin, "w1")
        farm.refusals.ttl = 0.5
        first = await farm.next_task(admin, w, 0)
        assert first is not None
        await finish(farm, admin, first)
        with studio.engine.begin() as conn:  # not through accounts: another process's write
            conn.execute(project_rights.update().values(can_read=False, can_write=False))
        await asyncio.sleep(0.6)
        assert await farm.next_task(admin, w, 0) is None
        shown = await reads.job(farm, job)
        assert shown["status"] == "canceled"
        assert [t["status"] for t in shown["tasks"]] == ["done", "canceled", "canceled",
                                                         "canceled"]

    run(studio, body)
