"""A desktop node's schedule: which hours it may render, and what is refused."""

from __future__ import annotations

import time

import pytest

from vstudio.errors import BadInput
from vstudio.farm import hours
from vstudio.farm.model import BlockView, JobView, Snapshot, WorkerView
from vstudio.farm.scheduler import first_block, rank


def at(day: str, hhmm: str) -> float:
    """A local time on the week of 2026-03-02 (a Monday)."""
    d = hours.DAYS.index(day) + 2
    h, m = map(int, hhmm.split(":"))
    return time.mktime((2026, 3, d, h, m, 0, 0, 0, -1))


@pytest.mark.parametrize(("schedule", "day", "hhmm", "ok"), [
    ("mon-fri 19:00-08:00", "mon", "19:00", True),
    ("mon-fri 19:00-08:00", "mon", "18:59", False),
    ("mon-fri 19:00-08:00", "tue", "07:59", True),   # Monday night runs into Tuesday
    ("mon-fri 19:00-08:00", "tue", "08:00", False),
    ("mon-fri 19:00-08:00", "sat", "07:00", True),   # Friday night
    ("mon-fri 19:00-08:00", "sat", "20:00", False),
    ("mon-fri 19:00-08:00", "mon", "03:00", False),  # Sunday night is not in it
    ("mon-fri 19:00-08:00, sat-sun 00:00-24:00", "sun", "12:00", True),
    ("fri-mon 10:00-11:00", "sun", "10:30", True),   # a range of days across the week's end
    ("fri-mon 10:00-11:00", "wed", "10:30", False),
    ("22:00-06:00", "wed", "23:00", True),
    ("22:00-06:00", "wed", "12:00", False),
    ("", "wed", "12:00", True),
    (None, "wed", "12:00", True),
])
def test_hours_allow(schedule: str | None, day: str, hhmm: str, ok: bool) -> None:
    assert hours.allows(schedule, at(day, hhmm)) is ok


@pytest.mark.parametrize(("text", "says"), [
    ("weekends", "cannot read 'weekends'"),
    ("mon-fri 25:00-08:00", "no time 25:00"),
    ("mon-fri 19:60-08:00", "no time 19:60"),
    ("mon-frx 19:00-08:00", "unknown day 'frx'"),
    ("10:00-10:00", "empty range"),
    ("x" * 201, "longer than 200"),
])
def test_bad_schedules_are_refused_with_the_reason(text: str, says: str) -> None:
    with pytest.raises(BadInput, match=says):
        hours.normal(text)


def test_schedule_is_stored_in_one_form() -> None:
    assert hours.normal(" Mon-Fri   19:00-08:00 ,SAT 00:00-24:00,") == \
        "mon-fri 19:00-08:00, sat 00:00-24:00"
    assert hours.normal("  ") == ""


def test_scheduler_gives_a_node_no_work_outside_its_hours() -> None:
    jobs = [JobView(1, "ann", 50, 1.0, blocks=[BlockView(11, 1, 0, "blender")])]
    desk = WorkerView(1, schedule="mon-fri 19:00-08:00")
    evening = Snapshot(jobs, now=at("tue", "20:00"))
    noon = Snapshot(jobs, now=at("tue", "12:00"))
    assert first_block(desk, evening) is not None and rank(desk, evening) != []
    assert first_block(desk, noon) is None and rank(desk, noon) == []
    assert first_block(WorkerView(2), noon) is not None  # a node without hours: always
