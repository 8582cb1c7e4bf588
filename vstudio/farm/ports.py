"""What the farm needs from its database, declared by the farm and built by the catalog.

The farm holds no connection and writes no SQL: it asks a ``FarmDatabase`` for a
transaction of its batching writer (a ``FarmWrites``: every change the farm makes) or
for a read (a ``FarmReads``: the questions it and its readers ask), and the catalog's
``vstudio.catalog.farm_repo`` answers with SQL on SQLite or PostgreSQL. The rules (what
a report does to a task, who may change a job, which task a worker gets) stay here in
the domain; the catalog only stores what they decide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from vstudio.errors import VStudioError
from vstudio.farm.model import (
    BlockPlan,
    BlockView,
    Effects,
    JobPlan,
    Report,
    Snapshot,
    WorkerView,
)

# The scheduler's choice (``farm.scheduler.first_block``), handed to the claim.
Pick = Callable[[WorkerView, Snapshot, Iterable[int]], BlockView | None]


class Block(Protocol):
    """A block of a submitted job, as the farm needs it to change the job's tags."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def params(self) -> Mapping[str, Any]: ...


class FarmWrites(Protocol):
    """The farm's changes, all inside one transaction of its writer (``farm.writer``).

    A change that is refused raises a ``VStudioError`` before it has written anything,
    so the batch it shares the transaction with is unaffected."""

    # render nodes
    def claim(self, worker_ids: list[int], now: float, lease_seconds: float, pick: Pick
              ) -> tuple[list[dict[str, Any] | None], list[dict[str, Any]]]:
        """For each request (a worker id, repeated for several slots) the task it now
        runs, as the node receives it; and the workers that were offline and asked."""
        ...

    def apply_reports(self, reports: list[Report], now: float, lease_seconds: float,
                      owners: dict[int, str]) -> tuple[list[Any], Effects]:
        """For each report its ``Effects`` or the ``VStudioError`` that refused it, and
        the batch's own effects (dependent tasks released, jobs finished). ``owners``
        caches worker id -> user across batches."""
        ...

    def heartbeat(self, worker_id: int, state: str, now: float,
                  lease_seconds: float) -> Effects: ...
    def reap(self, now: float, lease_seconds: float, cutoff: float) -> Effects:
        """Requeue tasks whose lease ends before ``cutoff``, fail those over their
        timeout, mark workers unheard of for a lease offline."""
        ...

    def register_worker(self, name: str, user: str, slots: int, tags: list[str],
                        job_types: list[str], allow_commands: bool, idle_only: bool,
                        now: float, system: dict[str, Any] | None) -> int: ...
    def set_worker(self, worker_id: int, values: dict[str, bool]) -> Effects: ...

    # people
    def insert_job(self, owner: str, job: JobPlan, plans: list[BlockPlan],
                   inputs: list[dict[str, str]], trusted: bool, now: float) -> int: ...
    def pause(self, job_id: int) -> Effects: ...
    def resume(self, job_id: int) -> Effects: ...
    def cancel(self, job_id: int, now: float) -> Effects: ...
    def retry(self, job_id: int) -> Effects: ...
    def retry_task(self, task_id: int, now: float) -> Effects: ...
    def delete(self, job_id: int) -> Effects: ...
    def set_priority(self, job_id: int, priority: int) -> Effects: ...
    def set_tags(self, job_id: int, tags: dict[int, list[str]]) -> Effects: ...
    def clear_blocklist(self, job_id: int, worker_id: int | None) -> Effects: ...

    def notify(self) -> None:
        """Tell the other managers on this database that work may be ready (at commit)."""
        ...


class FarmReads(Protocol):
    """The farm's questions, answered from one read of the database."""

    # for rights: who owns what
    def worker_user(self, worker_id: int) -> str: ...
    def job_owner(self, job_id: int) -> str: ...
    def job_project(self, job_id: int) -> str | None: ...
    def task_job(self, task_id: int) -> int: ...
    def blocks(self, job_id: int) -> Sequence[Block]: ...
    def project_trusted(self, project: str, user: Any) -> bool:
        """Whether ``project`` is trusted; ``PermissionDenied`` unless ``user`` reads it."""
        ...

    def may_read(self, project: str, user: Any) -> bool | None:
        """Whether ``user`` may read ``project`` (None: there is no such project)."""
        ...

    # what people see
    def jobs(self, owner: str | None, status: str | None, limit: int,
             offset: int) -> list[dict[str, Any]]: ...
    def job(self, job_id: int, with_tasks: bool) -> dict[str, Any]: ...
    def job_outputs(self, job_id: int) -> list[dict[str, Any]]: ...
    def task_log(self, task_id: int, after: int, limit: int) -> dict[str, Any]: ...
    def workers(self) -> list[dict[str, Any]]: ...


class Service(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


class FarmDatabase(Protocol):
    """Where the farm keeps its jobs, tasks and workers."""

    # Several managers may share it: wake-ups and events then go through the database.
    shared: bool

    def transaction(self) -> AbstractContextManager[FarmWrites]:
        """A write transaction, committed when the block ends without an error."""
        ...

    def reading(self) -> AbstractContextManager[FarmReads]: ...

    def refusal(self, error: Exception) -> VStudioError | None:
        """What a database error means to the caller: ``Conflict`` (another manager wrote
        the same thing first), ``BackendUnavailable`` (worth another try), None (a bug)."""
        ...

    def listener(self, on_wake: Callable[[], None], on_message: Callable[[str, str], None],
                 channels: Sequence[str]) -> Service:
        """A thread calling ``on_wake`` when any manager says work may be ready, and
        ``on_message`` for notices on ``channels`` (only for a shared database)."""
        ...

    def sender(self) -> tuple[Service, Callable[[str, str], None]]:
        """A thread relaying (channel, payload) notices to the other managers, and the
        function that queues one (only for a shared database)."""
        ...

    def close(self) -> None: ...
