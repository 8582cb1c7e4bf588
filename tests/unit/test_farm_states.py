"""The task and job state machine (``vstudio.farm.model``), without a database."""

from __future__ import annotations

import pytest

from vstudio.errors import Conflict
from vstudio.farm.model import (
    JobState,
    TaskStatus,
    asks_cancel,
    cancels,
    frames_needed,
    lease_lost,
    state_on_pause,
    state_on_resume,
    state_on_retry,
    state_on_submit,
    state_on_task_retry,
    state_when_closed,
    task_failed,
    task_released,
    timeout_error,
)


def test_a_failure_is_retried_while_the_blocks_retries_allow() -> None:
    first = task_failed(attempt=1, failures=0, retries=2, error="exit 1")
    assert (first.status, first.requeued, first.failures) == (TaskStatus.QUEUED, True, 1)
    assert first.error == "exit 1" and first.line == "[manager] attempt 1 failed: exit 1"
    third = task_failed(attempt=3, failures=2, retries=2, error="exit 1")
    assert (third.status, third.requeued, third.failures) == (TaskStatus.FAILED, False, 3)
    assert task_failed(1, 0, 0, "boom").status is TaskStatus.FAILED  # no retries at all


def test_a_release_or_a_lost_lease_requeues_without_counting_a_failure() -> None:
    back = task_released(4, "worker stopping")
    assert (back.status, back.requeued, back.failures, back.error) == (
        TaskStatus.QUEUED, True, None, None)
    assert back.line == "[manager] attempt 4 released: worker stopping"
    lost = lease_lost(2)
    assert (lost.status, lost.requeued, lost.failures) == (TaskStatus.QUEUED, True, None)
    assert lost.error == "lease expired" and "attempt 2: lease expired" in lost.line
    assert timeout_error(90.0) == "timed out after 90 s"


def test_only_a_canceled_task_tells_its_worker_to_stop() -> None:
    assert asks_cancel("canceled")
    assert not any(asks_cancel(s) for s in ("running", "queued", "done", "failed"))


def test_a_frame_dependency_needs_the_same_frames_a_whole_one_all() -> None:
    assert frames_needed("frame", 11, 20) == (11, 20)
    assert frames_needed("whole", 11, 20) is None


def test_a_new_job_waits_for_its_after_jobs_unless_paused() -> None:
    assert state_on_submit(paused=False, after_done=True) is JobState.ACTIVE
    assert state_on_submit(paused=False, after_done=False) is JobState.WAITING
    assert state_on_submit(paused=True, after_done=True) is JobState.PAUSED


def test_pause_and_resume() -> None:
    assert state_on_pause(1, "active") is JobState.PAUSED
    assert state_on_pause(1, "waiting") is JobState.PAUSED
    assert state_on_pause(1, "paused") is None
    for closed in ("done", "canceled"):
        with pytest.raises(Conflict, match=f"job 1 is {closed}; only a queued or running"):
            state_on_pause(1, closed)
    assert state_on_resume(1, "paused", after_done=True) is JobState.ACTIVE
    assert state_on_resume(1, "paused", after_done=False) is JobState.WAITING
    assert state_on_resume(1, "active", after_done=True) is None
    with pytest.raises(Conflict, match="use retry"):
        state_on_resume(1, "canceled", after_done=True)


def test_cancel_retry_and_closing() -> None:
    assert cancels("active") and cancels("paused") and cancels("waiting")
    assert not cancels("done") and not cancels("canceled")
    assert state_on_retry("canceled", after_done=True) is JobState.ACTIVE
    assert state_on_retry("active", after_done=False) is JobState.WAITING
    assert state_on_retry("paused", after_done=True) is JobState.PAUSED
    assert state_on_task_retry(1, "done", finished=True, after_done=True) is JobState.ACTIVE
    assert state_on_task_retry(1, "active", finished=True, after_done=False) is JobState.WAITING
    assert state_on_task_retry(1, "active", finished=False, after_done=True) is None
    with pytest.raises(Conflict, match="retry the job instead"):
        state_on_task_retry(1, "canceled", finished=True, after_done=True)
    assert state_when_closed(any_failed=False) is JobState.DONE
    assert state_when_closed(any_failed=True) is None
