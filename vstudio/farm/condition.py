"""What a job is doing and why: the one place that turns farm facts into a shown status.

The CLI (`jobs ls`, `jobs show --json`), the HTTP API and the web page all show the
``Condition`` computed here, so a job that cannot move says the same thing everywhere.

Statuses, each with the reason people read next to it:

- running: a task of it is being rendered (reason empty).
- pausing: paused, but tasks that were running when it was paused still finish.
- paused: paused and nothing runs.
- waiting: on other jobs (``--after``) or on frames of one of its own blocks.
- queued: work is ready; the reason names what no worker meets, or that every worker
  that could take it is busy.
- stalled: work is ready but every worker that could take it is kept off the job after
  failures (the blocklist), so it cannot move without someone acting.
- failed: tasks failed more often than their retries allow and nothing else can run.
- done, canceled: finished (reason empty).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from vstudio.farm.model import JOB_STATUSES, JobState, TaskStatus, job_status

STATUSES = JOB_STATUSES
# The coarse status (``model.job_status``, computable from task counts alone, in SQL)
# that each shown status refines: a filter on a shown status narrows by this first.
COARSE = {"queued": ("queued", "running"), "waiting": ("queued", "running"),
          "running": ("running",), "pausing": ("paused", "running"), "paused": ("paused",),
          "stalled": ("queued", "running"), "failed": ("failed",), "done": ("done",),
          "canceled": ("canceled",)}


@dataclass(frozen=True)
class Condition:
    status: str  # one of STATUSES
    reason: str = ""  # empty when simply running or finished


@dataclass(frozen=True)
class BlockNeeds:
    """What a block with queued tasks asks of a worker."""

    name: str
    type: str
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class NodeFacts:
    """A render node as far as "could it take this work" goes."""

    id: int
    name: str
    online: bool
    enabled: bool = True
    draining: bool = False
    job_types: frozenset[str] = frozenset()  # empty: any type
    tags: frozenset[str] = frozenset()
    allow_commands: bool = False
    busy: bool = False  # every slot taken

    def can_take(self, block: BlockNeeds) -> bool:
        if block.type == "command" and not self.allow_commands:
            return False
        if self.job_types and block.type not in self.job_types:
            return False
        return block.tags <= self.tags


class NodePool:
    """The farm's render nodes, asked the same question for many jobs: which usable nodes
    could take blocks of this kind. The answer is kept per kind, since a list of 2,000
    queued jobs asks it 2,000 times of 100 nodes, about a handful of different kinds."""

    def __init__(self, nodes: Iterable[NodeFacts]) -> None:
        self.nodes = list(nodes)
        self.usable = [n for n in self.nodes if n.online and n.enabled and not n.draining]
        self._able: dict[tuple[tuple[str, frozenset[str]], ...], list[NodeFacts]] = {}
        self._busy: dict[int, tuple[list[NodeFacts], bool]] = {}

    def able(self, blocks: Sequence[BlockNeeds]) -> list[NodeFacts]:
        key = tuple(sorted({(b.type, b.tags) for b in blocks}, key=repr))
        hit = self._able.get(key)
        if hit is None:
            hit = self._able[key] = [n for n in self.usable
                                     if any(n.can_take(b) for b in blocks)]
        return hit

    def all_busy(self, nodes: list[NodeFacts]) -> bool:
        # Most jobs ask about a list ``able`` returned (no node kept off): answered once.
        hit = self._busy.get(id(nodes))
        if hit is None or hit[0] is not nodes:
            hit = self._busy[id(nodes)] = (nodes, all(n.busy for n in nodes))
        return hit[1]


@dataclass(frozen=True)
class JobFacts:
    state: str  # model.JobState as stored
    counts: Mapping[str, int]  # task status (as stored) -> number of tasks
    waiting_on_jobs: Mapping[int, str] = field(default_factory=dict)  # after job -> status
    waiting_on_blocks: Sequence[str] = ()  # blocks whose frames blocked tasks wait for
    queued_blocks: Sequence[BlockNeeds] = ()  # blocks that have queued tasks
    blocklisted: frozenset[int] = field(default_factory=frozenset)  # node ids kept off


def job_condition(job: JobFacts, nodes: Iterable[NodeFacts] | NodePool) -> Condition:
    """The status people see and why, from the job's facts and the farm's render nodes."""
    coarse = job_status(job.state, job.counts)
    running = job.counts.get(TaskStatus.RUNNING, 0)
    if coarse in ("done", "canceled"):
        return Condition(coarse)
    if job.state == JobState.PAUSED:
        if running:
            return Condition("pausing", f"paused: {_tasks(running)} still running finish "
                                        "first, nothing new starts")
        return Condition("paused", "paused: resume it to go on")
    if coarse == "failed":
        n = job.counts.get(TaskStatus.FAILED, 0)
        return Condition("failed", f"{_tasks(n)} failed more often than retries allow: "
                                   "retry them to go on")
    if job.state == JobState.WAITING or job.waiting_on_jobs:
        return Condition("waiting", _after_reason(job.waiting_on_jobs))
    if running:
        return Condition("running")
    if job.counts.get(TaskStatus.QUEUED, 0) and job.queued_blocks:
        return _queued(job, nodes if isinstance(nodes, NodePool) else NodePool(nodes))
    if job.counts.get(TaskStatus.BLOCKED, 0):
        names = ", ".join(job.waiting_on_blocks) or "another block"
        return Condition("waiting", f"waiting for frames of block {names}")
    return Condition(coarse)


def _queued(job: JobFacts, pool: NodePool) -> Condition:
    able = pool.able(job.queued_blocks)
    if not able:
        return Condition("queued", _unmet(job.queued_blocks, pool.nodes, pool.usable))
    allowed = [n for n in able if n.id not in job.blocklisted] if job.blocklisted else able
    if not allowed:
        names = ", ".join(sorted(n.name for n in able))
        return Condition("stalled", f"every render node that can take it ({names}) is kept "
                                    "off this job after failures: clear its blocklist or "
                                    "retry on other nodes")
    if pool.all_busy(allowed):
        return Condition("queued", f"waiting for a free render node ({len(allowed)} can "
                                   "take it, all busy)")
    return Condition("queued", "waiting for a render node to ask for work")


def _unmet(blocks: Sequence[BlockNeeds], nodes: list[NodeFacts],
           usable: list[NodeFacts]) -> str:
    """Which requirement no usable render node meets, in the words a wrangler acts on."""
    if not nodes:
        return "no render node has registered with this manager"
    if not usable:
        off = sum(1 for n in nodes if not n.online)
        return (f"no render node is available ({off} offline, "
                f"{len(nodes) - off} disabled or draining)")
    b = blocks[0]
    if b.type == "command" and not any(n.allow_commands for n in usable):
        return "no online render node allows raw commands (vstudio worker --allow-commands)"
    typed = [n for n in usable if not n.job_types or b.type in n.job_types]
    if not typed:
        return f"no online render node can run {b.type} jobs"
    missing = sorted(b.tags - frozenset().union(*(n.tags for n in typed)))
    if missing:
        return f"no online render node has the tag {', '.join(missing)}"
    return f"no online render node has all the tags {', '.join(sorted(b.tags))}"


def _after_reason(after: Mapping[int, str]) -> str:
    if not after:
        return "waiting for the jobs it runs after"
    ids = ", ".join(str(j) for j in sorted(after))
    text = f"waiting for job{'s' if len(after) > 1 else ''} {ids} to finish"
    # An after-job that failed or was canceled never finishes by itself: say so.
    stuck = [f"job {j} {s}" for j, s in sorted(after.items()) if s in ("failed", "canceled")]
    if stuck:
        text += f" ({', '.join(stuck)}: retry it or resubmit without --after)"
    return text


def _tasks(n: int) -> str:
    return f"{n} task" if n == 1 else f"{n} tasks"


def actions_for(status: str, failed: int = 0, canceled: int = 0) -> list[str]:
    """The job actions that make sense in ``status`` (the page enables only these)."""
    out = []
    if status in ("queued", "running", "waiting", "stalled"):
        out.append("pause")
    if status in ("paused", "pausing"):
        out.append("resume")
    if status not in ("done", "canceled"):
        out.append("cancel")
    if failed or (canceled and status == "canceled"):
        out.append("retry")
    if status == "stalled":
        out.append("clear-blocklist")
    out += ["delete", "priority"]
    return out
