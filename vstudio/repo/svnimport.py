"""``vstudio svn-import``: a Subversion dump stream into a project, numbers kept.

Streams: records are read by ``svndump`` (headers line by line, file texts and deltas in
1 MiB pieces through temporary files; from a dump file, .blend texts are not read here
but by the helper processes, where they lie in the file), so a 15 GB dump needs little
memory. Each
Subversion revision becomes one commit (atomic: a revision is wholly in the project or
not at all) with the same number, author, date and message, empty revisions too. Its
node records are applied to the project's files by ``svnnodes``; this module numbers,
batches and commits the revisions and places every failure in the dump.

Incremental and resumable: the dump may start anywhere up to the project's head + 1.
Revisions the project has already are compared (author, message, date) and skipped, so
rerunning the same command after a kill or a refused revision continues where it
stopped; a dump starting later is refused naming both numbers, unless ``renumber``
maps it onto the next revisions (as ``svnadmin load`` does for svndumpfilter output),
keeping each original number as the revision property ``svn-original-rev``. What
cannot be carried is listed in the report with how many paths or revisions it concerns.
"""

from __future__ import annotations

import calendar
import logging
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from vstudio.errors import BadInput, Conflict, VStudioError
from vstudio.repo.api import CommitInfo, Entry
from vstudio.repo.backend import LocalBackend, WcBackend
from vstudio.repo.importbatch import ImportRevision
from vstudio.repo.svndump import BadDump, Reader, Record, file_name, is_file, next_record, number
from vstudio.repo.svnnodes import NodeTree, Notes, escape
from vstudio.repo.svntexts import Batch, Texts
from vstudio.repo.svnworkers import BlendWorkers, helpers_wanted
from vstudio.store.api import NO_PROGRESS, Progress

# Read from a file, a write batch (and one catalog transaction) holds this many revisions
# at most: fewer syncs to disk; a kill loses at most two batches (with helpers, one is
# committed while the next is read), which the next run imports again.
BATCH_REVISIONS = 100
BATCH_BYTES = 64 << 20  # of file contents
BATCH_SECONDS = 10.0
log = logging.getLogger("vstudio.repo")
REV_PROPS = {"svn:log", "svn:author", "svn:date"}
ORIGINAL = "svn-original-rev"  # revision property: the Subversion number, when renumbered
__all__ = ["ORIGINAL", "BadDump", "import_dump"]


def _svn_time(raw: bytes) -> float:
    text = raw.decode("utf-8", "replace")
    main, _, frac = text.rstrip("Z").partition(".")
    try:
        t = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
        return t + (float("0." + frac) if frac else 0.0)
    except ValueError:
        raise BadDump(f"bad svn:date {text[:40]!r}") from None


