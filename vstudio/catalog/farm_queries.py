"""Read side of the farm: job lists, a job with its tasks, logs, workers, outputs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vstudio.catalog.farm_conditions import Nodes, condition_of, conditions, waiting_on
from vstudio.catalog.farm_tables import (
    farm_blocklist,
    farm_blocks,
    farm_job_after,
    farm_jobs,
    farm_logs,
    farm_outputs,
    farm_tasks,
    farm_workers,
)
from vstudio.errors import NotFound
from vstudio.farm.model import JobState, TaskStatus, shown_task_status
from vstudio.farm.ports import BlockNeeds, Condition, JobFacts, ShownRules

t = farm_tasks
# built once (see farm_conditions): the job list and a job's page data are the most
# common reads under load
_COUNTS = (sa.select(t.c.job_id, t.c.status, sa.func.count(), sa.func.sum(t.c.progress))
           .where(t.c.job_id.in_(sa.bindparam("ids", expanding=True)))
           .group_by(t.c.job_id, t.c.status))


def _counts(conn: Connection, job_ids: list[int]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {j: {} for j in job_ids}
    if not job_ids:
        return out
    for jid, status, n, prog in conn.execute(_COUNTS, {"ids": job_ids}):
        out[jid][status] = n
        out[jid]["_progress"] = out[jid].get("_progress", 0) + int(prog or 0)
    return out


def _job_dict(row: Any, counts: dict[str, int], cond: Condition) -> dict[str, Any]:
    total = sum(v for k, v in counts.items() if not k.startswith("_"))
    return {
        "id": row.id, "name": row.name, "owner": row.owner, "project": row.project,
        "priority": row.priority, "status": cond.status, "reason": cond.reason,
        "paused": row.state == "paused", "max_running": row.max_running,
        "created": row.created, "started": row.started, "finished": row.finished,
        "tasks_total": total, "tasks_done": counts.get("done", 0),
        "tasks_running": counts.get("running", 0), "tasks_failed": counts.get("failed", 0),
        "progress": round(counts.get("_progress", 0) / total, 1) if total else 0.0,
    }


def list_jobs(conn: Connection, rules: ShownRules, *, owner: str | None = None,
              status: str | None = None, limit: int = 100,
              offset: int = 0, newer_than: int = 0,
              nodes: Nodes = None) -> list[dict[str, Any]]:
    q = sa.select(farm_jobs).order_by(farm_jobs.c.id.desc())
    if newer_than:
        q = q.where(farm_jobs.c.id > newer_than)
    if owner:
        q = q.where(farm_jobs.c.owner == owner)
    exact = status is None or rules.coarse[status] == (status,)
    if status:
        # filtered in SQL: a farm with thousands of finished jobs lists its running few
        # without loading every job and its task counts; the statuses that need more
        # than counts (stalled, waiting, ...) are refined below among the open jobs
        q = q.where(_status_sql().in_(rules.coarse[status]))
    if exact:
        q = q.limit(limit).offset(offset)
    rows = conn.execute(q).all()
    counts = _counts(conn, [r.id for r in rows])
    conds = conditions(conn, [(r.id, r.state) for r in rows], counts, rules, nodes)
    out = [_job_dict(r, counts[r.id], conds[r.id]) for r in rows]
    if not exact:
        out = [j for j in out if j["status"] == status][offset:offset + limit]
    return out


def _status_sql() -> sa.ColumnElement[str]:
    """``model.job_status`` as one SQL expression over the job's task counts."""
    def n(*statuses: str) -> sa.ScalarSelect[int]:
        return (sa.select(sa.func.count()).select_from(t)
                .where((t.c.job_id == farm_jobs.c.id) & t.c.status.in_(statuses))
                .scalar_subquery())

    running, waiting = n(TaskStatus.RUNNING), n(TaskStatus.QUEUED, TaskStatus.BLOCKED)
    failed, done, queued = n(TaskStatus.FAILED), n(TaskStatus.DONE), n(TaskStatus.QUEUED)
    state = farm_jobs.c.state
    return sa.case(
        (state == JobState.CANCELED.value, "canceled"),
        (state == JobState.DONE.value, "done"),
        ((running == 0) & (waiting == 0) & (failed == 0) & (done > 0), "done"),
        ((state == JobState.PAUSED.value) & (running == 0), "paused"),
        (running > 0, "running"),
        ((queued == 0) & (failed > 0), "failed"),
        (state == JobState.PAUSED.value, "paused"),
        ((done > 0) | (failed > 0), "running"),
        else_="queued")


