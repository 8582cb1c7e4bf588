"""The render farm over HTTP: jobs for people, work for render nodes, an event stream.

Thin handlers: validation by the pydantic models below, rights and rules in
``vstudio.farm.service.Farm``. The hot path (next, progress, done, fail) is ``async`` and
goes straight to the farm's batching writer without a thread hop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import ASGIApp

from vstudio.api import deps
from vstudio.api import farm_hot as hot
from vstudio.api.farm_reads import FarmReads
from vstudio.catalog.accounts import User
from vstudio.errors import NotFound, PermissionDenied
from vstudio.farm import reads
from vstudio.farm.model import JOB_STATUSES
from vstudio.farm.service import Farm
from vstudio.farm.spec import JobSpec
from vstudio.farm.wire import (
    MAX_ID,
    DoneIn,
    FailIn,
    HeartbeatIn,
    HeartbeatOut,
    JobCreated,
    JobDetail,
    JobSummary,
    NextIn,
    NextOut,
    Ok,
    OutputOut,
    PriorityIn,
    ProgressIn,
    ProgressOut,
    ReleaseIn,
    ScheduleIn,
    TagsIn,
    TaskLog,
    WorkerIn,
    WorkerOut,
    WorkerRegistered,
    WorkerTagsIn,
)
from vstudio.grants import grants_of
from vstudio.text import Text

router = APIRouter(prefix="/api", tags=["farm"])

Id = Annotated[int, Path(ge=1, le=MAX_ID)]


def farm_of(request: Request) -> Farm:
    return request.app.state.farm


CurrentUser = deps.CurrentUser
Person = deps.Person


# -- render nodes ------------------------------------------------------------------------
@router.post("/workers", response_model=WorkerRegistered)
async def register_worker(body: WorkerIn, user: CurrentUser, request: Request) -> Any:
    """Register a render node (again, by name, after a restart)."""
    farm = farm_of(request)
    wid = await farm.register(user, body.name, body.slots, body.tags, list(body.job_types),
                              body.allow_commands, body.idle_only,
                              body.system.model_dump() if body.system else None)
    return {"id": wid, "lease_seconds": farm.lease_seconds}


# The five hot calls: ``FastPath`` (routes_farm_fast) answers them before these routes
# are reached; both answer through ``farm_hot``. These document them and stay the contract.
def _answer(status: int, payload: Any) -> Response:
    return Response(status_code=status) if payload is None else JSONResponse(payload, status)


@router.post("/workers/{worker_id}/next", response_model=NextOut,
             responses={204: {"description": "no task became ready within the timeout"}})
async def next_task(worker_id: Id, body: NextIn, user: CurrentUser, request: Request) -> Any:
    """Long-poll for the worker's next task (up to ``timeout`` seconds)."""
    return _answer(*await hot.next_task(farm_of(request), user, worker_id, body))


@router.post("/workers/{worker_id}/heartbeat", response_model=HeartbeatOut)
async def heartbeat(worker_id: Id, body: HeartbeatIn, user: CurrentUser,
                    request: Request) -> Any:
    """Say the worker is alive; renews the leases of all its running tasks."""
    return _answer(*await hot.heartbeat(farm_of(request), user, worker_id, body))


@router.post("/tasks/{task_id}/progress", response_model=ProgressOut,
             responses={409: {"description": "a stale attempt: the task is no longer yours"}})
async def progress(task_id: Id, body: ProgressIn, user: CurrentUser, request: Request) -> Any:
    """Progress and log lines; renews the lease. ``cancel: true`` asks the worker to stop."""
    return _answer(*await hot.progress(farm_of(request), user, task_id, body))


@router.post("/tasks/{task_id}/done", response_model=Ok, responses={409: {}})
async def task_done(task_id: Id, body: DoneIn, user: CurrentUser, request: Request) -> Any:
    """The task finished; its outputs (already in the store) are recorded."""
    return _answer(*await hot.done(farm_of(request), user, task_id, body))


@router.post("/tasks/{task_id}/fail", response_model=Ok, responses={409: {}})
async def task_fail(task_id: Id, body: FailIn, user: CurrentUser, request: Request) -> Any:
    """The task failed; it is retried (elsewhere) until its block's retries are used up."""
    return _answer(*await hot.fail(farm_of(request), user, task_id, body))


@router.post("/tasks/{task_id}/release", response_model=Ok, responses={409: {}})
async def task_release(task_id: Id, body: ReleaseIn, user: CurrentUser,
                       request: Request) -> Any:
    """Give the task back unfinished (a worker shutting down); no failure is counted."""
    await farm_of(request).release(user, task_id, body.attempt, body.reason)
    return JSONResponse({"ok": True})


