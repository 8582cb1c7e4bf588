"""The farm's reads, as named questions: the API and the web page ask these and never
hold a database connection or the catalog's query functions themselves."""

from __future__ import annotations

from typing import Any

from vstudio.catalog import farm_queries as q
from vstudio.farm.service import Farm


async def jobs(farm: Farm, owner: str | None, status: str | None, limit: int,
               offset: int) -> list[dict[str, Any]]:
    """Jobs, newest first (rights are the caller's to filter: ``Farm.visible_jobs``)."""
    return await farm.read(
        lambda c: q.list_jobs(c, owner=owner, status=status, limit=limit, offset=offset))


async def job(farm: Farm, job_id: int, with_tasks: bool = True) -> dict[str, Any]:
    return await farm.read(lambda c: q.get_job(c, job_id, with_tasks=with_tasks))


async def job_outputs(farm: Farm, job_id: int) -> list[dict[str, Any]]:
    return await farm.read(lambda c: q.job_outputs(c, job_id))


async def task_job(farm: Farm, task_id: int) -> int:
    """The job a task belongs to (``NotFound`` for no such task)."""
    return await farm.read(lambda c: q.task_job(c, task_id))


async def task_log(farm: Farm, task_id: int, after: int, limit: int) -> dict[str, Any]:
    return await farm.read(lambda c: q.task_log(c, task_id, after=after, limit=limit))


async def workers(farm: Farm) -> list[dict[str, Any]]:
    return await farm.read(q.list_workers)
