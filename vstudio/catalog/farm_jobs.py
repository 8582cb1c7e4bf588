"""Jobs in the catalog: people's actions on them (submits: ``farm_submit``)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vstudio.catalog.farm_cache import FarmCache
from vstudio.catalog.farm_reports import (
    BLOCKED,
    QUEUED,
    RUNNING,
    after_jobs_done,
    deps_met,
    start_waiting_jobs,
)
from vstudio.catalog.farm_tables import (
    farm_blocklist,
    farm_blocks,
    farm_job_after,
    farm_jobs,
    farm_tasks,
    farm_workers,
)
from vstudio.errors import Conflict, NotFound
from vstudio.farm.model import (
    Effects,
    JobState,
    TaskStatus,
    cancels,
    state_on_pause,
    state_on_resume,
    state_on_retry,
    state_on_task_retry,
)

t = farm_tasks


def job_row(conn: Connection, job_id: int) -> Any:
    row = conn.execute(sa.select(farm_jobs).where(farm_jobs.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"no job {job_id}")
    return row


def _set_state(conn: Connection, job_id: int, state: JobState) -> None:
    conn.execute(farm_jobs.update().where(farm_jobs.c.id == job_id).values(state=state.value))


def pause(conn: Connection, job_id: int) -> Effects:
    state = state_on_pause(job_id, job_row(conn, job_id).state)
    if state is not None:
        _set_state(conn, job_id, state)
    return Effects(jobs={job_id})


def resume(conn: Connection, job_id: int) -> Effects:
    state = state_on_resume(job_id, job_row(conn, job_id).state, after_jobs_done(conn, job_id))
    if state is not None:
        _set_state(conn, job_id, state)
    return Effects(wake=True, jobs={job_id})


def cancel(conn: Connection, job_id: int, now: float, why: str | None = None) -> Effects:
    """Cancel the job's unfinished tasks; ``why`` (the farm's own reason) is their error."""
    if not cancels(job_row(conn, job_id).state):
        return Effects(jobs={job_id})
    extra = {} if why is None else {"error": why}
    conn.execute(t.update().where((t.c.job_id == job_id)
                                  & t.c.status.in_([QUEUED, BLOCKED, RUNNING]))
                 .values(status=TaskStatus.CANCELED.value, lease_until=None, finished=now,
                         **extra))
    conn.execute(farm_jobs.update().where(farm_jobs.c.id == job_id)
                 .values(state=JobState.CANCELED.value, finished=now))
    return Effects(jobs={job_id})


def retry(conn: Connection, cache: FarmCache, job_id: int) -> Effects:
    """Queue the failed and canceled tasks of a job again, with fresh retry counts."""
    row = job_row(conn, job_id)
    res = conn.execute(t.update().where(
        (t.c.job_id == job_id)
        & t.c.status.in_([TaskStatus.FAILED.value, TaskStatus.CANCELED.value]))
        .values(status=QUEUED, failures=0, worker_id=None, progress=0.0, finished=None,
                error=None))
    if res.rowcount or row.state == JobState.CANCELED:
        # Dependent tasks must wait again for what was requeued.
        _reblock(conn, cache, job_id)
        state = state_on_retry(row.state, after_jobs_done(conn, job_id))
        conn.execute(farm_jobs.update().where(farm_jobs.c.id == job_id)
                     .values(state=state.value, finished=None))
    return Effects(wake=True, jobs={job_id})


def _reblock(conn: Connection, cache: FarmCache, job_id: int) -> None:
    job = cache.job(conn, job_id)
    for b in job.blocks:
        if not b.depends:
            continue
        for r in conn.execute(sa.select(t.c.id, t.c.first_frame, t.c.last_frame).where(
                (t.c.block_id == b.id) & (t.c.status == QUEUED))).all():
            if not deps_met(conn, b.depends, r.first_frame, r.last_frame):
                conn.execute(t.update().where(t.c.id == r.id).values(status=BLOCKED))


def retry_task(conn: Connection, cache: FarmCache, task_id: int, now: float) -> Effects:
    row = conn.execute(sa.select(t.c.job_id, t.c.status).where(t.c.id == task_id)).first()
    if row is None:
        raise NotFound(f"no task {task_id}")
    job = job_row(conn, row.job_id)
    # decided (or refused) before anything is written
    state = state_on_task_retry(row.job_id, job.state, job.finished is not None,
                                after_jobs_done(conn, row.job_id))
    conn.execute(t.update().where(t.c.id == task_id).values(
        status=QUEUED, failures=0, worker_id=None, progress=0.0, finished=None, error=None,
        lease_until=None))
    _reblock(conn, cache, row.job_id)
    if state is not None:
        conn.execute(farm_jobs.update().where(farm_jobs.c.id == row.job_id)
                     .values(state=state.value, finished=None))
    return Effects(wake=True, jobs={row.job_id},
                   tasks=[{"id": task_id, "job_id": row.job_id, "status": QUEUED}])


def delete(conn: Connection, cache: FarmCache, job_id: int) -> Effects:
    job_row(conn, job_id)
    # Explicit deletes: SQLite only cascades with foreign keys on, and order matters.
    from vstudio.catalog.farm_tables import farm_logs, farm_outputs

    task_ids = sa.select(t.c.id).where(t.c.job_id == job_id).scalar_subquery()
    conn.execute(farm_logs.delete().where(farm_logs.c.task_id.in_(task_ids)))
    conn.execute(farm_outputs.delete().where(farm_outputs.c.job_id == job_id))
    conn.execute(t.delete().where(t.c.job_id == job_id))
    conn.execute(farm_blocks.delete().where(farm_blocks.c.job_id == job_id))
    conn.execute(farm_blocklist.delete().where(farm_blocklist.c.job_id == job_id))
    conn.execute(farm_job_after.delete().where(farm_job_after.c.job_id == job_id))
    conn.execute(farm_jobs.delete().where(farm_jobs.c.id == job_id))
    cache.forget(job_id)
    fx = Effects(wake=True, jobs={job_id})
    start_waiting_jobs(conn, job_id, fx)  # nothing to wait for any more
    conn.execute(farm_job_after.delete().where(farm_job_after.c.after_id == job_id))
    return fx


def set_priority(conn: Connection, job_id: int, priority: int) -> Effects:
    job_row(conn, job_id)
    conn.execute(farm_jobs.update().where(farm_jobs.c.id == job_id).values(priority=priority))
    return Effects(jobs={job_id})


def set_tags(conn: Connection, cache: FarmCache, job_id: int,
             tags: dict[int, list[str]]) -> Effects:
    """New tags for blocks of a job (block id -> tags); nodes that now qualify are woken."""
    job_row(conn, job_id)
    for block_id, names in tags.items():
        conn.execute(farm_blocks.update().where((farm_blocks.c.id == block_id)
                                                & (farm_blocks.c.job_id == job_id))
                     .values(tags=json.dumps(names)))
    cache.forget(job_id)  # other servers read tags from the table when they hand out work
    return Effects(wake=True, jobs={job_id})


def clear_blocklist(conn: Connection, job_id: int, worker_id: int | None) -> Effects:
    job_row(conn, job_id)
    q = farm_blocklist.delete().where(farm_blocklist.c.job_id == job_id)
    if worker_id is not None:
        q = q.where(farm_blocklist.c.worker_id == worker_id)
    conn.execute(q)
    return Effects(wake=True, jobs={job_id})


def register_worker(conn: Connection, name: str, user: str, slots: int, tags: list[str],
                    job_types: list[str], allow_commands: bool, idle_only: bool,
                    now: float, system: dict[str, Any] | None = None) -> int:
    """Register (or re-register, by name) a worker; its running tasks keep their leases."""
    row = conn.execute(sa.select(farm_workers.c.id, farm_workers.c.user_name,
                                 farm_workers.c.tags_fixed)
                       .where(farm_workers.c.name == name)).first()
    values = {"user_name": user, "slots": slots, "tags": json.dumps(sorted(set(tags))),
              "job_types": json.dumps(sorted(set(job_types))), "allow_commands": allow_commands,
              "idle_only": idle_only, "last_seen": now, "state": "idle",
              "system": json.dumps(system or {})}
    if row is not None:
        if row.user_name != user:
            raise Conflict(f"worker name {name!r} is taken by another user's worker")
        if row.tags_fixed:  # an admin's tags outlive the node's restarts
            del values["tags"]
        conn.execute(farm_workers.update().where(farm_workers.c.id == row.id).values(**values))
        return int(row.id)
    res = conn.execute(farm_workers.insert().values(name=name, registered=now, **values))
    return int(res.inserted_primary_key[0])  # type: ignore[index]


def set_worker_tags(conn: Connection, worker_id: int, tags: list[str] | None) -> Effects:
    """An admin's tags for a node (kept over its registrations), or None: the node's own
    from its next registration on (its current tags stay until then)."""
    if tags is None:
        return set_worker(conn, worker_id, tags_fixed=False)
    return set_worker(conn, worker_id, tags=json.dumps(sorted(set(tags))), tags_fixed=True)


def set_worker(conn: Connection, worker_id: int, **values: Any) -> Effects:
    res = conn.execute(farm_workers.update().where(farm_workers.c.id == worker_id)
                       .values(**values))
    if not res.rowcount:
        raise NotFound(f"no worker {worker_id}")
    return Effects(wake=True)
