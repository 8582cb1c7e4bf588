"""The object store over HTTP (``/api/store/...``), used by ``store.remote.RemoteStore``.

Uploads are deduplicated: the client cuts files into chunks itself, asks which chunks
the store lacks (``POST chunks/missing``), sends only those (``POST chunks``, a body of
``id(32) | length(u32 LE) | bytes`` records) and then the file's chunk list (``POST
files``, with the transform and its parameters for a format-aware chunker's pieces); the
server checks every chunk's hash and that the list rebuilds to the file id.
Artists, workers and admins upload. Reading an object needs a read grant
(``vstudio.api.grants``) from a route that knows the caller may read it, or an admin.
Refs are written by the server's own repository and farm code only: over HTTP an admin
reads them, and people read and write only the studio's render cache (``render/SCOPE/``,
``render-chunks/SCOPE/``) by their rights on its scope (``vstudio.render.cachescope``: a
project's entries by the project's read and write rights, a user's by that user), naming
only objects they hold grants for. gc and check are for admins.
"""

from __future__ import annotations

import base64
import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field, ValidationError

from vstudio.api.deps import CurrentUser, Person, StudioDep, require_role
from vstudio.api.possession import chunk_subject, proven, same_pieces, self_contained
from vstudio.catalog import accounts
from vstudio.catalog.accounts import Role, User
from vstudio.errors import BadInput, CorruptObject, NotFound, PermissionDenied
from vstudio.grants import grants_of
from vstudio.render import cachescope
from vstudio.store import format as fmt
from vstudio.store import maintenance
from vstudio.store.objects import check_ref_name, parse_id
from vstudio.studio import Studio

router = APIRouter(prefix="/api/store", tags=["store"])

MAX_UPLOAD = 64 << 20  # one chunk upload request
MAX_IDS = 20_000


def writer_user(user: CurrentUser) -> User:
    require_role(user, Role.ADMIN, Role.ARTIST, Role.WORKER)
    return user


def admin_user(user: CurrentUser) -> User:
    require_role(user, Role.ADMIN)
    return user


Writer = Annotated[User, Depends(writer_user)]
Admin = Annotated[User, Depends(admin_user)]


class Ids(BaseModel):
    ids: list[str] = Field(max_length=MAX_IDS)


class PieceIn(BaseModel):
    id: str | None = Field(default=None, description="chunk id (hex)")
    length: int = Field(ge=0)
    inline: str | None = Field(default=None, description="base64 bytes kept in the recipe")


class FileIn(BaseModel):
    id: str
    pieces: list[PieceIn] = Field(max_length=10_000_000)
    transform: str | None = Field(default=None, max_length=64,
                                  description="how the pieces rebuild the file (e.g. blend)")
    params: dict[str, Any] = Field(default_factory=dict, description="the transform's own")
    chunker: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9._-]{0,31}$",
                                description="the chunker that cut the pieces (for stats)")
    proofs: dict[str, dict[str, str]] = Field(
        default_factory=dict, max_length=10_000_000,
        description="per chunk id: {receipt} from POST chunks, or {nonce, mac} (BLAKE3 "
                    "of its bytes keyed by the nonce of POST chunks/missing)")


class StoreDamaged(CorruptObject):
    """The server's store holds damaged data: an admin should run 'vstudio store check'."""

    http_status = 502  # the storage behind the server failed, not the request


@contextmanager
def _damage_is_not_your_fault() -> Iterator[None]:
    try:
        yield
    except CorruptObject as e:
        raise StoreDamaged(e.message) from None


def _ids(raw: list[str]) -> list[bytes]:
    return [parse_id(x) for x in raw]


Grant = Annotated[str | None, Query(alias="g", max_length=64,
                                    description="a read grant for the object")]


def _readable(studio: Any, user: User, oid: str, grant: str | None) -> None:
    parse_id(oid)
    grants_of(studio).require(user, oid, grant)


@router.post("/chunks/missing")
def chunks_missing(body: Ids, studio: StudioDep, user: Writer) -> dict[str, Any]:
    """Which of these chunk ids the store does not hold yet, and a nonce to prove, in
    ``POST files``, that the client holds the bytes of the others
    (``vstudio.api.possession``)."""
    store: Any = studio.store
    return {"missing": [k.hex() for k in store.missing(_ids(body.ids))],
            "nonce": grants_of(studio).mint(user.name, "nonce")}


def _records(body: bytes) -> Iterator[tuple[bytes, bytes]]:
    pos = 0
    while pos < len(body):
        if pos + 36 > len(body):
            raise BadInput("truncated chunk record")
        key = body[pos:pos + 32]
        (n,) = struct.unpack_from("<I", body, pos + 32)
        data = body[pos + 36:pos + 36 + n]
        if len(data) != n:
            raise BadInput("truncated chunk record")
        yield key, data
        pos += 36 + n


