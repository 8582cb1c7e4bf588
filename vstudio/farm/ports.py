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
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

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


# -- the facts a job's shown status is decided from (``farm.condition``) ---------------
@dataclass(frozen=True)
class Condition:
    status: str  # one of farm.condition.STATUSES
    reason: str = ""  # empty when simply running or finished


@dataclass(frozen=True)
class BlockNeeds:
    """What a block with queued tasks asks of a worker."""

    name: str
    type: str
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class NodeFacts:
    """A render node as far as "could it take this work" goes."""

    id: int
    name: str
    online: bool
    enabled: bool = True
    draining: bool = False
    job_types: frozenset[str] = frozenset()  # empty: any type
    tags: frozenset[str] = frozenset()
    allow_commands: bool = False
    busy: bool = False  # every slot taken
    schedule: str | None = None  # hours it may render (``farm.hours``); None: always
    schedule_tz: str | None = None  # the zone its hours are in; None: the manager's
    in_use: bool = False  # an --idle-only desktop whose user is at it (takes no work)

    def can_take(self, block: BlockNeeds) -> bool:
        if block.type == "command" and not self.allow_commands:
            return False
        if self.job_types and block.type not in self.job_types:
            return False
        return block.tags <= self.tags


@dataclass(frozen=True)
class JobFacts:
    state: str  # model.JobState as stored
    counts: Mapping[str, int]  # task status (as stored) -> number of tasks
    waiting_on_jobs: Mapping[int, str] = field(default_factory=dict)  # after job -> status
    waiting_on_blocks: Sequence[str] = ()  # blocks whose frames blocked tasks wait for
    queued_blocks: Sequence[BlockNeeds] = ()  # blocks that have queued tasks
    blocklisted: frozenset[int] = field(default_factory=frozenset)  # node ids kept off


# -- what the web pages show (``FarmReads``; compact: 10,000 task cells make one page) --
@dataclass(frozen=True)
class FrameCount:
    done: int
    total: int
    running_done: float  # frames of running tasks weighted by their progress
    # Frames rendered / to render: an encode block's tasks name the same frames again,
    # so a 48-frame shot with its encode is 48 frames, not 96.
    rendered: int = 0
    to_render: int = 0


class TaskCell(NamedTuple):
    """One task as the job page shows it (a tuple: 10,000 of them are built per page)."""

    id: int
    block_id: int
    status: str  # as stored (farm.model.TaskStatus)
    first: int
    last: int
    span: int  # last - first + 1 (frames of the chunk when the step is 1)
    progress: float
    worker: str | None
    started: float | None
    finished: float | None
    error: str | None  # why its last attempt failed


@dataclass(frozen=True)
class JobHead:
    id: int
    name: str
    owner: str
    project: str | None
    priority: int
    state: str  # farm.model.JobState
    created: float
    started: float | None
    finished: float | None


class NewOutput(NamedTuple):
    id: int
    block: str
    frame: int | None
    name: str
    oid: str
    thumbnail_oid: str | None


class KeptOff(NamedTuple):
    """A job a worker is kept off (it failed the job's tasks too often)."""

    job_id: int
    name: str
    failures: int
    owner: str
    project: str | None


class ShownRules(Protocol):
    """The farm's rules the catalog's reads apply to what they load (the catalog decides
    nothing itself): a job's shown status and reason, and frame lists as text."""

    @property
    def coarse(self) -> Mapping[str, tuple[str, ...]]:
        """Shown status -> the coarse statuses (computable in SQL) it refines."""
        ...

    def may_be_stuck(self, state: str, counts: Mapping[str, int]) -> bool:
        """Whether the job's condition needs more facts than its task counts."""
        ...

    def judge(self, facts: Mapping[int, JobFacts],
              nodes: Iterable[NodeFacts]) -> dict[int, Condition]: ...
    def frames_text(self, frames: list[int]) -> str: ...


