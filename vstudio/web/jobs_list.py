"""The jobs list: search, filters (status, owner, project, type), sorting, paging, the
live numbers of its rows, and bulk actions on selected jobs.

Only jobs of projects the person may read are listed (the farm's own rights check).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from vstudio.errors import BadInput, VStudioError
from vstudio.web import views
from vstudio.web.job_rows import job_rows, row_actions
from vstudio.web.jobs_pages import ActingDep, SessionDep, farm_of, parse_priority
from vstudio.web.render import PageRoute, fragment, html, int_arg
from vstudio.web.session import Session, require_actor

if TYPE_CHECKING:
    from vstudio.farm.ports import FarmReads, JobHead

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PER_PAGE = 50
SORTS = [("newest", "Newest first"), ("oldest", "Oldest first"), ("priority", "Priority"),
         ("name", "Name"), ("owner", "Owner"), ("status", "Status"), ("project", "Project"),
         ("progress", "Progress"), ("frames", "Frames"), ("elapsed", "Elapsed"),
         ("eta", "Time left")]
# Sorts by what only a full row knows (frames, the running tasks' progress, the clock):
# every listed job's row is built first, so they cost more than the others.
ROW_SORTS: dict[str, Any] = {
    "progress": lambda j: (-j.progress, -j.id),
    "frames": lambda j: (-j.frames_total, -j.id),
    "elapsed": lambda j: (j.elapsed is None, -(j.elapsed or 0.0), -j.id),
    "eta": lambda j: (j.eta is None, -(j.eta or 0.0), -j.id),
}
FILTERS = ("all", "mine", "running", "stalled", "failed", "waiting", "queued", "pausing",
           "paused", "done", "canceled")
BULK = ("pause", "resume", "cancel", "retry", "delete", "priority")
_IDS = re.compile(r"^\d{1,19}(,\d{1,19}){0,999}$")
_ORDER = {s: i for i, s in enumerate(("stalled", "running", "pausing", "queued", "waiting",
                                      "paused", "failed", "done", "canceled"))}


@dataclass(frozen=True)
class ListArgs:
    """What the list shows: every link on the page keeps these."""

    filter: str = "all"
    sort: str = "newest"
    page: int = 1
    q: str = ""  # part of the job name
    owner: str = ""
    project: str = ""
    type: str = ""  # a job type one of its blocks has

    @classmethod
    def of(cls, q: Any) -> ListArgs:
        flt, sort = q.get("filter", "all"), q.get("sort", "newest")
        return cls(flt if flt in FILTERS else "all", sort if sort in dict(SORTS) else "newest",
                   int_arg(q.get("page"), 1, 1, 1_000_000), q.get("q", "").strip()[:200],
                   q.get("owner", "")[:64], q.get("project", "")[:128], q.get("type", "")[:16])

    def url(self, path: str = "/jobs", **change: Any) -> str:
        """This list's address with ``change`` applied (and page 1 unless a page is given)."""
        args = replace(self, **({"page": 1} | change))
        pairs = {k: v for k, v in vars(args).items() if v not in ("", None)
                 and not (k == "page" and v == 1) and not (k == "filter" and v == "all")
                 and not (k == "sort" and v == "newest")}
        return path + ("?" + urlencode(pairs) if pairs else "")


def _sort_key(sort: str) -> Any:
    return {
        "oldest": lambda r: r[0].id,
        "priority": lambda r: (-r[0].priority, -r[0].id),
        "name": lambda r: (r[0].name.lower(), -r[0].id),
        "owner": lambda r: (r[0].owner, -r[0].id),
        "project": lambda r: (r[0].project or "", -r[0].id),
        "status": lambda r: (_ORDER.get(r[1], 9), -r[0].id),
    }.get(sort, lambda r: -r[0].id)


def _heads(r: FarmReads, session: Session, a: ListArgs) -> list[JobHead]:
    heads = r.job_heads(owner=session.user.name if a.filter == "mine"
                        else a.owner or None, project=a.project or None)
    if a.q:
        needle = a.q.lower()
        heads = [h for h in heads if needle in h.name.lower()]
    if a.type:
        typed = r.jobs_with_type(a.type)
        heads = [h for h in heads if h.id in typed]
    return heads


