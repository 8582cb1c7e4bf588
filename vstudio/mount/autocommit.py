"""Autoversioning: the writable mount's pending changes become grouped commits.

Like Subversion's WebDAV autoversioning, every saved, renamed or removed file becomes part
of a revision; a commit is made once no change came for ``settle`` seconds, so a program
saving 500 files makes one revision. Files still open for writing wait for their close.

Nothing is merged silently. A file that someone else changed (or locked) since the mount
saw it is committed beside theirs as ``FILE.conflict-USER-rN`` (N: the revision holding
their version), and the log message says so; a removal of such a file is not made.
"""

from __future__ import annotations

import logging
import posixpath
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, cast

from vstudio.errors import VStudioError
from vstudio.mount.changes import conflict_name, empty_folders, plural
from vstudio.mount.overlay import Overlay, Snapshot
from vstudio.mount.streaming import Aborted, GrowingFile
from vstudio.mount.writecache import Pending
from vstudio.repo import paths as P
from vstudio.repo.api import Entry, folder_entry
from vstudio.repo.backend import WcBackend
from vstudio.repo.service import Change, OutOfDate
from vstudio.repo.wcbatch import BATCH_FILE, batches_by
from vstudio.repo.wcindex import DEFAULT_IGNORE, IGNORE_FILE, Ignore
from vstudio.store.api import Writer

log = logging.getLogger("vstudio.mount")

MAX_BACKOFF = 60.0  # seconds between attempts, at most
SMALL = 1 << 20  # read whole and stored from memory; larger files stream from disk


