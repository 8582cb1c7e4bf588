"""Farm overview (busy/idle over time, queue, tasks per hour) and the workers page.

The overview's history comes from samples the server records every minute
(``[server] web_sample_seconds``); a studio that just started shows what it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vstudio.catalog import web_queries as wq
from vstudio.errors import BadInput, PermissionDenied
from vstudio.farm import hours
from vstudio.web import views
from vstudio.web.jobs_pages import check_readable, check_tags, checked_id, farm_of, job_rows
from vstudio.web.render import PageRoute, fragment, html
from vstudio.web.session import Session, acting_session, require_actor, require_session

if TYPE_CHECKING:
    from vstudio.farm.ports import FarmReads, JobHead
    from vstudio.farm.service import Farm

router = APIRouter(route_class=PageRoute, include_in_schema=False)
SessionDep = Annotated[Session, Depends(require_session)]
ActingDep = Annotated[Session, Depends(acting_session)]
log = logging.getLogger("vstudio.web")

WORKER_ACTIONS = ("drain", "undrain", "disable", "enable")
HOURS = 24


def worker_rows(r: FarmReads) -> list[dict[str, Any]]:
    """The workers as the page shows them: state, failures, blocklists (every job's: what
    one person may see of them is ``visible_worker_rows``'s to keep)."""
    blocked = r.blocklists()
    failures = r.worker_failures()
    rows = []
    now = time.time()
    for w in r.workers():
        state = w["state"]
        off = not hours.allows(w.get("schedule"), now, w.get("schedule_tz"))
        if state not in ("offline", "disabled") and w["tasks"]:
            state = "rendering" if not w["draining"] else "draining"
        elif state not in ("offline", "disabled") and off:
            state = "off schedule"  # its running tasks, if any, finish first
        elif state == "busy":
            # "busy" was the node's word when it took its last task; that task ended
            # (done, failed, given back) and its next heartbeat has not come yet.
            state = "idle"
        rows.append({**w, "shown_state": state, "off_schedule": off,
                     "clock": hours.clock_text(now, w.get("schedule_tz")),
                     "blocklisted": blocked.get(w["id"], []),
                     "failures": failures.get(w["id"], 0)})
    return rows


def _counts(workers: list[dict[str, Any]]) -> dict[str, int]:
    out = {"busy": 0, "idle": 0, "offline": 0, "disabled": 0, "off_schedule": 0,
           "in_use": 0}
    for w in workers:
        s = w["shown_state"]
        key = ("offline" if s == "offline" else "disabled" if s == "disabled"
               else "off_schedule" if s == "off schedule"
               else "busy" if w["tasks"] or w.get("other_tasks")
               else "in_use" if s == "in use" else "idle")
        out[key] += 1
    return out


def _overview(r: FarmReads, now: float, heads: list[JobHead]) -> dict[str, Any]:
    workers = worker_rows(r)
    queue = r.queue_counts()
    since = now - HOURS * 3600
    finished = r.finished_since(since)
    per_hour = [0] * HOURS
    for f in finished:
        per_hour[min(HOURS - 1, int((f - since) // 3600))] += 1
    samples = r.samples(since)
    heads = sorted(heads, key=lambda h: (-h.priority, h.id))
    by_owner = r.work_by_owner()
    slots = sum(w["slots"] for w in workers
                if w["shown_state"] not in ("offline", "disabled", "off schedule", "in use")
                and not w["draining"])
    eta = views.queue_eta(sum(r[2] + r[3] for r in by_owner), slots,
                          r.recent_task_seconds())
    return {"workers": _counts(workers), "queue": queue, "per_hour": per_hour,
            "samples": samples, "active": job_rows(r, heads[:10]), "nactive": len(heads),
            "by_owner": by_owner, "eta": eta, "slots": slots}


def _open_heads(r: FarmReads) -> list[JobHead]:
    return [h for h in r.job_heads() if h.state in ("active", "paused", "waiting")]


@router.get("/farm")
async def overview(request: Request, session: SessionDep) -> Response:
    now = time.time()
    farm = farm_of(request)
    # Only jobs, and counts per project and owner, the person may see are shown
    # (``farm.visibility``); the queue's totals and ETA count every job, without names.
    heads = [v["h"] for v in await farm.visible_jobs(
        session.user, [{"owner": h.owner, "project": h.project, "h": h}
                       for h in await farm.read(_open_heads)])]
    d = await farm.read(lambda r: _overview(r, now, heads))
    d["by_owner"] = [v["r"] for v in await farm.visible_jobs(
        session.user, [{"owner": r[1], "project": r[0], "r": r} for r in d["by_owner"]])]
    series = {"busy": [(s[0], float(s[1])) for s in d["samples"]],
              "idle": [(s[0], float(s[2])) for s in d["samples"]],
              "queued": [(s[0], float(s[4])) for s in d["samples"]]}
    chart = views.line_chart(series, now - HOURS * 3600, now)
    top = max(d["per_hour"] + [1])
    bars = [{"x": 30 + i * (850 / HOURS), "h": 120 * n / top, "n": n,
             "label": f"{HOURS - i}h ago"} for i, n in enumerate(d["per_hour"])]
    queue = d["queue"]
    return html(request, "farm.html", session, w=d["workers"], chart=chart, bars=bars,
                per_hour_max=top, queued=queue.get("queued", 0) + queue.get("blocked", 0),
                running=queue.get("running", 0), done_hour=d["per_hour"][-1],
                done_day=sum(d["per_hour"]), jobs=d["active"], nactive=d["nactive"],
                nsamples=len(d["samples"]), by_owner=d["by_owner"], queue_eta=d["eta"],
                slots=d["slots"],
                actions=lambda j: [])


def _stats(r: FarmReads, now: float) -> dict[str, Any]:
    queue = r.queue_counts()
    per_hour = [0] * 2
    for f in r.finished_since(now - 86400):
        per_hour[0 if f < now - 3600 else 1] += 1
    return {"w": _counts(worker_rows(r)), "queued": queue.get("queued", 0)
            + queue.get("blocked", 0), "running": queue.get("running", 0),
            "done_hour": per_hour[1], "done_day": sum(per_hour)}


@router.get("/farm/stats")
async def farm_stats(request: Request, session: SessionDep) -> Response:
    """The overview's counters alone (the page refreshes them every few seconds)."""
    now = time.time()
    d = await farm_of(request).read(lambda r: _stats(r, now))
    return HTMLResponse(fragment("_farm_stats.html", **d))


async def visible_worker_rows(request: Request, session: Session) -> list[dict[str, Any]]:
    """The workers page's rows: of a node's current tasks, those of jobs the person may
    see with their job, the others only counted (``Farm.shown_tasks``, as the API); jobs
    the person may not see are left out of each node's "kept off" list."""
    farm = farm_of(request)
    rows, running = await farm.read(lambda r: (worker_rows(r), r.running_tasks()))
    rows = await farm.shown_tasks(session.user, rows, running)
    kept = [{"owner": k.owner, "project": k.project, "k": k}
            for w in rows for k in w["blocklisted"]]
    shown = {id(v["k"]) for v in await farm.visible_jobs(session.user, kept)}
    for w in rows:
        w["blocklisted"] = [k for k in w["blocklisted"] if id(k) in shown]
    return rows


def _table(session: Session, rows: list[dict[str, Any]]) -> Response:
    return HTMLResponse(fragment("_workers_table.html", workers=rows, session=session,
                                 now=time.time(), counts=_counts(rows)))


@router.get("/workers")
async def workers_page(request: Request, session: SessionDep) -> Response:
    rows = await visible_worker_rows(request, session)
    # The zones a node's hours may be in, offered while typing (admins edit them).
    zones = hours.zone_names() if session.user.is_admin and session.can_act else ()
    return html(request, "workers.html", session, workers=rows, now=time.time(),
                counts=_counts(rows), zones=zones)


@router.get("/workers/rows")
async def workers_rows(request: Request, session: SessionDep) -> Response:
    return _table(session, await visible_worker_rows(request, session))


@router.post("/jobs/{job_id}/unblock")
async def unblock(request: Request, session: ActingDep, job_id: int,
                  worker: Annotated[int, Form(ge=1, le=2**31 - 1)],
                  ctx: Annotated[str, Form(max_length=8)] = "page") -> Response:
    """Let one worker take a job's tasks again (the job's owner or an admin)."""
    job_id = checked_id(job_id)
    require_actor(session)
    await check_readable(request, session, job_id)
    await farm_of(request).unblock(session.user, job_id, worker)
    if ctx == "workers" and request.headers.get("hx-request") == "true":
        return _table(session, await visible_worker_rows(request, session))
    return RedirectResponse("/workers" if ctx == "workers" else f"/jobs/{job_id}",
                            status_code=303)


@router.post("/workers/{worker_id}/action")
async def worker_action(request: Request, session: ActingDep, worker_id: int,
                        action: Annotated[str, Form(max_length=16)]) -> Response:
    """Drain, undrain, disable or enable a render node (admin or its owner)."""
    worker_id = checked_id(worker_id)
    require_actor(session)
    if action not in WORKER_ACTIONS:
        raise BadInput(f"unknown action {action!r}: use {', '.join(WORKER_ACTIONS)}")
    await farm_of(request).worker_action(session.user, worker_id, action)
    if request.headers.get("hx-request") == "true":
        return _table(session, await visible_worker_rows(request, session))
    return RedirectResponse("/workers", status_code=303)


def _admin(session: Session) -> None:
    require_actor(session)
    if not session.user.is_admin:
        raise PermissionDenied("only an admin may change a render node's tags or schedule")


async def _after_edit(request: Request, session: Session, worker_id: int) -> Response:
    if request.headers.get("hx-request") == "true":
        return _table(session, await visible_worker_rows(request, session))
    return RedirectResponse(f"/workers#worker-{worker_id}", status_code=303)


@router.post("/workers/{worker_id}/tags")
async def worker_tags(request: Request, session: ActingDep, worker_id: int,
                      tags: Annotated[str, Form(max_length=4000)] = "") -> Response:
    """An admin sets a node's tags (space or comma separated; kept over its restarts)."""
    worker_id = checked_id(worker_id)
    _admin(session)
    await farm_of(request).set_worker_tags(session.user, worker_id, check_tags(tags))
    return await _after_edit(request, session, worker_id)


@router.post("/workers/{worker_id}/schedule")
async def worker_schedule(request: Request, session: ActingDep, worker_id: int,
                          schedule: Annotated[str, Form(max_length=200)] = "",
                          tz: Annotated[str, Form(max_length=64)] = "") -> Response:
    """An admin sets the hours when a desktop node may render (empty: always) and the
    time zone they are in (empty: the manager's clock)."""
    worker_id = checked_id(worker_id)
    _admin(session)
    await farm_of(request).set_schedule(session.user, worker_id, schedule, tz)
    return await _after_edit(request, session, worker_id)


# -- sampling for the overview's chart ------------------------------------------------------

def _record(farm: Farm, engine: Any, period: int) -> bool:
    """Store one sample of the farm (read through the farm) in the web's own table."""
    with farm.db.reading() as r:
        c = _counts(worker_rows(r))
        q = r.queue_counts()
    with engine.begin() as conn:
        return wq.add_sample(conn, period, c["busy"], c["idle"], c["offline"],
                             q.get("queued", 0) + q.get("blocked", 0), q.get("running", 0))


def setup(app: FastAPI) -> None:
    state: dict[str, asyncio.Task[None]] = {}

    async def sample_forever() -> None:
        every = max(5, int(app.state.studio.config.server.get("web_sample_seconds", 60)))
        while True:
            period = int(time.time()) // every * every
            try:
                await asyncio.to_thread(_record, app.state.farm, app.state.studio.engine,
                                        period)
            except Exception:
                log.exception("recording a farm sample failed")
            await asyncio.sleep(every - time.time() % every + 0.01)

    async def start(app: FastAPI) -> None:
        state["task"] = asyncio.create_task(sample_forever())

    async def stop(app: FastAPI) -> None:
        task = state.pop("task", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.state.startup_hooks.append(start)
    app.state.shutdown_hooks.append(stop)
