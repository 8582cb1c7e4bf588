"""Which task a worker gets: eligibility and order, as pure logic over a snapshot.

The catalog loads a ``Snapshot`` of the jobs that have queued work, asks ``rank`` for
the blocks a worker may take from in order of preference, and then claims the first
queued task of the first block that still has one, all in one transaction. Order:
priority (high first), then fair share (the owner with the fewest running tasks
first), then age (older job first), then the block's position in its job.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


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

    def claimed(self, worker_id: int, block: BlockView) -> None:
        """Record a claim so later decisions in the same batch see it."""
        for job in self.jobs:
            if job.id == block.job_id:
                job.running += 1
                self.owner_running[job.owner] = self.owner_running.get(job.owner, 0) + 1
                break
        key = (worker_id, block.id)
        self.worker_block_running[key] = self.worker_block_running.get(key, 0) + 1


def block_fits(worker: WorkerView, block: BlockView, snapshot: Snapshot) -> bool:
    if not worker.accepts(block.type) or not block.tags <= worker.tags:
        return False
    if block.max_per_worker is not None:
        return snapshot.worker_block_running.get((worker.id, block.id), 0) < block.max_per_worker
    return True


def job_open(job: JobView) -> bool:
    return job.max_running is None or job.running < job.max_running


def rank(worker: WorkerView, snapshot: Snapshot) -> list[BlockView]:
    """Blocks ``worker`` may take a task from, best first (empty if it wants no work)."""
    if not worker.wants_work:
        return []
    banned = snapshot.blocklist.get(worker.id, set())
    jobs = [j for j in snapshot.jobs if j.id not in banned and job_open(j)]
    jobs.sort(key=lambda j: (-j.priority, snapshot.owner_running.get(j.owner, 0),
                             j.created, j.id))
    out: list[BlockView] = []
    for job in jobs:
        out.extend(b for b in sorted(job.blocks, key=lambda b: b.index)
                   if block_fits(worker, b, snapshot))
    return out


def first_block(worker: WorkerView, snapshot: Snapshot,
                exhausted: Iterable[int] = ()) -> BlockView | None:
    """The best block for ``worker`` skipping blocks known to have no queued task left.

    Same order as ``rank`` but one pass over the jobs (no sort): the claim calls this
    once per waiting worker, and a busy farm can have hundreds of jobs with work.
    """
    if not worker.wants_work:
        return None
    gone = exhausted if isinstance(exhausted, set | frozenset) else set(exhausted)
    banned = snapshot.blocklist.get(worker.id, ())
    best: BlockView | None = None
    best_key: tuple[int, int, float, int] | None = None
    for job in snapshot.jobs:
        if job.id in banned or not job_open(job):
            continue
        key = (-job.priority, snapshot.owner_running.get(job.owner, 0), job.created, job.id)
        if best_key is not None and key >= best_key:
            continue
        for b in sorted(job.blocks, key=lambda b: b.index):
            if b.id not in gone and block_fits(worker, b, snapshot):
                best, best_key = b, key
                break
    return best
