"""Users, tokens, projects and per-project rights, kept in the catalog."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from vstudio.catalog.farm_tables import farm_jobs
from vstudio.catalog.tables import project_rights, projects, tokens, users
from vstudio.errors import AlreadyExists, BadInput, NotAuthenticated, NotFound, PermissionDenied

# Counts this process's changes of rights (a right set, a user or project removed), each
# counted after its commit: a cache of rights answers (``farm.refusals``) forgets what it
# knew as soon as it sees the count move; other processes' changes reach such a cache
# within its own time bound.
_rights_changes = 0


def rights_generation() -> int:
    """How many rights changes this process has committed so far."""
    return _rights_changes


def _rights_changed() -> None:
    global _rights_changes
    _rights_changes += 1


NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Role(StrEnum):
    ADMIN = "admin"  # everything, on every project and job
    ARTIST = "artist"  # reads and writes projects (unless rights say otherwise), owns jobs
    VIEWER = "viewer"  # reads only
    WORKER = "worker"  # a render node: registers, takes work, reports; nothing else


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    created: float
    trusted: bool


def check_name(kind: str, name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise BadInput(f"bad {kind} name {name!r}: use letters, digits, '_', '-', '.' "
                       "(at most 64, not starting with a symbol)")
    return name


def token_digest(token: str) -> str:
    """What the catalog keeps of a token (its SHA-256: tokens are 256-bit random)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "vst_" + secrets.token_urlsafe(32)


def add_user(engine: Engine, name: str, role: str,
             password: str | None = None) -> tuple[User, str]:
    """Create a user and its first token; return both (the token is shown only once)."""
    check_name("user", name)
    try:
        r = Role(role)
    except ValueError:
        raise BadInput(f"unknown role {role!r}: use admin, artist, viewer or worker") from None
    pw_hash = None
    if password:
        from argon2 import PasswordHasher

        pw_hash = PasswordHasher().hash(password)
    token = new_token()
    now = time.time()
    with engine.begin() as conn:
        if conn.execute(sa.select(users.c.id).where(users.c.name == name)).first():
            raise AlreadyExists(f"user {name!r} exists already")
        res = conn.execute(users.insert().values(name=name, role=r.value,
                                                 password_hash=pw_hash, created=now))
        uid = res.inserted_primary_key[0]  # type: ignore[index]
        conn.execute(tokens.insert().values(user_id=uid, token_hash=token_digest(token),
                                            created=now))
    return User(int(uid), name, r), token


def new_user_token(engine: Engine, name: str) -> str:
    token = new_token()
    with engine.begin() as conn:
        uid = conn.execute(sa.select(users.c.id).where(users.c.name == name)).scalar()
        if uid is None:
            raise NotFound(f"no user {name!r}")
        conn.execute(tokens.insert().values(user_id=uid, token_hash=token_digest(token),
                                            created=time.time()))
    return token


def list_users(engine: Engine) -> list[User]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(users.c.id, users.c.name, users.c.role)
                            .order_by(users.c.name))
        return [User(r.id, r.name, Role(r.role)) for r in rows]


def remove_user(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        uid = conn.execute(sa.select(users.c.id).where(users.c.name == name)).scalar()
        if uid is None:
            raise NotFound(f"no user {name!r}")
        conn.execute(tokens.delete().where(tokens.c.user_id == uid))
        conn.execute(project_rights.delete().where(project_rights.c.user_id == uid))
        conn.execute(users.delete().where(users.c.id == uid))
    _rights_changed()


def token_user(engine: Engine | Connection, digest: str) -> tuple[User, float | None]:
    """The user of the token with this SHA-256 and when it expires (None: never).

    An expired session is refused like an unknown token.
    """
    q = (sa.select(users.c.id, users.c.name, users.c.role, tokens.c.expires)
         .join(tokens, tokens.c.user_id == users.c.id)
         .where((tokens.c.token_hash == digest)
                & (tokens.c.expires.is_(None) | (tokens.c.expires > time.time()))))
    if isinstance(engine, Engine):
        with engine.connect() as conn:
            row = conn.execute(q).first()
    else:
        row = engine.execute(q).first()
    if row is None:
        raise NotAuthenticated("invalid token: ask an admin for a new one ('vstudio user add')"
                               " or log in again")
    return User(row.id, row.name, Role(row.role)), row.expires


def user_named(conn: Connection, name: str) -> User | None:
    """The user called ``name``, or None when there is none (any more)."""
    row = conn.execute(sa.select(users.c.id, users.c.name, users.c.role)
                       .where(users.c.name == name)).first()
    return None if row is None else User(row.id, row.name, Role(row.role))


def user_by_password(engine: Engine, name: str, password: str) -> User:
    from argon2 import PasswordHasher
    from argon2.exceptions import VerificationError

    with engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.name == name)).first()
    hasher = PasswordHasher()
    if row is None or not row.password_hash:
        # as slow as a real check, so the answer's timing does not tell who exists
        with contextlib.suppress(VerificationError):
            hasher.verify(_dummy_hash(), password)
        raise NotAuthenticated("wrong user name or password")
    try:
        hasher.verify(row.password_hash, password)
    except VerificationError:
        raise NotAuthenticated("wrong user name or password") from None
    return User(row.id, row.name, Role(row.role))


@functools.cache
def _dummy_hash() -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(secrets.token_urlsafe(16))