class AutoCommitter:
    """A thread that commits the overlay's settled changes through a ``WcBackend``."""

    def __init__(self, overlay: Overlay, backend: WcBackend,
                 read_bytes: Callable[[Entry | Pending], bytes], *, settle: float = 2.0,
                 max_retry_wait: float = MAX_BACKOFF) -> None:
        self.overlay = overlay
        self.backend = backend
        self.read_bytes = read_bytes
        self.settle = settle
        self.max_retry_wait = max_retry_wait
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one commit at a time (thread, unmount flush)
        # Big files are stored as soon as they are closed, while the changes settle: the
        # commit then only names them. Closed data files never change (a new writer
        # writes a copy), so what was stored stays right while (data, size) match.
        self._stager = ThreadPoolExecutor(1, thread_name_prefix="vstudio-stage")
        self._staging: set[Future[None]] = set()
        # Big files written in order are stored while they grow (``streaming``): two at
        # a time; each task waits for its file's writer to close it.
        self._streamer = ThreadPoolExecutor(2, thread_name_prefix="vstudio-stream")
        self._streams: dict[GrowingFile, Future[None]] = {}
        self.last_error: str | None = None
        # What ``vstudio mount-status`` shows: a commit that keeps failing is never silent.
        self.failures = 0  # commits failed in a row
        self.failing_since: float | None = None
        self.next_try: float | None = None  # wall-clock time of the next attempt
        self.last_rev: int | None = None  # the mount's last commit
        self.last_commit_at: float | None = None

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vstudio-autocommit",
                                        daemon=True)
        self._thread.start()

    def stop(self, flush: bool = True) -> None:
        self._stop.set()
        self.overlay.changed.set()
        if self._thread is not None:
            self._thread.join(60)
        for g in list(self._streams):  # files still open: stored at commit instead
            g.abort()
        self._streamer.shutdown(wait=True, cancel_futures=True)
        for g in list(self._streams):  # never started
            g.close()
        self._stager.shutdown(wait=True, cancel_futures=True)
        if flush:
            try:
                self.commit_once()
            except Exception as e:  # unmounting goes on; nothing is lost
                log.error("changes stay in the write cache for the next mount: %s",
                          " ".join(str(e).split()))

    def _run(self) -> None:
        backoff = min(1.0, self.max_retry_wait)
        while not self._stop.is_set():
            self.overlay.changed.wait(self.settle)
            if self._stop.is_set():
                return
            if not self.overlay.changed.is_set():
                continue
            quiet = time.monotonic() - self.overlay.changed_at
            if quiet < self.settle:
                self._stop.wait(self.settle - quiet)
                continue
            self.overlay.changed.clear()
            try:
                self.commit_once()
            except Exception as e:  # the thread must live on, whatever failed
                # The changes stay pending (and journaled); try again later, and say so.
                self._failed(e, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_retry_wait)
                self.next_try = None
                self.overlay.changed.set()
            else:
                backoff = min(1.0, self.max_retry_wait)
                self._recovered()

    def _failed(self, e: Exception, backoff: float) -> None:
        why = e.message if isinstance(e, VStudioError) else f"{type(e).__name__}: {e}"
        self.last_error = " ".join(str(why).split())  # one line, whatever the server said
        self.failures += 1
        if self.failing_since is None:
            self.failing_since = time.time()
        self.next_try = time.time() + backoff
        pending = self.status()[0]
        if isinstance(e, (VStudioError, OSError)):
            log.error("commit failed (%s; %s kept in the write cache; retry %d in %.0f s): %s",
                      plural(self.failures, "attempt"), plural(pending, "change"),
                      self.failures + 1, backoff, self.last_error)
        else:  # a bug: its traceback goes to the log once
            log.exception("commit failed (%s kept in the write cache; retrying in %.0f s)",
                          plural(pending, "change"), backoff)

    def _recovered(self) -> None:
        if self.failures:
            log.warning("commit succeeded after %s", plural(self.failures, "failed attempt"))
        self.last_error, self.failures, self.failing_since = None, 0, None

    def report(self) -> dict[str, Any]:
        """The mount's commit state, as ``vstudio mount-status`` prints it."""
        pending, error = self.status()
        return {"pending": pending, "error": error, "failures": self.failures,
                "failing_since": self.failing_since, "next_try": self.next_try,
                "last_rev": self.last_rev, "last_commit_at": self.last_commit_at,
                "settle": self.settle}

    def status(self) -> tuple[int, str | None]:
        """(changes not committed yet, ignored ones aside; the last commit error)."""
        skip = self.skip_fn()
        with self.overlay.lock:
            pending = [(path, p.gone) for path, p in self.overlay.pending.items()]
            local = [d for d in self.overlay.local_dirs if not skip(d + "/")]
            base = self.overlay.base  # replaced on rebase, never changed in place
        changes = [(path, gone) for path, gone in pending if not skip(path)]
        count = len(changes)
        if local:  # an uncommitted mkdir is a change too, while nothing will be inside
            gone = {path for path, g in pending if g}
            files = [*(p for p in base if p not in gone), *(p for p, g in changes if not g)]
            count += len(empty_folders(local, files, base))
        return count, self.last_error

    # -- storing big files early ------------------------------------------------------
    def stream(self, p: Pending) -> GrowingFile | None:
        """A big file is being written in order: store it as it grows (FUSE layer)."""
        if p.data is None or ".blend" in posixpath.basename(p.path) or self._stop.is_set():
            return None  # (a .blend waits for its delta base: see ``stage``)
        g = GrowingFile(self.overlay.cache.path_of(p.data))
        self._streams[g] = self._streamer.submit(self._stream, p, p.data, g)
        return g

    def _stream(self, p: Pending, data: str, g: GrowingFile) -> None:
        try:
            if not g.begin():  # closed soon: ``stage`` stores it whole
                return
            with self.backend.store.writer() as w:
                oid = w.put_stream(cast(Any, g))
        except Aborted:
            log.debug("%s: written out of order, stored at commit", p.path)
            return
        except (VStudioError, OSError) as e:  # the commit stores it
            log.debug("%s not stored early: %s", p.path, e)
            return
        finally:
            g.close()
            self._streams.pop(g, None)
        if g.final is not None and (p.data, p.size) == (data, g.final):
            p.extra["staged"] = (data, g.final, oid)

    def stage(self, p: Pending) -> None:
        """A file was closed: store its bytes now if it is big (called by the FUSE layer)."""
        g = p.extra.pop("stream", None)
        p.extra.pop("order", None)
        if g is not None and not g.drop_if_idle():  # being stored already: let it end
            fut = self._streams.get(g)
            g.finish(p.size)
            if fut is not None:
                self._staging.add(fut)
                fut.add_done_callback(self._staging.discard)
                return
        if p.data is None or p.size <= SMALL or p.writers or self._stop.is_set():
            return
        if ".blend" in posixpath.basename(p.path):
            # Blender saves to NAME.blend@ and renames it over: only at commit time is the
            # earlier version known, against which the store deltas a .blend (measured:
            # 0.05 MB stored per small edit of an 80 MB file instead of 0.4 MB).
            return
        fut = self._stager.submit(self._stage, p, p.data, p.size)
        self._staging.add(fut)
        fut.add_done_callback(self._staging.discard)

    def _stage(self, p: Pending, data: str, size: int) -> None:
        if (p.data, p.size) != (data, size):
            return
        try:
            oid = self._store(p.path, p)
        except (VStudioError, OSError) as e:  # removed meanwhile, or the store is down:
            log.debug("%s not stored early: %s", p.path, e)  # the commit stores it
            return
        p.extra["staged"] = (data, size, oid)

    def _store(self, target: str, p: Pending, w: Writer | None = None) -> str:
        """Store a big pending file from its data file (streamed through the chunker)."""
        if w is None:
            with self.backend.store.writer() as own:
                return self._store(target, p, own)
        path = Path(self.overlay.cache.path_of(str(p.data)))
        if target.endswith(".blend") and p.base:
            # The earlier version lets the store delta a .blend against it.
            return str(cast(Any, w).put_file(path, previous=p.base))
        return w.put_file(path)

    # -- one commit ---------------------------------------------------------------------
    def skip_fn(self) -> Callable[[str], bool]:
        """What is never committed: ignored names (unless tracked) and invalid paths."""
        patterns = list(DEFAULT_IGNORE)
        try:
            node = self.overlay.lookup(IGNORE_FILE)
            if node is not None:
                text = self.read_bytes(node).decode("utf-8", "replace")
                patterns += [ln.strip() for ln in text.splitlines()
                             if ln.strip() and not ln.strip().startswith("#")]
        except OSError:
            pass
        ign = Ignore(patterns, set())
        base = self.overlay.base

        def skip(path: str) -> bool:
            """Whether a file (or, given as "FOLDER/", a folder) is never committed."""
            folder = path.endswith("/")
            path = path.rstrip("/")
            if path in base:
                return False
            try:
                P.normalise(path)
            except P.BadPath as e:
                log.warning("not committed: %s", e.message)
                return True
            parts = path.split("/")
            for i in range(1, len(parts) + folder):
                if ign.skip_dir("/".join(parts[:i]), parts[i - 1]):
                    return True
            return not folder and ign.skip_file(path, parts[-1])

        return skip

    def commit_once(self) -> int | None:
        """Commit every settled change now; the new revision, or None if nothing was due."""
        wait(list(self._staging))  # what is being stored early is not stored twice
        with self._lock:
            snap = self.overlay.snapshot(self.skip_fn())
            if not snap and not self.overlay.local_dirs:
                return None
            try:
                for _attempt in range(5):
                    try:
                        return self._commit(snap)
                    except OutOfDate:
                        continue  # someone committed between our check and our commit
                raise OutOfDate("the project is too busy; the changes stay pending")
            except BaseException:
                self.overlay.thaw(snap)
                raise

    def _commit(self, snap: Snapshot) -> int | None:
        user = self.backend.user
        head = self.backend.head()
        cur = self.backend.tree(head) if head else {}
        locks = self.backend.locks()
        changes: list[Change] = []
        uploads: list[tuple[str, Pending, str | None, str | None]] = []
        notes: list[str] = []
        removed = folders_gone = 0
        for p, key in snap:
            path = str(key[0])
            now = cur[path].oid if path in cur else None
            if p.gone and path in cur and cur[path].is_dir:
                changes.append(Change(path, now, None))  # rmdir of an empty folder
                folders_gone += 1
                continue
            holder = locks[path].owner if path in locks else None
            why = None
            if holder is not None and holder != user:
                why = f"locked by {holder}"
            elif now != p.base:
                why = f"changed in r{head}"
            if not p.gone:
                uploads.append((path, p, now, why))
            elif now is not None and why:
                notes.append(f"{path} not removed ({why})")
            elif now is not None:
                changes.append(Change(path, now, None))
                removed += 1
        oids = self._upload([(path, p) for path, p, _, _ in uploads])
        for (path, p, now, why), oid in zip(uploads, oids, strict=True):
            mode = p.mode & 0o777 or 0o644
            if now == oid and cur[path].mode == mode:
                # The repository holds these bytes already: saved unchanged, or committed
                # just before a crash cut the bookkeeping short. Nothing to do either way.
                continue
            target, old = path, now
            if why:
                target, old = conflict_name(path, user, head, cur), None
                notes.append(f"{path} {why}: saved as {posixpath.basename(target)}")
            changes.append(Change(target, old, Entry(target, oid, p.size, mode, p.mtime)))
        saved = len(changes) - removed - folders_gone
        made = self._new_folders(cur, changes)
        changes += made
        if not changes:
            self.overlay.committed(head, cur, snap)
            return None
        what = ", ".join(x for x in (
            plural(saved, "file") + " saved" if saved else "",
            plural(removed, "file") + " removed" if removed else "",
            plural(len(made), "folder") + " made" if made else "",
            plural(folders_gone, "folder") + " removed" if folders_gone else "") if x)
        message = f"mount: {what} by {user}" + ("; " + "; ".join(notes) if notes else "")
        rev = self.backend.commit(message, changes)
        log.info("r%d: %s", rev, message)
        self.last_rev, self.last_commit_at = rev, time.time()
        self.overlay.committed(rev, self.backend.tree(rev), snap)
        return rev

    def _new_folders(self, cur: dict[str, Entry], changes: list[Change]) -> list[Change]:
        """Local folders that will be empty in the revision: committed as empty folders."""
        with self.overlay.lock:
            local = sorted(self.overlay.local_dirs)
        if not local:
            return []
        skip = self.skip_fn()
        gone = {c.path for c in changes if c.new is None}
        files = [*(p for p in cur if p not in gone),
                 *(c.path for c in changes if c.new is not None)]
        return [Change(d, None, folder_entry(d)) for d in empty_folders(
            [d for d in local if not skip(d + "/")], files, cur)]

    def _upload(self, items: list[tuple[str, Pending]]) -> list[str]:
        """Store the bytes of pending files; returns their ids in order."""
        out: dict[int, str] = {}
        small: list[int] = []
        for i, (_t, p) in enumerate(items):
            if p.oid is not None and p.data is None:
                out[i] = p.oid  # already stored (a rename, a backup copy)
            elif p.size <= BATCH_FILE:
                small.append(i)
        batched = self.backend.small_files
        if batched is not None and small:  # through a server: many to a request
            for group in batches_by(small, lambda i: items[i][1].size):
                blobs = [self._read(items[i][1]) for i in group]
                for i, oid in zip(group, batched.put_many(blobs), strict=True):
                    out[i] = oid
        for i, (_t, p) in enumerate(items):
            staged = p.extra.get("staged")
            if i not in out and staged is not None and staged[:2] == (p.data, p.size):
                out[i] = staged[2]  # stored while written or after close
        todo = [i for i in range(len(items)) if i not in out]
        if todo:  # a writer costs two store round trips (its marker): only when needed
            with self.backend.store.writer() as w:
                for i in todo:
                    target, p = items[i]
                    out[i] = (w.put_bytes(self._read(p)) if p.size <= SMALL
                              else self._store(target, p, w))
        return [out[i] for i in range(len(items))]

    def _read(self, p: Pending) -> bytes:
        if p.data is None:
            return self.read_bytes(p)
        with open(self.overlay.cache.path_of(p.data), "rb") as f:
            return f.read(p.size)
