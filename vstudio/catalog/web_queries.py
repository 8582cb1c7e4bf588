"""Read queries the web page needs beyond the farm's own (``farm_queries``).

Compact on purpose: the job page of a 10,000-task job and the list of 1,000 jobs must
render in well under a second, so these select only the columns a page shows and count
frames in SQL instead of decoding every task's frame list.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from vstudio.catalog.farm_tables import (
    farm_blocklist,
    farm_blocks,
    farm_jobs,
    farm_outputs,
    farm_tasks,
    farm_workers,
)
from vstudio.catalog.web_tables import web_farm_samples
from vstudio.farm.ports import (
    FrameCount,
    JobHead,
    KeptOff,
    NewOutput,
    RunningTask,
    TaskCell,
)

t = farm_tasks
# Number of frames of a task: its frames column is a JSON list of ints, so the count of
# commas plus one (the same on SQLite and PostgreSQL, no JSON functions needed).
_NFRAMES = sa.func.length(t.c.frames) - sa.func.length(sa.func.replace(t.c.frames, ",", "")) + 1


ENCODE_TYPES = ("ffmpeg",)


def frame_counts(conn: Connection, job_ids: list[int]) -> dict[int, FrameCount]:
    out = {j: FrameCount(0, 0, 0.0) for j in job_ids}
    if not job_ids:
        return out
    # per job: [done, total, running weighted, rendered, to render, encode done, encode total]
    acc: dict[int, list[float]] = {j: [0, 0, 0.0, 0, 0, 0, 0] for j in job_ids}
    q = (sa.select(t.c.job_id, farm_blocks.c.type, t.c.status, sa.func.sum(_NFRAMES),
                   sa.func.sum(_NFRAMES * t.c.progress))
         .join(farm_blocks, farm_blocks.c.id == t.c.block_id)
         .group_by(t.c.job_id, farm_blocks.c.type, t.c.status))
    # A list sorted by frames or progress asks for every job: then one grouped scan of all
    # tasks, without expanding thousands of ids into the statement, costs far less.
    if len(job_ids) < 900:
        q = q.where(t.c.job_id.in_(job_ids))
    for jid, btype, status, n, weighted in conn.execute(q):
        if jid not in acc:
            continue
        a, n = acc[jid], int(n or 0)
        a[1] += n
        side = 5 if btype in ENCODE_TYPES else 3
        a[side + 1] += n
        if status == "done":
            a[0] += n
            a[side] += n
        elif status == "running":
            a[2] += float(weighted or 0) / 100.0
    for j, a in acc.items():
        # a job of encodes only (an ffmpeg job) shows the frames it encodes
        rendered, to_render = (a[3], a[4]) if a[4] else (a[5], a[6])
        out[j] = FrameCount(int(a[0]), int(a[1]), float(a[2]), int(rendered), int(to_render))
    return out


def task_cells(conn: Connection, job_id: int, ids: list[int] | None = None) -> list[TaskCell]:
    """Every task of a job (or the listed ones), in block and chunk order.

    The hot query of a 10,000-task job page: plain columns only (no join, no per-row
    expression), fetched in one go; worker names come from the small workers table.
    """
    q = (sa.select(t.c.id, t.c.block_id, t.c.status, t.c.first_frame, t.c.last_frame,
                   t.c.progress, t.c.worker_id, t.c.started, t.c.finished, t.c.error)
         .where(t.c.job_id == job_id).order_by(t.c.block_id, t.c.idx))
    if ids is not None:
        q = q.where(t.c.id.in_(ids[:1000]))
    rows = conn.execute(q).all()
    names: dict[int, str] = {}
    if any(r[6] is not None for r in rows):
        names = dict(conn.execute(sa.select(farm_workers.c.id, farm_workers.c.name)).all())
    return [TaskCell(r[0], r[1], r[2], r[3], r[4], r[4] - r[3] + 1, r[5] or 0.0,
                     names.get(r[6]), r[7], r[8], r[9]) for r in rows]


_JOB_COLS = (farm_jobs.c.id, farm_jobs.c.name, farm_jobs.c.owner, farm_jobs.c.project,
             farm_jobs.c.priority, farm_jobs.c.state, farm_jobs.c.created, farm_jobs.c.started,
             farm_jobs.c.finished)


def job_heads(conn: Connection, ids: list[int] | None = None, owner: str | None = None,
              project: str | None = None, newest: int | None = None) -> list[JobHead]:
    """The list page's columns of every job (or of ``ids``): it filters, sorts and pages
    these, then counts frames for one page only."""
    q = sa.select(*_JOB_COLS)
    if ids is not None:
        q = q.where(farm_jobs.c.id.in_(ids))
    if owner is not None:
        q = q.where(farm_jobs.c.owner == owner)
    if project is not None:
        q = q.where(farm_jobs.c.project == project)
    if newest is not None:
        q = q.order_by(farm_jobs.c.id.desc()).limit(newest)
    return [JobHead(*r) for r in conn.execute(q)]


def jobs_with_type(conn: Connection, job_type: str) -> set[int]:
    """Ids of the jobs that have a block of ``job_type``."""
    q = sa.select(farm_blocks.c.job_id).where(farm_blocks.c.type == job_type).distinct()
    return {int(r[0]) for r in conn.execute(q)}


def owners_and_projects(conn: Connection) -> list[tuple[str, str | None]]:
    """Each (owner, project) some job has (None: no project), for the list's filters: the
    caller keeps the pairs of jobs the person may see."""
    q = sa.select(farm_jobs.c.owner, farm_jobs.c.project).distinct()
    return [(str(o), None if p is None else str(p)) for o, p in conn.execute(q)]


def newest_outputs(conn: Connection, job_id: int, limit: int = 20) -> list[NewOutput]:
    """A job's most recently recorded outputs, newest first (the job page's big frame)."""
    q = (sa.select(farm_outputs.c.id, farm_blocks.c.name, farm_outputs.c.frame,
                   farm_outputs.c.name, farm_outputs.c.oid, farm_outputs.c.thumbnail_oid)
         .join(farm_blocks, farm_blocks.c.id == farm_outputs.c.block_id)
         .where(farm_outputs.c.job_id == job_id)
         .order_by(farm_outputs.c.id.desc()).limit(limit))
    return [NewOutput(*r) for r in conn.execute(q)]


def output_name(conn: Connection, job_id: int, oid: str) -> str | None:
    """The name of a job's output (or thumbnail) with store id ``oid``; None if not the job's."""
    q = (sa.select(farm_outputs.c.name, farm_outputs.c.oid)
         .where((farm_outputs.c.job_id == job_id)
                & ((farm_outputs.c.oid == oid) | (farm_outputs.c.thumbnail_oid == oid)))
         .limit(1))
    row = conn.execute(q).first()
    if row is None:
        return None
    return str(row.name) if row.oid == oid else "thumbnail.png"


def running_tasks(conn: Connection) -> dict[int, RunningTask]:
    """task id -> (job id, job name, first frame, last frame, progress, job's owner, job's
    project) of running tasks."""
    q = (sa.select(t.c.id, t.c.job_id, farm_jobs.c.name, t.c.first_frame, t.c.last_frame,
                   t.c.progress, farm_jobs.c.owner, farm_jobs.c.project)
         .join(farm_jobs, farm_jobs.c.id == t.c.job_id).where(t.c.status == "running"))
    return {r[0]: (r[1], r[2], r[3], r[4], float(r[5] or 0), r[6], r[7])
            for r in conn.execute(q)}


def blocklists(conn: Connection) -> dict[int, list[KeptOff]]:
    """worker id -> the jobs it is kept off."""
    q = (sa.select(farm_blocklist.c.worker_id, farm_blocklist.c.job_id, farm_jobs.c.name,
                   farm_blocklist.c.failures, farm_jobs.c.owner, farm_jobs.c.project)
         .join(farm_jobs, farm_jobs.c.id == farm_blocklist.c.job_id)
         .where(farm_blocklist.c.failures >= farm_jobs.c.blocklist_after)
         .order_by(farm_blocklist.c.job_id))
    out: dict[int, list[KeptOff]] = {}
    for wid, jid, name, n, owner, project in conn.execute(q):
        out.setdefault(wid, []).append(KeptOff(jid, name, int(n), owner, project))
    return out


def worker_failures(conn: Connection) -> dict[int, int]:
    """worker id -> failed task attempts recorded against it (over all jobs)."""
    q = (sa.select(farm_blocklist.c.worker_id, sa.func.sum(farm_blocklist.c.failures))
         .group_by(farm_blocklist.c.worker_id))
    return {wid: int(n or 0) for wid, n in conn.execute(q)}


def task_status_counts(conn: Connection,
                       ids: list[int] | None = None) -> dict[int, dict[str, int]]:
    """job id -> task status -> count, for every job (the list page's status filter)."""
    out: dict[int, dict[str, int]] = {}
    q = sa.select(t.c.job_id, t.c.status, sa.func.count()).group_by(t.c.job_id, t.c.status)
    if ids is not None:
        q = q.where(t.c.job_id.in_(ids))
    for jid, status, n in conn.execute(q):
        out.setdefault(jid, {})[status] = int(n)
    return out


def last_finished(conn: Connection, job_ids: list[int]) -> dict[int, float]:
    """job id -> when its last task ended (a paused job's clock stops there)."""
    if not job_ids:
        return {}
    q = (sa.select(t.c.job_id, sa.func.max(t.c.finished)).where(t.c.job_id.in_(job_ids))
         .group_by(t.c.job_id))
    return {jid: float(f) for jid, f in conn.execute(q) if f is not None}


def work_by_owner(conn: Connection) -> list[tuple[str | None, str, int, int]]:
    """(project, owner, running tasks, waiting tasks) of the jobs that are not finished;
    a paused job's waiting tasks are not counted (they wait for a person, not the farm)."""
    live = farm_jobs.c.state.in_(("active", "waiting", "paused"))
    q = (sa.select(farm_jobs.c.project, farm_jobs.c.owner, farm_jobs.c.state, t.c.status,
                   sa.func.count())
         .join(farm_jobs, farm_jobs.c.id == t.c.job_id)
         .where(live & t.c.status.in_(("running", "queued", "blocked")))
         .group_by(farm_jobs.c.project, farm_jobs.c.owner, farm_jobs.c.state, t.c.status))
    acc: dict[tuple[str | None, str], list[int]] = {}
    for project, owner, state, status, n in conn.execute(q):
        a = acc.setdefault((project, owner), [0, 0])
        if status == "running":
            a[0] += int(n)
        elif state != "paused":
            a[1] += int(n)
    return sorted(((p, o, a[0], a[1]) for (p, o), a in acc.items() if a[0] or a[1]),
                  key=lambda r: (-r[2], -r[3], r[0] or "", r[1]))


def recent_task_seconds(conn: Connection, last: int = 200) -> list[float]:
    """How long the last ``last`` finished tasks took (the queue's time-to-empty estimate)."""
    q = (sa.select(t.c.started, t.c.finished)
         .where((t.c.status == "done") & t.c.started.is_not(None) & t.c.finished.is_not(None))
         .order_by(t.c.finished.desc()).limit(last))
    return [max(0.0, float(f) - float(s)) for s, f in conn.execute(q)]


def finished_since(conn: Connection, since: float) -> list[float]:
    """Finish times of tasks done since ``since`` (the overview's tasks per hour)."""
    q = sa.select(t.c.finished).where((t.c.status == "done") & (t.c.finished >= since))
    return [float(r[0]) for r in conn.execute(q)]


def queue_counts(conn: Connection) -> dict[str, int]:
    """Task status -> count; a paused job's waiting tasks count as ``paused``, not queued."""
    q = (sa.select(t.c.status, farm_jobs.c.state, sa.func.count())
         .join(farm_jobs, farm_jobs.c.id == t.c.job_id).group_by(t.c.status, farm_jobs.c.state))
    out: dict[str, int] = {}
    for status, state, n in conn.execute(q):
        key = "paused" if state == "paused" and status in ("queued", "blocked") else status
        out[key] = out.get(key, 0) + int(n)
    return out


def add_sample(conn: Connection, period: int, busy: int, idle: int, offline: int,
               queued: int, running: int, keep_seconds: float = 7 * 86400) -> bool:
    """Record one sample for the period starting at ``period``; False if one exists."""
    now = int(time.time())
    try:
        with conn.begin_nested():
            conn.execute(web_farm_samples.insert().values(
                time=period, busy=busy, idle=idle, offline=offline, queued=queued,
                running=running))
    except IntegrityError:
        return False
    conn.execute(web_farm_samples.delete().where(web_farm_samples.c.time < now - keep_seconds))
    return True


def samples(conn: Connection, since: float) -> list[tuple[int, int, int, int, int, int]]:
    q = (sa.select(web_farm_samples).where(web_farm_samples.c.time >= since)
         .order_by(web_farm_samples.c.time))
    return [tuple(r) for r in conn.execute(q)]
