"""Per-process cache of what never changes after submit: a job's blocks and inputs.

Ids are never reused (AUTOINCREMENT on SQLite, sequences on PostgreSQL), so an entry
can only be missing, never wrong; deleting a job just leaves a dead entry behind.

Also the render nodes' facts that a waiting job's reason is judged against, kept while
this process commits no farm write (``writes``, counted by ``SqlFarmDatabase``) and for
at most ``NODES_MAX_AGE`` seconds (another manager's writes): every queued job's page
asked for them anew.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vstudio.catalog.farm_tables import farm_blocks, farm_jobs
from vstudio.errors import NotFound


@dataclass(frozen=True)
class BlockInfo:
    id: int
    job_id: int
    idx: int
    name: str
    type: str
    params: dict[str, Any]
    tags: frozenset[str]
    max_per_worker: int | None
    retries: int
    timeout: float | None
    depends: tuple[tuple[int, str], ...]  # (block id, "whole"|"frame")


@dataclass(frozen=True)
class JobInfo:
    id: int
    name: str
    owner: str
    project: str | None
    trusted: bool
    inputs: list[dict[str, str]]
    blocklist_after: int
    max_running: int | None
    blocks: tuple[BlockInfo, ...]
    # block id -> ids of the blocks of this job that depend on it
    dependents: dict[int, tuple[int, ...]] = field(default_factory=dict)

    def block(self, block_id: int) -> BlockInfo:
        for b in self.blocks:
            if b.id == block_id:
                return b
        raise NotFound(f"no block {block_id} in job {self.id}")


NODES_MAX_AGE = 0.25


class FarmCache:
    def __init__(self, limit: int = 20_000) -> None:
        self.writes = 0  # farm transactions this process committed
        self._nodes: tuple[int, float, list[Any]] | None = None
        self._jobs: dict[int, JobInfo] = {}
        self._block_job: dict[int, int] = {}
        self._limit = limit

    def job(self, conn: Connection, job_id: int) -> JobInfo:
        hit = self._jobs.get(job_id)
        if hit is not None:
            return hit
        row = conn.execute(sa.select(farm_jobs.c.id, farm_jobs.c.name, farm_jobs.c.owner,
                                     farm_jobs.c.project, farm_jobs.c.trusted,
                                     farm_jobs.c.inputs, farm_jobs.c.blocklist_after,
                                     farm_jobs.c.max_running)
                           .where(farm_jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"no job {job_id}")
        blocks = tuple(
            BlockInfo(b.id, b.job_id, b.idx, b.name, b.type, json.loads(b.params),
                      frozenset(json.loads(b.tags)), b.max_per_worker, b.retries, b.timeout,
                      tuple((int(d[0]), str(d[1])) for d in json.loads(b.depends)))
            for b in conn.execute(sa.select(farm_blocks).where(farm_blocks.c.job_id == job_id)
                                  .order_by(farm_blocks.c.idx)))
        dependents: dict[int, list[int]] = {}
        for b in blocks:
            for dep_id, _mode in b.depends:
                dependents.setdefault(dep_id, []).append(b.id)
        info = JobInfo(row.id, row.name, row.owner, row.project, bool(row.trusted),
                       json.loads(row.inputs), row.blocklist_after, row.max_running, blocks,
                       {k: tuple(v) for k, v in dependents.items()})
        if len(self._jobs) >= self._limit:
            self._jobs.clear()
            self._block_job.clear()
        self._jobs[job_id] = info
        for b in blocks:
            self._block_job[b.id] = job_id
        return info

    def block(self, conn: Connection, job_id: int, block_id: int) -> BlockInfo:
        return self.job(conn, job_id).block(block_id)

    def nodes(self, conn: Connection, load: Callable[[Connection], list[Any]]) -> list[Any]:
        """``load(conn)``, or its last answer while no write came since (read before it
        was made: a write during the load makes the next call load again)."""
        writes, now = self.writes, time.monotonic()
        hit = self._nodes
        if hit is not None and hit[0] == writes and now - hit[1] < NODES_MAX_AGE:
            return hit[2]
        facts = load(conn)
        self._nodes = (writes, now, facts)
        return facts

    def forget(self, job_id: int) -> None:
        self._jobs.pop(job_id, None)
