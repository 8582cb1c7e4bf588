"""Statuses and the state machine of tasks and jobs (pure logic).

The catalog stores what these rules decide and decides nothing itself: what a report,
a lost lease or a person's action does to a task or a job is written here, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from vstudio.errors import Conflict


class TaskStatus(StrEnum):
    QUEUED = "queued"  # ready to be taken
    BLOCKED = "blocked"  # waits for its block dependencies (shown as queued)
    RUNNING = "running"  # held by a worker under a lease
    DONE = "done"  # finished, outputs recorded
    FAILED = "failed"  # failed more often than its block's retries allow
    CANCELED = "canceled"  # the job was canceled before this task finished


class JobState(StrEnum):
    """What the manager stores; the status people see is derived (``job_status``)."""

    WAITING = "waiting"  # its ``after`` jobs are not done yet
    ACTIVE = "active"  # tasks may be handed out
    PAUSED = "paused"  # nothing new is handed out; running tasks finish
    CANCELED = "canceled"
    DONE = "done"  # every task is done


# Shown statuses (``farm.condition`` explains each); ``job_status`` gives the coarse six.
JOB_STATUSES = ("queued", "waiting", "running", "pausing", "paused", "stalled", "failed",
                "done", "canceled")
OPEN = (TaskStatus.QUEUED, TaskStatus.BLOCKED, TaskStatus.RUNNING)


def shown_task_status(status: str, job_state: str) -> str:
    """The task status people see: a task that waits for frames of another block is
    ``waiting``, a paused job's unstarted tasks are ``paused``."""
    if status in (TaskStatus.QUEUED, TaskStatus.BLOCKED):
        if job_state == JobState.PAUSED:
            return "paused"
        return "waiting" if status == TaskStatus.BLOCKED else "queued"
    return status


def job_status(state: str, counts: Mapping[str, int]) -> str:
    """queued|running|paused|done|failed|canceled from the state and task counts."""
    if state == JobState.CANCELED:
        return "canceled"
    running = counts.get(TaskStatus.RUNNING, 0)
    waiting = counts.get(TaskStatus.QUEUED, 0) + counts.get(TaskStatus.BLOCKED, 0)
    if state == JobState.DONE or (running == waiting == counts.get("failed", 0) == 0
                                  and counts.get(TaskStatus.DONE, 0) > 0):
        return "done"
    if state == JobState.PAUSED and running == 0:
        return "paused"
    if running:
        return "running"
    # Nothing running and nothing ready to run: what still waits (blocked tasks) waits on
    # a failed task, so the job cannot finish without a retry.
    if counts.get(TaskStatus.QUEUED, 0) == 0 and counts.get(TaskStatus.FAILED, 0):
        return "failed"
    if state == JobState.PAUSED:
        return "paused"
    return "running" if counts.get(TaskStatus.DONE, 0) or counts.get("failed", 0) else "queued"


class StaleReport(Conflict):
    """This report is for an attempt the manager no longer runs; it changed nothing."""


def check_report(task_id: int, attempt: int, current: int, status: str,
                 kind: str = "report") -> None:
    """A worker's report counts only for the task's current attempt while it runs; a
    progress report on a canceled task is answered (with ``cancel``), not refused."""
    if attempt != current:
        raise StaleReport(f"task {task_id}: attempt {attempt} is stale (now {current})")
    if status == TaskStatus.CANCELED and kind == "progress":
        return
    if status != TaskStatus.RUNNING:
        raise StaleReport(f"task {task_id} is {status}, not running")


def after_failure(failures: int, retries: int) -> TaskStatus:
    """A task that has failed ``failures`` times (this one included) is retried or failed."""
    return TaskStatus.QUEUED if failures <= retries else TaskStatus.FAILED


# -- what happens to a running task ---------------------------------------------------
@dataclass(frozen=True)
class TaskChange:
    """A running task's next status and what goes with it; the catalog writes it as is.

    Every change ends the task's lease. ``requeued``: back in the queue, so it has no
    holder, no progress and no frame; otherwise the task is closed and gets its finish
    time."""

    status: TaskStatus
    line: str  # the manager's line in the task's log
    requeued: bool
    error: str | None = None  # the task's new error (None: left as it is)
    failures: int | None = None  # the task's new failure count (None: left as it is)