def _page(r: FarmReads, heads: list[JobHead],
          a: ListArgs) -> tuple[list[views.JobRow], int, int]:
    counts = r.task_status_counts([h.id for h in heads]) if len(heads) < 900 \
        else r.task_status_counts()
    conds = r.conditions([(h.id, h.state) for h in heads], counts)
    with_status = [(h, conds[h.id].status) for h in heads]
    if a.filter not in ("all", "mine"):
        with_status = [hs for hs in with_status if hs[1] == a.filter]
    total = len(with_status)
    pages = max(1, -(-total // PER_PAGE))
    page = min(a.page, pages)
    window = slice((page - 1) * PER_PAGE, page * PER_PAGE)
    if a.sort in ROW_SORTS:
        rows = job_rows(r, [h for h, _ in with_status], counts, conds)
        return sorted(rows, key=ROW_SORTS[a.sort])[window], total, page
    with_status.sort(key=_sort_key(a.sort))
    return job_rows(r, [h for h, _ in with_status[window]], counts, conds), total, page


async def _list(request: Request, session: Session,
                a: ListArgs) -> tuple[list[views.JobRow], int, int]:
    farm = farm_of(request)
    heads = await farm.read(lambda r: _heads(r, session, a))
    visible = await farm.visible_jobs(session.user, [
        {"owner": h.owner, "project": h.project, "head": h} for h in heads])
    heads = [v["head"] for v in visible]
    return await farm.read(lambda r: _page(r, heads, a))


@router.get("/jobs")
async def jobs_page(request: Request, session: SessionDep) -> Response:
    a = ListArgs.of(request.query_params)
    rows, total, page = await _list(request, session, a)
    a = replace(a, page=page)
    farm = farm_of(request)
    # the filters name only owners and projects of jobs the person may see
    pairs = await farm.visible_jobs(session.user, [
        {"owner": o, "project": p} for o, p in await farm.read(lambda r: r.owners_and_projects())])
    owners = sorted({v["owner"] for v in pairs})
    projects = sorted({v["project"] for v in pairs if v["project"]})
    bulk = request.query_params.get("bulk", "")
    return html(request, "jobs.html", session, jobs=rows, total=total, page=page,
                pages=max(1, -(-total // PER_PAGE)), filter=a.filter, sort=a.sort, sorts=SORTS,
                args=a, owners=owners, projects=projects, types=views.JOB_TYPES,
                bulk_actions=BULK, bulk_result=_bulk_text(bulk),
                actions=row_actions(session))


@router.get("/jobs/live")
async def jobs_live(request: Request, session: SessionDep) -> Response:
    """Current numbers of several jobs at once (the lists' rows after events)."""
    raw = request.query_params.get("ids", "")
    if not _IDS.match(raw) or raw.count(",") >= 100:
        raise BadInput("ids must be a comma-separated list of at most 100 job ids")
    ids = [int(x) for x in raw.split(",")]
    farm = farm_of(request)
    heads = await farm.read(lambda r: r.job_heads(ids))
    heads = [v["head"] for v in await farm.visible_jobs(
        session.user, [{"owner": h.owner, "project": h.project, "head": h} for h in heads])]
    rows = await farm.read(lambda r: job_rows(r, heads))
    return JSONResponse({str(r.id): views.live_json(r, session.may_change_job(r.owner))
                         for r in rows}, headers={"Cache-Control": "no-store"})


@router.get("/jobs/rows")
async def jobs_rows(request: Request, session: SessionDep) -> Response:
    """The list's rows alone: the page's script swaps them in when jobs come and go."""
    a = ListArgs.of(request.query_params)
    rows, _, _ = await _list(request, session, a)
    return HTMLResponse(fragment("_job_rows.html", jobs=rows, session=session, filter=a.filter,
                                 actions=row_actions(session)))


@router.post("/jobs/bulk")
async def jobs_bulk(
    request: Request, session: ActingDep,
    action: Annotated[str, Form(max_length=16)],
    ids: Annotated[list[int] | None, Form(max_length=1000)] = None,
    priority: Annotated[str | None, Form(max_length=12)] = None,
    back: Annotated[str, Form(max_length=2000)] = "/jobs",
) -> Response:
    """One action on every selected job (each checked as if it were done alone)."""
    require_actor(session)
    if action not in BULK:
        raise BadInput(f"unknown action {action!r}: use {', '.join(BULK)}")
    if not ids:
        raise BadInput("select at least one job")
    prio = parse_priority(priority) if action == "priority" else None
    farm = farm_of(request)
    done = refused = 0
    for job_id in dict.fromkeys(ids):
        try:
            await farm.job_action(session.user, job_id, action, prio)
            done += 1
        except VStudioError:  # not the person's job, gone meanwhile: counted, not fatal
            refused += 1
    # Only a path of this list goes back (never another site).
    target = back if back.startswith("/jobs") and "//" not in back else "/jobs"
    sep = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{sep}bulk={action}.{done}.{refused}", status_code=303)


def _bulk_text(raw: str) -> str:
    m = re.fullmatch(r"([a-z]+)\.(\d{1,6})\.(\d{1,6})", raw)
    if not m or m.group(1) not in BULK:
        return ""
    action, done, refused = m.group(1), int(m.group(2)), int(m.group(3))
    text = f"{action}: {done} job{'s' if done != 1 else ''} done"
    return text + (f", {refused} refused (not yours, or gone)" if refused else "")
