"""What workers report: progress (renews the lease), done, failed; heartbeats; the reaper.

What each event does to a task or a job is decided by the state machine in
``vstudio.farm.model``; this module reads the rows it needs and writes the outcome.
Every function checks first and writes after, so a refused report (stale attempt,
unknown task) raises before it has changed anything and the batch it shares a
transaction with is unaffected.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vstudio.catalog.farm_cache import FarmCache
from vstudio.catalog.farm_tables import (
    farm_blocklist,
    farm_blocks,
    farm_job_after,
    farm_jobs,
    farm_logs,
    farm_tasks,
    farm_workers,
)
from vstudio.errors import NotFound
from vstudio.farm.model import (
    OPEN,
    Effects,
    JobState,
    TaskChange,
    TaskStatus,
    check_report,
    frames_needed,
    lease_lost,
    state_when_closed,
    task_failed,
    task_released,
    timeout_error,
)

t = farm_tasks
LOG_KEEP = 2000  # log lines kept per task; older ones are trimmed
RUNNING, QUEUED, BLOCKED = TaskStatus.RUNNING.value, TaskStatus.QUEUED.value, \
    TaskStatus.BLOCKED.value
OPEN_VALUES = [s.value for s in OPEN]

Q_TASK = sa.select(t.c.status, t.c.attempt, t.c.job_id, t.c.block_id, t.c.worker_id,
                   t.c.log_count, t.c.failures).where(t.c.id == sa.bindparam("tid"))


def _running_task(conn: Connection, task_id: int, attempt: int) -> Any:
    row = conn.execute(Q_TASK, {"tid": task_id}).first()
    if row is None:
        raise NotFound(f"no task {task_id}")
    check_report(task_id, attempt, row.attempt, row.status)
    return row


def add_log(conn: Connection, task_id: int, attempt: int, lines: list[str], now: float,
            log_count: int) -> int:
    if not lines:
        return log_count
    conn.execute(farm_logs.insert(), [{"task_id": task_id, "attempt": attempt, "time": now,
                                       "line": line} for line in lines])
    count = log_count + len(lines)
    if count > LOG_KEEP + LOG_KEEP // 4:  # trim in steps, not on every report
        cut = conn.execute(sa.select(farm_logs.c.id).where(farm_logs.c.task_id == task_id)
                           .order_by(farm_logs.c.id.desc()).offset(LOG_KEEP).limit(1)).scalar()
        if cut is not None:
            conn.execute(farm_logs.delete().where((farm_logs.c.task_id == task_id)
                                                  & (farm_logs.c.id <= cut)))
        count = LOG_KEEP
    return count


def task_values(change: TaskChange, now: float) -> dict[str, Any]:
    """The columns of a task that ``change`` sets."""
    values: dict[str, Any] = {"status": change.status.value, "lease_until": None}
    if change.requeued:
        values.update(worker_id=None, progress=0.0, frame=None)
    else:
        values["finished"] = now
    if change.error is not None:
        values["error"] = change.error
    if change.failures is not None:
        values["failures"] = change.failures
    return values


def _apply(conn: Connection, task_id: int, attempt: int, change: TaskChange, now: float,
           log_count: int) -> None:
    count = add_log(conn, task_id, attempt, [change.line], now, log_count)
    conn.execute(t.update().where(t.c.id == task_id).values(**task_values(change, now),
                                                            log_count=count))


def release(conn: Connection, task_id: int, attempt: int, reason: str, now: float) -> Effects:
    """Put a running task back in the queue without counting a failure."""
    row = _running_task(conn, task_id, attempt)
    change = task_released(attempt, reason)
    _apply(conn, task_id, attempt, change, now, row.log_count)
    return Effects(wake=True, jobs={row.job_id},
                   tasks=[{"id": task_id, "job_id": row.job_id, "status": change.status.value}])


def count_failure(conn: Connection, cache: FarmCache, task_id: int, row: Any, attempt: int,
                   error: str, now: float) -> Effects:
    block = cache.block(conn, row.job_id, row.block_id)
    change = task_failed(attempt, row.failures, block.retries, error)
    _apply(conn, task_id, attempt, change, now, row.log_count)
    if row.worker_id is not None:
        _blocklist_add(conn, row.job_id, row.worker_id, error)
    fx = Effects(wake=True, jobs={row.job_id},
                 tasks=[{"id": task_id, "job_id": row.job_id, "status": change.status.value,
                         "error": error}])
    if not change.requeued:
        finish_job_if_closed(conn, row.job_id, now, fx)
    return fx


def _blocklist_add(conn: Connection, job_id: int, worker_id: int, error: str) -> None:
    key = (farm_blocklist.c.job_id == job_id) & (farm_blocklist.c.worker_id == worker_id)
    n = conn.execute(sa.select(farm_blocklist.c.failures).where(key)).scalar()
    if n is None:
        conn.execute(farm_blocklist.insert().values(job_id=job_id, worker_id=worker_id,
                                                    failures=1, last_error=error[:2000]))
    else:
        conn.execute(farm_blocklist.update().where(key).values(failures=n + 1,
                                                               last_error=error[:2000]))


def deps_met(conn: Connection, deps: tuple[tuple[int, str], ...], lo: int, hi: int) -> bool:
    for dep_id, mode in deps:
        q = sa.select(t.c.id).where((t.c.block_id == dep_id)
                                    & (t.c.status != TaskStatus.DONE.value))
        span = frames_needed(mode, lo, hi)
        if span is not None:
            q = q.where((t.c.first_frame <= span[1]) & (t.c.last_frame >= span[0]))
        if conn.execute(q.limit(1)).first() is not None:
            return False
    return True


def release_dependents(conn: Connection, cache: FarmCache, job_id: int, block_id: int,
                       task_id: int | None, fx: Effects) -> None:
    """Queue the blocked tasks whose dependencies are now all done."""
    job = cache.job(conn, job_id)
    dependents = job.dependents.get(block_id, ())
    if not dependents:
        return
    span = None
    if task_id is not None:
        span = conn.execute(sa.select(t.c.first_frame, t.c.last_frame)
                            .where(t.c.id == task_id)).first()
    for dep_block_id in dependents:
        block = job.block(dep_block_id)
        mode = dict(block.depends).get(block_id, "whole")
        q = sa.select(t.c.id, t.c.first_frame, t.c.last_frame).where(
            (t.c.block_id == dep_block_id) & (t.c.status == BLOCKED))
        # the dependent tasks whose needed frames this task's frames are part of
        near = None if span is None else frames_needed(mode, span.first_frame, span.last_frame)
        if near is not None:
            q = q.where((t.c.first_frame <= near[1]) & (t.c.last_frame >= near[0]))
        ready = [r.id for r in conn.execute(q)
                 if deps_met(conn, block.depends, r.first_frame, r.last_frame)]
        if ready:
            conn.execute(t.update().where(t.c.id.in_(ready) & (t.c.status == BLOCKED))
                         .values(status=QUEUED))
            fx.wake = True


def finish_job_if_closed(conn: Connection, job_id: int, now: float, fx: Effects) -> None:
    """Mark a job finished when it has no open task; start jobs that waited for it."""
    open_task = conn.execute(sa.select(t.c.id).where((t.c.job_id == job_id)
                                                     & t.c.status.in_(OPEN_VALUES))
                             .limit(1)).first()
    if open_task is not None:
        return
    failed = conn.execute(sa.select(t.c.id).where((t.c.job_id == job_id)
                                                  & (t.c.status == TaskStatus.FAILED.value))
                          .limit(1)).first()
    values: dict[str, Any] = {"finished": now}
    state = state_when_closed(failed is not None)
    if state is not None:
        values["state"] = state.value
    conn.execute(farm_jobs.update().where((farm_jobs.c.id == job_id)
                                          & (farm_jobs.c.state != JobState.CANCELED.value))
                 .values(**values))
    fx.jobs.add(job_id)
    if state is JobState.DONE:
        start_waiting_jobs(conn, job_id, fx)


def start_waiting_jobs(conn: Connection, done_job_id: int, fx: Effects) -> None:
    waiting = [r[0] for r in conn.execute(sa.select(farm_job_after.c.job_id)
                                          .where(farm_job_after.c.after_id == done_job_id))]
    for jid in waiting:
        if after_jobs_done(conn, jid):
            res = conn.execute(farm_jobs.update().where(
                (farm_jobs.c.id == jid) & (farm_jobs.c.state == JobState.WAITING.value))
                .values(state=JobState.ACTIVE.value))
            if res.rowcount:
                fx.jobs.add(jid)
                fx.wake = True


def after_jobs_done(conn: Connection, job_id: int) -> bool:
    """True when every job this one waits for is done (a deleted one no longer counts)."""
    q = (sa.select(farm_jobs.c.id)
         .join(farm_job_after, farm_job_after.c.after_id == farm_jobs.c.id)
         .where((farm_job_after.c.job_id == job_id)
                & (farm_jobs.c.state != JobState.DONE.value)).limit(1))
    return conn.execute(q).first() is None


def heartbeat(conn: Connection, worker_id: int, state: str, now: float,
              lease_seconds: float, usage: tuple[float, float] | None = None) -> Effects:
    """Renew the worker's leases; a worker marked offline is back (an event)."""
    prev = conn.execute(sa.select(farm_workers.c.name, farm_workers.c.state)
                        .where(farm_workers.c.id == worker_id)).first()
    if prev is None:
        raise NotFound(f"no worker {worker_id}: register again")
    conn.execute(farm_workers.update().where(farm_workers.c.id == worker_id)
                 .values(last_seen=now, state=state[:32],
                         **({"cpu_use": usage[0], "mem_use": usage[1]} if usage else {})))
    conn.execute(t.update().where((t.c.worker_id == worker_id) & (t.c.status == RUNNING))
                 .values(lease_until=now + lease_seconds))
    fx = Effects()
    if prev.state != state[:32]:
        fx.workers = [{"id": worker_id, "name": prev.name, "state": state[:32]}]
    return fx