class Block(Protocol):
    """A block of a submitted job, as the farm needs it to change the job's tags."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def params(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class NewJob:
    """A submit as the writer inserts it (see ``FarmWrites.insert_jobs``)."""

    owner: Any  # the submitting user (accounts.User): rights are checked on insert
    job: JobPlan
    plans: list[BlockPlan]
    inputs: list[dict[str, str]]
    now: float


class FarmWrites(Protocol):
    """The farm's changes, all inside one transaction of its writer (``farm.writer``).

    A change that is refused raises a ``VStudioError`` before it has written anything,
    so the batch it shares the transaction with is unaffected."""

    def stamp(self, changed: bool) -> None:
        """Count this transaction in the version every manager reads: a batch, and a
        change of existing records when ``changed`` (``farm.freshness``)."""
        ...

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

    def heartbeat(self, worker_id: int, state: str, now: float, lease_seconds: float,
                  usage: tuple[float, float] | None = None) -> Effects:
        """Renew the worker's leases; ``usage`` is its (CPU %, memory %) if it said."""
        ...

    def reap(self, now: float, lease_seconds: float, cutoff: float) -> Effects:
        """Requeue tasks whose lease ends before ``cutoff``, fail those over their
        timeout, mark workers unheard of for a lease offline."""
        ...

    def register_worker(self, name: str, user: str, slots: int, tags: list[str],
                        job_types: list[str], allow_commands: bool, idle_only: bool,
                        now: float, system: dict[str, Any] | None) -> int: ...
    def set_worker(self, worker_id: int, values: dict[str, bool]) -> Effects: ...
    def set_worker_tags(self, worker_id: int, tags: list[str] | None) -> Effects:
        """An admin's tags, kept when the node registers again; None: the node's own."""
        ...

    def set_schedule(self, worker_id: int, schedule: str | None,
                     tz: str | None = None) -> Effects:
        """A node's hours; ``tz``: their zone ("" the manager's clock, None: as it was)."""
        ...

    # people
    def insert_jobs(self, new: Sequence[NewJob]) -> list[int | VStudioError]:
        """Insert the jobs the writer took together; for each its id, or the error that
        refused it (no right to read its project, an unknown --after job) before
        anything of it was written. Rights are checked in this transaction."""
        ...

    def pause(self, job_id: int) -> Effects: ...
    def resume(self, job_id: int) -> Effects: ...
    def cancel(self, job_id: int, now: float, why: str | None = None) -> Effects:
        """Cancel the job's unfinished tasks; ``why``, when given, is each one's error."""
        ...

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

    def version(self) -> tuple[int, int]:
        """(batches, changes) every writer of this database has stamped."""
        ...

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

    def owner_refused(self, job_id: int) -> str | None:
        """Why the job's owner may no longer read the project the job names (a revoked
        right, a removed user or project); None when they may, or it names none."""
        ...

    # what people see
    def jobs(self, owner: str | None, status: str | None, limit: int,
             offset: int, newer_than: int = 0) -> list[dict[str, Any]]: ...
    def job(self, job_id: int, with_tasks: bool) -> dict[str, Any]: ...
    def job_outputs(self, job_id: int) -> list[dict[str, Any]]: ...
    def task_log(self, task_id: int, after: int, limit: int) -> dict[str, Any]: ...
    def workers(self) -> list[dict[str, Any]]: ...

    # what the web pages show (their SQL: ``vstudio.catalog.web_queries``)
    def job_heads(self, ids: list[int] | None = None, owner: str | None = None,
                  project: str | None = None, newest: int | None = None) -> list[JobHead]: ...
    def task_status_counts(self, ids: list[int] | None = None) -> dict[int, dict[str, int]]: ...
    def frame_counts(self, job_ids: list[int]) -> dict[int, FrameCount]: ...
    def conditions(self, jobs: Sequence[tuple[int, str]], counts: Mapping[int, Mapping[str, int]]
                   ) -> dict[int, Condition]: ...
    def last_finished(self, job_ids: list[int]) -> dict[int, float]: ...
    def jobs_with_type(self, job_type: str) -> set[int]: ...
    def owners_and_projects(self) -> tuple[list[str], list[str]]: ...
    def task_cells(self, job_id: int, ids: list[int] | None = None) -> list[TaskCell]: ...
    def newest_outputs(self, job_id: int, limit: int = 20) -> list[NewOutput]: ...
    def output_name(self, job_id: int, oid: str) -> str | None: ...
    def running_tasks(self) -> dict[int, tuple[int, str, int, int, float]]: ...
    def blocklists(self) -> dict[int, list[KeptOff]]: ...
    def worker_failures(self) -> dict[int, int]: ...
    def work_by_owner(self) -> list[tuple[str | None, str, int, int]]: ...
    def recent_task_seconds(self, last: int = 200) -> list[float]: ...
    def finished_since(self, since: float) -> list[float]: ...
    def queue_counts(self) -> dict[str, int]: ...
    def samples(self, since: float) -> list[tuple[int, int, int, int, int, int]]: ...


class Service(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


class FarmDatabase(Protocol):
    """Where the farm keeps its jobs, tasks and workers."""

    # Several managers may share it: wake-ups and events then go through the database.
    shared: bool
    # Threads for reads: a database server's round trips leave a thread waiting, so more
    # reads overlap than an embedded database (CPU under the GIL) gains from; 0: default.
    read_threads: int

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
