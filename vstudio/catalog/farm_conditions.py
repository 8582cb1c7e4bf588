"""Loads the facts ``farm.condition`` needs for a set of jobs, in a few queries, and has
the farm's rules (``ShownRules``, handed in) judge them.

Only jobs that may be stuck (work left, nothing running) need more than their task
counts; finished, running and paused jobs are decided from the counts alone, so a list
of a thousand finished jobs costs nothing here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vstudio.catalog.farm_tables import (
    farm_blocklist,
    farm_blocks,
    farm_job_after,
    farm_jobs,
    farm_tasks,
    farm_workers,
)
from vstudio.farm.model import JobState, TaskStatus, job_status
from vstudio.farm.ports import BlockNeeds, Condition, JobFacts, NodeFacts, ShownRules

t = farm_tasks


def conditions(conn: Connection, jobs: Sequence[tuple[int, str]],
               counts: Mapping[int, Mapping[str, int]],
               rules: ShownRules) -> dict[int, Condition]:
    """job id -> Condition for ``jobs`` given as (id, stored state) with their task counts."""
    plain: dict[int, JobFacts] = {}
    stuck: list[int] = []
    states = dict(jobs)
    for jid, state in jobs:
        c = counts.get(jid, {})
        if rules.may_be_stuck(state, c):
            stuck.append(jid)
        else:
            plain[jid] = JobFacts(state, c)
    out = rules.judge(plain, ())
    if not stuck:
        return out
    after = _after(conn, stuck)
    queued = _blocks_with(conn, stuck, TaskStatus.QUEUED)
    blocked_on = _blocked_on(conn, stuck)
    banned = _blocklisted(conn, stuck)
    facts = {jid: JobFacts(states[jid], counts.get(jid, {}),
                           waiting_on_jobs=after.get(jid, {}),
                           waiting_on_blocks=blocked_on.get(jid, ()),
                           queued_blocks=queued.get(jid, ()),
                           blocklisted=frozenset(banned.get(jid, ())))
             for jid in stuck}
    out.update(rules.judge(facts, _nodes(conn)))
    return out


def _after(conn: Connection, ids: list[int]) -> dict[int, dict[int, str]]:
    """job id -> {after job id: its status} for the after-jobs not done yet."""
    rows = conn.execute(
        sa.select(farm_job_after.c.job_id, farm_jobs.c.id, farm_jobs.c.state)
        .join(farm_jobs, farm_jobs.c.id == farm_job_after.c.after_id)
        .where(farm_job_after.c.job_id.in_(ids) & (farm_jobs.c.state != JobState.DONE.value))
    ).all()
    if not rows:
        return {}
    counts: dict[int, dict[str, int]] = {}
    for aid, status, n in conn.execute(
            sa.select(t.c.job_id, t.c.status, sa.func.count())
            .where(t.c.job_id.in_({r[1] for r in rows})).group_by(t.c.job_id, t.c.status)):
        counts.setdefault(aid, {})[status] = int(n)
    out: dict[int, dict[int, str]] = {}
    for jid, aid, state in rows:
        out.setdefault(jid, {})[aid] = job_status(state, counts.get(aid, {}))
    return out


def _blocks_with(conn: Connection, ids: list[int],
                 status: TaskStatus) -> dict[int, list[BlockNeeds]]:
    has = sa.select(t.c.block_id).where(t.c.job_id.in_(ids) & (t.c.status == status.value))
    rows = conn.execute(
        sa.select(farm_blocks.c.job_id, farm_blocks.c.name, farm_blocks.c.type,
                  farm_blocks.c.tags)
        .where(farm_blocks.c.id.in_(has.distinct())).order_by(farm_blocks.c.idx)).all()
    out: dict[int, list[BlockNeeds]] = {}
    for jid, name, type_, tags in rows:
        out.setdefault(jid, []).append(BlockNeeds(name, type_, frozenset(json.loads(tags))))
    return out


def _blocked_on(conn: Connection, ids: list[int]) -> dict[int, list[str]]:
    """job id -> names of the blocks its blocked tasks wait for."""
    has = sa.select(t.c.block_id).where(
        t.c.job_id.in_(ids) & (t.c.status == TaskStatus.BLOCKED.value))
    waiting = conn.execute(sa.select(farm_blocks.c.job_id, farm_blocks.c.depends)
                           .where(farm_blocks.c.id.in_(has.distinct()))).all()
    if not waiting:
        return {}
    names = dict(conn.execute(sa.select(farm_blocks.c.id, farm_blocks.c.name)
                              .where(farm_blocks.c.job_id.in_({w[0] for w in waiting}))).all())
    out: dict[int, list[str]] = {}
    for jid, depends in waiting:
        for block_id, _mode in json.loads(depends):
            name = str(names.get(block_id, block_id))
            if name not in out.setdefault(jid, []):
                out[jid].append(name)
    return out


def _blocklisted(conn: Connection, ids: list[int]) -> dict[int, set[int]]:
    q = (sa.select(farm_blocklist.c.job_id, farm_blocklist.c.worker_id)
         .join(farm_jobs, farm_jobs.c.id == farm_blocklist.c.job_id)
         .where(farm_blocklist.c.job_id.in_(ids)
                & (farm_blocklist.c.failures >= farm_jobs.c.blocklist_after)))
    out: dict[int, set[int]] = {}
    for jid, wid in conn.execute(q):
        out.setdefault(jid, set()).add(wid)
    return out


def _nodes(conn: Connection) -> list[NodeFacts]:
    running: dict[int, int] = dict(conn.execute(
        sa.select(t.c.worker_id, sa.func.count())
        .where(t.c.status == TaskStatus.RUNNING.value).group_by(t.c.worker_id)).all())
    w = farm_workers.c
    return [NodeFacts(r.id, r.name, r.state != "offline", bool(r.enabled), bool(r.draining),
                      frozenset(json.loads(r.job_types)), frozenset(json.loads(r.tags)),
                      bool(r.allow_commands), running.get(r.id, 0) >= r.slots, r.schedule,
                      r.schedule_tz)
            for r in conn.execute(sa.select(w.id, w.name, w.state, w.enabled, w.draining,
                                            w.job_types, w.tags, w.allow_commands, w.slots,
                                            w.schedule, w.schedule_tz))]