_JID: sa.BindParameter[int] = sa.bindparam("jid")
_JOB = sa.select(farm_jobs).where(farm_jobs.c.id == _JID)
_JOB_COUNTS = (sa.select(t.c.block_id, t.c.status, sa.func.count(), sa.func.sum(t.c.progress))
               .where(t.c.job_id == _JID).group_by(t.c.block_id, t.c.status))
_JOB_AFTER = (sa.select(farm_job_after.c.after_id, farm_jobs.c.state)
              .join(farm_jobs, farm_jobs.c.id == farm_job_after.c.after_id)
              .where(farm_job_after.c.job_id == _JID).order_by(farm_job_after.c.after_id))
_JOB_BLOCKS = (sa.select(farm_blocks).where(farm_blocks.c.job_id == _JID)
               .order_by(farm_blocks.c.idx))
_JOB_BLOCKLIST = (sa.select(farm_blocklist.c.worker_id, farm_blocklist.c.failures,
                            farm_blocklist.c.last_error, farm_workers.c.name)
                  .outerjoin(farm_workers, farm_workers.c.id == farm_blocklist.c.worker_id)
                  .where((farm_blocklist.c.job_id == _JID)
                         & (farm_blocklist.c.failures >= sa.bindparam("after"))))
_JOB_TASKS = sa.select(t).where(t.c.job_id == _JID).order_by(t.c.block_id, t.c.idx)
_WORKER_NAMES = sa.select(farm_workers.c.id, farm_workers.c.name)


def get_job(conn: Connection, job_id: int, rules: ShownRules, *,
            with_tasks: bool = True, nodes: Nodes = None) -> dict[str, Any]:
    """A job's page data. Each fact is read once and serves both the page and the job's
    condition (the most common read under load: five queries; a waiting job adds those
    about its after-jobs, and the render nodes unless ``nodes`` has them)."""
    at = {"jid": job_id}
    row = conn.execute(_JOB, at).first()
    if row is None:
        raise NotFound(f"no job {job_id}")
    per_block: dict[int, set[str]] = {}
    sums: dict[str, list[float]] = {}
    for block_id, status, n, prog in conn.execute(_JOB_COUNTS, at):
        per_block.setdefault(block_id, set()).add(status)
        got = sums.setdefault(status, [0, 0.0])
        got[0] += n
        got[1] += prog or 0
    counts: dict[str, int] = {k: int(v[0]) for k, v in sums.items()}
    counts["_progress"] = sum(int(v[1]) for v in sums.values())  # as the job list sums
    after = conn.execute(_JOB_AFTER, at).all()
    blocks = conn.execute(_JOB_BLOCKS, at).all()
    names = {b.id: b.name for b in blocks}
    kept_off = conn.execute(_JOB_BLOCKLIST, {"jid": job_id, "after": row.blocklist_after}).all()
    cond = condition_of(conn, rules, JobFacts(
        row.state, counts,
        waiting_on_jobs=(waiting_on(conn, job_id) if any(
            state != JobState.DONE.value for _, state in after) else {}),
        waiting_on_blocks=_waited_for(blocks, per_block, names),
        queued_blocks=[BlockNeeds(b.name, b.type, frozenset(json.loads(b.tags)))
                       for b in blocks if TaskStatus.QUEUED.value in per_block.get(b.id, ())],
        blocklisted=frozenset(r.worker_id for r in kept_off)), nodes)
    job = _job_dict(row, counts, cond)
    job["inputs"] = json.loads(row.inputs)
    job["after"] = [r[0] for r in after]
    job["blocks"] = [{
        "id": b.id, "name": b.name, "type": b.type, "params": json.loads(b.params),
        "tags": json.loads(b.tags), "chunk": b.chunk, "max_per_worker": b.max_per_worker,
        "retries": b.retries, "timeout": b.timeout,
        "depends_on": [{"block": names.get(d[0], str(d[0])), "mode": d[1]}
                       for d in json.loads(b.depends)]} for b in blocks]
    job["blocklist"] = [
        {"worker_id": r.worker_id, "worker": r.name, "failures": r.failures,
         "last_error": r.last_error} for r in kept_off]
    if with_tasks:
        workers = {r.id: r.name for r in conn.execute(_WORKER_NAMES)}
        job["tasks"] = [{
            "id": r.id, "block": names.get(r.block_id, ""), "index": r.idx,
            "frames": rules.frames_text(json.loads(r.frames)), "start": r.first_frame,
            "end": r.last_frame, "status": shown_task_status(r.status, row.state),
            "attempt": r.attempt, "failures": r.failures, "progress": r.progress,
            "frame": r.frame, "worker": workers.get(r.worker_id) if r.worker_id else None,
            "started": r.started, "finished": r.finished, "error": r.error}
            for r in conn.execute(_JOB_TASKS, at)]
    return job


