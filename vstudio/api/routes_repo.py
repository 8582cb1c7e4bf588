"""The repository over HTTP: trees, commits, logs, locks and tags of a project.

Only metadata moves here; file bytes go through the store's routes (``/api/store``), or
straight to the bucket with pre-signed URLs, so this server is not the bottleneck.
Reads need the project's read right, everything else its write right; render nodes'
worker tokens get neither (they read only the inputs of the task they hold). A tree hands
out read grants for its files (``vstudio.api.grants``), and a commit names only files
its author holds grants for, so no route turns a known id into readable bytes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from vstudio.api.deps import Person, StudioDep, require_role
from vstudio.catalog import accounts
from vstudio.catalog.accounts import Role, User
from vstudio.errors import BadInput
from vstudio.grants import grants_of
from vstudio.repo.api import Entry
from vstudio.repo.service import Change, RepoService
from vstudio.studio import Studio
from vstudio.text import Text

router = APIRouter(prefix="/api/repo", tags=["repository"])

OID = Field(pattern=r"^[0-9a-f]{64}$")
MAX_REV = 2**31 - 1
BLOBS_MAX_IDS = 4096  # per /blobs request
BLOBS_MAX_BYTES = 32 << 20  # per /blobs answer: batches of small files, not big ones


Rev = Annotated[int, Path(ge=0, le=MAX_REV)]


def _service(studio: Studio, project: str, user: User, right: str) -> RepoService:
    accounts.check_name("project", project)
    svc = RepoService(studio)
    accounts.require(studio.engine, svc.project(project), user, right)
    return svc


class ProjectInfo(BaseModel):
    project: str
    head: int
    lock_rules: list[str]
    tags: dict[str, int]
    user: str


class CommitOut(BaseModel):
    rev: int
    author: str
    time: float
    message: str
    changed: list[str]
    props: dict[str, str] = {}


class TreeOut(BaseModel):
    rev: int
    # [path, oid, size, mode, mtime] per file: compact for 20,000-file trees.
    entries: list[tuple[str, str, int, int, float]]
    grants: list[str] = Field(default_factory=list,
                              description="a read grant per entry, in the same order")


class LockOut(BaseModel):
    path: str
    owner: str
    time: float
    message: str


class LockIn(BaseModel):
    path: Text = Field(min_length=1, max_length=1000)
    message: Text = Field(default="", max_length=10_000)


class UnlockIn(BaseModel):
    path: Text = Field(min_length=1, max_length=1000)
    force: bool = False


class PathsIn(BaseModel):
    paths: list[Annotated[Text, Field(max_length=1000)]] = Field(max_length=100_000)


class RulesIn(BaseModel):
    patterns: list[Annotated[Text, Field(min_length=1, max_length=1000)]] = Field(
        min_length=1, max_length=1000)


class TagIn(BaseModel):
    name: Text = Field(min_length=1, max_length=64)
    rev: int | None = Field(default=None, ge=1, le=MAX_REV)


class NewFile(BaseModel):
    oid: str = OID
    size: int = Field(ge=0, le=2**62)
    mode: int = Field(default=0o644, ge=0, le=0o177777)  # 0o40755: an empty folder
    mtime: float = Field(default=0.0, allow_inf_nan=False)


class ChangeIn(BaseModel):
    path: Text = Field(min_length=1, max_length=1000)
    # The id the committer started from; None: it had no file there.
    old: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    new: NewFile | None = None  # None removes the path
    grant: str | None = Field(default=None, max_length=64,
                              description="the author's read grant for new.oid")


class ImportIn(BaseModel):
    rev: int = Field(ge=1, le=MAX_REV)
    author: Text = Field(max_length=128)
    time: float = Field(allow_inf_nan=False)
    props: dict[Annotated[Text, Field(max_length=128)],
                Annotated[Text, Field(max_length=10_000)]] = Field(default={}, max_length=100)


class CommitIn(BaseModel):
    message: Text = Field(max_length=100_000)
    changes: list[ChangeIn] = Field(max_length=1_000_000)
    import_: ImportIn | None = Field(default=None, alias="import")


class CommitDone(BaseModel):
    rev: int


@router.get("/{project}", response_model=ProjectInfo)
def project_info(project: str, user: Person, studio: StudioDep) -> ProjectInfo:
    svc = _service(studio, project, user, "read")
    return ProjectInfo(project=project, head=svc.head(project),
                       lock_rules=svc.lock_rules(project), tags=svc.tags(project),
                       user=user.name)


@router.get("/{project}/log", response_model=list[CommitOut])
def log(project: str, user: Person, studio: StudioDep,
        path: Annotated[Text | None, Query(max_length=1000)] = None,
        limit: Annotated[int | None, Query(ge=1, le=100_000)] = None) -> list[CommitOut]:
    svc = _service(studio, project, user, "read")
    return [CommitOut(rev=c.rev, author=c.author, time=c.time, message=c.message,
                      changed=c.changed, props=c.props) for c in svc.log(project, path, limit)]


@router.get("/{project}/tree/{rev}", response_model=TreeOut)
def tree(project: str, rev: Rev, user: Person, studio: StudioDep) -> TreeOut:
    svc = _service(studio, project, user, "read")
    files = list(svc.tree(project, rev).values())
    return TreeOut(rev=rev, entries=[(e.path, e.oid, e.size, e.mode, e.mtime) for e in files],
                   grants=grants_of(studio).mint_many(user.name, [e.oid for e in files]))


@router.get("/{project}/locks", response_model=list[LockOut])
def locks(project: str, user: Person, studio: StudioDep) -> list[LockOut]:
    svc = _service(studio, project, user, "read")
    return [LockOut(path=lk.path, owner=lk.owner, time=lk.time, message=lk.message)
            for lk in svc.locks(project).values()]


@router.post("/{project}/locks", response_model=LockOut)
def lock(project: str, body: LockIn, user: Person, studio: StudioDep) -> LockOut:
    svc = _service(studio, project, user, "write")
    lk = svc.lock(project, body.path, user.name, body.message)
    return LockOut(path=lk.path, owner=lk.owner, time=lk.time, message=lk.message)


@router.post("/{project}/unlock", response_model=LockOut)
def unlock(project: str, body: UnlockIn, user: Person, studio: StudioDep) -> LockOut:
    svc = _service(studio, project, user, "write")
    lk = svc.unlock(project, body.path, user.name, body.force)
    return LockOut(path=lk.path, owner=lk.owner, time=lk.time, message=lk.message)


@router.post("/{project}/locks/release", status_code=204)
def release(project: str, body: PathsIn, user: Person, studio: StudioDep) -> None:
    svc = _service(studio, project, user, "write")
    svc.release_locks(project, user.name, body.paths)


@router.post("/{project}/lock-rules", response_model=list[str])
def add_lock_rules(project: str, body: RulesIn, user: Person, studio: StudioDep) -> list[str]:
    svc = _service(studio, project, user, "write")
    svc.add_lock_rules(project, body.patterns)
    return svc.lock_rules(project)


@router.get("/{project}/tags", response_model=dict[str, int])
def tags(project: str, user: Person, studio: StudioDep) -> dict[str, int]:
    return _service(studio, project, user, "read").tags(project)


@router.post("/{project}/tags", response_model=dict[str, int])
def set_tag(project: str, body: TagIn, user: Person, studio: StudioDep) -> dict[str, int]:
    svc = _service(studio, project, user, "write")
    svc.set_tag(project, body.name, body.rev)
    return svc.tags(project)


@router.post("/{project}/commits", response_model=CommitDone, status_code=201)
def commit(project: str, body: CommitIn, user: Person, studio: StudioDep) -> CommitDone:
    svc = _service(studio, project, user, "write")
    changes = [Change(c.path, c.old, None if c.new is None else Entry(
        c.path, c.new.oid, c.new.size, c.new.mode, c.new.mtime)) for c in body.changes]
    # (an empty folder names the empty folder object, which is never stored)
    missing = [c.path for c in changes if c.new is not None and not c.new.is_dir
               and not studio.store.has(c.new.oid)]
    if missing:  # a client must upload the bytes before naming them in a commit
        raise BadInput("the store has no content for: " + ", ".join(missing[:10]))
    signer = grants_of(studio)
    for c in body.changes:  # else a commit would turn any known id into a readable file
        if c.new is not None and c.new.mode & 0o170000 != 0o040000:  # folders name no bytes
            signer.require(user, c.new.oid, c.grant)
    if body.import_ is not None:
        require_role(user, Role.ADMIN)
        imp = body.import_
        from vstudio.repo.service import ANY

        changes = [Change(c.path, ANY, c.new) for c in changes]
        rev = svc.commit(project, imp.author, body.message, changes, when=imp.time,
                         rev=imp.rev, allow_empty=True, props=imp.props, keep_empty=True)
    else:
        rev = svc.commit(project, user.name, body.message, changes)
    return CommitDone(rev=rev)


class BlobsIn(BaseModel):
    ids: list[Annotated[str, OID]] = Field(max_length=BLOBS_MAX_IDS)
    grants: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=BLOBS_MAX_IDS,
        description="a read grant per id, in the same order")


@router.post("/{project}/blobs", response_class=Response,
             responses={200: {"content": {"application/octet-stream": {}}}})
def blobs(project: str, body: BlobsIn, user: Person, studio: StudioDep) -> Response:
    """Many small files in one answer (a checkout of 20,000 files needs few requests):
    for each id in order, its length (uint64 little-endian) then its bytes. The client
    checks every file against its id."""
    _service(studio, project, user, "read")
    import struct

    signer = grants_of(studio)
    grants = body.grants + [""] * (len(body.ids) - len(body.grants))
    for oid, grant in zip(body.ids, grants, strict=False):
        signer.require(user, oid, grant)
    store = studio.store
    total = sum(store.size(oid) for oid in body.ids)  # a missing id: 404 before any read
    if total > BLOBS_MAX_BYTES:
        raise BadInput(f"{total} bytes asked in one request; at most {BLOBS_MAX_BYTES}: "
                       "fetch big files one by one")
    parts: list[bytes] = []
    for oid in body.ids:
        data = store.get_bytes(oid)
        parts.append(struct.pack("<Q", len(data)))
        parts.append(data)
    return Response(b"".join(parts), media_type="application/octet-stream")


class PutOut(BaseModel):
    ids: list[str]
    grants: list[str] = Field(default_factory=list, description="a read grant per id")


@router.post("/{project}/blobs/put", response_model=PutOut)
async def put_blobs(project: str, request: Request, user: Person,
                    studio: StudioDep) -> PutOut:
    """Many small files stored in one request (a commit of 20,000 files): the body is,
    per file, its length (uint64 little-endian) then its bytes; the answer their ids,
    which the client compares with its own."""
    from starlette.concurrency import run_in_threadpool

    _service(studio, project, user, "write")
    body = bytearray()
    async for block in request.stream():
        body += block
        if len(body) > BLOBS_MAX_BYTES + 8 * BLOBS_MAX_IDS:
            raise BadInput(f"more than {BLOBS_MAX_BYTES} bytes in one request")
    ids = await run_in_threadpool(_put_all, studio, bytes(body))
    return PutOut(ids=ids, grants=grants_of(studio).mint_many(user.name, ids))


def _put_all(studio: Studio, body: bytes) -> list[str]:
    import struct

    parts: list[bytes] = []
    at = 0
    while at < len(body):
        if at + 8 > len(body) or len(parts) >= BLOBS_MAX_IDS:
            raise BadInput("malformed body: give per file a uint64 length, then the bytes")
        (n,) = struct.unpack_from("<Q", body, at)
        if at + 8 + n > len(body):
            raise BadInput("malformed body: a file is shorter than its length says")
        parts.append(body[at + 8:at + 8 + n])
        at += 8 + n
    with studio.store.writer() as w:  # durable when the block ends
        return [w.put_bytes(data) for data in parts]