class _Importer:
    def __init__(self, backend: WcBackend, tmp: Path, renumber: bool,
                 batch_revisions: int = 1) -> None:
        self.b = backend
        self.batch_revisions = batch_revisions
        self.tmp = tmp
        self.renumber = renumber
        self.head = backend.head()
        self.t = Texts(backend.store, tmp)
        # Revisions whose contents are in the open write batch, committed together
        # (importbatch); their trees (for copies) and texts (delta bases) meanwhile.
        self.pending: list[ImportRevision] = []
        self.pending_trees: dict[int, dict[str, Entry]] = {}
        self.started = 0.0  # when the first revision of the open batch was read
        # With helper processes, a batch is committed when the next one is complete: its
        # helpers' texts are stored meanwhile, and the helpers never wait for the commit.
        self.sealed: tuple[list[ImportRevision], Batch] | None = None
        self.places: dict[int, tuple[int, int]] = {}  # project rev -> (svn rev, offset)
        self.notes = Notes()
        self.tree = NodeTree(self.t, self.notes)  # the files, once a new revision comes
        self.started_new = False
        self.trees: dict[int, dict[str, Entry]] = {}
        self.history: dict[int, CommitInfo] | None = None
        self.rev_map: dict[int, int] = {}  # Subversion number -> project number
        self.new_rules: list[str] = []
        self.imported = self.skipped = 0
        self.first = self.last = self.last_svn = 0
        self.last_time: float | None = None
        # where we are, for error messages: revision, node path, byte offset
        self.loc: tuple[int | None, str | None, int] = (None, None, 0)
        self.reading: tuple[int, int] | None = None  # revision being read: (svn rev, offset)

    # -- the project's side ---------------------------------------------------------------

    def known(self) -> dict[int, CommitInfo]:
        if self.history is None:
            self.history = {c.rev: c for c in self.b.log(None, None)} if self.head else {}
            for c in self.history.values():
                if ORIGINAL in c.props:
                    self.rev_map[int(c.props[ORIGINAL])] = c.rev
        return self.history

    def start_new(self) -> None:
        """State of the project's head, before the first revision this run adds."""
        self.started_new = True
        self.tree.load(dict(self.b.tree(self.head)) if self.head else {},
                       set(self.b.lock_rules()) if self.head else set())
        if self.head and self.last_time is None:
            self.last_time = self.b.log(None, 1)[0].time

    def tree_at(self, rev: int) -> dict[str, Entry]:
        if rev in self.pending_trees:
            return self.pending_trees[rev]
        if rev not in self.trees:
            if len(self.trees) > 4:
                self.trees.pop(next(iter(self.trees)))
            self.trees[rev] = self.b.tree(rev)
        return self.trees[rev]

    def copy_source(self, path: str, csvn: int, *, svn_rev: int, rev: int) -> dict[str, Entry]:
        """The tree a copy from ``path``@``csvn`` reads (in revision ``svn_rev`` = ``rev``)."""
        crev = self.rev_map.get(csvn, csvn - (svn_rev - rev)) if self.renumber else csvn
        if crev < 0 or crev > self.head:
            raise BadDump(f"copies from {path or '/'}@r{csvn}, which the project does not "
                          "have (import the earlier revisions first)")
        return self.tree_at(crev)

    def target(self, svn_rev: int) -> int | None:
        """The project revision for ``svn_rev``; None when the project has it already."""
        if self.renumber:  # present: imported before under another number
            self.known()
            return None if svn_rev in self.rev_map else self.head + 1
        if svn_rev <= self.head:
            return None
        if svn_rev != self.head + 1:
            raise Conflict(f"the dump continues at r{svn_rev} but project {self.b.project!r} "
                           f"is at r{self.head}: expected r{self.head + 1}, found r{svn_rev} "
                           f"(import r{self.head + 1}..r{svn_rev - 1} first, or use "
                           f"--renumber to store r{svn_rev} as r{self.head + 1})")
        return svn_rev

    def check_same(self, svn_rev: int, rprops: dict[str, bytes]) -> None:
        """A revision the project has: it must be the dump's, or this is another history."""
        rev = self.rev_map.get(svn_rev, svn_rev) if self.renumber else svn_rev
        have = self.known().get(rev)
        author, message = _author(rprops), rprops.get("svn:log", b"").decode("utf-8", "replace")
        differs = have is None or have.author != author or have.message != message or (
            "svn:date" in rprops and abs(have.time - _svn_time(rprops["svn:date"])) > 0.001)
        if differs:
            raise Conflict(f"the dump's r{svn_rev} is not the project's r{rev} (other author, "
                           "message or date): is this dump from another repository?")
        self.skipped += 1
        self.last_svn = svn_rev

    # -- revisions ----------------------------------------------------------------------

    def commit(self, svn_rev: int, rev: int, rprops: dict[str, bytes],
               changes: dict[str, Entry | None]) -> None:
        for k in rprops:
            if k not in REV_PROPS:
                self.notes.add(f"revision property {k}", f"r{svn_rev}")
        if "svn:date" in rprops:
            when = _svn_time(rprops["svn:date"])
        else:
            self.notes.add("revision without svn:date (given the previous one's)", f"r{svn_rev}")
            when = self.last_time if self.last_time is not None else time.time()
        new_rules = sorted(escape(p) for p, e in changes.items() if e is not None
                           and "svn:needs-lock" in self.tree.props.get(p, {}))
        new_rules = [r for r in new_rules if r not in self.tree.rules]
        if new_rules:  # before the revision: a rule without its file is harmless
            self.b.add_lock_rules(new_rules)
            self.tree.rules.update(new_rules)
            self.new_rules += new_rules
        if not self.pending:
            self.started = time.monotonic()
        self.pending.append(ImportRevision(
            rev, _author(rprops), when, rprops.get("svn:log", b"").decode("utf-8", "replace"),
            {p: self.t.real(e) for p, e in changes.items()},
            {ORIGINAL: str(svn_rev)} if self.renumber else {}))
        self.pending_trees[rev] = dict(self.tree.files)
        self.places[rev] = (svn_rev, self.loc[2])
        self.rev_map[svn_rev] = rev
        self.head = self.last = rev
        self.first = self.first or rev
        self.last_svn = svn_rev
        self.last_time = when
        if (len(self.pending) >= self.batch_revisions or self.t.bytes >= BATCH_BYTES
                or time.monotonic() - self.started >= BATCH_SECONDS):
            self.flush(lag=True)

    def flush(self, lag: bool = False) -> None:
        """Commit the revisions read (all complete ones) and close their batch. With
        ``lag`` and helper processes, the batch sealed before is committed and this one
        is sealed, to be committed at the next flush."""
        if self.sealed is not None:
            sealed, self.sealed = self.sealed, None
            self._commit(*sealed)
        batch = self.t.seal()
        pending, self.pending = self.pending, []
        if lag and self.t.workers is not None:
            self.sealed = pending, batch
        else:
            self._commit(pending, batch)

    def _commit(self, revisions: list[ImportRevision], batch: Batch) -> None:
        try:
            self._resolve(batch, revisions)
        except BadDump as e:  # a helper's text is corrupt: keep the revisions before it
            offset = int(str(e.context["offset"]))
            bad = max((r for r, (_s, at) in self.places.items() if at < offset), default=0)
            svn_rev = self.places[bad][0] if bad else None
            if self.reading is not None and self.reading[1] < offset and (
                    not bad or self.places[bad][1] < self.reading[1]):
                # in the revision being read (a failure there made salvage commit): all
                # the revisions read before it are whole
                bad, svn_rev = self.head + 1, self.reading[0]
            e.context["rev"] = svn_rev
            self.pending = [r for r in revisions if r.rev < bad]  # what salvage commits
            self.t.futures.clear()
            raise
        try:
            if revisions:
                self.b.import_batch(revisions, self.t.w, self.t.end_batch)
            self.imported += len(revisions)
        finally:
            self.t.end_batch()
            for r in revisions:
                self.pending_trees.pop(r.rev, None)

    def _resolve(self, batch: Batch, revisions: list[ImportRevision]) -> None:
        """The helpers' ids in place of placeholders, in the files and ``revisions``."""
        self.t.resolve(batch)
        self.tree.resolved()
        for r in revisions:
            r.changes = {p: self.t.real(e) for p, e in r.changes.items()}

    def salvage(self, failed: VStudioError | None) -> VStudioError | None:
        """After ``failed`` (None: not a refusal of the dump): keep the complete revisions
        read before it. A helper's corrupt text found meanwhile may lie earlier in the dump
        (then only the revisions before it are kept): the first of the two is returned."""
        try:
            try:
                self.flush()
            except BadDump as e:
                if "offset" not in e.context:
                    raise
                self.flush()  # what _commit left: the revisions before the corrupt text
                if failed is None or int(str(e.context["offset"])) < self._offset(failed):
                    return e
        except Exception as e:  # the first failure is the one to report
            log.warning("could not commit the revisions before the failure: %s", e)
        finally:
            self.t.end_batch()
        return failed

    def _offset(self, e: VStudioError) -> int:
        """Where in the dump ``e`` happened."""
        if "import_rev" in e.context:
            return self.places[int(str(e.context["import_rev"]))][1]
        return int(str(e.context.get("offset", self.loc[2])))

    def where(self, e: VStudioError) -> str:
        rev, path, offset = self.loc
        if "import_rev" in e.context:  # refused when its batch was committed
            rev, offset = self.places[int(str(e.context["import_rev"]))]
            path = None
        elif "offset" in e.context:  # raised while reading a record: its own place
            path = str(e.context.get("path") or "") or None
            rev = e.context.get("rev") or rev  # type: ignore[assignment]
        offset = int(str(e.context.get("offset", offset)))
        return ((f"r{rev}" if rev is not None else "before the first revision")
                + (f", node {path}" if path else "") + f", byte {offset}")


