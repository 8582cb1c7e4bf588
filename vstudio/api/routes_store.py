"""The object store over HTTP (``/api/store/...``), used by ``store.remote.RemoteStore``.

Uploads are deduplicated: the client cuts files into chunks itself, asks which chunks
the store lacks (``POST chunks/missing``), sends only those (``POST chunks``, a body of
``id(32) | length(u32 LE) | bytes`` records) and then the file's chunk list (``POST
files``, with the transform and its parameters for a format-aware chunker's pieces); the
server checks every chunk's hash and that the list rebuilds to the file id.
Viewers read; artists, workers and admins write; gc and check are for admins.
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

from vstudio.api.deps import CurrentUser, StudioDep, require_role
from vstudio.catalog.accounts import Role, User
from vstudio.errors import BadInput, CorruptObject
from vstudio.store import format as fmt
from vstudio.store.objects import check_ref_name, parse_id

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


@router.post("/chunks/missing")
def chunks_missing(body: Ids, studio: StudioDep, _: Writer) -> dict[str, list[str]]:
    """Which of these chunk ids the store does not hold yet."""
    store: Any = studio.store
    return {"missing": [k.hex() for k in store.missing(_ids(body.ids))]}


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
async def chunks_upload(request: Request, studio: StudioDep, _: Writer,
                        chunker: Annotated[str, Query(pattern=r"^[a-z0-9][a-z0-9._-]{0,31}$")]
                        = "fastcdc") -> dict[str, int]:
    """Store chunks: a body of ``id(32) | length(u32 LE) | bytes`` records."""
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > MAX_UPLOAD:
            raise BadInput(f"upload larger than {MAX_UPLOAD} bytes: send fewer chunks at once")

    def store_them() -> int:
        store: Any = studio.store
        with store.writer() as w:
            return int(w.put_chunks(_records(bytes(body)), chunker))

    return {"stored": await run_in_threadpool(store_them)}


@router.post("/files")
def file_from_chunks(body: FileIn, studio: StudioDep, _: Writer) -> dict[str, str]:
    """Record a file made of chunks the store holds; the server checks it rebuilds to id."""
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
    store: Any = studio.store
    if store.has(body.id):
        return {"id": body.id}
    chunker = body.chunker or "fastcdc"
    with store.writer() as w:
        if body.transform:  # a format-aware chunker's pieces (e.g. a .blend's blocks)
            if len(body.params) > 1000 or len(str(body.params)) > 1 << 20:
                raise BadInput("the transform's parameters are too large")
            return {"id": w.put_recipe(body.id, entries, chunker, body.transform,
                                       body.params)}
        if not entries:  # the empty file
            return {"id": w.put_bytes(b"")}
        if len(entries) == 1 and entries[0].type == fmt.E_CHUNK:
            if entries[0].id.hex() != body.id:
                raise BadInput("a one-chunk file has the chunk's id")
            if w.missing([entries[0].id]):
                raise BadInput(f"chunk {body.id} is missing: upload it first")
            w.mark_file(entries[0].id)
            return {"id": body.id}
        return {"id": w.put_recipe(body.id, entries, chunker)}


@router.get("/objects/{oid}/size")
def object_size(oid: str, studio: StudioDep, _: CurrentUser) -> dict[str, int]:
    return {"size": studio.store.size(oid)}


@router.post("/objects/has")
def objects_has(body: Ids, studio: StudioDep, _: CurrentUser) -> dict[str, list[str]]:
    """Which of these file ids the store holds."""
    _ids(body.ids)
    return {"present": [x for x in body.ids if studio.store.has(x)]}


@router.get("/objects/{oid}/plan")
def object_plan(oid: str, studio: StudioDep, _: CurrentUser) -> dict[str, Any]:
    """Pre-signed bucket URLs and byte ranges of the object's chunks, so the bytes go
    straight from the bucket to the client (which checks every chunk's hash);
    ``{"direct": false}`` when the store cannot (a local folder, encryption)."""
    store: Any = studio.store
    with _damage_is_not_your_fault():
        plan = store.read_plan(oid) if hasattr(store, "read_plan") else None
    if plan is None:
        store.size(oid)  # 404 for an unknown id
        return {"direct": False}
    return {"direct": True, **plan}


@router.get("/objects/{oid}", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
def object_get(oid: str, studio: StudioDep, _: CurrentUser,
               offset: Annotated[int, Query(ge=0)] = 0,
               length: Annotated[int | None, Query(ge=0)] = None) -> Response:
    """The object's bytes, or ``length`` bytes from ``offset``."""
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
def object_pieces(oid: str, studio: StudioDep, _: CurrentUser,
                  offset: Annotated[int, Query(ge=0)] = 0,
                  length: Annotated[int, Query(ge=0, le=MAX_UPLOAD)] = MAX_UPLOAD) -> Response:
    """The whole chunks covering a range, with their ids, so the client checks each one
    before slicing the range out (``store.reads.range_pieces``); 409 for a transformed
    file (a compressed .blend), whose bytes are not its pieces'."""
    from vstudio.errors import Conflict
    from vstudio.store.reads import range_pieces

    parse_id(oid)
    studio.store.size(oid)  # 404 for an unknown id
    with _damage_is_not_your_fault():
        body = range_pieces(studio.store, oid, offset, length)  # type: ignore[arg-type]
    if body is None:
        raise Conflict(f"{oid} is rebuilt by a transform: read its range whole")
    return Response(body, media_type="application/octet-stream")


@router.get("/refs")
def refs_list(studio: StudioDep, _: CurrentUser, prefix: str = "") -> dict[str, list[str]]:
    return {"refs": studio.store.list_refs(prefix)}


@router.get("/refs/{name:path}", responses={200: {"content": {
    "application/octet-stream": {}}}})
def ref_get(name: str, studio: StudioDep, _: CurrentUser) -> Response:
    return Response(studio.store.get_ref(check_ref_name(name)),
                    media_type="application/octet-stream")


@router.put("/refs/{name:path}")
async def ref_put(name: str, request: Request, studio: StudioDep, _: Writer,
                  create: bool = False) -> dict[str, bool]:
    """Set a ref to the request body; with ``create=true`` only if it does not exist."""
    check_ref_name(name)
    data = await request.body()
    if len(data) > 16 << 20:
        raise BadInput("a ref holds at most 16 MiB")
    if create:
        return {"created": await run_in_threadpool(studio.store.create_ref, name, data)}
    await run_in_threadpool(studio.store.put_ref, name, data)
    return {"created": True}


@router.delete("/refs/{name:path}")
def ref_delete(name: str, studio: StudioDep, _: Writer) -> dict[str, bool]:
    studio.store.delete_ref(check_ref_name(name))
    return {"deleted": True}


@router.get("/stats")
def store_stats(studio: StudioDep, _: CurrentUser) -> dict[str, Any]:
    store: Any = studio.store
    return dict(store.stats())


class GcIn(BaseModel):
    live: list[str] = Field(default_factory=list, max_length=1_000_000)
    grace_seconds: float = Field(default=3600.0, ge=0)


@router.post("/gc")
def store_gc(body: GcIn, studio: StudioDep, _: Admin) -> dict[str, int]:
    _ids(body.live)
    return studio.store.gc(body.live, body.grace_seconds)


@router.post("/check")
def store_check(studio: StudioDep, _: Admin, read_data: bool = False) -> dict[str, Any]:
    store: Any = studio.store
    problems = store.check(read_data)
    return {"ok": not problems, "problems": problems}
