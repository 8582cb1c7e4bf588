"""The farm manager's machinery: batched writes, claims, leases, events, wake-ups.

Transport-free and policy-free: ``farm/service.py``'s ``Farm`` decides who may do what
and calls ``_write``/``_read`` here. The database is a ``FarmDatabase`` (``farm.ports``;
the catalog's ``farm_repo`` by default), reached only through its writes and reads.
Every change goes through one writer thread (``farm/writer.py``) that batches the
claims and reports of many render nodes into one transaction; what a commit changed is
published as events, and waiting nodes are woken, here and (PostgreSQL) on the other
managers sharing the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from vstudio.errors import BadInput, VStudioError
from vstudio.farm.condition import SHOWN
from vstudio.farm.events import EVENTS, WATCH, EventBus, EventRelay, Notifier
from vstudio.farm.freshness import Freshness, SharedVersion, freshness
from vstudio.farm.model import Effects, Report, requeue_cutoff
from vstudio.farm.ports import FarmDatabase, FarmReads, FarmWrites, NewJob, Service
from vstudio.farm.scheduler import first_block
from vstudio.farm.writer import BatchWriter
from vstudio.studio import Studio

log = logging.getLogger("vstudio.farm")
T = TypeVar("T")


def catalog_database(studio: Studio) -> FarmDatabase:
    """The farm's database on the studio's catalog (SQLite or PostgreSQL)."""
    from vstudio.catalog.farm_repo import SqlFarmDatabase

    return SqlFarmDatabase(studio.config.db_url, studio.engine, SHOWN)


def _nothing(fx: Any) -> bool:
    """A reaper's pass that requeued, failed and marked nothing: it wrote nothing."""
    return isinstance(fx, Effects) and not (fx.jobs or fx.tasks or fx.workers)


