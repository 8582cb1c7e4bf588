"""The people's common reads of the farm (job list, one job), answered from ``ReadCache``.

Shared by the documented routes (``routes_farm``) and the plain-ASGI fast path
(``routes_farm_fast``), so both give the same bytes under the same rules: the data is
cached for everyone while the farm's ``freshness`` stands still (this manager's writes at
once, every manager's within ``freshness.POLL``), and each user's right to read a job's
project is checked on every request (itself cached for the read cache's 0.25 s: rights
change outside the farm), by the farm's one rule (``farm.visibility``: a job without a
project is its owner's alone).
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import TypeAdapter

from vstudio.api.read_cache import ReadCache
from vstudio.catalog.accounts import User
from vstudio.farm import reads
from vstudio.farm.service import Farm
from vstudio.farm.visibility import Projects, hidden, private, sees_job
from vstudio.farm.wire import JobDetail, JobSummary

_JOBS = TypeAdapter(list[JobSummary])
# How long an answer whose generation stands still is kept: only a safety net (the
# generations see every farm write, and the clock's minute), so it can be long.
KEPT = 30.0


class FarmReads:
    def __init__(self, farm: Farm) -> None:
        self.farm = farm
        self.cache = ReadCache()
        # the last answer of each job list: (writer's ``changes`` then, when it was read
        # in full, the jobs)
        self._last_lists: dict[tuple[str | None, str | None, int, int],
                               tuple[tuple[int, ...], float, list[dict[str, Any]]]] = {}

    async def jobs(self, user: User, owner: str | None, status: str | None, limit: int,
                   offset: int) -> bytes:
        """``GET /api/jobs`` as JSON: newest first, of the projects ``user`` may read."""
        query = (owner, status, limit, offset)
        fresh = await self.farm.freshness()
        generation = fresh.batches

        async def listed() -> list[dict[str, Any]]:
            return await self._listed(query, fresh.changes)

        jobs = await self.cache.get(("jobs", *query), generation, listed, KEPT)
        shown: Projects | None = None  # None: every job (an admin)
        who: str | None = None  # whose private jobs are in the list: the answer is theirs
        if not user.is_admin:
            shown = await self.readable(user, {j["project"] for j in jobs if j.get("project")})
            who = user.name if any(private(j.get("project"), shown) for j in jobs) else None

        async def encoded() -> bytes:
            mine = jobs if shown is None else [
                j for j in jobs if sees_job(user, j["owner"], j.get("project"), shown)]
            return _JOBS.dump_json(_JOBS.validate_python(mine))

        # the same list shown to everyone who sees the same jobs: encoded once
        body: bytes = await self.cache.get(("jobs-json", *query, shown, who), generation,
                                           encoded, KEPT)
        return body

    async def _listed(self, query: tuple[str | None, str | None, int, int],
                      changes: tuple[int, ...]) -> list[dict[str, Any]]:
        """The first page of a job list after batches that only added jobs is the new
        jobs (one query about them, also those other managers added) on top of the last
        answer: a busy farm's submits then cost the list only their own rows. Anything
        else, or an answer older than ``KEPT``, is read anew."""
        owner, status, limit, offset = query
        last = self._last_lists.get(query)
        now = time.monotonic()
        if (offset == 0 and last is not None and last[0] == changes
                and now - last[1] < KEPT):
            known = last[2]
            newer = await reads.jobs(self.farm, owner, status, limit, 0,
                                     newer_than=max((j["id"] for j in known), default=0))
            jobs = (newer + known)[:limit]
            started = last[1]  # the bound counts from the last full read
        else:
            jobs = await reads.jobs(self.farm, owner, status, limit, offset)
            started = now
        if len(self._last_lists) >= 256:
            self._last_lists.clear()
        self._last_lists[query] = (changes, started, jobs)
        return jobs

    async def job(self, user: User, job_id: int, tasks: bool) -> bytes:
        """``GET /api/jobs/ID`` as JSON."""
        async def compute() -> tuple[str, str | None, bytes]:
            job = await reads.job(self.farm, job_id, tasks)
            return (job["owner"], job.get("project"),
                    JobDetail.model_validate(job).model_dump_json().encode())

        # keyed on ``changes``: submits of other jobs leave this page as it is
        fresh = await self.farm.freshness()
        owner, project, body = await self.cache.get(("job", job_id, tasks), fresh.changes,
                                                    compute, KEPT)
        projects = await self.readable(user, {project} if project else set())
        if not sees_job(user, owner, project, projects):
            raise hidden(job_id)
        return body

    async def readable(self, user: User, projects: set[str]) -> Projects:
        """What ``user`` may read among ``projects`` (``Farm.readable``; bound by time
        only)."""
        if not projects or user.is_admin:
            return await self.farm.readable(user, projects)  # no read
        key = frozenset(projects)

        async def compute() -> Projects:
            return await self.farm.readable(user, set(key))

        ok: Projects = await self.cache.get(("readable", user.id, key), 0, compute)
        return ok
