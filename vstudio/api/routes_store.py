"""The object store over HTTP (``/api/store/...``), used by ``store.remote.RemoteStore``.

Uploads are deduplicated: the client cuts files into chunks itself, asks which chunks
the store lacks (``POST chunks/missing``), sends only those (``POST chunks``, a body of
``id(32) | length(u32 LE) | bytes`` records) and then the file's chunk list (``POST
files``, with the transform and its parameters for a format-aware chunker's pieces); the
server checks every chunk's hash and that the list rebuilds to the file id.
Artists, workers and admins upload. Reading an object needs a read grant
(``vstudio.api.grants``) from a route that knows the caller may read it, or an admin.
Refs (``/api/store/refs``) are served by ``api.routes_refs``. gc and check are for admins.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from vstudio.api.deps import CurrentUser, Person, StudioDep, require_role
from vstudio.api.possession import chunk_subject, proven, same_pieces, self_contained
from vstudio.catalog.accounts import Role, User
from vstudio.errors import BadInput, CorruptObject
from vstudio.grants import grants_of
from vstudio.render import cachescope
from vstudio.store import format as fmt
from vstudio.store import maintenance
from vstudio.store.objects import parse_id
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


@router.get("/stats")
def store_stats(studio: StudioDep, _: Person) -> dict[str, Any]:
    return maintenance.stats(studio.store)


class GcIn(BaseModel):
    live: list[str] = Field(default_factory=list, max_length=1_000_000)
    grace_seconds: float = Field(default=3600.0, ge=0)


@router.post("/gc")
def store_gc(body: GcIn, studio: StudioDep, _: Admin) -> dict[str, int]:
    """As ``vstudio store gc``: render cache refs from before scopes go first."""
    _ids(body.live)
    legacy = cachescope.drop_unscoped(studio.store)
    result = maintenance.gc(studio.store, body.live, body.grace_seconds)
    return {**result, "unscoped_render_refs_deleted": len(legacy)}


@router.post("/check")
def store_check(studio: StudioDep, _: Admin, read_data: bool = False) -> dict[str, Any]:
    problems = maintenance.check(studio.store, read_data)
    return {"ok": not problems, "problems": problems}
