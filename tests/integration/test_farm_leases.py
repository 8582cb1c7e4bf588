"""Leases on a clock the test sets: a lost worker's task is back within the lease, and a
manager that restarts gives its workers a lease to report before requeuing anything."""

from __future__ import annotations

import time
from typing import Any

from tests.integration.test_farm_manager import cmd, run, spec, studio, worker
from vstudio.catalog.accounts import User
from vstudio.farm import reads
from vstudio.farm.model import requeue_cutoff
from vstudio.farm.service import Farm
from vstudio.studio import Studio

__all__ = ["studio"]  # the fixture: SQLite and PostgreSQL


def test_lost_workers_task_is_back_within_the_lease_whatever_the_reaper_phase() -> None:
    for phase in (0.0, 0.5, 2.5, 4.99):
        passes = [phase + 5 * i for i in range(40)]  # one pass every 5 s, lease 60
        back = next(p for p in passes if requeue_cutoff(p, -1000, 60, 5) > 60.0)
        assert 55.0 <= back <= 60.0, (phase, back)


async def _status(farm: Farm, job: int) -> str:
    shown: dict[str, Any] = await reads.job(farm, job)
    return str(shown["tasks"][0]["status"])


def test_restarted_manager_waits_a_lease_for_its_workers(studio: Studio) -> None:
    async def body(farm: Farm, admin: User, ann: User) -> None:
        job = await farm.submit(ann, spec(cmd("c", "1")))
        w = await worker(farm, admin, "w1")
        assert await farm.next_task(admin, w, 0) is not None  # leased for 60 s from now
        # The manager was down five minutes, far longer than the lease, and is back.
        farm.started = time.time() + 300
        farm.reap_every = 5
        for after in (0.0, 30.0, 54.0):  # its worker may still report: nothing requeued
            await farm._write(lambda tx, a=after: farm.reap(tx, farm.started + a))
            assert await _status(farm, job) == "running"
        await farm._write(lambda tx: farm.reap(tx, farm.started + 56))  # silent for a lease
        assert await _status(farm, job) == "queued"

    run(studio, body, lease=60)


def test_lost_workers_task_is_requeued_by_the_pass_before_its_lease_ends(
        studio: Studio) -> None:
    async def body(farm: Farm, admin: User, ann: User) -> None:
        job = await farm.submit(ann, spec(cmd("c", "1")))
        w = await worker(farm, admin, "w1")
        before = time.time()
        assert await farm.next_task(admin, w, 0) is not None  # then the worker is lost
        farm.started, farm.reap_every = before - 1000, 5  # long up: no restart grace
        await farm._write(lambda tx: farm.reap(tx, before + 50))
        assert await _status(farm, job) == "running"
        # The next pass would come after the lease: this one requeues it (not 5 s late).
        await farm._write(lambda tx: farm.reap(tx, before + 57))
        assert await _status(farm, job) == "queued"

    run(studio, body, lease=60)
