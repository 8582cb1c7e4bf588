"""Worker reports applied in batches: one read of every task named, then bulk writes.

The hot path of the farm is ``progress`` and ``done`` from hundreds of render nodes.
Applying them one by one costs a handful of statements each; here a whole batch costs
one SELECT plus one ``executemany`` per kind of write, and each job's end-of-job check
runs once per batch. Every report is checked against the state as the batch has left
it (a ``done`` after a ``progress`` of the same task is fine; the reverse is stale).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vstudio.catalog.farm_cache import FarmCache
from vstudio.catalog.farm_db import ByDialect, bulk
from vstudio.catalog.farm_reports import (
    LOG_KEEP,
    RUNNING,
    add_log,
    count_failure,
    finish_job_if_closed,
    release,
    release_dependents,
)
from vstudio.catalog.farm_tables import farm_logs, farm_outputs, farm_tasks, farm_workers
from vstudio.errors import NotFound, PermissionDenied, VStudioError
from vstudio.farm.model import Effects, Report, TaskStatus, asks_cancel, check_report

t = farm_tasks
DONE = TaskStatus.DONE.value

Q_ROWS = ByDialect(lambda id_in: sa.select(
    t.c.id, t.c.status, t.c.attempt, t.c.job_id, t.c.block_id, t.c.worker_id, t.c.log_count,
    t.c.failures).where(id_in(t.c.id)))
U_PROGRESS = t.update().where(t.c.id == sa.bindparam("tid")).values(
    progress=sa.bindparam("p"), frame=sa.bindparam("f"), lease_until=sa.bindparam("lease"),
    log_count=sa.bindparam("lc"))
U_DONE = t.update().where(t.c.id == sa.bindparam("tid")).values(
    status=DONE, progress=100.0, finished=sa.bindparam("now"), lease_until=None,
    log_count=sa.bindparam("lc"))
D_OUTPUTS = farm_outputs.delete().where(farm_outputs.c.task_id == sa.bindparam("tid"))
# PostgreSQL forms of the three bulk writes, one statement per batch (farm_db.bulk)
PG_PROGRESS = sa.text(
    "UPDATE farm_tasks AS t SET progress = v.p, frame = v.f, lease_until = v.lease, "
    "log_count = v.lc FROM unnest(CAST(:tids AS integer[]), CAST(:ps AS double precision[]), "
    "CAST(:fs AS integer[]), CAST(:leases AS double precision[]), CAST(:lcs AS integer[])) "
    "AS v(tid, p, f, lease, lc) WHERE t.id = v.tid")
PG_DONE = sa.text(
    "UPDATE farm_tasks AS t SET status = 'done', progress = 100.0, finished = :now, "
    "lease_until = NULL, log_count = v.lc "
    "FROM unnest(CAST(:tids AS integer[]), CAST(:lcs AS integer[])) AS v(tid, lc) "
    "WHERE t.id = v.tid")
PG_D_OUTPUTS = sa.text("DELETE FROM farm_outputs WHERE task_id = ANY(CAST(:tids AS integer[]))")
Q_WORKER_USER = sa.select(farm_workers.c.user_name).where(farm_workers.c.id == sa.bindparam("w"))


@dataclass
class _Row:
    id: int
    status: str
    attempt: int
    job_id: int
    block_id: int
    worker_id: int | None
    log_count: int
    failures: int


def _check(conn: Connection, r: Report, row: _Row | None,
           owners: dict[int, str]) -> None:
    if row is None:
        raise NotFound(f"no task {r.task_id}")
    if row.attempt != r.attempt:
        check_report(r.task_id, r.attempt, row.attempt, row.status)
    holder = row.worker_id
    if r.workers is not None and holder is not None and holder not in r.workers:
        if holder not in owners:
            owners[holder] = str(conn.execute(Q_WORKER_USER, {"w": holder}).scalar())
        if owners[holder] != r.user:
            raise PermissionDenied(f"task {r.task_id} is held by another user's worker")
    check_report(r.task_id, r.attempt, row.attempt, row.status, r.kind)


def apply_reports(conn: Connection, cache: FarmCache, reports: list[Report], now: float,
                  lease_seconds: float, owners: dict[int, str]) -> tuple[list[Any], Effects]:
    """For each report its ``Effects`` or the ``VStudioError`` that refused it; plus the
    effects of the batch as a whole (dependent tasks released, jobs finished)."""
    rows = {r.id: _Row(*r) for r in conn.execute(
        Q_ROWS(conn), {"ids": sorted({x.task_id for x in reports})})}
    batch = _Writes(now, lease_seconds)
    results: list[Any] = []
    for r in reports:
        row = rows.get(r.task_id)
        try:
            _check(conn, r, row, owners)
        except VStudioError as e:
            results.append(e)
            continue
        assert row is not None
        if r.kind == "progress":
            results.append(Effects(cancel=True) if asks_cancel(row.status)
                           else batch.progress(row, r))
        elif r.kind == "done":
            # A finished task makes new work only through what _close finds (released
            # dependents, started jobs) or by freeing a place under the job's limit;
            # waking every idle worker on each report would be a thundering herd.
            limited = cache.job(conn, row.job_id).max_running is not None
            results.append(batch.done(row, r, limited))
        else:
            results.append(None)  # fail / release: applied below, after the bulk writes
    batch.write(conn)
    for i, r in enumerate(reports):
        if results[i] is None:
            results[i] = _fail_or_release(conn, cache, r, rows[r.task_id], now)
    return results, _close(conn, cache, batch.finished_blocks, now)


@dataclass
class _Writes:
    """The progress and done reports of a batch, written with a few bulk statements."""

    now: float
    lease_seconds: float
    progressed: dict[int, dict[str, Any]] = field(default_factory=dict)
    logs: list[dict[str, Any]] = field(default_factory=list)
    finished: dict[int, dict[str, Any]] = field(default_factory=dict)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    finished_blocks: set[tuple[int, int, int]] = field(default_factory=set)

    def progress(self, row: _Row, r: Report) -> Effects:
        self.logs.extend({"task_id": row.id, "attempt": r.attempt, "time": self.now,
                          "line": line} for line in r.lines)
        row.log_count += len(r.lines)
        self.progressed[row.id] = {"tid": row.id, "p": r.progress, "f": r.frame,
                                   "lease": self.now + self.lease_seconds,
                                   "lc": row.log_count}
        return Effects(tasks=[{"id": row.id, "job_id": row.job_id, "status": RUNNING,
                               "progress": r.progress, "frame": r.frame}])

    def done(self, row: _Row, r: Report, wake: bool) -> Effects:
        row.status = DONE
        self.finished[row.id] = {"tid": row.id, "now": self.now, "lc": row.log_count}
        self.outputs.extend({"task_id": row.id, "job_id": row.job_id,
                             "block_id": row.block_id, "frame": o.get("frame"),
                             "name": o["name"], "oid": o["oid"], "seconds": o.get("seconds"),
                             "peak_mem": o.get("peak_mem"),
                             "thumbnail_oid": o.get("thumbnail_oid")} for o in r.outputs)
        self.finished_blocks.add((row.job_id, row.block_id, row.id))
        return Effects(wake=wake, jobs={row.job_id}, tasks=[
            {"id": row.id, "job_id": row.job_id, "status": DONE, "progress": 100.0}])

    def write(self, conn: Connection) -> None:
        if self.logs:
            conn.execute(farm_logs.insert(), self.logs)
        if self.progressed:
            bulk(conn, U_PROGRESS, PG_PROGRESS, list(self.progressed.values()),
                 {"tid": "tids", "p": "ps", "f": "fs", "lease": "leases", "lc": "lcs"})
        if self.finished:
            bulk(conn, D_OUTPUTS, PG_D_OUTPUTS, [{"tid": tid} for tid in self.finished],
                 {"tid": "tids"})
            if self.outputs:
                conn.execute(farm_outputs.insert(), self.outputs)
            bulk(conn, U_DONE, PG_DONE, list(self.finished.values()),
                 {"tid": "tids", "lc": "lcs"}, now=self.now)
        for tid, p in self.progressed.items():
            if p["lc"] > LOG_KEEP + LOG_KEEP // 4:
                add_log(conn, tid, 0, [], self.now, p["lc"])  # trims
                conn.execute(t.update().where(t.c.id == tid).values(log_count=LOG_KEEP))


def _fail_or_release(conn: Connection, cache: FarmCache, r: Report, row: _Row,
                     now: float) -> Any:
    try:
        # the status may have changed earlier in this batch
        check_report(r.task_id, r.attempt, row.attempt, row.status)
        if r.kind == "release":
            fx = release(conn, r.task_id, r.attempt, r.error, now)
        else:
            fx = count_failure(conn, cache, r.task_id, row, r.attempt, r.error, now)
        row.status = "queued"
        return fx
    except VStudioError as e:
        return e


def _close(conn: Connection, cache: FarmCache, finished: set[tuple[int, int, int]],
           now: float) -> Effects:
    """Release dependent tasks and close finished jobs, once per block and job."""
    extra = Effects()
    for job_id, block_id, task_id in sorted(finished):
        release_dependents(conn, cache, job_id, block_id, task_id, extra)
    for job_id in sorted({j for j, _, _ in finished}):
        finish_job_if_closed(conn, job_id, now, extra)
    return extra