class FarmEngine:
    """The farm's machinery: one writer thread batching every change, the scheduler's
    claim, leases and the reaper, events, and wake-ups across manager replicas.

    ``Farm`` (``farm/service.py``) builds the farm's calls on it: who may do what, and
    which writes and reads each call makes. ``read``, ``reap`` and the writer are public
    for the HTTP routes' reads and for tests.
    """

    def __init__(self, studio: Studio, *, lease_seconds: float | None = None,
                 db: FarmDatabase | None = None) -> None:
        self.studio = studio
        conf = studio.config.farm
        self.lease_seconds = float(lease_seconds or conf.get("lease_seconds", 60))
        if self.lease_seconds <= 0:
            raise BadInput("[farm] lease_seconds must be positive")
        self.reap_every = float(conf.get("reap_seconds", min(5.0, self.lease_seconds / 4)))
        self.started = time.time()  # reset by start(): workers get a lease to report
        self.notifier = Notifier()
        self.events = EventBus()
        self.db = db or catalog_database(studio)
        self._pg = self.db.shared  # other managers share it: tell them through it
        self._readers = (ThreadPoolExecutor(self.db.read_threads, thread_name_prefix="farm-read")
                         if self.db.read_threads else None)
        self.writer = BatchWriter(self.db.transaction,
                                  {"claim": self._claim, "report": self._reports,
                                   "submit": self._submits},
                                  self._committed, self.db.refusal,
                                  stamp=lambda tx, changed: tx.stamp(changed))
        self.version = SharedVersion(lambda: self._read(lambda r: r.version()))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._listener: Service | None = None
        self._relay: Service | None = None
        self.relay: EventRelay | None = None  # events to and from other managers
        self._owners: dict[int, str] = {}  # the writer thread's copy, for report checks

    # -- life cycle ---------------------------------------------------------------
    async def start(self) -> None:
        # The writer thread gives up the GIL for every database call; with the default
        # 5 ms switch interval a busy event loop makes it wait that long to get it back
        # (each batch has a dozen such calls). A shorter interval keeps batches short.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.0005))
        self._loop = asyncio.get_running_loop()
        self.started = time.time()
        self.writer.start()
        self._reaper = asyncio.create_task(self._reap_forever())
        if self._pg:
            self._relay, send = self.db.sender()
            self._relay.start()
            self.relay = EventRelay(self.events, send)
            self.relay.start()
            self._listener = self.db.listener(self._wake_threadsafe, self._message_threadsafe,
                                              (EVENTS, WATCH))
            self._listener.start()

    async def stop(self) -> None:
        if self._reaper:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        if self._listener:
            self._listener.stop()
        if self.relay:
            await self.relay.stop()
        if self._relay:
            self._relay.stop()
        await asyncio.to_thread(self.writer.stop)
        if self._readers is not None:
            self._readers.shutdown(wait=False)
        self.db.close()

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.reap_every)
            try:
                await self._write(lambda c: self.reap(c, time.time()), quiet=_nothing)
            except Exception:
                log.exception("farm reaper failed")

    def reap(self, tx: FarmWrites, now: float) -> Effects:
        """One reaper pass at ``now`` (tests pass their own clock)."""
        return tx.reap(now, self.lease_seconds, requeue_cutoff(
            now, self.started, self.lease_seconds, self.reap_every))

    # -- plumbing -----------------------------------------------------------------
    def _claim(self, tx: FarmWrites, worker_ids: list[int]
               ) -> tuple[list[Any], Effects | None]:
        payloads, back = tx.claim(worker_ids, time.time(), self.lease_seconds, first_block)
        return payloads, (Effects(workers=back) if back else None)

    def _reports(self, tx: FarmWrites, reports: list[Report]) -> tuple[list[Any], Any]:
        results, extra = tx.apply_reports(reports, time.time(), self.lease_seconds,
                                          self._owners)
        if self._pg and (extra.wake or any(isinstance(r, Effects) and r.wake
                                           for r in results)):
            tx.notify()
        return results, extra

    def _submits(self, tx: FarmWrites, new: list[NewJob]) -> tuple[list[Any], None]:
        got = tx.insert_jobs(new)
        if self._pg and any(isinstance(g, int) for g in got):
            tx.notify()  # other managers' waiting nodes may take the new work
        return [g if isinstance(g, VStudioError) else Effects(wake=True, jobs={g})
                for g in got], None

    def _committed(self, results: list[Any]) -> None:
        """Called by the writer thread after a commit: publish events, wake waiters."""
        if self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._publish, results)

    def _publish(self, results: list[Any]) -> None:
        wake = False
        for r in results:
            if isinstance(r, Effects):
                wake = wake or r.wake
                if self.events.listening:
                    for t in r.tasks:
                        self.events.publish("task", t)
                    for j in sorted(r.jobs):
                        self.events.publish("job", {"id": j})
                    for w in r.workers:
                        self.events.publish("worker", w)
            elif isinstance(r, dict) and self.events.listening and "attempt" in r:
                self.events.publish("task", {"id": r["id"], "job_id": r["job_id"],
                                             "status": "running", "progress": 0.0})
        if wake:
            self.notifier.wake()

    def _message_threadsafe(self, channel: str, payload: str) -> None:
        if self._loop is not None and self.relay is not None:
            self._loop.call_soon_threadsafe(self.relay.received, channel, payload)

    def _wake_threadsafe(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.notifier.wake)

    async def _write(self, fn: Callable[[FarmWrites], T], *, adds_only: bool = False,
                     quiet: Callable[[Any], bool] | None = None) -> T:
        def run(tx: FarmWrites) -> T:
            result = fn(tx)
            if self._pg and isinstance(result, Effects) and result.wake:
                tx.notify()
            return result

        return await self.writer.call_async(run, adds_only=adds_only, quiet=quiet)

    async def _submit(self, new: NewJob) -> Effects:
        """Insert a job together with the other submits of the writer's next batch."""
        fx: Effects = await self.writer.group_async("submit", new, adds_only=True)
        return fx

    async def _read(self, fn: Callable[[FarmReads], T]) -> T:
        def run() -> T:
            with self.db.reading() as r:
                return fn(r)

        if self._readers is None:
            return await asyncio.to_thread(run)
        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    async def freshness(self) -> Freshness:
        """The generations that cached reads of the farm are keyed on: this manager's
        writes count at once, every writer's within ``freshness.POLL`` seconds."""
        shared = await self.version.get()
        return freshness(self.writer.batches, self.writer.changes, shared)

    async def read(self, fn: Callable[[FarmReads], T]) -> T:
        """Ask the farm's database ``fn``'s questions in one read."""
        return await self._read(fn)
