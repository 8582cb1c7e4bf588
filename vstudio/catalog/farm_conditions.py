"""Loads the facts ``farm.condition`` needs for a set of jobs, in a few queries, and has
the farm's rules (``ShownRules``, handed in) judge them.

Only jobs that may be stuck (work left, nothing running) need more than their task
counts; finished, running and paused jobs are decided from the counts alone, so a list
of a thousand finished jobs costs nothing here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

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


# Where the render nodes' facts come from: read now (the default) or a cache of them.
Nodes = Callable[[], list[NodeFacts]] | None


def conditions(conn: Connection, jobs: Sequence[tuple[int, str]],
               counts: Mapping[int, Mapping[str, int]],
               rules: ShownRules, nodes: Nodes = None) -> dict[int, Condition]:
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
    def having(status: TaskStatus) -> list[int]:  # the counts spare a query when none has
        return [jid for jid in stuck if counts.get(jid, {}).get(status.value, 0)]

    after = _after(conn, stuck)
    some_queued = having(TaskStatus.QUEUED)
    queued = _blocks_with(conn, some_queued, TaskStatus.QUEUED) if some_queued else {}
    some_blocked = having(TaskStatus.BLOCKED)
    blocked_on = _blocked_on(conn, some_blocked) if some_blocked else {}
    banned = _blocklisted(conn, stuck)
    facts = {jid: JobFacts(states[jid], counts.get(jid, {}),
                           waiting_on_jobs=after.get(jid, {}),
                           waiting_on_blocks=blocked_on.get(jid, ()),
                           queued_blocks=queued.get(jid, ()),
                           blocklisted=frozenset(banned.get(jid, ())))
             for jid in stuck}
    out.update(rules.judge(facts, (nodes or (lambda: load_nodes(conn)))() if queued else ()))
    return out


def condition_of(conn: Connection, rules: ShownRules, facts: JobFacts,
                 nodes: Nodes = None) -> Condition:
    """One job's Condition from the facts its page has loaded already (``get_job``):
    only the render nodes are read, and only when its queued work needs one."""
    if not rules.may_be_stuck(facts.state, facts.counts):
        return rules.judge({0: JobFacts(facts.state, facts.counts)}, ())[0]
    if not facts.queued_blocks:
        return rules.judge({0: facts}, ())[0]
    return rules.judge({0: facts}, (nodes or (lambda: load_nodes(conn)))())[0]


def waiting_on(conn: Connection, job_id: int) -> dict[int, str]:
    """After-job id -> its status, for the after-jobs of ``job_id`` not done yet."""
    return _after(conn, [job_id]).get(job_id, {})


# The statements are built once: under load, building a select and its cache key cost
# more than running it on SQLite. Expanding parameters take the id lists.
_IDS: sa.BindParameter[int] = sa.bindparam("ids", expanding=True)
_AFTER = (sa.select(farm_job_after.c.job_id, farm_jobs.c.id, farm_jobs.c.state)
          .join(farm_jobs, farm_jobs.c.id == farm_job_after.c.after_id)
          .where(farm_job_after.c.job_id.in_(_IDS)
                 & (farm_jobs.c.state != JobState.DONE.value)))
_COUNTS = (sa.select(t.c.job_id, t.c.status, sa.func.count())
           .where(t.c.job_id.in_(_IDS)).group_by(t.c.job_id, t.c.status))
_BLOCKS_WITH = (sa.select(farm_blocks.c.job_id, farm_blocks.c.name, farm_blocks.c.type,
                          farm_blocks.c.tags, farm_blocks.c.depends)
                .where(farm_blocks.c.id.in_(
                    sa.select(t.c.block_id).where(t.c.job_id.in_(_IDS)
                                                  & (t.c.status == sa.bindparam("status")))
                    .distinct()))
                .order_by(farm_blocks.c.idx))
_BLOCK_NAMES = (sa.select(farm_blocks.c.id, farm_blocks.c.name)
                .where(farm_blocks.c.job_id.in_(_IDS)))
_BLOCKLISTED = (sa.select(farm_blocklist.c.job_id, farm_blocklist.c.worker_id)
                .join(farm_jobs, farm_jobs.c.id == farm_blocklist.c.job_id)
                .where(farm_blocklist.c.job_id.in_(_IDS)
                       & (farm_blocklist.c.failures >= farm_jobs.c.blocklist_after)))
_RUNNING = (sa.select(t.c.worker_id, sa.func.count())
            .where(t.c.status == TaskStatus.RUNNING.value).group_by(t.c.worker_id))
_w = farm_workers.c
_NODES = sa.select(_w.id, _w.name, _w.state, _w.enabled, _w.draining, _w.job_types, _w.tags,
                   _w.allow_commands, _w.slots, _w.schedule, _w.schedule_tz, _w.idle_only)


def _after(conn: Connection, ids: list[int]) -> dict[int, dict[int, str]]:
    """job id -> {after job id: its status} for the after-jobs not done yet."""
    rows = conn.execute(_AFTER, {"ids": ids}).all()
    if not rows:
        return {}
    counts: dict[int, dict[str, int]] = {}
    for aid, status, n in conn.execute(_COUNTS, {"ids": sorted({r[1] for r in rows})}):
        counts.setdefault(aid, {})[status] = int(n)
    out: dict[int, dict[int, str]] = {}
    for jid, aid, state in rows:
        out.setdefault(jid, {})[aid] = job_status(state, counts.get(aid, {}))
    return out


def _blocks_with(conn: Connection, ids: list[int],
                 status: TaskStatus) -> dict[int, list[BlockNeeds]]:
    out: dict[int, list[BlockNeeds]] = {}
    for jid, name, type_, tags, _ in conn.execute(_BLOCKS_WITH,
                                                  {"ids": ids, "status": status.value}):
        out.setdefault(jid, []).append(BlockNeeds(name, type_, frozenset(json.loads(tags))))
    return out


def _blocked_on(conn: Connection, ids: list[int]) -> dict[int, list[str]]:
    """job id -> names of the blocks its blocked tasks wait for."""
    waiting = conn.execute(_BLOCKS_WITH, {"ids": ids,
                                          "status": TaskStatus.BLOCKED.value}).all()
    if not waiting:
        return {}
    names = dict(conn.execute(_BLOCK_NAMES, {"ids": sorted({w[0] for w in waiting})}).all())
    out: dict[int, list[str]] = {}
    for jid, _name, _type, _tags, depends in waiting:
        for block_id, _mode in json.loads(depends):
            name = str(names.get(block_id, block_id))
            if name not in out.setdefault(jid, []):
                out[jid].append(name)
    return out


def _blocklisted(conn: Connection, ids: list[int]) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for jid, wid in conn.execute(_BLOCKLISTED, {"ids": ids}):
        out.setdefault(jid, set()).add(wid)
    return out


def load_nodes(conn: Connection) -> list[NodeFacts]:
    """Every render node's facts (``FarmCache.nodes`` keeps them between writes)."""
    running: dict[int, int] = dict(conn.execute(_RUNNING).all())
    return [NodeFacts(r.id, r.name, r.state != "offline", bool(r.enabled), bool(r.draining),
                      frozenset(json.loads(r.job_types)), frozenset(json.loads(r.tags)),
                      bool(r.allow_commands), running.get(r.id, 0) >= r.slots, r.schedule,
                      r.schedule_tz, r.state == "in use" and bool(r.idle_only))
            for r in conn.execute(_NODES)]
