"""Job pages: the jobs list, a job's page (task grid, chart, frames, video), actions,
and the small JSON the page's script asks for after an event.

Reads go through ``Farm.read`` with the farm's and the web's catalog queries; actions go
through ``Farm.job_action``, the same call the HTTP API makes, so rights, events and
wake-ups are the same whichever way a person acts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError

from vstudio.errors import BadInput, NotFound
from vstudio.farm.model import shown_task_status
from vstudio.farm.wire import TagsIn
from vstudio.web import views
from vstudio.web.job_rows import job_rows, row_actions
from vstudio.web.render import PageRoute, fragment, html, int_arg
from vstudio.web.session import Session, acting_session, require_actor, require_session

if TYPE_CHECKING:
    from vstudio.farm.ports import FarmReads, NewOutput, TaskCell
    from vstudio.farm.service import Farm

router = APIRouter(route_class=PageRoute, include_in_schema=False)
SessionDep = Annotated[Session, Depends(require_session)]
ActingDep = Annotated[Session, Depends(acting_session)]

TASKS_PER_PAGE = 100
THUMBS = 48
GRID_MAX = 25_000  # cells drawn per job page
MAX_ID = 2**62
_IDS = re.compile(r"^\d{1,19}(,\d{1,19}){0,999}$")
ACTIONS = ("pause", "resume", "cancel", "retry", "delete", "priority", "clear-blocklist")


def farm_of(request: Request) -> Farm:
    farm = getattr(request.app.state, "farm", None)
    if farm is None:
        raise NotFound("the render farm is not running on this server")
    return farm


async def check_readable(request: Request, session: Session, job_id: int) -> None:
    """``PermissionDenied`` unless the person may read the job's project (``NotFound`` for
    an unknown job): every page of a job asks this first, as the API does."""
    await farm_of(request).check_visible(session.user, job_id)


def parse_priority(raw: str | None) -> int:
    """A priority typed into a form: a whole number from 0 to 100, else ``BadInput``."""
    try:
        prio = int(raw or "")
    except ValueError:
        raise BadInput("priority must be a whole number from 0 to 100") from None
    if not 0 <= prio <= 100:
        raise BadInput("priority must be a whole number from 0 to 100")
    return prio


def checked_id(value: int) -> int:
    if not 1 <= value <= MAX_ID:
        raise NotFound(f"no job or task {value}")
    return value


def _grid(cells: list[TaskCell], state: str) -> Markup:
    """One ``<i>`` per task: id for live updates, class for colour, title for hover."""
    parts = []
    for c in cells:
        shown = shown_task_status(c.status, state)
        shown = shown if shown in views.CELL else "queued"  # only fixed words reach the markup
        frames = f"{c.first}" if c.first == c.last else f"{c.first}-{c.last}"
        parts.append(f'<i id="t{c.id}" class="{views.CELL.get(shown, "q")}" '
                     f'title="task {c.id}: frames {frames}, {shown}"></i>')
    return Markup("".join(parts))


@dataclass(frozen=True)
class TaskFilter:
    """The job page's task list filter: a shown status, a worker, a frame to go to."""

    status: str = ""
    worker: str = ""
    frame: int | None = None

    @classmethod
    def of(cls, q: Mapping[str, str]) -> TaskFilter:
        status = q.get("tstatus", "")
        frame = q.get("frame", "").strip()
        return cls(status if status in views.CELL else "", q.get("tworker", "")[:128],
                   int_arg(frame, 1, -10**9, 10**9) if frame else None)


def _pick_tasks(cells: list[TaskCell], state: str, f: TaskFilter) -> list[TaskCell]:
    if f.status:
        cells = [c for c in cells if shown_task_status(c.status, state) == f.status]
    if f.worker:
        cells = [c for c in cells if c.worker == f.worker]
    return cells


