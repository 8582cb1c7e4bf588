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
