"""A job's status derived from its state and task counts."""

from __future__ import annotations

import pytest

from vstudio.farm.model import StaleReport, check_report, job_status


def test_failed_render_leaves_its_encode_blocked_and_the_job_failed() -> None:
    # The render tasks failed for good; the encode waits on them and never can run.
    assert job_status("active", {"failed": 2, "blocked": 1}) == "failed"


def test_work_left_to_do_keeps_a_job_running() -> None:
    assert job_status("active", {"failed": 1, "queued": 1}) == "running"
    assert job_status("active", {"failed": 1, "running": 1, "blocked": 1}) == "running"


def test_plain_cases() -> None:
    assert job_status("active", {"queued": 3}) == "queued"
    assert job_status("active", {"done": 3}) == "done"
    assert job_status("canceled", {"queued": 3}) == "canceled"
    assert job_status("paused", {"queued": 3}) == "paused"
    assert job_status("active", {"done": 1, "blocked": 2}) == "running"


def test_a_task_waiting_for_frames_of_another_block_is_shown_waiting() -> None:
    from vstudio.farm.model import shown_task_status

    assert shown_task_status("blocked", "active") == "waiting"
    assert shown_task_status("queued", "active") == "queued"
    assert shown_task_status("blocked", "paused") == "paused"
    assert shown_task_status("running", "paused") == "running"


def test_a_report_counts_only_for_the_running_current_attempt() -> None:
    check_report(7, 2, 2, "running")  # the current attempt of a running task
    check_report(7, 2, 2, "canceled", "progress")  # answered with cancel, not refused
    with pytest.raises(StaleReport, match="attempt 1 is stale"):
        check_report(7, 1, 2, "running")
    for status in ("canceled", "done", "queued", "failed"):
        with pytest.raises(StaleReport, match=f"task 7 is {status}, not running"):
            check_report(7, 2, 2, status, "done")