def _load_job(r: FarmReads, job_id: int, tpage: int,
              tfilter: TaskFilter = TaskFilter()) -> dict[str, Any]:
    job = r.job(job_id, False)
    head = r.job_heads([job_id])[0]
    row = job_rows(r, [head])[0]
    cells = r.task_cells(job_id)
    outputs = r.job_outputs(job_id)
    by_block: dict[int, list[TaskCell]] = {}
    for c in cells:
        by_block.setdefault(c.block_id, []).append(c)
    shown_cells = 0
    names = {b["id"]: b["name"] for b in job["blocks"]}
    blocks = []
    for b in job["blocks"]:
        bc = by_block.get(b["id"], [])
        first = min((c.first for c in bc), default=0)
        last = max((c.last for c in bc), default=0)
        counts: dict[str, int] = {}
        for c in bc:
            s = shown_task_status(c.status, head.state)
            counts[s] = counts.get(s, 0) + 1
        # The grid stays bounded for the biggest jobs; the task list pages through all.
        grid_cells = bc[:max(0, GRID_MAX - shown_cells)]
        shown_cells += len(grid_cells)
        blocks.append({
            "id": b["id"], "name": b["name"], "type": b["type"], "ntasks": len(bc),
            "frames": f"{first}-{last}" if bc else "–", "grid": _grid(grid_cells, head.state),
            "hidden": len(bc) - len(grid_cells),
            "depends": ", ".join(f"{d['block']} ({d['mode']})" for d in b["depends_on"]),
            "summary": ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))})
    picked = _pick_tasks(cells, head.state, tfilter)
    if tfilter.frame is not None:  # "go to frame N": the page of the task that renders it
        at = next((i for i, c in enumerate(picked) if c.first <= tfilter.frame <= c.last), 0)
        tpage = at // TASKS_PER_PAGE + 1
    start = (tpage - 1) * TASKS_PER_PAGE
    task_rows = [{
        "id": c.id, "block": names.get(c.block_id, ""),
        "frames": f"{c.first}" if c.first == c.last else f"{c.first}-{c.last}",
        "status": shown_task_status(c.status, head.state), "progress": c.progress,
        "worker": c.worker, "error": bool(c.error),
        "seconds": (c.finished - c.started) if c.finished and c.started else None,
        "hit": tfilter.frame is not None and c.first <= tfilter.frame <= c.last,
    } for c in picked[start:start + TASKS_PER_PAGE]]
    workers = sorted({c.worker for c in cells if c.worker})
    latest = latest_frame(job_id, r.newest_outputs(job_id))
    return {"latest": latest, "job": job, "row": row, "blocks": blocks, "task_rows": task_rows,
            "ntasks": len(picked), "tpage": tpage, "task_workers": workers,
            "outputs": outputs, "blocklist": job.get("blocklist", [])}


def latest_frame(job_id: int, newest: list[NewOutput]) -> dict[str, Any] | None:
    """The newest rendered still of a job, to show large: the image itself when the
    browser can show it, else its thumbnail (an EXR's PNG)."""
    for o in newest:
        image = o.name.lower().endswith(views.IMAGE_EXT)
        if o.frame is None or not (image or o.thumbnail_oid):
            continue
        url = f"/jobs/{job_id}/outputs/{o.oid if image else o.thumbnail_oid}"
        return {"id": o.id, "url": url, "caption": f"{o.block}, frame {o.frame}"}
    return None


def _media(job_id: int, outputs: list[dict[str, Any]]) -> dict[str, Any]:
    # One chart per block: frame numbers of different blocks (a 3D render, a 2D one)
    # are different frames.
    times: dict[str, list[tuple[int, float]]] = {}
    for o in outputs:
        if (o["frame"] is not None and o["seconds"] is not None
                and not o["name"].lower().endswith(views.VIDEO_EXT)):
            times.setdefault(o["block"], []).append((o["frame"], float(o["seconds"])))
    base = f"/jobs/{job_id}/outputs/"
    videos = [{"name": o["name"], "url": f"{base}{o['oid']}"} for o in outputs
              if o["name"].lower().endswith(views.VIDEO_EXT)]
    stills = [o for o in outputs if o["frame"] is not None
              and (o["thumbnail_oid"] or o["name"].lower().endswith(views.IMAGE_EXT))]
    shown = stills[-THUMBS:]
    thumbs = [{
        "frame": o["frame"], "name": o["name"], "seconds": o["seconds"], "block": o["block"],
        "thumb": base + (o["thumbnail_oid"] or o["oid"]),
        "full": base + (o["oid"] if o["name"].lower().endswith(views.IMAGE_EXT)
                        else o["thumbnail_oid"]),
    } for o in shown]
    charts = [{"block": name, "id": n, **views.frame_chart(pts)}
              for n, (name, pts) in enumerate(times.items()) if len(pts) > 1]
    return {"charts": charts, "videos": videos, "thumbs": thumbs,
            "more_thumbs": len(stills) if len(stills) > len(shown) else 0}


@router.get("/jobs/{job_id}")
async def job_page(request: Request, session: SessionDep, job_id: int) -> Response:
    job_id = checked_id(job_id)
    tpage = int_arg(request.query_params.get("tpage"), 1, 1, 1_000_000)
    tfilter = TaskFilter.of(request.query_params)
    await check_readable(request, session, job_id)
    data = await farm_of(request).read(lambda r: _load_job(r, job_id, tpage, tfilter))
    j = data["row"]
    return html(request, "job.html", session, j=j, blocks=data["blocks"], spec=data["job"],
                task_rows=data["task_rows"], ntasks=data["ntasks"], tpage=data["tpage"],
                tfilter=tfilter, task_workers=data["task_workers"],
                tper=TASKS_PER_PAGE, legend=views.LEGEND, actions=row_actions(session),
                blocklist=data["blocklist"], may_change=session.may_change_job(j.owner),
                open_settings=request.query_params.get("settings") == "open",
                latest=data["latest"],
                **_media(job_id, data["outputs"]))


