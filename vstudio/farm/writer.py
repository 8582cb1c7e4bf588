"""One writer thread that runs farm changes in batched transactions.

Every state change (claims, reports, submits, actions) is queued here; the thread takes
everything waiting, runs it in one transaction and commits before any caller hears back,
so an acknowledged change is durable. Batching is what makes thousands of claims and
reports per second possible: one commit (and on SQLite one write lock) per batch, and
claims and reports each handled as a group by one handler call.

The writer knows no database: ``begin`` opens a transaction (a context manager giving
the handle every op and handler is called with, committed when it ends cleanly) and
``refusal`` says what a database error means (``FarmDatabase`` in ``farm.ports``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Any

from vstudio.errors import BackendUnavailable, Conflict, VStudioError

log = logging.getLogger("vstudio.farm")

Fn = Callable[[Any], Any]  # called with the transaction's handle
# A group handler gets every queued argument of its kind and returns one result per
# argument (a value, or a VStudioError that refused it) plus batch-wide effects.
Handler = Callable[[Any, list[Any]], tuple[list[Any], Any]]
_STOP = object()


class _Op:
    __slots__ = ("adds_only", "arg", "fn", "future", "group", "loop", "quiet")

    def __init__(self, fn: Fn | None, group: str | None, arg: Any,
                 loop: asyncio.AbstractEventLoop | None = None, adds_only: bool = False,
                 quiet: Callable[[Any], bool] | None = None) -> None:
        self.fn = fn
        self.group = group
        self.arg = arg
        self.loop = loop
        self.adds_only = adds_only
        self.quiet = quiet  # given the op's result: it changed nothing after all
        # an asyncio future for callers on an event loop, settled a batch at a time
        self.future: Any = loop.create_future() if loop is not None else Future()


def _changed(ops: list[_Op], results: list[Any]) -> bool:
    """Whether a batch changed records that were there before (not only added some)."""
    return not all(op.adds_only or (op.quiet is not None and op.quiet(value))
                   for op, value in zip(ops, results, strict=True))


def _settle(items: list[tuple[Any, Any, bool]]) -> None:
    for fut, value, failed in items:
        if fut.done():  # an asyncio caller that gave up (request cancelled)
            continue
        if failed:
            fut.set_exception(value)
        else:
            fut.set_result(value)


class BatchWriter:
    def __init__(self, begin: Callable[[], AbstractContextManager[Any]],
                 handlers: dict[str, Handler], on_commit: Callable[[list[Any]], None],
                 refusal: Callable[[Exception], VStudioError | None],
                 max_batch: int = 1000,
                 stamp: Callable[[Any, bool], None] | None = None) -> None:
        self._begin = begin
        self._stamp = stamp  # (transaction, changed existing records): last before commit
        self._refusal = refusal
        self._handlers = handlers
        self._on_commit = on_commit
        self._max = max_batch
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="farm-writer", daemon=True)
        # Committed batches, and those of them that changed anything already there (not
        # only added new records such as a submitted job): readers cache an answer about
        # existing records while ``changes`` stands still, one about the set while
        # ``batches`` does.
        self.batches = 0
        self.changes = 0
        self.ops = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._q.put(_STOP)
        self._thread.join(10)

    def call(self, fn: Fn) -> Future[Any]:
        """Run ``fn(tx)`` in the next batch's transaction."""
        op = _Op(fn, None, None)
        self._q.put(op)
        return op.future

    def group(self, name: str, arg: Any) -> Future[Any]:
        """Hand ``arg`` to the ``name`` handler together with the others queued."""
        op = _Op(None, name, arg)
        self._q.put(op)
        return op.future

    def call_async(self, fn: Fn, *, adds_only: bool = False,
                   quiet: Callable[[Any], bool] | None = None) -> asyncio.Future[Any]:
        """``call`` for a caller on the running event loop: an awaitable future, settled
        together with the rest of its batch by one call into the loop. ``adds_only``: the
        op only inserts new records and changes none that exist (see ``changes``);
        ``quiet(result)``: whether this run of it changed nothing (a reaper's pass that
        found no lapsed lease), so cached answers stay good."""
        op = _Op(fn, None, None, asyncio.get_running_loop(), adds_only, quiet)
        self._q.put(op)
        return op.future

    def group_async(self, name: str, arg: Any, *, adds_only: bool = False
                    ) -> asyncio.Future[Any]:
        op = _Op(None, name, arg, asyncio.get_running_loop(), adds_only)
        self._q.put(op)
        return op.future

    @staticmethod
    def _finish(settled: list[tuple[_Op, Any, bool]]) -> None:
        """Hand results to their callers: thread futures directly, asyncio futures with
        one ``call_soon_threadsafe`` per loop (one wake-up of the loop per batch, not per
        request)."""
        per_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any, bool]]] = {}
        for op, value, failed in settled:
            if op.loop is None:
                if failed:
                    op.future.set_exception(value)
                else:
                    op.future.set_result(value)
            else:
                per_loop.setdefault(op.loop, []).append((op.future, value, failed))
        for loop, items in per_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, items)

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

    def _run(self, ops: list[_Op], tries: int = 3) -> None:
        try:
            with self._begin() as tx:
                results, extras = self._execute(tx, ops)
                changed = _changed(ops, results)
                if self._stamp is not None:  # last: the version row stays locked briefly
                    self._stamp(tx, changed)
        except Exception as e:
            if len(ops) > 1:  # isolate the op that broke the batch
                for op in ops:
                    self._run([op])
                return
            error: Exception = e
            if not isinstance(e, VStudioError):
                refused = self._refusal(e)
                if isinstance(refused, BackendUnavailable) and tries > 1:
                    # deadlock or serialization failure between managers: try again
                    self._run(ops, tries - 1)
                    return
                if not isinstance(refused, Conflict):  # a concurrent write is no fault
                    log.exception("farm write failed")
                error = refused or e
            self._finish([(ops[0], error, True)])
            return
        self.batches += 1
        if changed:
            self.changes += 1
        self.ops += len(ops)
        committed = list(extras)
        settled: list[tuple[_Op, Any, bool]] = []
        for op, value in zip(ops, results, strict=True):
            failed = isinstance(value, VStudioError)
            settled.append((op, value, failed))
            if not failed:
                committed.append(value)
        self._finish(settled)
        try:
            self._on_commit(committed)
        except Exception:  # events are best effort; the data is committed
            log.exception("farm event publishing failed")

    def _execute(self, tx: Any, ops: list[_Op]) -> tuple[list[Any], list[Any]]:
        results: list[Any] = [None] * len(ops)
        extras: list[Any] = []
        groups: dict[str, list[int]] = {}
        for i, op in enumerate(ops):
            if op.group is not None:
                groups.setdefault(op.group, []).append(i)
        # Reports first: a finished task frees its worker's slot for a claim in the batch.
        for name, idx in sorted(groups.items(), key=lambda kv: kv[0] != "report"):
            got, extra = self._handlers[name](tx, [ops[i].arg for i in idx])
            extras.append(extra)
            for i, value in zip(idx, got, strict=True):
                results[i] = value
        for i, op in enumerate(ops):
            if op.fn is None:
                continue
            try:
                results[i] = op.fn(tx)
            except VStudioError as e:  # refused before writing anything (see farm_reports)
                results[i] = e
        return results, extras
