"""Who am I, users and projects over HTTP."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from vstudio.api.deps import CurrentUser, Person, StudioDep, require_role
from vstudio.catalog import accounts
from vstudio.catalog.accounts import Role

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
