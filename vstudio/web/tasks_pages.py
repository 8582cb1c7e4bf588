"""Task pages: a task's log (page and live tail), retrying one task, and a job's outputs
(frames, thumbnails, video) served from the object store.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from vstudio.errors import NotFound
from vstudio.farm.model import shown_task_status
from vstudio.web.jobs_pages import (
    MAX_ID,
    ActingDep,
    SessionDep,
    check_readable,
    checked_id,
    farm_of,
)
from vstudio.web.render import PageRoute, html, int_arg
from vstudio.web.session import require_actor

if TYPE_CHECKING:
    from vstudio.farm.ports import FarmReads

router = APIRouter(route_class=PageRoute, include_in_schema=False)
# Lines per answer: more than the manager keeps per task (2,000, trimmed at 2,500), so a
# finished task's whole kept log is one page.
LOG_LINES = 5000


def _task_of_job(r: FarmReads, job_id: int, task_id: int) -> dict[str, Any]:
    if r.task_job(task_id) != job_id:
        raise NotFound(f"job {job_id} has no task {task_id}")
    cell = r.task_cells(job_id, [task_id])[0]
    head = r.job_heads([job_id])[0]
    job = {"id": head.id, "name": head.name}
    frames = f"{cell.first}" if cell.first == cell.last else f"{cell.first}-{cell.last}"
    log = r.task_log(task_id, 0, LOG_LINES)
    task = {"id": task_id, "status": shown_task_status(cell.status, head.state),
            "frames": frames, "worker": cell.worker, "error": cell.error}
    return {"job": job, "task": task, "log": log}


@router.get("/jobs/{job_id}/tasks/{task_id}")
async def task_page(request: Request, session: SessionDep, job_id: int, task_id: int) -> Response:
    job_id, task_id = checked_id(job_id), checked_id(task_id)
    await check_readable(request, session, job_id)
    d = await farm_of(request).read(lambda r: _task_of_job(r, job_id, task_id))
    raw = d["log"]["lines"]
    lines = with_attempts(raw, 0)
    return html(request, "task_log.html", session, job=d["job"], task=d["task"],
                lines=lines, next=raw[-1]["id"] if raw else 0,
                attempt=raw[-1]["attempt"] if raw else 0, truncated=len(raw) >= LOG_LINES)


def with_attempts(lines: list[dict[str, Any]], shown: int) -> list[str]:
    """Log lines, with a marker wherever a new attempt (a retry, another worker) begins."""
    out = []
    for line in lines:
        if line["attempt"] != shown:
            shown = line["attempt"]
            out.append(f"──── attempt {shown} ────")
        out.append(line["line"])
    return out


@router.get("/jobs/{job_id}/tasks/{task_id}/log")
async def task_log(request: Request, session: SessionDep, job_id: int, task_id: int) -> Response:
    """New log lines after line id ``after`` as JSON (the log pane's live tail)."""
    job_id, task_id = checked_id(job_id), checked_id(task_id)
    after = int_arg(request.query_params.get("after"), 0, 0, MAX_ID)
    shown = int_arg(request.query_params.get("attempt"), 0, 0, MAX_ID)
    await check_readable(request, session, job_id)

    def read(r: FarmReads) -> dict[str, Any]:
        if r.task_job(task_id) != job_id:
            raise NotFound(f"job {job_id} has no task {task_id}")
        return r.task_log(task_id, after, LOG_LINES)

    log = await farm_of(request).read(read)
    lines = log["lines"]
    return JSONResponse({"lines": with_attempts(lines, shown),
                         "next": lines[-1]["id"] if lines else after,
                         "attempt": lines[-1]["attempt"] if lines else shown,
                         "status": log["status"]},
                        headers={"Cache-Control": "no-store"})


@router.post("/jobs/{job_id}/tasks/{task_id}/retry")
async def retry_task(request: Request, session: ActingDep, job_id: int,
                     task_id: int) -> Response:
    """Queue one task again (owner or admin); back to the job's task list."""
    job_id, task_id = checked_id(job_id), checked_id(task_id)
    require_actor(session)
    await check_readable(request, session, job_id)
    farm = farm_of(request)

    def check(r: FarmReads) -> None:
        if r.task_job(task_id) != job_id:
            raise NotFound(f"job {job_id} has no task {task_id}")

    await farm.read(check)
    await farm.retry_task(session.user, task_id)
    return RedirectResponse(f"/jobs/{job_id}#tr{task_id}", status_code=303)


def _output(r: FarmReads, job_id: int, oid: str) -> str:
    r.job_owner(job_id)  # NotFound for an unknown job
    name = r.output_name(job_id, oid)
    if name is None:
        raise NotFound(f"job {job_id} has no output {oid}")
    return name


_OID = re.compile(r"^[0-9a-f]{64}$")


@router.get("/jobs/{job_id}/outputs/{oid}")
async def output(request: Request, session: SessionDep, job_id: int, oid: str) -> Response:
    """An output (frame, thumbnail or video) of a job, with byte ranges for seeking."""
    from vstudio.web.media import stream_object

    job_id = checked_id(job_id)
    if not _OID.match(oid):
        raise NotFound("no such output")
    await check_readable(request, session, job_id)
    name = await farm_of(request).read(lambda r: _output(r, job_id, oid))
    store = farm_of(request).studio.store
    return await stream_object(request, store, oid, name,
                               download=request.query_params.get("download") == "1")