def _live(r: FarmReads, job_id: int, task_ids: list[int] | None) -> dict[str, Any]:
    heads = r.job_heads([job_id])
    if not heads:
        raise NotFound(f"no job {job_id}")
    row = job_rows(r, heads)[0]
    out: dict[str, Any] = {"row": row}
    if task_ids is not None:
        state = heads[0].state
        out["tasks"] = [[c.id, views.CELL.get(shown_task_status(c.status, state), "q"),
                         c.progress, shown_task_status(c.status, state), c.worker]
                        for c in r.task_cells(job_id, task_ids or None)]
        out["latest"] = latest_frame(job_id, r.newest_outputs(job_id))
    return out


@router.get("/jobs/{job_id}/media")
async def job_media(request: Request, session: SessionDep, job_id: int) -> Response:
    """The job page's charts, video and thumbnails alone (redrawn as tasks finish)."""
    job_id = checked_id(job_id)
    await check_readable(request, session, job_id)
    outputs = await farm_of(request).read(lambda r: r.job_outputs(job_id))
    return HTMLResponse(fragment("_job_media.html", **_media(job_id, outputs)),
                        headers={"Cache-Control": "no-store"})


@router.get("/jobs/{job_id}/live")
async def job_live(request: Request, session: SessionDep, job_id: int) -> Response:
    """A job's current numbers (and the listed tasks' states) for the page's script."""
    job_id = checked_id(job_id)
    raw = request.query_params.get("tasks")
    if raw is not None and raw != "all" and not _IDS.match(raw):
        raise BadInput("tasks must be a comma-separated list of task ids, or 'all'")
    ids = None if raw is None else [] if raw == "all" else [int(x) for x in raw.split(",")]
    await check_readable(request, session, job_id)
    data = await farm_of(request).read(lambda r: _live(r, job_id, ids))
    row = data["row"]
    body = views.live_json(row, session.may_change_job(row.owner))
    if "tasks" in data:
        body["tasks"] = data["tasks"]
        body["latest"] = data["latest"]
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.post("/jobs/{job_id}/action")
async def job_action(
    request: Request, session: ActingDep, job_id: int,
    action: Annotated[str, Form(max_length=16)],
    priority: Annotated[str | None, Form(max_length=12)] = None,
    ctx: Annotated[str, Form(max_length=8)] = "page",
) -> Response:
    """Pause, resume, cancel, retry, delete or re-prioritise a job (owner or admin)."""
    job_id = checked_id(job_id)
    require_actor(session)
    if action not in ACTIONS:
        raise BadInput(f"unknown action {action!r}: use {', '.join(ACTIONS)}")
    prio = parse_priority(priority) if action == "priority" else None
    await check_readable(request, session, job_id)
    farm = farm_of(request)
    await farm.job_action(session.user, job_id, action, prio)
    htmx = request.headers.get("hx-request") == "true"
    if action == "delete":
        if htmx and ctx == "row":
            return HTMLResponse("")
        resp: Response = RedirectResponse("/jobs", status_code=303)
        if htmx:
            resp = HTMLResponse("", headers={"HX-Redirect": "/jobs"})
        return resp
    if not htmx or action == "clear-blocklist":
        return RedirectResponse("/jobs" if ctx == "row" else f"/jobs/{job_id}", status_code=303)
    heads = await farm.read(lambda r: r.job_heads([job_id]))
    row = (await farm.read(lambda r: job_rows(r, heads)))[0]
    acts = row.actions if session.may_change_job(row.owner) else []
    name = "_job_row.html" if ctx == "row" else "_job_head.html"
    return HTMLResponse(fragment(name, j=row, j_actions=acts, session=session))


def check_tags(text: str) -> list[str]:
    """Tags typed in a form as "gpu, linux" (spaces or commas), checked as the API does."""
    try:
        return list(TagsIn(tags=[t for t in re.split(r"[\s,]+", text) if t]).tags)
    except ValidationError as e:
        bad = e.errors()[0].get("input", "")
        raise BadInput(f"bad tag {str(bad)[:64]!r}: tags are letters, digits and _ . : -, "
                       "at most 64 characters, at most 64 tags") from None


@router.post("/jobs/{job_id}/tags")
async def job_tags(
    request: Request, session: ActingDep, job_id: int,
    block: Annotated[str, Form(min_length=1, max_length=128)],
    tags: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """New tags for one block of a job, typed as "gpu, linux" (owner or admin)."""
    job_id = checked_id(job_id)
    require_actor(session)
    typed = check_tags(tags)
    await check_readable(request, session, job_id)
    await farm_of(request).set_tags(session.user, job_id, typed, block)
    return RedirectResponse(f"/jobs/{job_id}?settings=open#settings", status_code=303)
