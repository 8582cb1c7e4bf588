"""The atomic claim: hand the best queued tasks to a batch of waiting workers.

One transaction per batch: load a snapshot of the jobs with queued work, let the farm's
scheduler (the ``pick`` it passes: ``vstudio.farm.scheduler.first_block``) choose a block
per worker, lock queued tasks of those
blocks (``FOR UPDATE SKIP LOCKED`` on PostgreSQL so several managers never hand out one
task twice; SQLite has a single writer), and mark them running under a lease.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vstudio.catalog.farm_cache import FarmCache, JobInfo
from vstudio.catalog.farm_db import ByDialect, bulk
from vstudio.catalog.farm_tables import (
    farm_blocklist,
    farm_blocks,
    farm_jobs,
    farm_outputs,
    farm_tasks,
    farm_workers,
)
from vstudio.farm.model import BlockView, JobState, JobView, Snapshot, TaskStatus, WorkerView

t = farm_tasks
RUNNING = TaskStatus.RUNNING.value
QUEUED = TaskStatus.QUEUED.value

_queued_in_job = sa.exists().where((t.c.job_id == farm_jobs.c.id) & (t.c.status == QUEUED))
_queued_in_block = sa.exists().where((t.c.block_id == farm_blocks.c.id) & (t.c.status == QUEUED))
Q_JOBS = (sa.select(farm_jobs.c.id, farm_jobs.c.owner, farm_jobs.c.priority,
                    farm_jobs.c.created, farm_jobs.c.max_running)
          .where((farm_jobs.c.state == JobState.ACTIVE.value) & _queued_in_job))
Q_RUNNING_BY_JOB = (sa.select(t.c.job_id, farm_jobs.c.owner, sa.func.count())
                    .select_from(t.join(farm_jobs, farm_jobs.c.id == t.c.job_id))
                    .where(t.c.status == RUNNING).group_by(t.c.job_id, farm_jobs.c.owner))
Q_WORKER_RUNNING = ByDialect(lambda id_in: sa.select(t.c.worker_id, t.c.block_id,
                                                      sa.func.count())
                             .where((t.c.status == RUNNING) & id_in(t.c.worker_id))
                             .group_by(t.c.worker_id, t.c.block_id))
Q_WORKERS = ByDialect(lambda id_in: sa.select(farm_workers).where(id_in(farm_workers.c.id)))
Q_BLOCKLIST = ByDialect(lambda id_in: sa.select(farm_blocklist.c.worker_id,
                                                farm_blocklist.c.job_id)
                        .join(farm_jobs, farm_jobs.c.id == farm_blocklist.c.job_id)
                        .where(id_in(farm_blocklist.c.worker_id)
                               & (farm_blocklist.c.failures >= farm_jobs.c.blocklist_after)))
U_CLAIM = (t.update().where(t.c.id == sa.bindparam("tid"))
           .values(status=RUNNING, worker_id=sa.bindparam("wid"), attempt=t.c.attempt + 1,
                   progress=0.0, frame=None, started=sa.bindparam("now"),
                   lease_until=sa.bindparam("lease"), finished=None, error=None))
# The same two updates for PostgreSQL, one statement per batch (see farm_db.bulk).
PG_CLAIM = sa.text(
    "UPDATE farm_tasks AS t SET status = 'running', worker_id = v.wid, "
    "attempt = t.attempt + 1, progress = 0.0, frame = NULL, started = :now, "
    "lease_until = :lease, finished = NULL, error = NULL "
    "FROM unnest(CAST(:tids AS integer[]), CAST(:wids AS integer[])) AS v(tid, wid) "
    "WHERE t.id = v.tid")
PG_WORKER_SEEN = sa.text(
    "UPDATE farm_workers AS w SET last_seen = :now, state = v.st "
    "FROM unnest(CAST(:wids AS integer[]), CAST(:sts AS text[])) AS v(wid, st) "
    "WHERE w.id = v.wid")
# The scheduler's choice: the best block for a worker, skipping blocks with no queued task.
Pick = Callable[[WorkerView, Snapshot, Iterable[int]], BlockView | None]
U_WORKER_SEEN = (farm_workers.update().where(farm_workers.c.id == sa.bindparam("wid"))
                 .values(last_seen=sa.bindparam("now"), state=sa.bindparam("st")))


@dataclass
class Claimed:
    task_id: int
    attempt: int
    job: JobInfo
    block_id: int
    frames: list[int]


@lru_cache(maxsize=4096)
def _names(text: str) -> frozenset[str]:
    """A stored JSON list of tags or job types; the same few texts repeat on every claim."""
    return frozenset(json.loads(text))


def _workers(conn: Connection, ids: list[int], back: list[dict[str, Any]] | None = None
             ) -> tuple[dict[int, WorkerView], dict[tuple[int, int], int]]:
    """The workers of a batch, and how many tasks of each block each of them runs;
    workers marked offline that ask again are added to ``back``."""
    running: dict[int, int] = {}
    per_block: dict[tuple[int, int], int] = {}
    for wid, bid, n in conn.execute(Q_WORKER_RUNNING(conn), {"ids": ids}):
        running[wid] = running.get(wid, 0) + n
        per_block[(wid, bid)] = n
    out = {}
    for r in conn.execute(Q_WORKERS(conn), {"ids": ids}):
        if back is not None and r.state == "offline":
            back.append({"id": r.id, "name": r.name,
                         "state": "busy" if running.get(r.id) else "idle"})
        out[r.id] = WorkerView(
            id=r.id, slots=r.slots, tags=_names(r.tags),
            job_types=_names(r.job_types), allow_commands=bool(r.allow_commands),
            enabled=bool(r.enabled), draining=bool(r.draining), running=running.get(r.id, 0),
            schedule=r.schedule, schedule_tz=r.schedule_tz)
    return out, per_block


def load_snapshot(conn: Connection, cache: FarmCache, worker_ids: list[int],
                  per_block: dict[tuple[int, int], int]) -> Snapshot:
    jobs = {r.id: JobView(r.id, r.owner, r.priority, r.created, r.max_running)
            for r in conn.execute(Q_JOBS)}
    if jobs:
        # Tags come from the table, not the cache: a wrangler may change them after submit.
        q_blocks = (sa.select(farm_blocks.c.id, farm_blocks.c.job_id, farm_blocks.c.tags)
                    .where(farm_blocks.c.job_id.in_(list(jobs)) & _queued_in_block))
        for bid, jid, tags in conn.execute(q_blocks):
            b = cache.block(conn, jid, bid)
            jobs[jid].blocks.append(BlockView(b.id, jid, b.idx, b.type, _names(tags),
                                              b.max_per_worker))
    owner_running: dict[str, int] = {}
    for jid, owner, n in conn.execute(Q_RUNNING_BY_JOB):
        owner_running[owner] = owner_running.get(owner, 0) + n
        if jid in jobs:
            jobs[jid].running = n
    blocklist: dict[int, set[int]] = {}
    for wid, jid in conn.execute(Q_BLOCKLIST(conn), {"ids": worker_ids}):
        blocklist.setdefault(wid, set()).add(jid)
    return Snapshot([j for j in jobs.values() if j.blocks], owner_running, dict(per_block),
                    blocklist)


def claim_batch(conn: Connection, cache: FarmCache, worker_ids: list[int], now: float,
                lease_seconds: float, pick: Pick, back: list[dict[str, Any]] | None = None
                ) -> list[Claimed | None]:
    """For each request (a worker id, repeated for several slots) the task it now runs;
    workers that were offline and ask again are added to ``back`` (for events)."""
    ids = sorted(set(worker_ids))
    workers, per_block = _workers(conn, ids, back)
    snap = load_snapshot(conn, cache, ids, per_block)
    snap.now = now
    # Each block's queued tasks are locked lazily, a batch's worth at a time.
    pools: dict[int, deque[Any]] = {}
    exhausted: set[int] = set()
    out: list[Claimed | None] = []
    updates: list[dict[str, Any]] = []
    for wid in worker_ids:
        out.append(None)
        w = workers.get(wid)
        while w is not None:
            block = pick(w, snap, exhausted)
            if block is None:
                break
            pool = pools.get(block.id)
            if pool is None:
                q = (sa.select(t.c.id, t.c.attempt, t.c.frames)
                     .where((t.c.block_id == block.id) & (t.c.status == QUEUED))
                     .order_by(t.c.id).limit(len(worker_ids)).with_for_update(skip_locked=True))
                pool = pools[block.id] = deque(conn.execute(q).all())
            if not pool:
                exhausted.add(block.id)
                continue
            row = pool.popleft()
            job = cache.job(conn, block.job_id)
            out[-1] = Claimed(row.id, row.attempt + 1, job, block.id, json.loads(row.frames))
            updates.append({"tid": row.id, "wid": wid, "now": now, "lease": now + lease_seconds})
            snap.claimed(wid, block)
            workers[wid] = replace(w, running=w.running + 1)
            break
    if updates:
        bulk(conn, U_CLAIM, PG_CLAIM, updates, {"tid": "tids", "wid": "wids"}, now=now,
             lease=now + lease_seconds)
        started = sorted({c.job.id for c in out if c is not None})
        conn.execute(farm_jobs.update().where(farm_jobs.c.id.in_(started)
                                              & farm_jobs.c.started.is_(None))
                     .values(started=now))
    seen = [{"wid": wid, "now": now, "st": "busy" if workers[wid].running else "idle"}
            for wid in ids if wid in workers]
    bulk(conn, U_WORKER_SEEN, PG_WORKER_SEEN, seen, {"wid": "wids", "st": "sts"}, now=now)
    return out


def upstream_outputs(conn: Connection, claimed: Claimed) -> list[dict[str, Any]]:
    """Outputs of the blocks this task depends on (frame deps: only its frames)."""
    block = claimed.job.block(claimed.block_id)
    if not block.depends:
        return []
    lo, hi = min(claimed.frames), max(claimed.frames)
    names = {b.id: b.name for b in claimed.job.blocks}
    out: list[dict[str, Any]] = []
    for dep_id, mode in block.depends:
        q = (sa.select(farm_outputs.c.frame, farm_outputs.c.name, farm_outputs.c.oid)
             .where(farm_outputs.c.block_id == dep_id))
        if mode == "frame":
            q = q.where(farm_outputs.c.frame.between(lo, hi))
        for r in conn.execute(q.order_by(farm_outputs.c.frame, farm_outputs.c.id)):
            out.append({"block": names.get(dep_id, str(dep_id)), "frame": r.frame,
                        "name": r.name, "oid": r.oid})
    return out


def task_payload(conn: Connection, c: Claimed) -> dict[str, Any]:
    """The task as the worker receives it (see the farm HTTP API)."""
    job = c.job
    block = job.block(c.block_id)
    return {"id": c.task_id, "attempt": c.attempt, "job_id": job.id, "job_name": job.name,
            "block": block.name, "type": block.type, "params": block.params,
            "frames": c.frames, "start": min(c.frames), "end": max(c.frames),
            "project": job.project, "trusted": job.trusted, "inputs": job.inputs,
            "timeout": block.timeout, "upstream": upstream_outputs(conn, c)}
