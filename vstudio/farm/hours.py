"""When a render node may render: a desktop node's schedule, as pure logic.

A schedule is one or more rules separated by commas, each an optional day or day range
and a time range, read on the node's own clock: its time zone (an IANA name such as
``Europe/Berlin``, for a volunteer's machine in another country) or, without one, the
manager's local time::

    mon-fri 19:00-08:00, sat-sun 00:00-24:00
    22:00-06:00            (every day)

A range that ends before it starts runs past midnight: ``fri 19:00-08:00`` includes
Saturday 07:59. Outside its schedule a node gets no new task; a task it is running when
the hours end is left to finish (killing it would waste the render). An empty schedule
means "always".
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from vstudio.errors import BadInput

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_LEN = 200
_RULE = re.compile(r"^(?:(?P<d1>[a-z]{3})(?:-(?P<d2>[a-z]{3}))?\s+)?"
                   r"(?P<h1>\d{1,2}):(?P<m1>\d{2})-(?P<h2>\d{1,2}):(?P<m2>\d{2})$")
ZONE_LEN = 64
ZONE_HELP = ("use an IANA name such as Europe/Berlin or America/Sao_Paulo "
             "(empty: the manager's clock)")
HELP = "write it like 'mon-fri 19:00-08:00, sat-sun 00:00-24:00' (empty: always)"


@dataclass(frozen=True)
class Rule:
    days: frozenset[int]  # 0 = Monday
    start: int  # minutes after midnight
    end: int  # minutes after midnight, <= start: past midnight (24:00 = 1440)

    def allows(self, weekday: int, minute: int) -> bool:
        if self.start < self.end:
            return weekday in self.days and self.start <= minute < self.end
        # past midnight: the evening part on the day itself, the morning on the next
        return ((weekday in self.days and minute >= self.start)
                or ((weekday - 1) % 7 in self.days and minute < self.end))


def _day(name: str, text: str) -> int:
    if name not in DAYS:
        raise BadInput(f"schedule {text!r}: unknown day {name!r} (use {', '.join(DAYS)})")
    return DAYS.index(name)


def _minute(h: str, m: str, text: str) -> int:
    hours, minutes = int(h), int(m)
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise BadInput(f"schedule {text!r}: no time {h}:{m}")
    return hours * 60 + minutes


@functools.lru_cache(maxsize=256)  # asked per worker at every claim
def parse(text: str) -> tuple[Rule, ...]:
    """The rules of a schedule; ``BadInput`` with the reason for anything else."""
    if len(text) > MAX_LEN:
        raise BadInput(f"schedule longer than {MAX_LEN} characters")
    rules = []
    for part in text.lower().split(","):
        part = " ".join(part.split())
        if not part:
            continue
        m = _RULE.match(part)
        if m is None:
            raise BadInput(f"schedule {text!r}: cannot read {part!r}: {HELP}")
        d1 = _day(m["d1"], text) if m["d1"] else 0
        d2 = _day(m["d2"], text) if m["d2"] else (d1 if m["d1"] else 6)
        days = frozenset((d1 + i) % 7 for i in range((d2 - d1) % 7 + 1))
        start, end = _minute(m["h1"], m["m1"], text), _minute(m["h2"], m["m2"], text)
        if start == end or start == 1440:
            raise BadInput(f"schedule {text!r}: {part!r} is an empty range")
        rules.append(Rule(days, start, end))
    return tuple(rules)


def normal(text: str) -> str:
    """The schedule as stored and shown: checked, lower case, single spaces."""
    parse(text)
    return ", ".join(" ".join(p.split()) for p in text.lower().split(",") if p.strip())


@functools.lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadInput(f"unknown time zone {name!r}: {ZONE_HELP}") from None


def zone(name: str) -> str:
    """A node's time zone as stored: a checked IANA name, or "" for the manager's clock."""
    name = name.strip()
    if not name:
        return ""
    if len(name) > ZONE_LEN or name.startswith("/") or ".." in name:
        raise BadInput(f"unknown time zone {name[:ZONE_LEN]!r}: {ZONE_HELP}")
    _zone(name)
    return name


@functools.cache
def zone_names() -> tuple[str, ...]:
    """Every IANA time zone this machine knows, sorted (offered on the workers page)."""
    return tuple(sorted(available_timezones()))


def describe(schedule: str | None, tz: str | None = None) -> str:
    """A schedule as people read it: its hours and, if it has one, the node's zone."""
    if not schedule:
        return "always"
    return f"{schedule} in {tz}" if tz else schedule


def _clock(now: float, tz: str | None) -> tuple[int, int]:
    """(weekday, minute of the day) at ``now`` in zone ``tz`` (None: the manager's)."""
    if tz:
        try:
            t = datetime.fromtimestamp(now, _zone(tz))
            return t.weekday(), t.hour * 60 + t.minute
        except BadInput:
            pass  # a zone this machine does not know: the manager's clock
    lt = time.localtime(now)
    return lt.tm_wday, lt.tm_hour * 60 + lt.tm_min


def clock_text(now: float, tz: str | None) -> str:
    """The day and time at ``now`` on a node's clock ("mon 19:30"); "" without a zone."""
    if not tz:
        return ""
    day, minute = _clock(now, tz)
    return f"{DAYS[day]} {minute // 60:02d}:{minute % 60:02d}"


def allows(schedule: str | None, now: float | None = None, tz: str | None = None) -> bool:
    """Whether a node with ``schedule`` may start a task at ``now``, read in its time
    zone ``tz`` (None: the manager's local time).

    A stored schedule that no longer parses allows everything: a node is never stuck
    off by a value this version cannot read."""
    if not schedule:
        return True
    try:
        rules = parse(schedule)
    except BadInput:
        return True
    if not rules:
        return True
    day, minute = _clock(time.time() if now is None else now, tz)
    return any(r.allows(day, minute) for r in rules)