def reap(conn: Connection, cache: FarmCache, now: float, lease_seconds: float,
         cutoff: float | None = None) -> Effects:
    """Requeue tasks whose lease ends before ``cutoff`` (default: ``now``; see
    ``farm.model.requeue_cutoff``); fail tasks over their timeout; mark lost workers."""
    fx = Effects()
    until = now if cutoff is None else cutoff
    expired = conn.execute(sa.select(t.c.id, t.c.job_id, t.c.attempt).where(
        (t.c.status == RUNNING) & (t.c.lease_until < until))
        .with_for_update(skip_locked=True)).all()
    for r in expired:
        conn.execute(farm_logs.insert().values(task_id=r.id, attempt=r.attempt, time=now,
                                               line=lease_lost(r.attempt).line))
    if expired:
        lost_lease = lease_lost(0)  # the same change for every task but its log line
        conn.execute(t.update().where(t.c.id.in_([r.id for r in expired])
                                      & (t.c.status == RUNNING))
                     .values(**task_values(lost_lease, now), log_count=t.c.log_count + 1))
        fx.wake = True
        fx.jobs.update(r.job_id for r in expired)
        fx.tasks.extend({"id": r.id, "job_id": r.job_id, "status": lost_lease.status.value}
                        for r in expired)
    timed = conn.execute(
        sa.select(t.c.id, t.c.status, t.c.attempt, t.c.job_id, t.c.block_id, t.c.worker_id,
                  t.c.log_count, t.c.failures, farm_blocks.c.timeout)
        .join(farm_blocks, farm_blocks.c.id == t.c.block_id)
        .where((t.c.status == RUNNING) & farm_blocks.c.timeout.is_not(None)
               & (t.c.started + farm_blocks.c.timeout < now))
        .with_for_update(skip_locked=True, of=t)).all()
    for tr in timed:
        sub = count_failure(conn, cache, tr.id, tr, tr.attempt, timeout_error(tr.timeout), now)
        fx.wake = True
        fx.jobs |= sub.jobs
        fx.tasks += sub.tasks
    lost = (farm_workers.c.last_seen < now - lease_seconds) & (farm_workers.c.state != "offline")
    gone = conn.execute(sa.select(farm_workers.c.id, farm_workers.c.name).where(lost)).all()
    if gone:
        conn.execute(farm_workers.update().where(farm_workers.c.id.in_([w.id for w in gone]))
                     .values(state="offline"))
        fx.workers = [{"id": w.id, "name": w.name, "state": "offline"} for w in gone]
    return fx
