"""``GET /api/store/objects/{oid}/grant``: a read grant for an id the caller names.

For ``vstudio store get ID --server``: the caller knows an id but got no grant with it (it
came from a log, a script, a colleague). The grant is given when a project the caller may
read holds the object in its history; otherwise 403, the same for an unknown id.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from vstudio.api.deps import Person, StudioDep
from vstudio.grants import grants_of
from vstudio.repo.reach import reach_of
from vstudio.store.objects import parse_id

router = APIRouter(prefix="/api/store", tags=["store"])


class GrantOut(BaseModel):
    id: str
    project: str
    grant: str


@router.get("/objects/{oid}/grant", response_model=GrantOut)
async def object_grant(oid: str, studio: StudioDep, user: Person,
                       project: Annotated[str | None, Query(max_length=128)] = None) -> GrantOut:
    """A read grant for ``oid`` if a project the caller may read (``project`` only, when
    given) holds it in any revision."""
    parse_id(oid)
    name = await run_in_threadpool(reach_of(studio).project_of, user, oid, project)
    return GrantOut(id=oid, project=name, grant=grants_of(studio).mint(user.name, oid))