def import_dump(f: BinaryIO, backend: WcBackend, progress: Progress = NO_PROGRESS, *,
                renumber: bool = False, workers: BlendWorkers | None = None) -> dict[str, Any]:
    """Import (or continue importing) a dump; returns the report. ``workers``: the helper
    processes to use if helpers are wanted (default: new ones), always closed."""
    try:
        return _import(f, backend, progress, renumber, workers)
    finally:
        if workers is not None:
            workers.close()


def _import(f: BinaryIO, backend: WcBackend, progress: Progress, renumber: bool,
            workers: BlendWorkers | None) -> dict[str, Any]:
    r = Reader(f)
    try:
        first = next_record(r)
    except BadDump:
        first = None
    if not first or "SVN-fs-dump-format-version" not in first.headers:
        raise BadDump("not a Subversion dump (no SVN-fs-dump-format-version header)")
    with tempfile.TemporaryDirectory(prefix="vstudio-svn-") as tmp:
        batched = is_file(f)
        imp = _Importer(backend, Path(tmp), renumber, BATCH_REVISIONS if batched else 1)
        helpers = helpers_wanted() if batched and isinstance(backend, LocalBackend) else 0
        if helpers and isinstance(backend, LocalBackend):
            imp.t.workers = workers or BlendWorkers(backend.studio.root, helpers)
            imp.t.workers.use(backend.studio.root)
            imp.t.dump = file_name(f)
        progress.start(0, "import")
        try:
            _check_format(first)
            _records(r, imp, progress)
            imp.flush()
        except (BadInput, Conflict) as e:
            shown = imp.salvage(e) or e
            raise type(shown)(f"{shown.message} (at {imp.where(shown)})") from None
        except BaseException:
            imp.salvage(None)
            raise
        finally:
            if imp.t.workers is not None and imp.t.workers is not workers:
                imp.t.workers.close()
        progress.done()
    return {"revisions": imp.imported, "skipped": imp.skipped, "first": imp.first,
            "last": imp.last, "last_svn": imp.last_svn, "head": imp.head,
            "files": imp.t.versions, "lock_rules": sorted(imp.new_rules),
            "helpers": imp.t.workers.started if imp.t.workers is not None else 0,
            "not_carried": imp.notes.report()}


