"""Who am I, users and projects over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from vstudio.api.deps import (
    SESSION_COOKIE,
    CurrentUser,
    Person,
    StudioDep,
    forget_token,
    require_role,
)
from vstudio.catalog import accounts, web_sessions
from vstudio.catalog.accounts import Role
from vstudio.errors import PermissionDenied

router = APIRouter(prefix="/api", tags=["accounts"])


class UserOut(BaseModel):
    name: str
    role: str


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Role = Role.ARTIST
    password: str | None = Field(default=None, max_length=1024)


class NewUserOut(UserOut):
    token: str


class ProjectOut(BaseModel):
    name: str
    trusted: bool
    created: float


class NewProject(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    trusted: bool = False


@router.get("/me", response_model=UserOut)
def me(user: CurrentUser) -> UserOut:
    """The user behind the token."""
    return UserOut(name=user.name, role=user.role.value)


@router.get("/users", response_model=list[UserOut])
def list_users(user: Person, studio: StudioDep) -> list[UserOut]:
    require_role(user, Role.ADMIN)
    return [UserOut(name=u.name, role=u.role.value) for u in accounts.list_users(studio.engine)]


@router.post("/users", response_model=NewUserOut, status_code=201)
def add_user(body: NewUser, user: Person, studio: StudioDep) -> NewUserOut:
    require_role(user, Role.ADMIN)
    new, token = accounts.add_user(studio.engine, body.name, body.role.value, body.password)
    return NewUserOut(name=new.name, role=new.role.value, token=token)


@router.get("/projects", response_model=list[ProjectOut])
def list_projects(user: Person, studio: StudioDep) -> list[ProjectOut]:
    out = []
    for p in accounts.list_projects(studio.engine):
        if accounts.rights(studio.engine, p, user)[0]:
            out.append(ProjectOut(name=p.name, trusted=p.trusted, created=p.created))
    return out


@router.post("/projects", response_model=ProjectOut, status_code=201)
def create_project(body: NewProject, user: Person, studio: StudioDep) -> ProjectOut:
    require_role(user, Role.ADMIN, Role.ARTIST)
    if body.trusted:
        require_role(user, Role.ADMIN)
    p = accounts.create_project(studio.engine, body.name, trusted=body.trusted)
    return ProjectOut(name=p.name, trusted=p.trusted, created=p.created)


class SessionOut(BaseModel):
    id: int
    user: str
    kind: str = Field(description="token (lives until revoked) or session (a password login)")
    created: float
    expires: float | None
    label: str | None
    current: bool = Field(description="the credential of this very request")


class Ok(BaseModel):
    ok: bool


@router.get("/sessions", response_model=list[SessionOut])
async def list_sessions(
    user: Person, studio: StudioDep, request: Request,
    of: Annotated[str | None, Query(alias="user", min_length=1, max_length=64)] = None,
) -> list[SessionOut]:
    """Your live sessions and tokens; an admin's: one user's (``user=NAME``) or everyone's."""
    if not user.is_admin:
        if of not in (None, user.name):
            raise PermissionDenied("only an admin lists other users' sessions")
        of = user.name
    rows = await run_in_threadpool(web_sessions.list_sessions, studio.engine, of)
    mine = _request_token(request)
    current = (await run_in_threadpool(web_sessions.session_id_of, studio.engine, mine)
               if mine else None)
    return [SessionOut(id=r.id, user=r.user, kind=r.kind, created=r.created, expires=r.expires,
                       label=r.label, current=current is not None and current[0] == r.id)
            for r in rows]


@router.delete("/sessions/{session_id}", response_model=Ok)
async def revoke_session(session_id: Annotated[int, Path(ge=1, le=2**31 - 1)], user: Person,
                         studio: StudioDep) -> Ok:
    """End a session or revoke a token (your own; an admin: anyone's). Takes effect at once
    on this server, within 5 s on other replicas."""
    owner = None if user.is_admin else user.name
    digest = await run_in_threadpool(lambda: web_sessions.revoke(studio.engine, session_id,
                                                                 owner=owner))
    forget_token(digest)
    return Ok(ok=True)


def _request_token(request: Request) -> str | None:
    scheme, _, cred = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and cred.strip():
        return cred.strip()
    return request.cookies.get(SESSION_COOKIE)