# -- people ------------------------------------------------------------------------------
@router.post("/jobs", response_model=JobCreated, status_code=201)
async def submit(spec: JobSpec, user: Person, request: Request) -> Any:
    """Submit a job: blocks of typed work cut into tasks. An input given by store id needs
    the submitter's read grant for it (from a tree, a job's outputs or an upload)."""
    return (await hot.submit(farm_of(request), user, 0, spec))[1]


@router.get("/jobs", response_model=list[JobSummary])
async def list_jobs(user: Person, request: Request,
                    owner: Annotated[Text | None, Query(max_length=64)] = None,
                    status: Annotated[Literal[JOB_STATUSES] | None, Query()] = None,  # type: ignore[valid-type]
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> Any:
    """Jobs, newest first (of the projects you may read)."""
    return _json(await reads_of(request).jobs(user, owner, status, limit, offset))


@router.get("/jobs/{job_id}", response_model=JobDetail)
async def show_job(job_id: Id, user: Person, request: Request,
                   tasks: bool = True) -> Any:
    """A job with its blocks and (unless ``tasks=false``) its tasks."""
    return _json(await reads_of(request).job(user, job_id, tasks))


def reads_of(request: Request) -> FarmReads:
    return request.app.state.farm_reads


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


@router.get("/jobs/{job_id}/outputs", response_model=list[OutputOut])
async def job_outputs(job_id: Id, user: Person, request: Request) -> Any:
    """Every recorded output (frames, videos) of a job with its store id and a read grant."""
    farm = farm_of(request)
    await farm.check_visible(user, job_id)
    rows = await reads.job_outputs(farm, job_id)
    signer = grants_of(deps.get_studio(request))
    return [{**r, "grant": signer.mint(user.name, r["oid"])} for r in rows]


def _action(name: str) -> Any:
    async def act(job_id: Id, user: Person, request: Request) -> Any:
        farm = farm_of(request)
        await farm.job_action(user, job_id, name)
        return await reads.job(farm, job_id, with_tasks=False)

    act.__name__ = f"{name.replace('-', '_')}_job"
    act.__doc__ = {"pause": "Hand out no new task of this job (running ones finish).",
                   "resume": "Hand out tasks of this job again.",
                   "cancel": "Cancel the job: its open tasks are canceled, workers told to stop.",
                   "retry": "Queue the failed and canceled tasks again.",
                   "clear-blocklist": "Let every worker take this job's tasks again."}[name]
    return act


for _name in ("pause", "resume", "cancel", "retry"):
    router.add_api_route(f"/jobs/{{job_id}}/{_name}", _action(_name), methods=["POST"],
                         response_model=JobSummary)
router.add_api_route("/jobs/{job_id}/blocklist", _action("clear-blocklist"), methods=["DELETE"],
                     response_model=JobSummary)


@router.put("/jobs/{job_id}/tags", response_model=JobSummary)
async def set_tags(job_id: Id, body: TagsIn, user: Person, request: Request) -> Any:
    """New tags for one block of a job (``block``) or all its blocks: only render nodes
    with every tag take its tasks."""
    farm = farm_of(request)
    await farm.set_tags(user, job_id, list(body.tags), body.block)
    return await reads.job(farm, job_id, with_tasks=False)


@router.delete("/jobs/{job_id}/blocklist/{worker_id}", response_model=JobSummary)
async def unblock_worker(job_id: Id, worker_id: Id, user: Person, request: Request) -> Any:
    """Let one worker take this job's tasks again (its failures are forgotten)."""
    farm = farm_of(request)
    await farm.unblock(user, job_id, worker_id)
    return await reads.job(farm, job_id, with_tasks=False)


@router.post("/jobs/{job_id}/priority", response_model=JobSummary)
async def set_priority(job_id: Id, body: PriorityIn, user: Person, request: Request) -> Any:
    """Change a job's priority (0-100, higher first)."""
    farm = farm_of(request)
    await farm.job_action(user, job_id, "priority", body.priority)
    return await reads.job(farm, job_id, with_tasks=False)


@router.delete("/jobs/{job_id}", response_model=Ok)
async def delete_job(job_id: Id, user: Person, request: Request) -> Any:
    """Delete a job and its tasks, logs and output records (not the stored files)."""
    await farm_of(request).job_action(user, job_id, "delete")
    return {"ok": True}


@router.post("/tasks/{task_id}/retry", response_model=Ok)
async def retry_task(task_id: Id, user: Person, request: Request) -> Any:
    """Queue one task again (whatever its status; a running one is taken back)."""
    await farm_of(request).retry_task(user, task_id)
    return {"ok": True}


@router.get("/tasks/{task_id}/log", response_model=TaskLog)
async def task_log(task_id: Id, user: Person, request: Request,
                   after: Annotated[int, Query(ge=0, le=2**62)] = 0,
                   limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> Any:
    """A task's log lines after line id ``after`` (the newest are kept, older trimmed)."""
    farm = farm_of(request)
    await farm.check_visible(user, await reads.task_job(farm, task_id))
    return await reads.task_log(farm, task_id, after, limit)


@router.get("/workers", response_model=list[WorkerOut])
async def list_workers(user: Person, request: Request) -> Any:
    """Render nodes with their state and running tasks (``tasks``: those of jobs you may
    see; ``other_tasks``: how many others, not named)."""
    return await reads.workers(farm_of(request), user)


async def _worker(request: Request, user: User, worker_id: int) -> dict[str, Any]:
    for w in await reads.workers(farm_of(request), user):
        if w["id"] == worker_id:
            return w
    raise NotFound(f"no worker {worker_id}")


@router.put("/workers/{worker_id}/tags", response_model=WorkerOut)
async def worker_tags(worker_id: Id, body: WorkerTagsIn, user: Person,
                      request: Request) -> Any:
    """Set a render node's tags (admin); they outlive its restarts. ``null``: the node's
    own tags again from its next registration."""
    await farm_of(request).set_worker_tags(user, worker_id, body.tags)
    return await _worker(request, user, worker_id)


@router.put("/workers/{worker_id}/schedule", response_model=WorkerOut)
async def worker_schedule(worker_id: Id, body: ScheduleIn, user: Person,
                          request: Request) -> Any:
    """Set the hours when a render node may render (admin), in time zone ``tz``;
    empty: always."""
    await farm_of(request).set_schedule(user, worker_id, body.schedule, body.tz)
    return await _worker(request, user, worker_id)


@router.post("/workers/{worker_id}/{action}", response_model=Ok)
async def worker_action(worker_id: Id, action: Literal["drain", "undrain", "disable", "enable"],
                        user: Person, request: Request) -> Any:
    """drain: finish the current tasks, take no new ones; disable/enable."""
    await farm_of(request).worker_action(user, worker_id, action)
    return {"ok": True}


@router.get("/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "server-sent events: job, task, worker"}})
async def events(user: Person, request: Request,
                 job: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> Any:
    """Server-sent events of job/task/worker changes (``job=ID`` for one job's only)."""
    farm = farm_of(request)
    seen = _Visibility(farm, user)

    async def stream() -> AsyncIterator[bytes]:
        async with farm.events.subscribe() as queue:
            yield b": vstudio farm events\nretry: 2000\n\n"
            while True:
                try:
                    seq, kind, data = await asyncio.wait_for(queue.get(), 15)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield b": keep-alive\n\n"
                    continue
                about = data.get("job_id", data.get("id") if kind == "job" else None)
                if job is not None and kind != "resync" and about != job:
                    continue
                if kind in ("job", "task") and not await seen.job(about):
                    continue  # a job of a project this user may not read
                yield f"id: {seq}\nevent: {kind}\ndata: {json.dumps(data)}\n\n".encode()

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


class _Visibility:
    """Which jobs one watcher may see, asked once per job and remembered."""

    def __init__(self, farm: Farm, user: User) -> None:
        self.farm, self.user = farm, user
        self.jobs: dict[int, bool] = {}

    async def job(self, job_id: Any) -> bool:
        if self.user.is_admin:
            return True
        if not isinstance(job_id, int):
            return False
        if job_id not in self.jobs:
            if len(self.jobs) > 10_000:
                self.jobs.clear()
            try:
                await self.farm.check_visible(self.user, job_id)
                self.jobs[job_id] = True
            except (PermissionDenied, NotFound):
                self.jobs[job_id] = False
        return self.jobs[job_id]


def setup(app: FastAPI) -> None:
    """Start the farm (writer, reaper, wake-ups) with the server and stop it after."""

    async def start(app: FastAPI) -> None:
        app.state.farm = Farm(app.state.studio)
        app.state.farm_reads = FarmReads(app.state.farm)
        await app.state.farm.start()

    async def stop(app: FastAPI) -> None:
        farm = getattr(app.state, "farm", None)
        if farm is not None:
            await farm.stop()

    app.state.startup_hooks.append(start)
    app.state.shutdown_hooks.append(stop)
    from vstudio.api.routes_farm_fast import FastPath

    # FastPath goes outside the whole middleware stack (it answers with its own error
    # bodies and body limit), so the hot calls skip every layer of it.
    build = app.build_middleware_stack

    def outermost() -> ASGIApp:
        return FastPath(build())

    app.build_middleware_stack = outermost  # type: ignore[method-assign]
