"""The farm's reads, as named questions: the API asks these and never holds a database
connection or the catalog's query functions itself."""

from __future__ import annotations

import time
from typing import Any

from vstudio.catalog.accounts import User
from vstudio.farm import hours
from vstudio.farm.service import Farm


async def jobs(farm: Farm, owner: str | None = None, status: str | None = None,
               limit: int = 100, offset: int = 0, newer_than: int = 0) -> list[dict[str, Any]]:
    """Jobs, newest first (rights are the caller's to filter: ``Farm.visible_jobs``);
    ``newer_than``: only jobs with a higher id."""
    return await farm.read(lambda r: r.jobs(owner, status, limit, offset, newer_than))


async def job(farm: Farm, job_id: int, with_tasks: bool = True) -> dict[str, Any]:
    return await farm.read(lambda r: r.job(job_id, with_tasks))


async def job_outputs(farm: Farm, job_id: int) -> list[dict[str, Any]]:
    return await farm.read(lambda r: r.job_outputs(job_id))


async def task_job(farm: Farm, task_id: int) -> int:
    """The job a task belongs to (``NotFound`` for no such task)."""
    return await farm.read(lambda r: r.task_job(task_id))


async def task_log(farm: Farm, task_id: int, after: int = 0, limit: int = 1000
                   ) -> dict[str, Any]:
    return await farm.read(lambda r: r.task_log(task_id, after, limit))


async def workers(farm: Farm, user: User) -> list[dict[str, Any]]:
    """Render nodes, with the running tasks ``user`` may see (``Farm.workers``);
    ``off_schedule``: outside the hours it may render now."""
    now = time.time()
    return [{**w, "off_schedule": not hours.allows(w.get("schedule"), now,
                                                       w.get("schedule_tz"))}
            for w in await farm.workers(user)]