def create_project(engine: Engine, name: str, *, trusted: bool = False) -> Project:
    check_name("project", name)
    now = time.time()
    with engine.begin() as conn:
        if conn.execute(sa.select(projects.c.id).where(projects.c.name == name)).first():
            raise AlreadyExists(f"project {name!r} exists already")
        # Farm jobs name their project; a removed project's jobs are their owners' alone.
        # A new project of that name would hand them (and their outputs) to its readers.
        left = conn.execute(sa.select(sa.func.count()).select_from(farm_jobs)
                            .where(farm_jobs.c.project == name)).scalar_one()
        if left:
            raise AlreadyExists(
                f"project {name!r} was removed and {left} farm job(s) of it remain: delete "
                f"them first ('vstudio jobs ls --json' lists them, 'vstudio jobs delete ID') "
                "or choose another name")
        res = conn.execute(projects.insert().values(name=name, created=now, trusted=trusted,
                                                    settings="{}"))
        pid = res.inserted_primary_key[0]  # type: ignore[index]
    return Project(int(pid), name, now, trusted)


# Built once: every submit and every rights check of a busy server runs these.
_PROJECT = sa.select(projects).where(projects.c.name == sa.bindparam("name"))
_ANY_RIGHT = (sa.select(project_rights.c.user_id)
              .where(project_rights.c.project_id == sa.bindparam("pid")).limit(1))
_MY_RIGHT = sa.select(project_rights).where(
    (project_rights.c.project_id == sa.bindparam("pid"))
    & (project_rights.c.user_id == sa.bindparam("uid")))


def get_project(engine: Engine | Connection, name: str) -> Project:
    at = {"name": name}
    if isinstance(engine, Engine):
        with engine.connect() as conn:
            row = conn.execute(_PROJECT, at).first()
    else:
        row = engine.execute(_PROJECT, at).first()
    if row is None:
        raise NotFound(f"no project {name!r}: create it with 'vstudio project create {name}'")
    return Project(row.id, row.name, row.created, bool(row.trusted))


def remove_project(engine: Engine, name: str) -> None:
    """Delete a project's row; its revisions, locks, tags and rights go with it (cascade)."""
    with engine.begin() as conn:
        pid = conn.execute(sa.select(projects.c.id).where(projects.c.name == name)).scalar()
        if pid is None:
            raise NotFound(f"no project {name!r}")
        conn.execute(project_rights.delete().where(project_rights.c.project_id == pid))
        conn.execute(projects.delete().where(projects.c.id == pid))
    _rights_changed()


def list_projects(engine: Engine) -> list[Project]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(projects).order_by(projects.c.name))
        return [Project(r.id, r.name, r.created, bool(r.trusted)) for r in rows]


def set_trusted(engine: Engine, name: str, trusted: bool) -> None:
    project = get_project(engine, name)
    with engine.begin() as conn:
        conn.execute(projects.update().where(projects.c.id == project.id).values(trusted=trusted))


def set_right(engine: Engine, project_name: str, user_name: str, right: str, granted: bool) -> None:
    """Grant or revoke ``read`` or ``write``; write implies read, revoking read revokes write."""
    if right not in ("read", "write"):
        raise BadInput(f"unknown right {right!r}: use read or write")
    project = get_project(engine, project_name)
    with engine.begin() as conn:
        uid = conn.execute(sa.select(users.c.id).where(users.c.name == user_name)).scalar()
        if uid is None:
            raise NotFound(f"no user {user_name!r}")
        key = (project_rights.c.project_id == project.id) & (project_rights.c.user_id == uid)
        row = conn.execute(sa.select(project_rights).where(key)).first()
        read, write = (bool(row.can_read), bool(row.can_write)) if row else (False, False)
        if right == "write":
            write = granted
            read = read or granted
        else:
            read = granted
            write = write and granted
        if row:
            conn.execute(project_rights.update().where(key).values(can_read=read, can_write=write))
        else:
            conn.execute(project_rights.insert().values(project_id=project.id, user_id=uid,
                                                        can_read=read, can_write=write))
    _rights_changed()


def rights(engine: Engine | Connection, project: Project, user: User) -> tuple[bool, bool]:
    """(can read, can write) of ``user`` on ``project``.

    Until any right is set on a project, every artist reads and writes it and viewers
    read it; after that only the listed users do. Admins always do; workers never: they
    read only the inputs of the task they hold, by the grants the farm hands them.
    """
    if user.role is Role.ADMIN:
        return True, True
    if user.role is Role.WORKER:
        return False, False
    def run(conn: Connection) -> tuple[bool, bool]:
        if conn.execute(_ANY_RIGHT, {"pid": project.id}).first() is None:
            return True, user.role is Role.ARTIST
        row = conn.execute(_MY_RIGHT, {"pid": project.id, "uid": user.id}).first()
        if row is None:
            return False, False
        return bool(row.can_read), bool(row.can_write) and user.role is Role.ARTIST

    if isinstance(engine, Engine):
        with engine.connect() as conn:
            return run(conn)
    return run(engine)


def readable_projects(engine: Engine, user: User) -> list[str]:
    """Names of the projects ``user`` may read (as ``rights`` decides), in one query:
    those with no right set yet (for a person) and those granting the user read."""
    if user.role is Role.WORKER:
        return []
    q = sa.select(projects.c.name).order_by(projects.c.name)
    if user.role is not Role.ADMIN:
        any_right = sa.exists().where(project_rights.c.project_id == projects.c.id)
        mine = sa.exists().where((project_rights.c.project_id == projects.c.id)
                                 & (project_rights.c.user_id == user.id)
                                 & project_rights.c.can_read)
        q = q.where(~any_right | mine)
    with engine.connect() as conn:
        return list(conn.execute(q).scalars())


def require(engine: Engine | Connection, project: Project, user: User, right: str) -> None:
    can_read, can_write = rights(engine, project, user)
    ok = can_write if right == "write" else can_read
    if not ok:
        raise PermissionDenied(f"user {user.name!r} may not {right} project {project.name!r}")