def task_failed(attempt: int, failures: int, retries: int, error: str) -> TaskChange:
    """The attempt failed (the worker said so, or it ran over its timeout): counted, and
    the task runs again while its block's retries allow. ``failures``: before this one."""
    n = failures + 1
    status = after_failure(n, retries)
    return TaskChange(status, f"[manager] attempt {attempt} failed: {error}",
                      status is TaskStatus.QUEUED, error, n)


def task_released(attempt: int, reason: str) -> TaskChange:
    """The worker gave the task back unfinished (shutting down): no failure is counted."""
    return TaskChange(TaskStatus.QUEUED, f"[manager] attempt {attempt} released: {reason}",
                      True)


def lease_lost(attempt: int) -> TaskChange:
    """Nothing was heard of the task's worker for a lease: it runs again elsewhere, and
    no failure is counted (the worker may be fine but cut off)."""
    return TaskChange(TaskStatus.QUEUED,
                      f"[manager] attempt {attempt}: lease expired (worker lost); requeued",
                      True, "lease expired")


def timeout_error(timeout: float) -> str:
    """The failure of an attempt that ran longer than its block's timeout."""
    return f"timed out after {timeout:g} s"


def asks_cancel(status: str) -> bool:
    """A progress report on a canceled task is answered with ``cancel``: the worker stops."""
    return status == TaskStatus.CANCELED


def frames_needed(mode: str, first: int, last: int) -> tuple[int, int] | None:
    """Which frames of an upstream block must be done before frames ``first..last`` of a
    dependent block may run: all of them (None) for a ``whole`` dependency, the same
    frames for a ``frame`` one (an encode starts when its frames exist)."""
    return (first, last) if mode == "frame" else None


# -- what happens to a job ------------------------------------------------------------
def state_on_submit(paused: bool, after_done: bool) -> JobState:
    """A new job: paused if asked, else waiting until its ``after`` jobs are done."""
    if paused:
        return JobState.PAUSED
    return JobState.ACTIVE if after_done else JobState.WAITING


def state_on_pause(job_id: int, state: str) -> JobState | None:
    """The job's new state when paused (None: unchanged); only open jobs pause."""
    if state in (JobState.ACTIVE, JobState.WAITING):
        return JobState.PAUSED
    if state != JobState.PAUSED:
        raise Conflict(f"job {job_id} is {state}; only a queued or running job pauses")
    return None


def state_on_resume(job_id: int, state: str, after_done: bool) -> JobState | None:
    """The job's new state when resumed (None: unchanged); a canceled job is retried."""
    if state == JobState.PAUSED:
        return JobState.ACTIVE if after_done else JobState.WAITING
    if state == JobState.CANCELED:
        raise Conflict(f"job {job_id} is canceled; use retry to run it again")
    return None


def cancels(state: str) -> bool:
    """Canceling closes the job's open tasks, unless it is already done or canceled."""
    return state not in (JobState.DONE, JobState.CANCELED)


def state_on_retry(state: str, after_done: bool) -> JobState:
    """A job whose failed or canceled tasks are queued again runs again (a paused job
    stays paused)."""
    if state == JobState.PAUSED:
        return JobState.PAUSED
    return JobState.ACTIVE if after_done else JobState.WAITING


def state_on_task_retry(job_id: int, state: str, finished: bool,
                        after_done: bool) -> JobState | None:
    """The job's new state when one of its tasks is queued again (None: unchanged): a
    finished job opens again; a canceled job's tasks are retried with the job."""
    if state == JobState.CANCELED:
        raise Conflict(f"job {job_id} is canceled; retry the job instead")
    if state == JobState.DONE or finished:
        return JobState.ACTIVE if after_done else JobState.WAITING
    return None


def state_when_closed(any_failed: bool) -> JobState | None:
    """A job with no open task left is done, unless a task failed for good: then it keeps
    its state and shows as failed until a retry (None: unchanged)."""
    return None if any_failed else JobState.DONE


