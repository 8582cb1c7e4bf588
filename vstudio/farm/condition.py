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

import time
from collections.abc import Iterable, Mapping, Sequence

from vstudio.farm import hours
from vstudio.farm.frames import format_frames
from vstudio.farm.model import JOB_STATUSES, JobState, TaskStatus, job_status
from vstudio.farm.ports import BlockNeeds, Condition, JobFacts, NodeFacts

STATUSES = JOB_STATUSES
# The coarse status (``model.job_status``, computable from task counts alone, in SQL)
# that each shown status refines: a filter on a shown status narrows by this first.
COARSE = {"queued": ("queued", "running"), "waiting": ("queued", "running"),
          "running": ("running",), "pausing": ("paused", "running"), "paused": ("paused",),
          "stalled": ("queued", "running"), "failed": ("failed",), "done": ("done",),
          "canceled": ("canceled",)}


class NodePool:
    """The farm's render nodes, asked the same question for many jobs: which usable nodes
    could take blocks of this kind. The answer is kept per kind, since a list of 2,000
    queued jobs asks it 2,000 times of 100 nodes, about a handful of different kinds."""

    def __init__(self, nodes: Iterable[NodeFacts]) -> None:
        self.nodes = list(nodes)
        ready = [n for n in self.nodes if n.online and n.enabled and not n.draining]
        now = time.time()
        self.in_use = [n for n in ready if n.in_use]
        ready = [n for n in ready if not n.in_use]
        self.usable = [n for n in ready if hours.allows(n.schedule, now, n.schedule_tz)]
        self.off_hours = [n for n in ready
                          if not hours.allows(n.schedule, now, n.schedule_tz)]
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


def may_be_stuck(state: str, counts: Mapping[str, int]) -> bool:
    """Whether a job may be unable to move (work left, nothing running), so its condition
    needs more facts than its task counts; a list of a thousand finished jobs costs
    nothing more than their counts."""
    if state not in (JobState.ACTIVE, JobState.WAITING):
        return False
    if state == JobState.WAITING:
        return True
    return (not counts.get(TaskStatus.RUNNING, 0)
            and job_status(state, counts) in ("queued", "running"))


class Shown:
    """``ports.ShownRules``: what the catalog's reads show, decided here."""

    coarse = COARSE
    may_be_stuck = staticmethod(may_be_stuck)
    frames_text = staticmethod(format_frames)

    @staticmethod
    def judge(facts: Mapping[int, JobFacts],
              nodes: Iterable[NodeFacts]) -> dict[int, Condition]:
        pool = NodePool(nodes)
        return {jid: job_condition(f, pool) for jid, f in facts.items()}


SHOWN = Shown()


def _queued(job: JobFacts, pool: NodePool) -> Condition:
    able = pool.able(job.queued_blocks)
    if not able:
        resting = [n for n in pool.off_hours if any(n.can_take(b) for b in job.queued_blocks)]
        if resting:
            names = ", ".join(f"{n.name} ({hours.describe(n.schedule, n.schedule_tz)})"
                              for n in sorted(resting, key=lambda n: n.name)[:5])
            return Condition("queued", "the render nodes that can take it are off schedule "
                                       f"now: {names}")
        owned = [n.name for n in pool.in_use if any(n.can_take(b) for b in job.queued_blocks)]
        if owned:
            return Condition("queued", "the render nodes that can take it are desktops in "
                                       f"use by their owners now: {', '.join(sorted(owned)[:5])}")
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
