"""The farm's own write engine and PostgreSQL LISTEN/NOTIFY for cross-process wake-ups."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from vstudio.catalog.db import create_engine

log = logging.getLogger("vstudio.farm")
CHANNEL = "vstudio_farm"  # work may be ready


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


class ByDialect:
    """One statement built for each dialect, picked per connection.

    A list of ids (``id_in``) is an expanding ``IN (...)`` on SQLite but ``= ANY(array)``
    on PostgreSQL: an expanding list gives the driver a new SQL text for every batch
    size, which psycopg parses afresh each time (measured: about a fifth of the claim
    and report batches' CPU on PostgreSQL); one array parameter keeps the text fixed.
    """

    def __init__(self, build: Callable[[Callable[..., Any]], Any]) -> None:
        self._sqlite = build(_in_expanding)
        self._pg = build(_any_array)

    def __call__(self, conn: Connection) -> Any:
        return self._pg if conn.dialect.name == "postgresql" else self._sqlite


def _in_expanding(col: Any, name: str = "ids") -> Any:
    return col.in_(sa.bindparam(name, expanding=True))


def _any_array(col: Any, name: str = "ids") -> Any:
    from sqlalchemy.dialects.postgresql import ARRAY

    return col == sa.any_(sa.bindparam(name, type_=ARRAY(sa.Integer)))


def bulk(conn: Connection, generic: Any, pg: Any, rows: list[dict[str, Any]],
         columns: dict[str, str], **same: Any) -> None:
    """Apply one statement to many rows.

    ``generic`` is run with ``executemany`` (SQLite). On PostgreSQL, psycopg sends an
    ``executemany`` as one statement per row; ``pg`` instead takes each of ``columns``
    (row key -> name of its array parameter) as one array and updates every row in
    one statement (``UPDATE ... FROM unnest(...)``), and ``same`` as plain parameters.
    """
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(generic, rows)
        return
    params = {array: [r[key] for r in rows] for key, array in columns.items()}
    conn.execute(pg, {**params, **same})


def notify(conn: Connection) -> None:
    """Tell other managers on this database that work may be ready (sent at commit)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_notify(:c, '')"), {"c": CHANNEL})


class Listener:
    """A thread that calls ``on_notify`` whenever any manager sends ``notify``, and
    ``on_message(channel, payload)`` for the event relay's ``channels``."""

    def __init__(self, url: str, on_notify: Callable[[], None],
                 on_message: Callable[[str, str], None] | None = None,
                 channels: Sequence[str] = ()) -> None:
        self._url = url
        self._on_notify = on_notify
        self._on_message = on_message
        self._channels = tuple(channels) if on_message else ()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="farm-listen", daemon=True)
        self.ready = threading.Event()  # set once LISTEN is in place (tests wait on it)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        import psycopg

        dsn = _dsn(self._url)
        channels = [CHANNEL, *self._channels]
        while not self._stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    for name in channels:
                        conn.execute(f"LISTEN {name}")
                    self.ready.set()
                    while not self._stop.is_set():
                        for n in conn.notifies(timeout=1.0):
                            if n.channel == CHANNEL:
                                self._on_notify()
                            elif self._on_message is not None:
                                self._on_message(n.channel, n.payload)
            except Exception as e:  # reconnect: the database may be restarting
                log.warning("farm LISTEN connection lost: %s", e)
                self._stop.wait(1.0)


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


class Relay:
    """Sends (channel, payload) notifications from a thread of its own, in batches.

    Events are relayed after their change is committed and never inside the farm's
    write transactions, so the hot path pays only for a queue put.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._q: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="farm-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._q.put(None)

    def send(self, channel: str, payload: str) -> None:
        self._q.put((channel, payload))

    def _run(self) -> None:
        import psycopg

        conn: Any = None
        while True:
            item = self._q.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < 500:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._q.put(None)
                    break
                batch.append(nxt)
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(_dsn(self._url), autocommit=True)
                with conn.transaction():  # one round trip's worth of commits for the batch
                    for channel, payload in batch:
                        conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))
            except Exception as e:  # events are best effort: a reconnect drops a batch
                log.warning("farm event relay failed: %s", e)
                conn = None
        if conn is not None:
            conn.close()
