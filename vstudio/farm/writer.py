"""One writer thread that runs farm changes in batched transactions.

Every state change (claims, reports, submits, actions) is queued here; the thread takes
everything waiting, runs it in one transaction and commits before any caller hears back,
so an acknowledged change is durable. Batching is what makes thousands of claims and
reports per second possible: one commit (and on SQLite one write lock) per batch.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from vstudio.errors import BackendUnavailable, VStudioError

log = logging.getLogger("vstudio.farm")

Fn = Callable[[Connection], Any]
ClaimFn = Callable[[Connection, list[int]], list[Any]]
_STOP = object()


class _Op:
    __slots__ = ("arg", "fn", "future")

    def __init__(self, fn: Fn | None, arg: int | None) -> None:
        self.fn = fn
        self.arg = arg
        self.future: Future[Any] = Future()


class BatchWriter:
    def __init__(self, engine: Engine, claim: ClaimFn,
                 on_commit: Callable[[list[Any]], None], max_batch: int = 500) -> None:
        self._engine = engine
        self._claim = claim
        self._on_commit = on_commit
        self._max = max_batch
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="farm-writer", daemon=True)
        self.batches = 0
        self.ops = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._q.put(_STOP)
        self._thread.join(10)

    def call(self, fn: Fn) -> Future[Any]:
        """Run ``fn(conn)`` in the next batch's transaction."""
        op = _Op(fn, None)
        self._q.put(op)
        return op.future

    def claim(self, worker_id: int) -> Future[Any]:
        op = _Op(None, worker_id)
        self._q.put(op)
        return op.future

    def _loop(self) -> None:
        while True:
            first = self._q.get()
            if first is _STOP:
                return
            ops = [first]
            stop = False
            while len(ops) < self._max:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                ops.append(nxt)
            self._run(ops)
            if stop:
                return

    def _run(self, ops: list[_Op]) -> None:
        try:
            with self._engine.begin() as conn:
                results = self._execute(conn, ops)
        except Exception as e:
            if len(ops) > 1:  # isolate the op that broke the batch
                for op in ops:
                    self._run([op])
                return
            if not isinstance(e, VStudioError):
                log.exception("farm write failed")
                if isinstance(e, sa.exc.OperationalError):
                    e = BackendUnavailable(f"catalog database error: {e.orig}")
            ops[0].future.set_exception(e)
            return
        self.batches += 1
        self.ops += len(ops)
        committed = []
        for op, (ok, value) in zip(ops, results, strict=True):
            if ok:
                op.future.set_result(value)
                committed.append(value)
            else:
                op.future.set_exception(value)
        try:
            self._on_commit(committed)
        except Exception:  # events are best effort; the data is committed
            log.exception("farm event publishing failed")

    def _execute(self, conn: Connection, ops: list[_Op]) -> list[tuple[bool, Any]]:
        results: list[tuple[bool, Any]] = [(True, None)] * len(ops)
        claims = [i for i, op in enumerate(ops) if op.fn is None]
        if claims:
            got = self._claim(conn, [ops[i].arg for i in claims])  # type: ignore[misc]
            for i, value in zip(claims, got, strict=True):
                results[i] = (True, value)
        for i, op in enumerate(ops):
            if op.fn is None:
                continue
            try:
                results[i] = (True, op.fn(conn))
            except VStudioError as e:  # refused before writing anything (see farm_reports)
                results[i] = (False, e)
        return results