@router.post("/chunks", openapi_extra={"requestBody": {"content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def chunks_upload(request: Request, studio: StudioDep, user: Writer,
                        chunker: Annotated[str, Query(pattern=r"^[a-z0-9][a-z0-9._-]{0,31}$")]
                        = "fastcdc") -> dict[str, Any]:
    """Store chunks: a body of ``id(32) | length(u32 LE) | bytes`` records. The answer
    has a receipt per chunk: proof, in ``POST files``, that this user sent its bytes."""
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > MAX_UPLOAD:
            raise BadInput(f"upload larger than {MAX_UPLOAD} bytes: send fewer chunks at once")

    keys: list[str] = []

    def records() -> Iterator[tuple[bytes, bytes]]:
        for key, data in _records(bytes(body)):
            keys.append(key.hex())
            yield key, data

    def store_them() -> int:
        store: Any = studio.store
        with store.writer() as w:
            return int(w.put_chunks(records(), chunker))

    stored = await run_in_threadpool(store_them)  # every chunk checked against its id
    signer = grants_of(studio)
    return {"stored": stored,
            "receipts": {k: signer.mint(user.name, chunk_subject(k)) for k in keys}}


@router.post("/files")
def file_from_chunks(body: FileIn, studio: StudioDep, user: Writer) -> dict[str, str]:
    """Record a file made of chunks the store holds; the server checks it rebuilds to id.
    The answer carries a read grant of the file for an uploader who proved they hold its
    bytes (``proofs``: see ``vstudio.api.possession``)."""
    oid, entries, existed = _file_from_chunks(body, studio)
    if not proven(studio, user, oid, entries, existed, body.transform, body.proofs):
        return {"id": oid}
    return {"id": oid, "grant": grants_of(studio).mint(user.name, oid)}


def _file_from_chunks(body: FileIn, studio: Studio) -> tuple[str, list[fmt.Entry], bool]:
    """The file recorded, its pieces, and whether the store had it already under pieces
    not checked now (only the same ones, or pieces that could rebuild it from itself)."""
    entries = _entries(body)
    store: Any = studio.store
    if store.has(body.id) and (same_pieces(store, body.id, entries, body.transform)
                               or not self_contained(body.params)):
        return body.id, entries, True
    # New, or stored under other pieces: the same bytes cut by another chunker (a small
    # .blend committed with FastCDC, put again by a submit with the .blend chunker). Those
    # pieces are rebuilt and checked here, as for a new file, so proof of holding them is
    # proof of holding the file (the stored recipe is kept).
    return _record_file(body, studio, entries), entries, False


def _entries(body: FileIn) -> list[fmt.Entry]:
    parse_id(body.id)
    entries = []
    for p in body.pieces:
        if p.inline is not None:
            try:
                data = base64.b64decode(p.inline, validate=True)
            except ValueError:
                raise BadInput("an inline piece is not valid base64") from None
            entries.append(fmt.Entry(fmt.E_INLINE, len(data), data=data))
        elif p.id is not None:
            entries.append(fmt.Entry(fmt.E_CHUNK, p.length, id=parse_id(p.id)))
        else:
            raise BadInput("each piece needs an id or inline bytes")
    return entries


def _record_file(body: FileIn, studio: Studio, entries: list[fmt.Entry]) -> str:
    store: Any = studio.store
    chunker = body.chunker or "fastcdc"
    with store.writer() as w:
        if body.transform:  # a format-aware chunker's pieces (e.g. a .blend's blocks)
            if len(body.params) > 1000 or len(str(body.params)) > 1 << 20:
                raise BadInput("the transform's parameters are too large")
            return str(w.put_recipe(body.id, entries, chunker, body.transform, body.params))
        if not entries:  # the empty file
            return str(w.put_bytes(b""))
        if len(entries) == 1 and entries[0].type == fmt.E_CHUNK:
            if entries[0].id.hex() != body.id:
                raise BadInput("a one-chunk file has the chunk's id")
            if w.missing([entries[0].id]):
                raise BadInput(f"chunk {body.id} is missing: upload it first")
            w.mark_file(entries[0].id)
            return body.id
        return str(w.put_recipe(body.id, entries, chunker))


@router.get("/objects/{oid}/size")
def object_size(oid: str, studio: StudioDep, user: CurrentUser,
                g: Grant = None) -> dict[str, int]:
    _readable(studio, user, oid, g)
    return {"size": studio.store.size(oid)}


@router.post("/objects/has")
def objects_has(body: Ids, studio: StudioDep, _: Writer) -> dict[str, list[str]]:
    """Which of these file ids the store holds."""
    _ids(body.ids)
    return {"present": [x for x in body.ids if studio.store.has(x)]}


@router.get("/objects/{oid}/plan")
def object_plan(oid: str, studio: StudioDep, user: CurrentUser,
                g: Grant = None, ranged: bool = False) -> dict[str, Any]:
    """The object's runs of chunks, each with a pre-signed bucket URL for its byte range
    only, so the bytes go straight from the bucket to the client (which checks every
    chunk's hash); ``{"direct": false}`` when the store cannot (a local folder,
    encryption), or to a client that does not say ``ranged=1`` (older ones expect
    whole-pack URLs: they read through the server instead)."""
    _readable(studio, user, oid, g)
    store: Any = studio.store
    with _damage_is_not_your_fault():
        plan = store.read_plan(oid) if ranged else None
    if plan is None:
        store.size(oid)  # 404 for an unknown id
        return {"direct": False}
    return {"direct": True, **plan}


@router.get("/objects/{oid}", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
def object_get(oid: str, studio: StudioDep, user: CurrentUser,
               offset: Annotated[int, Query(ge=0)] = 0,
               length: Annotated[int | None, Query(ge=0)] = None,
               g: Grant = None) -> Response:
    """The object's bytes, or ``length`` bytes from ``offset``."""
    _readable(studio, user, oid, g)
    store: Any = studio.store
    size = store.size(oid)
    if offset or length is not None:
        n = size - offset if length is None else length
        with _damage_is_not_your_fault():
            data = store.read_range(oid, offset, max(0, n))
        return Response(data, media_type="application/octet-stream")
    return StreamingResponse(store.iter_file(oid), media_type="application/octet-stream",
                             headers={"Content-Length": str(size), "X-Object-Id": oid})


@router.get("/objects/{oid}/pieces", responses={200: {"content": {
    "application/octet-stream": {}}}})
def object_pieces(oid: str, studio: StudioDep, user: CurrentUser,
                  offset: Annotated[int, Query(ge=0)] = 0,
                  length: Annotated[int, Query(ge=0, le=MAX_UPLOAD)] = MAX_UPLOAD,
                  g: Grant = None) -> Response:
    """The whole chunks covering a range, with their ids, so the client checks each one
    before slicing the range out (``store.reads.range_pieces``); 409 for a transformed
    file (a compressed .blend), whose bytes are not its pieces'."""
    from vstudio.errors import Conflict
    from vstudio.store.reads import range_pieces

    _readable(studio, user, oid, g)
    studio.store.size(oid)  # 404 for an unknown id
    with _damage_is_not_your_fault():
        body = range_pieces(studio.store, oid, offset, length)  # type: ignore[arg-type]
    if body is None:
        raise Conflict(f"{oid} is rebuilt by a transform: read its range whole")
    return Response(body, media_type="application/octet-stream")


_HIDDEN = ("server/",)  # the grant key: never served
_HEX = re.compile(rb"[0-9a-f]{64}")


def _named_ids(name: str, data: bytes) -> list[str]:
    """The object ids a ref's bytes name. A render manifest names its own render key (the
    last part of the ref's name), which is no object: it needs no grant and earns none."""
    own = name.rsplit("/", 1)[-1]
    return sorted({m.decode() for m in _HEX.findall(data)} - {own})


def _may(studio: Studio, user: User, scope: cachescope.Scope, write: bool) -> bool:
    """Whether ``user`` may read (or write) the render cache entries of ``scope``: a
    project's by the project's rights (as its repository routes), a user's by that user
    only; admins all; workers none (farm outputs are recorded by the submitting client)."""
    if user.is_admin:
        return True
    if user.role is Role.WORKER:
        return False
    if scope.kind == cachescope.USER:
        return user.name == scope.name and (not write or user.role is Role.ARTIST)
    can_read, can_write = accounts.rights(studio.engine,
                                          accounts.get_project(studio.engine, scope.name), user)
    return can_write if write else can_read


def _ref_access(studio: Studio, user: User, name: str, write: bool = False) -> str:
    """``name`` checked, or ``PermissionDenied``: refs other than the render cache are the
    server's own (revisions, tags, locks), written only by its repository code; a render
    cache ref is read and written by the rights on its scope (``cachescope``)."""
    if write:
        check_ref_name(name)
    if name.startswith(_HIDDEN):
        raise PermissionDenied("this ref is the server's own")
    if not cachescope.is_cache(name):
        if write:
            raise PermissionDenied("refs are written by the server's repository and farm "
                                   "code; over HTTP only the render cache (render/, "
                                   "render-chunks/) is")
        if not user.is_admin:
            raise PermissionDenied("reading refs needs the admin role (artists read the "
                                   "render cache: render/SCOPE/, render-chunks/SCOPE/)")
        return name
    scope = cachescope.of_name(name)
    if scope is None:
        if user.is_admin:
            return name
        raise PermissionDenied(f"{name!r} names no scope: render cache refs are "
                               "render/p.PROJECT/KEY or render/u.USER/KEY (unscoped ones are "
                               "an admin's)")
    if not _may(studio, user, scope, write):
        what = (f"project {scope.name!r}" if scope.kind == cachescope.PROJECT
                else f"user {scope.name!r}")
        raise PermissionDenied(f"user {user.name!r} may not {'write' if write else 'read'} "
                               f"the render cache of {what}")
    return name


@router.get("/refs")
def refs_list(studio: StudioDep, user: CurrentUser, prefix: str = "") -> dict[str, list[str]]:
    """Ref names starting with ``prefix``; under the render cache, of the scopes the caller
    may read (a prefix naming one scope needs the right to read it)."""
    if user.role is Role.WORKER:
        raise PermissionDenied("a worker token can only take and report work")
    whole = user.is_admin or not cachescope.is_cache(prefix) or cachescope.names_a_scope(prefix)
    if whole:
        _ref_access(studio, user, prefix)
    names = [r for r in studio.store.list_refs(prefix) if not r.startswith(_HIDDEN)]
    if whole:
        return {"refs": names}
    readable: dict[str, bool] = {}

    def ok(ref: str) -> bool:
        scope = cachescope.of_name(ref)
        if scope is None:
            return False
        if str(scope) not in readable:
            try:
                readable[str(scope)] = _may(studio, user, scope, False)
            except NotFound:  # a project removed since: its entries are nobody's now
                readable[str(scope)] = False
        return readable[str(scope)]

    return {"refs": [r for r in names if ok(r)]}


@router.get("/refs/{name:path}", responses={200: {"content": {
    "application/octet-stream": {}}}})
def ref_get(name: str, studio: StudioDep, user: CurrentUser,
            grants: bool = False) -> Response:
    """The ref's bytes; ``grants=true``: JSON with the bytes (base64) and a read grant for
    each object id they name (render cache refs name only objects their writer could read)."""
    data = studio.store.get_ref(_ref_access(studio, user, name))
    if not grants:
        return Response(data, media_type="application/octet-stream")
    ids = _named_ids(name, data)
    signed = dict(zip(ids, grants_of(studio).mint_many(user.name, ids), strict=True))
    return JSONResponse({"data": base64.b64encode(data).decode(), "grants": signed})


class RefIn(BaseModel):
    data: str = Field(max_length=24 << 20, description="the ref's bytes, base64")
    grants: dict[str, str] = Field(default_factory=dict, max_length=1_000_000,
                                   description="a read grant per object id the bytes name")


@router.put("/refs/{name:path}", openapi_extra={"requestBody": {"content": {
    "application/json": {"schema": RefIn.model_json_schema()}}}})
async def ref_put(name: str, request: Request, studio: StudioDep, user: Writer,
                  create: bool = False) -> dict[str, bool]:
    """Set a render cache ref; with ``create=true`` only if it does not exist. The body is
    ``{"data": base64, "grants": {id: grant}}``: every object id the bytes name needs the
    caller's read grant, so a ref never hands out objects its writer could not read."""
    _ref_access(studio, user, name, write=True)
    raw = await request.body()
    if len(raw) > 24 << 20:
        raise BadInput("a ref holds at most 16 MiB")
    try:
        body = RefIn.model_validate_json(raw)
        data = base64.b64decode(body.data, validate=True)
    except (ValidationError, ValueError):
        raise BadInput('send {"data": BASE64, "grants": {ID: GRANT}} as JSON') from None
    if len(data) > 16 << 20:
        raise BadInput("a ref holds at most 16 MiB")
    signer = grants_of(studio)
    for oid in _named_ids(name, data):
        signer.require(user, oid, body.grants.get(oid))
    if create:
        return {"created": await run_in_threadpool(studio.store.create_ref, name, data)}
    await run_in_threadpool(studio.store.put_ref, name, data)
    return {"created": True}


@router.delete("/refs/{name:path}")
def ref_delete(name: str, studio: StudioDep, user: Writer) -> dict[str, bool]:
    studio.store.delete_ref(_ref_access(studio, user, name, write=True))
    return {"deleted": True}


@router.get("/stats")
def store_stats(studio: StudioDep, _: Person) -> dict[str, Any]:
    return maintenance.stats(studio.store)


class GcIn(BaseModel):
    live: list[str] = Field(default_factory=list, max_length=1_000_000)
    grace_seconds: float = Field(default=3600.0, ge=0)


@router.post("/gc")
def store_gc(body: GcIn, studio: StudioDep, _: Admin) -> dict[str, int]:
    _ids(body.live)
    return maintenance.gc(studio.store, body.live, body.grace_seconds)


@router.post("/check")
def store_check(studio: StudioDep, _: Admin, read_data: bool = False) -> dict[str, Any]:
    problems = maintenance.check(studio.store, read_data)
    return {"ok": not problems, "problems": problems}
