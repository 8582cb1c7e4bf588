"""Engine creation and schema migration for the catalog database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from vstudio.errors import BackendUnavailable, BadInput

MIGRATIONS = Path(__file__).parent / "migrations"


def _normalise(url: str) -> str:
    # Users write postgresql://; SQLAlchemy would pick psycopg2, which we do not ship.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers never block the single writer; NORMAL sync is durable in WAL mode
    # against process crashes (kill -9), which is what the manager must survive.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def create_engine(url: str, **kw: Any) -> Engine:
    url = _normalise(url)
    try:
        if url.startswith("sqlite"):
            engine = sa.create_engine(url, connect_args={"check_same_thread": False,
                                                         "timeout": 30}, **kw)
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        elif url.startswith("postgresql"):
            kw.setdefault("pool_size", 10)
            kw.setdefault("max_overflow", 20)
            engine = sa.create_engine(url, pool_pre_ping=True, **kw)
        else:
            raise BadInput(f"unsupported catalog URL {url!r}: use sqlite:///PATH or postgresql://...")
    except sa.exc.ArgumentError as e:
        raise BadInput(f"bad catalog URL {url!r}: {e}") from None
    return engine


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision of every migration branch."""
    from alembic import command

    cfg = _alembic_config(engine)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")
    except sa.exc.OperationalError as e:
        raise BackendUnavailable(f"cannot reach the catalog database: {e.orig}") from None


def open_catalog(url: str, *, upgrade: bool = True) -> Engine:
    engine = create_engine(url)
    if upgrade:
        migrate(engine)
    return engine
