"""Refs over HTTP (``/api/store/refs``): the render cache for people, the rest for admins.

Refs are written by the server's own repository and farm code only: over HTTP an admin
reads them, and people read and write only the studio's render cache (``render/SCOPE/``,
``render-chunks/SCOPE/``) by their rights on its scope (``vstudio.render.cachescope``: a
project's entries by the project's read and write rights, a user's by that user), naming
only objects they hold grants for. Workers reach no ref.
"""

from __future__ import annotations

import base64
import re

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from vstudio.api.deps import CurrentUser, StudioDep
from vstudio.api.routes_store import Writer
from vstudio.catalog import accounts
from vstudio.catalog.accounts import Role, User
from vstudio.errors import BadInput, PermissionDenied
from vstudio.grants import grants_of
from vstudio.render import cachescope
from vstudio.store.objects import check_ref_name
from vstudio.studio import Studio

router = APIRouter(prefix="/api/store", tags=["store"])

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
    may read (a prefix naming one scope needs the right to read it). A cache prefix that
    names no scope (``render/``) lists only the readable scopes' prefixes, so the answer
    costs what the caller may see, not the size of the whole cache."""
    if user.role is Role.WORKER:
        raise PermissionDenied("a worker token can only take and report work")
    if user.is_admin or not cachescope.is_cache(prefix) or cachescope.names_a_scope(prefix):
        _ref_access(studio, user, prefix)
        return {"refs": [r for r in studio.store.list_refs(prefix) if not r.startswith(_HIDDEN)]}
    # the scopes ``_may`` lets this person read: readable projects, and their own
    scopes = [cachescope.project(p) for p in accounts.readable_projects(studio.engine, user)]
    scopes.append(cachescope.user(user.name))
    names = [r for p in cachescope.listing_prefixes(prefix, scopes)
             for r in studio.store.list_refs(p)]
    return {"refs": sorted(names)}


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
