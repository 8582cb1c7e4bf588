"""Repository pages: projects, a tree browser at any revision, file history, locks, downloads.

Everything is read through the ``RepoReader`` protocol (the same read side the mount and
the API use) after a read-right check in the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from vstudio.api.deps import get_studio
from vstudio.catalog import accounts
from vstudio.errors import BadInput, NotFound
from vstudio.repo.api import Entry, RepoReader
from vstudio.web.media import stream_bytes
from vstudio.web.render import PageRoute, html, int_arg
from vstudio.web.session import Session, require_session

router = APIRouter(route_class=PageRoute, include_in_schema=False)
SessionDep = Annotated[Session, Depends(require_session)]

PER_PAGE = 200
LOG_PER_PAGE = 50
# Shown inline as thumbnails (scaled by the browser, loaded lazily); bigger images and
# other types get a download link only, so a folder of 8K textures stays a light page.
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".gif": "image/gif", ".webp": "image/webp"}
THUMB_MAX_BYTES = 4 << 20


@dataclass(frozen=True)
class Row:
    """One line of the tree browser: a folder (entry None) or a file."""

    name: str
    path: str
    entry: Entry | None
    files: int = 0

    @property
    def is_image(self) -> bool:
        return self.entry is not None and image_type(self.path) is not None


def image_type(path: str) -> str | None:
    dot = path.rfind(".")
    return IMAGE_TYPES.get(path[dot:].lower()) if dot >= 0 else None


def reader(request: Request) -> RepoReader:
    from vstudio.repo import open_reader

    studio = get_studio(request)
    cached = getattr(request.app.state, "web_repo_reader", None)
    if cached is None:
        cached = request.app.state.web_repo_reader = open_reader(studio)
    return cached


def _project(request: Request, session: Session, name: str) -> accounts.Project:
    engine = get_studio(request).engine
    project = accounts.get_project(engine, name)
    accounts.require(engine, project, session.user, "read")
    return project


def _rev(repo: RepoReader, project: str, value: str | None) -> int:
    """A revision from the query: a number, a tag name, or (absent) the head."""
    head = repo.head(project)
    if not value or value == "head":
        return head
    raw = value[1:] if value[:1] in ("r", "R") and value[1:].isdigit() else value
    if raw.isdigit():
        rev = int(raw)
        if rev < 0 or rev > head:
            raise NotFound(f"project {project!r} has no revision {rev} (head is r{head})")
        return rev
    tags = repo.tags(project)
    if value in tags:
        return tags[value]
    raise NotFound(f"project {project!r} has no revision or tag {value!r}")


def _clean_dir(path: str | None) -> str:
    parts = [p for p in (path or "").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise BadInput("a path may not contain '..'")
    return "/".join(parts)


def listing(tree: dict[str, Entry], folder: str) -> list[Row]:
    """The folders (first) and files directly inside ``folder`` of a files-only tree."""
    prefix = folder + "/" if folder else ""
    dirs: dict[str, int] = {}
    files: list[Row] = []
    for path, entry in tree.items():
        if not path.startswith(prefix):
            continue
        rest = path[len(prefix):]
        slash = rest.find("/")
        if slash < 0 and entry.is_dir:  # an empty folder
            dirs.setdefault(rest, 0)
        elif slash < 0:
            files.append(Row(rest, path, entry))
        else:
            name = rest[:slash]
            dirs[name] = dirs.get(name, 0) + 1
    rows = [Row(n, prefix + n, None, files=c) for n, c in sorted(dirs.items())]
    return rows + sorted(files, key=lambda r: r.name)


def _project_jobs(request: Request, project: str) -> list[Any]:
    """The project's newest render jobs, when this server runs the farm."""
    if getattr(request.app.state, "farm", None) is None:
        return []
    from vstudio.web.jobs_pages import job_rows

    with request.app.state.farm.db.reading() as r:  # a sync route: already in a thread
        return job_rows(r, r.job_heads(project=project, newest=10))


