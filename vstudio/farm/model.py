"""Statuses and the small rules that derive them (pure logic)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

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


def is_blocklisted(failures: int, limit: int) -> bool:
    """A worker that failed ``limit`` tasks of a job is kept off that job."""
    return failures >= limit


def lease_expired(lease_until: float | None, now: float) -> bool:
    return lease_until is not None and lease_until < now


def requeue_cutoff(now: float, started: float, lease_seconds: float,
                   reap_every: float) -> float:
    """Leases ending before this time are requeued by a reaper pass at ``now``.

    Leases that end before the next pass go now, so a lost worker's task is back within
    ``lease_seconds`` of its last report, not a pass later. A manager that has just
    (re)started requeues nothing for one lease: its workers could not report while it
    was down, and each gets that long to renew before its task is run elsewhere."""
    upto = now + reap_every
    return upto if upto > started + lease_seconds else 0.0


def timed_out(started: float | None, timeout: float | None, now: float) -> bool:
    return started is not None and timeout is not None and now - started > timeout
