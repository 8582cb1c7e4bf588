"""Imported revisions committed in batches: one store write batch, one catalog transaction.

``svn-import`` stores many revisions' file contents in one write batch; their folder
trees join it, it becomes durable when it closes, and then one catalog transaction
inserts all the revisions and writes their refs. A revision is still whole or absent: a
kill before the transaction commits leaves none of the batch (the import resumes at its
first revision), and objects without a revision are garbage for ``store gc``. Against a
commit per revision this saves a pack, an index and a transaction per revision, each of
them synced to disk, and the store keeps fewer, bigger packs.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vstudio.catalog import repo_store as rs
from vstudio.errors import BadInput, Conflict, VStudioError
from vstudio.repo import paths as P
from vstudio.repo import trees
from vstudio.repo.api import Entry
from vstudio.repo.service import (
    ANY,
    Change,
    Locked,
    RepoService,
    commit_object,
    live_after,
    ref_name,
    refuse_locked,
)

if TYPE_CHECKING:
    from vstudio.catalog.accounts import Project
    from vstudio.store.api import Writer

REF_THREADS = 4  # refs are small durable writes: their syncs overlap


@dataclass
class ImportRevision:
    """One revision to record with its own number, author and time."""

    rev: int
    author: str
    when: float
    message: str
    changes: dict[str, Entry | None]  # path -> new entry, or None to remove it
    props: dict[str, str] = field(default_factory=dict)


@dataclass
class Prepared:
    project: Project
    rows: list[tuple[rs.RevisionRow, list[str], dict[str, str], bytes]]
    tree: tuple[dict[str, Entry], dict[str, str]]  # the last revision's files and folders
    failed: VStudioError | None = None  # refusing the revision after the last row


def commit_batch(service: RepoService, project: str, revisions: list[ImportRevision],
                 w: Writer | None, close: Callable[[], None]) -> None:
    """Record ``revisions`` (numbered head+1, head+2, ...); their file contents are in
    ``w``, which ``close`` makes durable (None: nothing stored yet, trees get a batch)."""
    if w is None:
        with service.store.writer() as own:
            prep = prepare(service, project, revisions, own)
    else:
        prep = prepare(service, project, revisions, w)
    close()
    record(service, prep)
    if prep.failed is not None:
        raise prep.failed


def _refused(e: VStudioError, rev: int) -> VStudioError:
    e.context["import_rev"] = rev  # which revision of the batch: the caller names it
    return e


def prepare(service: RepoService, project: str, revisions: list[ImportRevision],
            w: Writer) -> Prepared:
    """Build each revision's trees and commit object on the previous one's, in ``w``."""
    p = service.project(project)
    with service.studio.engine.connect() as conn:
        h = rs.head(conn, p.id)
        head_row = rs.revision(conn, p.id, h) if h else None
    if revisions and revisions[0].rev != h + 1:
        raise Conflict(f"cannot commit r{revisions[0].rev}: project {p.name!r} is at r{h}")
    files, folders = trees.load_tree(service.store, head_row.tree_oid) if head_row else ({}, {})
    prep = Prepared(p, [], (files, folders))
    parent = head_row.commit_oid if head_row else None
    for r in revisions:
        try:
            files, folders = _prepare_one(p.name, r, parent, files, folders, w, prep.rows)
            parent = prep.rows[-1][0].commit_oid
        except (BadInput, Conflict) as e:  # the revisions before it are kept
            prep.failed = _refused(e, r.rev)
            break
        prep.tree = (files, folders)
    return prep


def _prepare_one(project: str, r: ImportRevision, parent: str | None,
                 files: dict[str, Entry], folders: dict[str, str], w: Writer,
                 rows: list[tuple[rs.RevisionRow, list[str], dict[str, str], bytes]],
                 ) -> tuple[dict[str, Entry], dict[str, str]]:
    """One revision's trees in ``w`` and its row in ``rows``; its files and folders."""
    if "\x00" in r.author or "\x00" in r.message:
        raise BadInput("commit messages and authors must not contain NUL characters")
    entries: dict[str, Entry | None] = {}
    for path, e in r.changes.items():
        path = P.normalise(path)
        entries[path] = None if e is None else trees.canonical(path, e)
    new_paths = [path for path, e in entries.items() if e is not None and path not in files]
    if new_paths:
        by_path = {path: Change(path, ANY, e) for path, e in entries.items()}
        P.check_case_collisions(*live_after(files, folders, by_path), new_paths)
    created: list[str] = []
    new_folders: dict[str, str] = {}
    # Subversion keeps a folder until it is removed: so does an import.
    tree_oid, files = trees.build_tree(w, files, folders, entries, created, new_folders,
                                       keep_empty=True)
    data = commit_object(project, r.rev, parent, tree_oid, r.author, r.when, r.message,
                         entries, entries, created, r.props)
    rows.append((rs.RevisionRow(r.rev, trees.oid_of(data), tree_oid, r.author, r.when,
                                r.message), sorted(entries), r.props, data))
    return files, new_folders


def record(service: RepoService, prep: Prepared) -> None:
    """Commit the prepared revisions; a lock held by another refuses a revision, and only
    the ones before it are kept (``prep.failed`` then says which)."""
    try:
        _record(service, prep.project, prep.rows)
    except Locked as e:
        at = int(str(e.context.pop("row")))
        failed_rev = prep.rows[at][0].rev
        prep.rows = prep.rows[:at]
        _record(service, prep.project, prep.rows)
        prep.failed = _refused(e, failed_rev)
        return
    if prep.rows and prep.failed is None:
        trees.CACHE.put(prep.rows[-1][0].tree_oid, prep.tree)


def _record(service: RepoService, p: Project,
            rows: list[tuple[rs.RevisionRow, list[str], dict[str, str], bytes]]) -> None:
    """One transaction: the revisions, the lock checks, and (before it commits) the refs."""
    if not rows:
        return
    store = service.store
    try:
        with service.studio.engine.begin() as conn:
            for i, (row, changed, props, _data) in enumerate(rows):
                rs.insert_revision(conn, p.id, row, changed, props)
                try:
                    refuse_locked(rs.locks_on(conn, p.id, changed), row.author)
                except Locked as e:
                    e.context["row"] = i
                    raise
            # As a single commit does: written while the rows are uncommitted.
            with ThreadPoolExecutor(REF_THREADS) as pool:
                list(pool.map(lambda it: store.put_ref(ref_name(p.name, it[0].rev), it[3]),
                              rows))
    except rs.RevisionTaken:
        raise Conflict(f"cannot commit r{rows[0][0].rev}: someone committed to project "
                       f"{p.name!r} during the import") from None