def _check_format(rec: Record) -> None:
    version = rec.get("SVN-fs-dump-format-version")
    if version not in ("2", "3"):
        raise BadDump(f"dump format {version[:20]} is not supported (2 and 3 are)")


def _records(r: Reader, imp: _Importer, progress: Progress) -> None:
    pending: tuple[int, int | None, dict[str, bytes], int] | None = None
    changes: dict[str, Entry | None] = {}

    def flush() -> None:
        if pending is not None and pending[1] is not None:
            imp.loc = (pending[0], None, pending[3])
            imp.commit(pending[0], pending[1], pending[2], changes)
            changes.clear()
            progress.advance(1)

    while True:
        imp.loc = (pending[0] if pending else None, None, r.pos)
        rec = next_record(r)
        if rec is None:
            break
        if "Revision-number" in rec.headers:
            flush()
            svn_rev = number(rec.headers, "Revision-number")
            imp.loc = (svn_rev, None, rec.offset)
            rec.finish(r)
            pending = (svn_rev, _revision(imp, svn_rev, rec), rec.props, rec.offset)
            imp.reading = (svn_rev, rec.offset)
        elif "Node-path" in rec.headers:
            if pending is None:
                raise BadDump("a node before any revision")
            imp.loc = (pending[0], rec.get("Node-path"), rec.offset)
            if pending[1] is not None:
                imp.tree.node(rec, pending[0], changes, partial(
                    imp.copy_source, svn_rev=pending[0], rev=pending[1]))
            rec.finish(r)
        elif "SVN-fs-dump-format-version" in rec.headers:
            _check_format(rec)  # concatenated dumps, as svnadmin accepts
            rec.finish(r)
        elif "UUID" in rec.headers:
            rec.finish(r)
        else:
            raise BadDump(f"unknown record (headers {', '.join(sorted(rec.headers)[:3])})")
    flush()


def _revision(imp: _Importer, svn_rev: int, rec: Record) -> int | None:
    """The project number a dump revision goes to; None to skip it (r0, or present)."""
    if svn_rev == 0:
        for k in rec.props:
            imp.notes.add(f"r0 property {k}", "r0")
        return None
    rev = imp.target(svn_rev)
    if rev is None:
        imp.check_same(svn_rev, rec.props)
    elif not imp.started_new:
        imp.start_new()
    return rev


def _author(rprops: dict[str, bytes]) -> str:
    return rprops.get("svn:author", b"").decode("utf-8", "replace") or "(no author)"