@router.get("/repo")
def projects(request: Request, session: SessionDep) -> Response:
    engine = get_studio(request).engine
    repo = reader(request)
    rows = []
    for p in accounts.list_projects(engine):
        if not accounts.rights(engine, p, session.user)[0]:
            continue
        rows.append((p, repo.head(p.name), len(repo.locks(p.name))))
    return html(request, "repo_list.html", session, rows=rows)


@router.get("/repo/{project}")
def tree_page(request: Request, session: SessionDep, project: str) -> Response:
    p = _project(request, session, project)
    repo = reader(request)
    q = request.query_params
    head = repo.head(p.name)
    rev = _rev(repo, p.name, q.get("rev"))
    folder = _clean_dir(q.get("path"))
    tree = repo.tree(p.name, rev) if rev else {}
    empty_folder = folder in tree and tree[folder].is_dir
    if folder and folder in tree and not empty_folder:  # a file: show its history instead
        return log_page(request, session, project)
    rows = listing(tree, folder)
    if folder and not rows and not empty_folder:
        raise NotFound(f"no folder {folder!r} in r{rev} of {p.name}")
    page = int_arg(q.get("page"), 1, 1, max(1, (len(rows) + PER_PAGE - 1) // PER_PAGE))
    crumbs = []
    acc = ""
    for part in folder.split("/") if folder else []:
        acc = f"{acc}/{part}" if acc else part
        crumbs.append((part, acc))
    recent = repo.log(p.name, limit=10)
    jobs = _project_jobs(request, p.name)
    return html(request, "repo_tree.html", session, project=p, head=head, rev=rev,
                folder=folder, crumbs=crumbs, rows=rows[(page - 1) * PER_PAGE: page * PER_PAGE],
                total=len(rows), page=page, per_page=PER_PAGE,
                files=sum(1 for e in tree.values() if not e.is_dir),
                tags=sorted(repo.tags(p.name).items(), key=lambda t: -t[1]),
                locks=sorted(repo.locks(p.name).values(), key=lambda lk: lk.path),
                recent=recent, thumb_max=THUMB_MAX_BYTES, jobs=jobs)


@router.get("/repo/{project}/log")
def log_page(request: Request, session: SessionDep, project: str) -> Response:
    p = _project(request, session, project)
    repo = reader(request)
    q = request.query_params
    path = _clean_dir(q.get("path")) or None
    page = int_arg(q.get("page"), 1, 1, 10_000)
    # The reader has a limit but no offset: fetch one more than this page to know if
    # there is a next one.
    entries = repo.log(p.name, path=path, limit=page * LOG_PER_PAGE + 1)
    rows = entries[(page - 1) * LOG_PER_PAGE: page * LOG_PER_PAGE]
    has_next = len(entries) > page * LOG_PER_PAGE
    # Whether the path is a file (per-version downloads) or a folder: one tree, the head's.
    # Loading every listed revision's tree would cost a whole tree per row.
    head = repo.head(p.name)
    is_file = bool(path) and head > 0 and not getattr(
        repo.tree(p.name, head).get(path or ""), "is_dir", True)
    lock = repo.locks(p.name).get(path) if path else None
    return html(request, "repo_log.html", session, project=p, path=path, rows=rows, page=page,
                has_next=has_next, is_file=is_file, lock=lock, head=head)


@router.get("/repo/{project}/raw")
def raw(request: Request, session: SessionDep, project: str) -> Response:
    """A file's bytes at a revision: images inline (for thumbnails), the rest as download."""
    p = _project(request, session, project)
    repo = reader(request)
    q = request.query_params
    rev = _rev(repo, p.name, q.get("rev"))
    path = _clean_dir(q.get("path"))
    entry = repo.tree(p.name, rev).get(path) if rev and path else None
    if entry is None or entry.is_dir:
        raise NotFound(f"no file {path!r} in r{rev} of {p.name}")
    return stream_bytes(request, lambda o, n: repo.read(entry.oid, o, n), entry.size, path,
                        download=q.get("download") == "1" or image_type(path) is None,
                        immutable=bool(q.get("rev")))