def _waited_for(blocks: Sequence[Any], per_block: dict[int, set[str]],
                names: dict[int, str]) -> list[str]:
    """Names of the blocks whose frames the job's blocked tasks wait for, in order."""
    out: list[str] = []
    for b in blocks:
        if TaskStatus.BLOCKED.value in per_block.get(b.id, ()):
            for block_id, _mode in json.loads(b.depends):
                name = str(names.get(block_id, block_id))
                if name not in out:
                    out.append(name)
    return out


def job_owner(conn: Connection, job_id: int) -> str:
    owner = conn.execute(sa.select(farm_jobs.c.owner).where(farm_jobs.c.id == job_id)).scalar()
    if owner is None:
        raise NotFound(f"no job {job_id}")
    return str(owner)


def task_job(conn: Connection, task_id: int) -> int:
    jid = conn.execute(sa.select(t.c.job_id).where(t.c.id == task_id)).scalar()
    if jid is None:
        raise NotFound(f"no task {task_id}")
    return int(jid)


def task_log(conn: Connection, task_id: int, *, after: int = 0,
             limit: int = 1000) -> dict[str, Any]:
    row = conn.execute(sa.select(t.c.id, t.c.job_id, t.c.status, t.c.attempt)
                       .where(t.c.id == task_id)).first()
    if row is None:
        raise NotFound(f"no task {task_id}")
    lines = conn.execute(sa.select(farm_logs.c.id, farm_logs.c.attempt, farm_logs.c.time,
                                   farm_logs.c.line)
                         .where((farm_logs.c.task_id == task_id) & (farm_logs.c.id > after))
                         .order_by(farm_logs.c.id).limit(limit)).all()
    return {"task_id": task_id, "job_id": row.job_id, "status": row.status,
            "attempt": row.attempt,
            "lines": [{"id": r.id, "attempt": r.attempt, "time": r.time, "line": r.line}
                      for r in lines]}


def job_outputs(conn: Connection, job_id: int) -> list[dict[str, Any]]:
    blocks = {r.id: r.name for r in conn.execute(
        sa.select(farm_blocks.c.id, farm_blocks.c.name).where(farm_blocks.c.job_id == job_id))}
    q = (sa.select(farm_outputs).where(farm_outputs.c.job_id == job_id)
         .order_by(farm_outputs.c.block_id, farm_outputs.c.frame, farm_outputs.c.id))
    return [{"task_id": r.task_id, "block": blocks.get(r.block_id, ""), "frame": r.frame,
             "name": r.name, "oid": r.oid, "seconds": r.seconds, "peak_mem": r.peak_mem,
             "thumbnail_oid": r.thumbnail_oid} for r in conn.execute(q)]


def list_workers(conn: Connection) -> list[dict[str, Any]]:
    running: dict[int, list[int]] = {}
    for wid, tid in conn.execute(sa.select(t.c.worker_id, t.c.id)
                                 .where(t.c.status == "running")):
        running.setdefault(wid, []).append(tid)
    return [{"id": r.id, "name": r.name, "user": r.user_name, "slots": r.slots,
             "tags": json.loads(r.tags), "job_types": json.loads(r.job_types),
             "allow_commands": bool(r.allow_commands), "idle_only": bool(r.idle_only),
             "enabled": bool(r.enabled), "draining": bool(r.draining),
             "state": ("disabled" if not r.enabled else "draining" if r.draining
                       and r.state != "offline" else r.state),
             "registered": r.registered, "last_seen": r.last_seen,
             "tasks": running.get(r.id, []), "system": json.loads(r.system or "{}"),
             "tags_fixed": bool(r.tags_fixed), "schedule": r.schedule,
             "schedule_tz": r.schedule_tz,
             "cpu_use": r.cpu_use, "mem_use": r.mem_use}
            for r in conn.execute(sa.select(farm_workers).order_by(farm_workers.c.name))]


def worker_user(conn: Connection, worker_id: int) -> str:
    user = conn.execute(sa.select(farm_workers.c.user_name)
                        .where(farm_workers.c.id == worker_id)).scalar()
    if user is None:
        raise NotFound(f"no worker {worker_id}: register it first")
    return str(user)


def job_project(conn: Connection, job_id: int) -> str | None:
    row = conn.execute(sa.select(farm_jobs.c.project).where(farm_jobs.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"no job {job_id}")
    return None if row.project is None else str(row.project)
