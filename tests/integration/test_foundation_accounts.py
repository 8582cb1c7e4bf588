"""Users, tokens, projects and rights on SQLite and on the PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from vstudio.catalog import accounts
from vstudio.catalog.db import open_catalog
from vstudio.errors import AlreadyExists, BadInput, NotAuthenticated, NotFound, PermissionDenied


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> sa.Engine:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    eng = open_catalog(url)
    yield eng
    eng.dispose()


def test_migrations_create_every_table_and_are_idempotent(engine: sa.Engine) -> None:
    from vstudio.catalog.db import migrate

    migrate(engine)  # a second run is a no-op
    names = set(sa.inspect(engine).get_table_names())
    assert {"users", "tokens", "projects", "project_rights", "alembic_version"} <= names


def test_token_identifies_its_user_and_only_its_hash_is_stored(engine: sa.Engine) -> None:
    user, token = accounts.add_user(engine, "ana", "artist")
    # as the server looks a token up (``api.deps.user_for_token``): by its SHA-256
    assert accounts.token_user(engine, accounts.token_digest(token)) == (user, None)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT token_hash FROM tokens")).scalars().all()
    assert token not in stored and len(stored) == 1
    with pytest.raises(NotAuthenticated, match="invalid token"):
        accounts.token_user(engine, accounts.token_digest(token + "x"))


def test_bad_users(engine: sa.Engine) -> None:
    accounts.add_user(engine, "ana", "artist")
    with pytest.raises(AlreadyExists):
        accounts.add_user(engine, "ana", "viewer")
    with pytest.raises(BadInput, match="unknown role"):
        accounts.add_user(engine, "bob", "god")
    with pytest.raises(BadInput, match="bad user name"):
        accounts.add_user(engine, "../x", "artist")
    with pytest.raises(NotFound):
        accounts.remove_user(engine, "nobody")


def test_password_login_uses_argon2(engine: sa.Engine) -> None:
    accounts.add_user(engine, "dir", "admin", password="s3cret")
    with engine.connect() as conn:
        h = conn.execute(sa.text("SELECT password_hash FROM users")).scalar()
    assert h.startswith("$argon2")
    assert accounts.user_by_password(engine, "dir", "s3cret").name == "dir"
    with pytest.raises(NotAuthenticated):
        accounts.user_by_password(engine, "dir", "wrong")


def test_rights_open_to_artists_until_set(engine: sa.Engine) -> None:
    ana, _ = accounts.add_user(engine, "ana", "artist")
    bob, _ = accounts.add_user(engine, "bob", "artist")
    vic, _ = accounts.add_user(engine, "vic", "viewer")
    adm, _ = accounts.add_user(engine, "adm", "admin")
    p = accounts.create_project(engine, "film")
    assert accounts.rights(engine, p, ana) == (True, True)
    assert accounts.rights(engine, p, vic) == (True, False)
    accounts.set_right(engine, "film", "ana", "write", True)
    assert accounts.rights(engine, p, ana) == (True, True)
    assert accounts.rights(engine, p, bob) == (False, False)
    assert accounts.rights(engine, p, adm) == (True, True)
    with pytest.raises(PermissionDenied, match="bob"):
        accounts.require(engine, p, bob, "read")
    accounts.set_right(engine, "film", "ana", "read", False)  # revoking read revokes write
    assert accounts.rights(engine, p, ana) == (False, False)
    accounts.set_right(engine, "film", "vic", "write", True)  # a viewer never writes
    assert accounts.rights(engine, p, vic) == (True, False)


def test_projects(engine: sa.Engine) -> None:
    accounts.create_project(engine, "b")
    accounts.create_project(engine, "a", trusted=True)
    assert [(p.name, p.trusted) for p in accounts.list_projects(engine)] == [("a", True),
                                                                             ("b", False)]
    with pytest.raises(AlreadyExists):
        accounts.create_project(engine, "a")
    with pytest.raises(NotFound, match="project create"):
        accounts.get_project(engine, "zz")
