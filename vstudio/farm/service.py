"""The farm manager's calls: render nodes, people and pages, each with its rights.

Transport-free: the HTTP routes call these methods with the authenticated user. Who may
do what is decided here; the writes and reads each call makes go through the machinery
of ``farm/engine.py`` (batched writes, claims, leases, events). Methods that change
state are ``async`` and return once the change is committed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from vstudio.catalog import accounts
from vstudio.catalog.accounts import Role, User
from vstudio.errors import BadInput, PermissionDenied
from vstudio.farm import hours
from vstudio.farm.engine import FarmEngine
from vstudio.farm.model import Effects, Report
from vstudio.farm.ports import FarmDatabase, FarmReads, FarmWrites, NewJob, RunningTask
from vstudio.farm.refusals import Refusals
from vstudio.farm.spec import (
    JobSpec,
    block_tags,
    check_inputs,
    compile_job,
    job_plan,
    parse_ref,
)
from vstudio.farm.visibility import Projects, current_tasks, hidden, sees_job
from vstudio.studio import Studio

RUNNERS = (Role.ADMIN, Role.ARTIST, Role.WORKER)  # who may run a render node


def _of_project(spec: JobSpec, refs: list[str]) -> JobSpec:
    """A job reading a project's files by reference (``PROJECT@REV:path``) is a job of
    that project: only its readers see the job and its outputs, and the farm stops it
    when its submitter may no longer read the project (``Farm._refused``). A job has one
    project, so its references name that one only."""
    project = spec.project or refs[0]
    others = [r for r in refs if r != project]
    if others:
        raise BadInput(f"a job reads the repository files of its own project only "
                       f"({project}), not of {', '.join(others)}: submit a job per project")
    return spec if spec.project else spec.model_copy(update={"project": project})


class Farm(FarmEngine):
    """The farm as the API and the pages use it (see the module docstring)."""

    def __init__(self, studio: Studio, *, lease_seconds: float | None = None,
                 db: FarmDatabase | None = None) -> None:
        super().__init__(studio, lease_seconds=lease_seconds, db=db)
        self._worker_users: dict[int, str] = {}  # worker id -> user who runs it
        self._user_workers: dict[str, set[int]] = {}
        self.refusals = Refusals()  # owners' read rights, kept briefly for ``_refused``

    # -- rights ---------------------------------------------------------------------
    async def _check_worker(self, user: User, worker_id: int) -> None:
        if user.role not in RUNNERS:
            raise PermissionDenied("only admin, artist and worker tokens run render nodes")
        owner = self._worker_users.get(worker_id)
        if owner is None:
            owner = await self._read(lambda c: c.worker_user(worker_id))
            self._remember(worker_id, owner)
        if owner != user.name and not user.is_admin:
            raise PermissionDenied(f"worker {worker_id} belongs to another user")

    def _remember(self, worker_id: int, user: str) -> None:
        self._worker_users[worker_id] = user
        self._user_workers.setdefault(user, set()).add(worker_id)

    async def _check_job(self, user: User, job_id: int) -> None:
        """The job's owner (an artist still) or an admin may change it; anyone else who
        may not even see it is told only that (``visibility.hidden``)."""
        owner = await self._read(lambda c: c.job_owner(job_id))
        if user.is_admin or (user.role is Role.ARTIST and owner == user.name):
            return
        await self.check_visible(user, job_id)
        raise PermissionDenied(f"job {job_id} belongs to {owner}; only its owner or an "
                               "admin may change it")

    # -- render nodes ---------------------------------------------------------------
    async def register(self, user: User, name: str, slots: int, tags: list[str],
                       job_types: list[str], allow_commands: bool, idle_only: bool,
                       system: dict[str, Any] | None = None) -> int:
        if user.role not in RUNNERS:
            raise PermissionDenied("only admin, artist and worker tokens run render nodes")
        wid = await self._write(lambda tx: tx.register_worker(
            name, user.name, slots, tags, job_types, allow_commands, idle_only, time.time(),
            system))
        self._remember(wid, user.name)
        self.notifier.wake()
        self.events.publish("worker", {"id": wid, "name": name, "state": "idle"})
        return wid

    async def next_task(self, user: User, worker_id: int, timeout: float) -> dict[str, Any] | None:
        """The worker's next task, waiting up to ``timeout`` seconds for one to be ready."""
        await self._check_worker(user, worker_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            generation = self.notifier.generation
            task = await self.writer.group_async("claim", worker_id)
            if task is not None and not await self._refused(task):
                return self._granted(user, task)
            if task is not None:
                continue  # its job is canceled now: the next task, at once
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            await self.notifier.wait(generation, remaining)

    async def _refused(self, task: dict[str, Any]) -> bool:
        """Cancel the task's job, and say so, when its owner may no longer read the project
        it names: a right revoked while the job runs.

        Rights are checked when a job is submitted, but a job outlives them: its queued
        tasks would hand a render node (and through it the outputs' readers) the inputs
        of a project their submitter may no longer read. So each hand-out checks again,
        here, after the claim and before any grant is minted: the claimed task and the
        job's other unfinished tasks are canceled with the reason as their error. A task
        already handed out runs to its end (its node holds the inputs already); its
        outputs are recorded in no render cache, since the client writing that cache
        answers to the same rights. The owner's "may read" is kept for up to
        ``refusals.TTL`` (1 s; dropped at once when this process changes rights): a read
        per owner and project a second, not per task."""
        project = task.get("project")
        if not project:
            return False
        job_id = int(task["job_id"])
        why = await self._refusal(job_id, str(project))
        if why is None:
            return False
        why = f"refused by the farm: {why} (the job was canceled)"
        await self._write(lambda tx: tx.cancel(job_id, time.time(), why))  # publishes it
        return True

    async def _refusal(self, job_id: int, project: str) -> str | None:
        """Why the job's owner may not read ``project`` now (None: they may)."""
        generation = accounts.rights_generation()  # before the read: a change during it
        owner = self.refusals.owner(job_id)       # is then seen by the next hand-out
        if owner is not None and self.refusals.allowed(owner, project, generation):
            return None
        asked = self.refusals.clock()

        def read(r: FarmReads) -> tuple[str, str | None]:
            who = owner if owner is not None else r.job_owner(job_id)
            return who, r.owner_refused(who, project)

        who, why = await self._read(read)
        self.refusals.remember_owner(job_id, who)
        if why is None:
            self.refusals.remember(who, project, generation, asked)
        return why

    def _granted(self, user: User, task: dict[str, Any]) -> dict[str, Any]:
        """The task with a read grant on each input: the node reads these and no more."""
        from vstudio.grants import grants_of

        signer = grants_of(self.studio)

        def sign(items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
            return [{**i, "grant": signer.mint(user.name, i["oid"])} if i.get("oid") else i
                    for i in items or []]

        return {**task, "inputs": sign(task.get("inputs")), "upstream": sign(task.get("upstream"))}

    async def heartbeat(self, user: User, worker_id: int, state: str,
                        usage: tuple[float, float] | None = None) -> None:
        """Renew the node's leases; ``usage``: its machine's (CPU %, memory %) now."""
        await self._check_worker(user, worker_id)
        await self._write(lambda tx: tx.heartbeat(worker_id, state, time.time(),
                                                  self.lease_seconds, usage))
        if usage is not None:  # the workers page shows it live
            self.events.publish("worker", {"id": worker_id, "cpu": usage[0],
                                           "mem": usage[1]})

    async def _report(self, user: User, report: Report) -> Any:
        if user.role not in RUNNERS:
            raise PermissionDenied("only render nodes report on tasks")
        return await self.writer.group_async("report", report)

    def _mine(self, user: User) -> set[int] | None:
        """The user's workers, for checking who may report on a task (None: anyone)."""
        return None if user.is_admin else self._user_workers.setdefault(user.name, set())

    async def progress(self, user: User, task_id: int, attempt: int, value: float,
                       frame: int | None, lines: list[str]) -> bool:
        fx = await self._report(user, Report("progress", task_id, attempt, user.name,
                                             self._mine(user), value, frame, lines))
        return bool(fx.cancel)

    async def done(self, user: User, task_id: int, attempt: int,
                   outputs: list[dict[str, Any]]) -> None:
        if outputs and not user.is_admin:
            # an output becomes readable to the job's readers: it must be the node's own
            from vstudio.grants import grants_of

            signer = grants_of(self.studio)
            for o in outputs:
                signer.require(user, o["oid"], o.get("grant"))
                if o.get("thumbnail_oid"):
                    signer.require(user, o["thumbnail_oid"], o.get("thumbnail_grant"))
        await self._report(user, Report("done", task_id, attempt, user.name, self._mine(user),
                                        outputs=outputs))

    async def fail(self, user: User, task_id: int, attempt: int, error: str) -> None:
        await self._report(user, Report("fail", task_id, attempt, user.name, self._mine(user),
                                        error=error))

    async def release(self, user: User, task_id: int, attempt: int, reason: str) -> None:
        await self._report(user, Report("release", task_id, attempt, user.name,
                                        self._mine(user), error=reason))

    # -- people -----------------------------------------------------------------------
    async def submit(self, user: User, spec: JobSpec) -> int:
        if user.role not in (Role.ADMIN, Role.ARTIST):
            raise PermissionDenied("only artists and admins submit jobs")
        plans = compile_job(spec)
        inputs = check_inputs(spec.inputs)
        refs = sorted({i["ref"].partition("@")[0] for i in inputs if "ref" in i})
        if refs:
            spec = _of_project(spec, refs)
            # a reference reads the repository: only from projects the submitter may read
            def check(r: FarmReads) -> None:
                for name in refs:
                    r.project_trusted(name, user)

            await self._read(check)
            inputs = await asyncio.to_thread(self._resolve_refs, inputs)
        now = time.time()

        # inserted with the batch's other submits; the project's rights are checked in
        # that transaction (a read trip first queued submits behind reads under load)
        fx = await self._submit(NewJob(user, job_plan(spec), plans, inputs, now))
        return next(iter(fx.jobs))

    def _resolve_refs(self, inputs: list[dict[str, str]]) -> list[dict[str, str]]:
        """Turn ``PROJECT@REV:path`` references into store ids through the repository."""
        if not any("ref" in i for i in inputs):
            return inputs
        from vstudio.repo import open_reader

        reader = open_reader(self.studio)
        out = []
        for item in inputs:
            ref = item.get("ref")
            if ref is None:
                out.append(item)
                continue
            project, want, path = parse_ref(ref)
            rev = reader.head(project) if want is None else want
            entry = reader.tree(project, rev).get(path)
            if entry is None:
                raise BadInput(f"{path} is not in {project} r{rev}")
            out.append({"path": item["path"], "oid": entry.oid})
        return out

    async def job_action(self, user: User, job_id: int, action: str,
                         priority: int | None = None) -> None:
        await self._check_job(user, job_id)
        now = time.time()
        fns: dict[str, Callable[[FarmWrites], Effects]] = {
            "pause": lambda tx: tx.pause(job_id),
            "resume": lambda tx: tx.resume(job_id),
            "cancel": lambda tx: tx.cancel(job_id, now),
            "retry": lambda tx: tx.retry(job_id),
            "delete": lambda tx: tx.delete(job_id),
            "priority": lambda tx: tx.set_priority(job_id, int(priority or 0)),
            "clear-blocklist": lambda tx: tx.clear_blocklist(job_id, None),
        }
        await self._write(fns[action])

    async def retry_task(self, user: User, task_id: int) -> None:
        job_id = await self._read(lambda r: r.task_job(task_id))
        await self._check_job(user, job_id)
        await self._write(lambda tx: tx.retry_task(task_id, time.time()))

    async def set_tags(self, user: User, job_id: int, tags: list[str],
                       block: str | None = None) -> None:
        """New tags for one block of a job, or all of them (the job's owner or an admin)."""
        await self._check_job(user, job_id)
        blocks = await self._read(lambda r: r.blocks(job_id))
        chosen = [b for b in blocks if block is None or b.name == block]
        if not chosen:
            raise BadInput(f"job {job_id} has no block {block!r}: use one of "
                           + ", ".join(b.name for b in blocks))
        new = {b.id: block_tags(tags, dict(b.params)) for b in chosen}
        await self._write(lambda tx: tx.set_tags(job_id, new))

    async def unblock(self, user: User, job_id: int, worker_id: int) -> None:
        """Let one worker take a job's tasks again (the job's owner or an admin)."""
        await self._check_job(user, job_id)
        await self._write(lambda tx: tx.clear_blocklist(job_id, worker_id))

    async def worker_action(self, user: User, worker_id: int, action: str) -> None:
        owner = await self._read(lambda c: c.worker_user(worker_id))
        if not user.is_admin and (owner != user.name or user.role is not Role.ARTIST):
            raise PermissionDenied("only an admin or the worker's owner may change it")
        values = {"drain": {"draining": True}, "undrain": {"draining": False},
                  "disable": {"enabled": False}, "enable": {"enabled": True, "draining": False}}
        await self._write(lambda tx: tx.set_worker(worker_id, values[action]))
        self.events.publish("worker", {"id": worker_id, "action": action})

    async def set_worker_tags(self, user: User, worker_id: int,
                              tags: list[str] | None) -> None:
        """An admin's tags for a node, kept over its restarts; None: the node's own again
        (from its next registration)."""
        if not user.is_admin:
            raise PermissionDenied("only an admin may change a render node's tags")
        await self._write(lambda tx: tx.set_worker_tags(worker_id, tags))
        self.events.publish("worker", {"id": worker_id, "action": "tags"})

    async def set_schedule(self, user: User, worker_id: int, schedule: str,
                           tz: str | None = None) -> str | None:
        """Hours when a node may render (``farm.hours``; empty: always), read in time zone
        ``tz`` (an IANA name; "": the manager's clock; None: the zone it had); the
        schedule as stored."""
        if not user.is_admin:
            raise PermissionDenied("only an admin may change a render node's schedule")
        stored = hours.normal(schedule) or None
        zone = None if tz is None else hours.zone(tz)
        await self._write(lambda tx: tx.set_schedule(worker_id, stored, zone))
        self.events.publish("worker", {"id": worker_id, "action": "schedule"})
        return stored

    # -- reads ------------------------------------------------------------------------
    @staticmethod
    def _projects(r: FarmReads, user: User, projects: set[str]) -> Projects:
        """What ``user`` may read among ``projects``, and which of them are gone."""
        readable, gone = set(), set()
        for p in projects:
            ok = r.may_read(p, user)
            if ok is None:  # removed: its jobs are their owners' alone (``visibility``)
                gone.add(p)
            elif ok:
                readable.add(p)
        return Projects(frozenset(readable), frozenset(gone))

    async def readable(self, user: User, projects: set[str]) -> Projects:
        """What ``user`` may read among ``projects``, for ``visibility.sees_job``."""
        if user.is_admin or not projects:
            return Projects(frozenset(projects))  # an admin sees every job anyway
        return await self._read(lambda c: self._projects(c, user, projects))

    async def visible_jobs(self, user: User, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The jobs of ``jobs`` (dicts with ``owner`` and ``project``) that ``user`` may see
        (``visibility.sees_job``)."""
        if user.is_admin:
            return jobs
        ok = await self.readable(user, {j["project"] for j in jobs if j.get("project")})
        return [j for j in jobs if sees_job(user, j["owner"], j.get("project"), ok)]

    async def check_visible(self, user: User, job_id: int) -> None:
        """``PermissionDenied`` unless ``user`` may see the job (``NotFound``: no such job)."""
        def check(r: FarmReads) -> bool:
            project = r.job_project(job_id)
            if user.is_admin:
                return True
            projects = self._projects(r, user, {project} if project else set())
            return sees_job(user, r.job_owner(job_id), project, projects)

        if not await self._read(check):
            raise hidden(job_id)

    async def workers(self, user: User) -> list[dict[str, Any]]:
        """The render nodes as ``user`` may see them (``shown_tasks``)."""
        rows, running = await self._read(lambda r: (r.workers(), r.running_tasks()))
        return await self.shown_tasks(user, rows, running)

    async def shown_tasks(self, user: User, workers: list[dict[str, Any]],
                          running: dict[int, RunningTask]) -> list[dict[str, Any]]:
        """``workers`` (rows of ``FarmReads.workers``) with what ``user`` may see of their
        running tasks (``running``: ``FarmReads.running_tasks``): ``tasks``, the ids of
        those of jobs the user sees, ``current``, the same with their job's id, name,
        frames, progress, owner and project, and ``other_tasks``, how many others the node
        runs (``visibility.current_tasks``). The one place that says what a node is doing:
        ``GET /api/workers`` (so ``vstudio workers``) and the workers page answer from it."""
        projects = await self.readable(user, {t[6] for t in running.values() if t[6]})

        def described(i: int) -> dict[str, Any]:
            job_id, job, first, last, progress, owner, project = running[i]
            return {"id": i, "job_id": job_id, "job": job, "frames": f"{first}-{last}",
                    "progress": progress, "owner": owner, "project": project}

        out = []
        for w in workers:
            ids = [i for i in w["tasks"] if i in running]  # one that just ended is not
            shown, others = current_tasks(user, ids, lambda i: (running[i][5], running[i][6]),
                                          projects)
            current = [described(i) for i in shown]
            out.append({**w, "tasks": shown, "other_tasks": others, "current": current})
        return out
