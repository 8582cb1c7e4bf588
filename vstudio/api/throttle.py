"""Backoff after failed logins, per user name and per client address.

A few failures are free (typos); after that each further failure doubles the wait before
the next attempt is even checked, up to a cap. A user name and an address are tracked
apart: guessing one user's password from many addresses meets the per-user wait, and
trying many user names from one address meets the per-address wait. While a wait runs,
no password is checked at all (a correct one neither), so guessing costs time, not only
the server's CPU. State is per server process: several replicas each keep their own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from vstudio.errors import VStudioError


class TooManyAttempts(VStudioError):
    """Too many failed logins: wait, then try again."""

    http_status = 429

    def __init__(self, wait: float) -> None:
        self.retry_after = max(1, math.ceil(wait))
        super().__init__(f"too many failed logins: try again in {self.retry_after} s")


@dataclass
class _Record:
    failures: int = 0
    blocked_until: float = 0.0
    last: float = 0.0


@dataclass(frozen=True)
class Policy:
    free: int  # failures allowed before any wait
    first_wait: float = 1.0  # seconds after the first failure past ``free``; doubles after
    max_wait: float = 900.0
    forget_after: float = 3600.0  # a quiet key starts over


USER_POLICY = Policy(free=5)
ADDRESS_POLICY = Policy(free=20)


class LoginThrottle:
    def __init__(self, clock: Callable[[], float] = time.monotonic, limit: int = 100_000) -> None:
        self._clock = clock
        self._limit = limit
        self._records: dict[tuple[str, str], _Record] = {}

    def check(self, user: str | None, address: str) -> None:
        """``TooManyAttempts`` while the user or the address must wait."""
        now = self._clock()
        wait = max(self._wait(("address", address), now),
                   self._wait(("user", user.lower()), now) if user else 0.0)
        if wait > 0:
            raise TooManyAttempts(wait)

    def failed(self, user: str | None, address: str) -> None:
        now = self._clock()
        self._fail(("address", address), ADDRESS_POLICY, now)
        if user:
            self._fail(("user", user.lower()), USER_POLICY, now)

    def succeeded(self, user: str) -> None:
        """A correct password ends the user's backoff (the address keeps its count: one
        valid account must not reset the wait for guessing others)."""
        self._records.pop(("user", user.lower()), None)

    def _wait(self, key: tuple[str, str], now: float) -> float:
        rec = self._records.get(key)
        return max(0.0, rec.blocked_until - now) if rec else 0.0

    def _fail(self, key: tuple[str, str], policy: Policy, now: float) -> None:
        rec = self._records.get(key)
        if rec is None or now - rec.last > policy.forget_after:
            if len(self._records) >= self._limit:
                self._prune(now)
            rec = self._records[key] = _Record()
        rec.failures += 1
        rec.last = now
        over = rec.failures - policy.free
        if over > 0:
            wait = min(policy.max_wait, policy.first_wait * 2 ** min(over - 1, 30))
            rec.blocked_until = now + wait

    def _prune(self, now: float) -> None:
        # drop the keys with no wait running; if an attacker keeps them all waiting, the
        # oldest half (their waits are the shortest left)
        quiet = [k for k, r in self._records.items() if r.blocked_until <= now]
        if len(quiet) < self._limit // 2:
            quiet = sorted(self._records, key=lambda k: self._records[k].last)[:self._limit // 2]
        for k in quiet:
            del self._records[k]
