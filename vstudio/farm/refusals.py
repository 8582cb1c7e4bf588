"""The farm's rights check before each task handed out, remembered for a moment.

``Farm._refused`` asks, before each task of a project's job goes to a render node,
whether the job's owner may still read the project. Asked of the database every time,
that was one read transaction of six statements per task on the claim path (measured:
24 statements per task handed out and reported instead of 18, +10-12 % CPU per task on
SQLite and PostgreSQL). The answer is the same for every task of an owner's jobs in a
project, so a "may read" is kept per (owner, project) for at most ``TTL`` seconds:

- a right revoked in this process (the server's own routes, or code calling
  ``catalog.accounts`` in it) counts at once: the answers kept are dropped when
  ``accounts.rights_generation`` moves;
- a right revoked by another process (another manager replica, a CLI writing the
  database) stops the job within ``TTL`` seconds;
- a refusal is never kept (it cancels the job; a right granted again must count at once).

A job's owner never changes, so it is kept per job id for as long as there is room.
"""

from __future__ import annotations

import time
from collections.abc import Callable

TTL = 1.0  # seconds an owner's "may read" is trusted without asking again
ROOM = 10_000  # entries kept per table before it is emptied (a bound, not a goal)


class Refusals:
    """Per (owner, project): the last "may read" answer, when, and at which generation."""

    def __init__(self, ttl: float = TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.clock = ttl, clock
        self.owners: dict[int, str] = {}  # job id -> its owner
        self._allowed: dict[tuple[str, str], tuple[float, int]] = {}

    def owner(self, job_id: int) -> str | None:
        return self.owners.get(job_id)

    def remember_owner(self, job_id: int, owner: str) -> None:
        if len(self.owners) >= ROOM:
            self.owners.clear()
        self.owners[job_id] = owner

    def allowed(self, owner: str, project: str, generation: int) -> bool:
        """Whether ``owner`` was found to read ``project`` less than ``ttl`` ago, with no
        rights change in this process since."""
        seen = self._allowed.get((owner, project))
        return (seen is not None and seen[1] == generation
                and self.clock() - seen[0] < self.ttl)

    def remember(self, owner: str, project: str, generation: int, asked: float) -> None:
        """``owner`` may read ``project``, as read from the database at ``asked``
        (``clock()`` taken before the read, so the bound holds from the read's start)."""
        if len(self._allowed) >= ROOM:
            self._allowed.clear()
        self._allowed[(owner, project)] = (asked, generation)
