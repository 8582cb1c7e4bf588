"""The farm's own write engine and PostgreSQL LISTEN/NOTIFY for cross-process wake-ups."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from vstudio.catalog.db import create_engine

log = logging.getLogger("vstudio.farm")
CHANNEL = "vstudio_farm"


def write_engine(url: str) -> Engine:
    """An engine for the farm's single writer thread.

    On SQLite, transactions start with BEGIN IMMEDIATE: the claim reads and then writes,
    and a deferred transaction could not upgrade to a write lock while another process
    (a CLI, a second server) holds one; IMMEDIATE waits for the lock up front instead.
    """
    engine = create_engine(url, pool_size=2) if url.startswith("postgres") else create_engine(url)
    if engine.dialect.name == "sqlite":
        @sa.event.listens_for(engine, "connect")
        def _no_implicit(dbapi_conn: Any, _rec: Any) -> None:
            dbapi_conn.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _immediate(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
    return engine


def notify(conn: Connection) -> None:
    """Tell other managers on this database that work may be ready (sent at commit)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_notify(:c, '')"), {"c": CHANNEL})


class Listener:
    """A thread that calls ``on_notify`` whenever any manager sends ``notify``."""

    def __init__(self, url: str, on_notify: Callable[[], None]) -> None:
        self._url = url
        self._on_notify = on_notify
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="farm-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        import psycopg

        dsn = self._url.replace("postgresql+psycopg://", "postgresql://")
        while not self._stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self._on_notify()
            except Exception as e:  # reconnect: the database may be restarting
                log.warning("farm LISTEN connection lost: %s", e)
                self._stop.wait(1.0)
