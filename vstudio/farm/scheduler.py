"""Which task a worker gets: eligibility and order, as pure logic over a snapshot.

The catalog loads a ``Snapshot`` (``farm.model``) of the jobs that have queued work and,
for each waiting worker, asks the ``first_block`` the farm hands it for the block the
worker should take from, then claims that block's first queued task, all in one
transaction. Order:
priority (high first), then fair share (the owner with the fewest running tasks
first), then age (older job first), then the block's position in its job.
"""

from __future__ import annotations

from collections.abc import Iterable

from vstudio.farm import hours
from vstudio.farm.model import BlockView, JobView, Snapshot, WorkerView


def block_fits(worker: WorkerView, block: BlockView, snapshot: Snapshot) -> bool:
    if not worker.accepts(block.type) or not block.tags <= worker.tags:
        return False
    if block.max_per_worker is not None:
        return snapshot.worker_block_running.get((worker.id, block.id), 0) < block.max_per_worker
    return True


def takes_work(worker: WorkerView, snapshot: Snapshot) -> bool:
    """A free slot, enabled, not draining, and inside the node's schedule."""
    return worker.wants_work and hours.allows(worker.schedule, snapshot.now, worker.schedule_tz)


def job_open(job: JobView) -> bool:
    return job.max_running is None or job.running < job.max_running


def first_block(worker: WorkerView, snapshot: Snapshot,
                exhausted: Iterable[int] = ()) -> BlockView | None:
    """The best block for ``worker`` skipping blocks known to have no queued task left.

    In the order above, in one pass over the jobs (no sort): the claim calls this
    once per waiting worker, and a busy farm can have hundreds of jobs with work.
    """
    if not takes_work(worker, snapshot):
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
