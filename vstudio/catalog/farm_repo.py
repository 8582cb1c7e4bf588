"""The farm's database (``vstudio.farm.ports``) on the catalog: SQLite or PostgreSQL.

Each class binds one connection and answers the farm's calls with the SQL of the
``farm_*`` modules beside it; nothing here decides anything (the rules are the farm's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from vstudio.catalog import accounts
from vstudio.catalog import farm_claim as claim_sql
from vstudio.catalog import farm_jobs as jobs_sql
from vstudio.catalog import farm_queries as read_sql
from vstudio.catalog import farm_reports as report_sql
from vstudio.catalog import farm_version as version_sql
from vstudio.catalog import web_queries as wq
from vstudio.catalog.farm_batch import apply_reports
from vstudio.catalog.farm_cache import BlockInfo, FarmCache
from vstudio.catalog.farm_conditions import conditions, load_nodes
from vstudio.catalog.farm_db import Listener, Relay, notify, write_engine
from vstudio.catalog.farm_submit import insert_jobs
from vstudio.errors import BackendUnavailable, Conflict, NotFound, VStudioError
from vstudio.farm.model import Effects, Report
from vstudio.farm.ports import (
    Condition,
    FrameCount,
    JobHead,
    KeptOff,
    NewJob,
    NewOutput,
    Pick,
    ShownRules,
    TaskCell,
)


class SqlFarmWrites:
    """``FarmWrites`` inside one transaction."""

    def __init__(self, conn: Connection, cache: FarmCache) -> None:
        self.conn, self.cache = conn, cache

    def claim(self, worker_ids: list[int], now: float, lease_seconds: float, pick: Pick
              ) -> tuple[list[dict[str, Any] | None], list[dict[str, Any]]]:
        back: list[dict[str, Any]] = []
        got = claim_sql.claim_batch(self.conn, self.cache, worker_ids, now, lease_seconds,
                                    pick, back)
        return [claim_sql.task_payload(self.conn, c) if c is not None else None
                for c in got], back

    def apply_reports(self, reports: list[Report], now: float, lease_seconds: float,
                      owners: dict[int, str]) -> tuple[list[Any], Effects]:
        return apply_reports(self.conn, self.cache, reports, now, lease_seconds, owners)

    def heartbeat(self, worker_id: int, state: str, now: float, lease_seconds: float,
                  usage: tuple[float, float] | None = None) -> Effects:
        return report_sql.heartbeat(self.conn, worker_id, state, now, lease_seconds, usage)

    def reap(self, now: float, lease_seconds: float, cutoff: float) -> Effects:
        return report_sql.reap(self.conn, self.cache, now, lease_seconds, cutoff=cutoff)

    def register_worker(self, name: str, user: str, slots: int, tags: list[str],
                        job_types: list[str], allow_commands: bool, idle_only: bool,
                        now: float, system: dict[str, Any] | None) -> int:
        return jobs_sql.register_worker(self.conn, name, user, slots, tags, job_types,
                                        allow_commands, idle_only, now, system)

    def set_worker(self, worker_id: int, values: dict[str, bool]) -> Effects:
        return jobs_sql.set_worker(self.conn, worker_id, **values)

    def set_worker_tags(self, worker_id: int, tags: list[str] | None) -> Effects:
        return jobs_sql.set_worker_tags(self.conn, worker_id, tags)

    def set_schedule(self, worker_id: int, schedule: str | None,
                     tz: str | None = None) -> Effects:
        zone = {} if tz is None else {"schedule_tz": tz or None}
        return jobs_sql.set_worker(self.conn, worker_id, schedule=schedule, **zone)

    def insert_jobs(self, new: Sequence[NewJob]) -> list[int | VStudioError]:
        return insert_jobs(self.conn, new)

    def pause(self, job_id: int) -> Effects:
        return jobs_sql.pause(self.conn, job_id)

    def resume(self, job_id: int) -> Effects:
        return jobs_sql.resume(self.conn, job_id)

    def cancel(self, job_id: int, now: float, why: str | None = None) -> Effects:
        return jobs_sql.cancel(self.conn, job_id, now, why)

    def retry(self, job_id: int) -> Effects:
        return jobs_sql.retry(self.conn, self.cache, job_id)

    def retry_task(self, task_id: int, now: float) -> Effects:
        return jobs_sql.retry_task(self.conn, self.cache, task_id, now)

    def delete(self, job_id: int) -> Effects:
        return jobs_sql.delete(self.conn, self.cache, job_id)

    def set_priority(self, job_id: int, priority: int) -> Effects:
        return jobs_sql.set_priority(self.conn, job_id, priority)

    def set_tags(self, job_id: int, tags: dict[int, list[str]]) -> Effects:
        return jobs_sql.set_tags(self.conn, self.cache, job_id, tags)

    def clear_blocklist(self, job_id: int, worker_id: int | None) -> Effects:
        return jobs_sql.clear_blocklist(self.conn, job_id, worker_id)

    def notify(self) -> None:
        notify(self.conn)

    def stamp(self, changed: bool) -> None:
        version_sql.stamp(self.conn, changed)


class SqlFarmReads:
    """``FarmReads`` on one connection (the web pages' questions included); what a job
    shows is decided by the farm's ``rules``."""

    def __init__(self, conn: Connection, cache: FarmCache, rules: ShownRules) -> None:
        self.conn, self.cache, self.rules = conn, cache, rules

    def version(self) -> tuple[int, int]:
        return version_sql.read(self.conn)

    def worker_user(self, worker_id: int) -> str:
        return read_sql.worker_user(self.conn, worker_id)

    def job_owner(self, job_id: int) -> str:
        return read_sql.job_owner(self.conn, job_id)

    def job_project(self, job_id: int) -> str | None:
        return read_sql.job_project(self.conn, job_id)

    def task_job(self, task_id: int) -> int:
        return read_sql.task_job(self.conn, task_id)

    def blocks(self, job_id: int) -> Sequence[BlockInfo]:
        return self.cache.job(self.conn, job_id).blocks

    def project_trusted(self, project: str, user: Any) -> bool:
        p = accounts.get_project(self.conn, project)
        accounts.require(self.conn, p, user, "read")
        return p.trusted

    def may_read(self, project: str, user: Any) -> bool | None:
        try:
            p = accounts.get_project(self.conn, project)
        except NotFound:
            return None
        return accounts.rights(self.conn, p, user)[0]

    def owner_refused(self, job_id: int) -> str | None:
        project = read_sql.job_project(self.conn, job_id)
        if project is None:
            return None
        owner = read_sql.job_owner(self.conn, job_id)
        user = accounts.user_named(self.conn, owner)
        if user is None:
            return f"its owner {owner!r} is no user any more"
        if not self.may_read(project, user):  # False, or None: the project is gone
            return f"user {owner!r} may no longer read project {project!r}"
        return None

    def jobs(self, owner: str | None, status: str | None, limit: int,
             offset: int, newer_than: int = 0) -> list[dict[str, Any]]:
        return read_sql.list_jobs(self.conn, self.rules, owner=owner, status=status,
                                  limit=limit, offset=offset, newer_than=newer_than,
                                  nodes=self._nodes)

    def job(self, job_id: int, with_tasks: bool) -> dict[str, Any]:
        return read_sql.get_job(self.conn, job_id, self.rules, with_tasks=with_tasks,
                                nodes=self._nodes)

    def _nodes(self) -> list[Any]:
        return self.cache.nodes(self.conn, load_nodes)

    def job_outputs(self, job_id: int) -> list[dict[str, Any]]:
        return read_sql.job_outputs(self.conn, job_id)

    def task_log(self, task_id: int, after: int, limit: int) -> dict[str, Any]:
        return read_sql.task_log(self.conn, task_id, after=after, limit=limit)

    def workers(self) -> list[dict[str, Any]]:
        return read_sql.list_workers(self.conn)

    def job_heads(self, ids: list[int] | None = None, owner: str | None = None,
                  project: str | None = None, newest: int | None = None) -> list[JobHead]:
        return wq.job_heads(self.conn, ids, owner, project, newest)

    def task_status_counts(self, ids: list[int] | None = None) -> dict[int, dict[str, int]]:
        return wq.task_status_counts(self.conn, ids)

    def frame_counts(self, job_ids: list[int]) -> dict[int, FrameCount]:
        return wq.frame_counts(self.conn, job_ids)

    def conditions(self, jobs: Sequence[tuple[int, str]], counts: Mapping[int, Mapping[str, int]]
                   ) -> dict[int, Condition]:
        return conditions(self.conn, jobs, counts, self.rules, self._nodes)

    def last_finished(self, job_ids: list[int]) -> dict[int, float]:
        return wq.last_finished(self.conn, job_ids)

    def jobs_with_type(self, job_type: str) -> set[int]:
        return wq.jobs_with_type(self.conn, job_type)

    def owners_and_projects(self) -> tuple[list[str], list[str]]:
        return wq.owners_and_projects(self.conn)

    def task_cells(self, job_id: int, ids: list[int] | None = None) -> list[TaskCell]:
        return wq.task_cells(self.conn, job_id, ids)

    def newest_outputs(self, job_id: int, limit: int = 20) -> list[NewOutput]:
        return wq.newest_outputs(self.conn, job_id, limit)

    def output_name(self, job_id: int, oid: str) -> str | None:
        return wq.output_name(self.conn, job_id, oid)

    def running_tasks(self) -> dict[int, tuple[int, str, int, int, float]]:
        return wq.running_tasks(self.conn)

    def blocklists(self) -> dict[int, list[KeptOff]]:
        return wq.blocklists(self.conn)

    def worker_failures(self) -> dict[int, int]:
        return wq.worker_failures(self.conn)

    def work_by_owner(self) -> list[tuple[str | None, str, int, int]]:
        return wq.work_by_owner(self.conn)

    def recent_task_seconds(self, last: int = 200) -> list[float]:
        return wq.recent_task_seconds(self.conn, last)

    def finished_since(self, since: float) -> list[float]:
        return wq.finished_since(self.conn, since)

    def queue_counts(self) -> dict[str, int]:
        return wq.queue_counts(self.conn)

    def samples(self, since: float) -> list[tuple[int, int, int, int, int, int]]:
        return wq.samples(self.conn, since)


class SqlFarmDatabase:
    """``FarmDatabase``: the farm's own write engine (one writer thread; on SQLite its
    transactions take the write lock up front) and the studio's engine for reads."""

    def __init__(self, url: str, read_engine: Engine, rules: ShownRules) -> None:
        self.rules = rules
        self.cache = FarmCache()  # a job's blocks, for reads and writes of this process
        self.engine = write_engine(url)
        self._read_engine = read_engine
        self.shared = self.engine.dialect.name == "postgresql"
        # within the read engine's pool (10 + 20 overflow on PostgreSQL)
        self.read_threads = 16 if self.shared else 0

    @contextmanager
    def transaction(self) -> Iterator[SqlFarmWrites]:
        try:
            with self.engine.begin() as conn:
                yield SqlFarmWrites(conn, self.cache)
        finally:  # committed or not: what readers keep is read again
            self.cache.writes += 1

    @contextmanager
    def reading(self) -> Iterator[SqlFarmReads]:
        with self._read_engine.connect() as conn:
            yield SqlFarmReads(conn, self.cache, self.rules)

    def refusal(self, error: Exception) -> VStudioError | None:
        return refusal(error)

    def _url(self) -> str:
        return self.engine.url.render_as_string(hide_password=False)

    def listener(self, on_wake: Callable[[], None], on_message: Callable[[str, str], None],
                 channels: Sequence[str]) -> Listener:
        return Listener(self._url(), on_wake, on_message, channels)

    def sender(self) -> tuple[Relay, Callable[[str, str], None]]:
        relay = Relay(self._url())
        return relay, relay.send

    def close(self) -> None:
        self.engine.dispose()


def refusal(error: Exception) -> VStudioError | None:
    """What a database error in a farm transaction means to its caller (``FarmDatabase``)."""
    if isinstance(error, sa.exc.IntegrityError):
        # another manager wrote the same thing first (e.g. a worker name)
        return Conflict(f"changed concurrently, try again: {error.orig}")
    if isinstance(error, sa.exc.OperationalError):
        # deadlock or serialization failure between managers, or the database is down
        return BackendUnavailable(f"catalog database error: {error.orig}")
    return None
