"""Submitted jobs inserted a writer batch at a time.

Under load, submits queue in the farm writer's transaction, and on PostgreSQL every
statement there is a round trip: one job made four or five (rights, job, blocks, tasks).
Here the jobs the writer took together are checked and inserted with one INSERT of
jobs, one of blocks and one of tasks, whatever their number. Each submitter's right to
read the job's project is checked in the same transaction, once per (user, project).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vstudio.catalog import accounts
from vstudio.catalog.farm_reports import BLOCKED, QUEUED, after_jobs_done
from vstudio.catalog.farm_tables import farm_blocks, farm_job_after, farm_jobs, farm_tasks
from vstudio.errors import BadInput, VStudioError
from vstudio.farm.model import BlockPlan, JobState, state_on_submit
from vstudio.farm.ports import NewJob

# built once: under load, building statements cost more than running them
_JOBS = farm_jobs.insert().returning(farm_jobs.c.id, sort_by_parameter_order=True)
_BLOCKS = farm_blocks.insert().returning(farm_blocks.c.id, sort_by_parameter_order=True)
_TASKS = farm_tasks.insert()
TASK_ROWS = 5000  # per executemany: bounded statements for a 100,000-frame job


def insert_jobs(conn: Connection, new: Sequence[NewJob]) -> list[int | VStudioError]:
    """Insert ``new``; for each its job id, or the ``VStudioError`` that refused it
    (before anything of it was written: no rights, unknown --after job)."""
    out: list[int | VStudioError] = []
    ok: list[tuple[int, NewJob, bool]] = []  # (position, job, trusted)
    rights: dict[tuple[Any, str], bool | VStudioError] = {}
    for i, n in enumerate(new):
        checked = _checked(conn, n, rights)
        out.append(checked if isinstance(checked, VStudioError) else 0)
        if not isinstance(checked, VStudioError):
            ok.append((i, n, checked))
    if not ok:
        return out
    ids = _insert(conn, [(n, trusted) for _, n, trusted in ok])
    for (i, n, _), jid in zip(ok, ids, strict=True):
        out[i] = jid
        if n.job.after:  # waits unless every job it names is done already
            state = state_on_submit(n.job.paused, after_jobs_done(conn, jid))
            conn.execute(farm_jobs.update().where(farm_jobs.c.id == jid)
                         .values(state=state.value))
    return out


def _checked(conn: Connection, n: NewJob,
             rights: dict[tuple[Any, str], bool | VStudioError]) -> bool | VStudioError:
    """Whether the job's project is trusted, or why the job is refused."""
    if n.job.after:
        after = sorted(set(n.job.after))
        known = {r[0] for r in conn.execute(sa.select(farm_jobs.c.id)
                                             .where(farm_jobs.c.id.in_(after)))}
        missing = [a for a in after if a not in known]
        if missing:
            return BadInput(f"--after names unknown job(s): {', '.join(map(str, missing))}")
    if not n.job.project:
        return False
    key = (n.owner.id, n.job.project)
    if key not in rights:
        try:
            p = accounts.get_project(conn, n.job.project)
            accounts.require(conn, p, n.owner, "read")
            rights[key] = p.trusted
        except VStudioError as e:
            rights[key] = e
    return rights[key]


def _insert(conn: Connection, jobs: list[tuple[NewJob, bool]]) -> list[int]:
    ids = [int(r[0]) for r in conn.execute(_JOBS, [{
        "name": n.job.name, "owner": n.owner.name, "project": n.job.project,
        "trusted": trusted, "priority": n.job.priority,
        # with --after the state is set once the after-jobs are looked at
        "state": (JobState.WAITING if n.job.after
                  else state_on_submit(n.job.paused, True)).value,
        "max_running": n.job.max_running, "blocklist_after": n.job.blocklist_after,
        "inputs": json.dumps(n.inputs), "created": n.now} for n, trusted in jobs])]
    after = [{"job_id": jid, "after_id": a}
             for jid, (n, _) in zip(ids, jobs, strict=True) for a in sorted(set(n.job.after))]
    if after:
        conn.execute(farm_job_after.insert(), after)
    plans = [(jid, p) for jid, (n, _) in zip(ids, jobs, strict=True) for p in n.plans]
    block_ids = [int(r[0]) for r in conn.execute(_BLOCKS, [{
        "job_id": jid, "idx": p.index, "name": p.name, "type": p.type,
        "params": json.dumps(p.params), "tags": json.dumps(p.tags), "chunk": p.chunk,
        "max_per_worker": p.max_per_worker, "retries": p.retries, "timeout": p.timeout,
        "depends": "[]"} for jid, p in plans])]
    by_index: dict[tuple[int, int], int] = {
        (jid, p.index): bid for (jid, p), bid in zip(plans, block_ids, strict=True)}
    rows: list[dict[str, Any]] = []
    for (jid, p), bid in zip(plans, block_ids, strict=True):
        if p.depends:  # block ids are known only now
            conn.execute(farm_blocks.update().where(farm_blocks.c.id == bid).values(
                depends=json.dumps([[by_index[(jid, i)], mode] for i, mode in p.depends])))
        rows.extend(_task_rows(jid, bid, p))
    for i in range(0, len(rows), TASK_ROWS):
        conn.execute(_TASKS, rows[i:i + TASK_ROWS])
    return ids


def _task_rows(job_id: int, block_id: int, p: BlockPlan) -> list[dict[str, Any]]:
    status = BLOCKED if p.depends else QUEUED
    return [{"job_id": job_id, "block_id": block_id, "idx": n, "frames": json.dumps(frames),
             "first_frame": frames[0], "last_frame": frames[-1], "status": status}
            for n, frames in enumerate(p.tasks)]
