"""A desktop node's schedule: which hours it may render, and what is refused."""

from __future__ import annotations

import time

import pytest

from vstudio.errors import BadInput
from vstudio.farm import hours
from vstudio.farm.model import BlockView, JobView, Snapshot, WorkerView
from vstudio.farm.scheduler import first_block, takes_work


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
    assert first_block(desk, evening) is not None and takes_work(desk, evening)
    assert first_block(desk, noon) is None and not takes_work(desk, noon)
    assert first_block(WorkerView(2), noon) is not None  # a node without hours: always
    # The same hours on a node whose clock is 12 hours off the manager's: the other way.
    far = WorkerView(3, schedule="mon-fri 19:00-08:00", schedule_tz=_twelve_hours_off())
    assert first_block(far, noon) is not None and first_block(far, evening) is None


def _twelve_hours_off() -> str:
    """A zone 12 hours from this machine's local time on the test's Tuesday."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    local = datetime.fromtimestamp(at("tue", "12:00")).astimezone().utcoffset()
    assert local is not None
    hours_off = (int(local.total_seconds() // 3600) + 12 + 12) % 24 - 12
    # Etc/GMT+N is N hours *behind* UTC (POSIX signs); Etc/GMT-14..+12 exist.
    name = f"Etc/GMT{-hours_off:+d}" if hours_off else "UTC"
    assert datetime.fromtimestamp(at("tue", "12:00"), ZoneInfo(name)).hour in (0, 24 % 24)
    return name


def test_hours_read_on_the_nodes_own_clock() -> None:
    # 2026-03-02 is a Monday; 18:30 UTC is 19:30 in Berlin (CET) and 15:30 in São Paulo.
    t = 1772476200.0
    assert time.strftime("%a %H:%M", time.gmtime(t)) == "Mon 18:30"
    night = "mon-fri 19:00-08:00"
    assert hours.allows(night, t, "Europe/Berlin") is True
    assert hours.allows(night, t, "America/Sao_Paulo") is False
    assert hours.allows(night, t, "UTC") is False
    # Summer time is the zone's own: 17:30 UTC in July is 19:30 in Berlin (CEST).
    july = 1783359000.0  # Mon 2026-07-06 17:30 UTC
    assert time.strftime("%a %H:%M", time.gmtime(july)) == "Mon 17:30"
    assert hours.allows(night, july, "Europe/Berlin") is True
    # Days turn over on the node's clock: Friday 23:00 in Tokyo is Friday 14:00 UTC.
    fri = 1772805600.0  # Fri 2026-03-06 14:00 UTC
    assert hours.allows("fri 22:00-24:00", fri, "Asia/Tokyo") is True
    assert hours.allows("fri 22:00-24:00", fri, "UTC") is False
    # A zone that the machine no longer knows falls back to the manager's clock.
    assert hours.allows("00:00-24:00", t, "Mars/Olympus") is True
    assert hours.describe(night, "Europe/Berlin") == "mon-fri 19:00-08:00 in Europe/Berlin"
    assert hours.describe(None, "Europe/Berlin") == "always"


@pytest.mark.parametrize("name", ["Mars/Olympus", "Europe/Berlinn", "../etc/passwd",
                                  "/usr/share/zoneinfo/UTC", "x" * 65, "Europe/ Berlin"])
def test_bad_time_zones_are_refused_in_one_line(name: str) -> None:
    with pytest.raises(BadInput, match="unknown time zone") as e:
        hours.zone(name)
    assert "\n" not in str(e.value) and "IANA" in str(e.value)


def test_time_zones_are_stored_as_named() -> None:
    assert hours.zone(" Europe/Berlin ") == "Europe/Berlin"
    assert hours.zone("") == "" and hours.zone("UTC") == "UTC"