# A worker that failed a job's ``blocklist_after`` tasks is kept off it, a task whose lease
# ended is requeued (``lease_lost``), one running past its block's timeout fails
# (``task_failed``): the catalog applies these thresholds in SQL over many rows at once.
def requeue_cutoff(now: float, started: float, lease_seconds: float,
                   reap_every: float) -> float:
    """Leases ending before this time are requeued by a reaper pass at ``now``.

    Leases that end before the next pass go now, so a lost worker's task is back within
    ``lease_seconds`` of its last report, not a pass later. A manager that has just
    (re)started requeues nothing for one lease: its workers could not report while it
    was down, and each gets that long to renew before its task is run elsewhere."""
    upto = now + reap_every
    return upto if upto > started + lease_seconds else 0.0


# -- what the farm and its database hand each other -----------------------------------
@dataclass
class Effects:
    """What a change did, for events and for waking waiting workers."""

    wake: bool = False
    jobs: set[int] = field(default_factory=set)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    workers: list[dict[str, Any]] = field(default_factory=list)
    cancel: bool = False


@dataclass
class Report:
    """One worker report; ``workers`` are the caller's worker ids (None: an admin)."""

    kind: str  # progress | done | fail | release
    task_id: int
    attempt: int
    user: str
    workers: Set[int] | None
    progress: float = 0.0
    frame: int | None = None
    lines: list[str] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""


@dataclass(frozen=True)
class JobPlan:
    """A submitted job as it is stored (``farm.spec.job_plan``; its blocks: ``BlockPlan``)."""

    name: str
    project: str | None
    priority: int
    paused: bool
    after: list[int]
    max_running: int | None
    blocklist_after: int


@dataclass(frozen=True)
class BlockPlan:
    """A validated block with its tasks' frame lists; ``depends`` uses block indexes."""

    index: int
    name: str
    type: str
    params: dict[str, Any]
    tags: list[str]
    chunk: int
    max_per_worker: int | None
    retries: int
    timeout: float | None
    depends: list[tuple[int, str]]
    tasks: list[list[int]]


# The scheduler's view of the farm (``farm.scheduler`` ranks, the catalog loads it).
@dataclass(frozen=True)
class WorkerView:
    """A worker as the scheduler needs it."""

    id: int
    slots: int = 1
    tags: frozenset[str] = frozenset()
    job_types: frozenset[str] = frozenset()
    allow_commands: bool = False
    enabled: bool = True
    draining: bool = False
    running: int = 0
    schedule: str | None = None  # hours it may render (``farm.hours``); None: always
    schedule_tz: str | None = None  # the zone its hours are in; None: the manager's

    def accepts(self, job_type: str) -> bool:
        if job_type == "command" and not self.allow_commands:
            return False
        return not self.job_types or job_type in self.job_types

    @property
    def wants_work(self) -> bool:
        return self.enabled and not self.draining and self.running < self.slots


@dataclass(frozen=True)
class BlockView:
    id: int
    job_id: int
    index: int
    type: str
    tags: frozenset[str] = frozenset()
    max_per_worker: int | None = None


@dataclass
class JobView:
    id: int
    owner: str
    priority: int
    created: float
    max_running: int | None = None
    running: int = 0
    blocks: list[BlockView] = field(default_factory=list)


@dataclass
class Snapshot:
    """Jobs with queued work plus the counts ranking needs; updated as tasks are claimed."""

    jobs: list[JobView]
    owner_running: dict[str, int] = field(default_factory=dict)
    # (worker id, block id) -> tasks of that block the worker runs now
    worker_block_running: dict[tuple[int, int], int] = field(default_factory=dict)
    # worker id -> job ids it is blocklisted for
    blocklist: dict[int, set[int]] = field(default_factory=dict)
    now: float | None = None  # when the claim happens (for nodes' schedules); None: now

    def claimed(self, worker_id: int, block: BlockView) -> None:
        """Record a claim so later decisions in the same batch see it."""
        for job in self.jobs:
            if job.id == block.job_id:
                job.running += 1
                self.owner_running[job.owner] = self.owner_running.get(job.owner, 0) + 1
                break
        key = (worker_id, block.id)
        self.worker_block_running[key] = self.worker_block_running.get(key, 0) + 1
