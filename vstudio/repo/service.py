"""The embedded repository: projects' revisions over the catalog and the object store.

This is the one place that writes revisions. A commit uploads its objects first (file
content, folder trees, the commit), then in one catalog transaction checks that every
changed path is still what the committer started from, checks locks, inserts revision
head+1 (the primary key makes two racing commits of one number impossible) and writes
the ref ``projects/<name>/revs/<n>`` before the transaction commits. A commit killed at
any moment leaves either the whole revision or none of it in the catalog; objects it
uploaded without a revision are garbage for ``store gc``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vstudio.catalog import accounts
from vstudio.catalog import repo_store as rs
from vstudio.errors import BadInput, Conflict, NotFound
from vstudio.repo import paths as P
from vstudio.repo import trees
from vstudio.repo.api import CommitInfo, Entry, LockInfo

if TYPE_CHECKING:
    from vstudio.catalog.accounts import Project
    from vstudio.store.api import ObjectStore
    from vstudio.studio import Studio

ANY = "*"  # a change's expected old id that skips the out-of-date check (imports)


@dataclass(frozen=True)
class Change:
    """Set ``path`` to ``new`` (None removes it); ``old`` is the id the committer had."""

    path: str
    old: str | None
    new: Entry | None


class OutOfDate(Conflict):
    """Your working copy is out of date: run 'vstudio update' first."""


class Locked(Conflict):
    """The path is locked by someone else."""


def ref_name(project: str, rev: int) -> str:
    return f"projects/{project}/revs/{rev:010d}"


class RepoService:
    """Embedded ``RepoReader`` plus the write operations of the repository."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio

    @property
    def store(self) -> ObjectStore:
        return self.studio.store

    def project(self, name: str) -> Project:
        return accounts.get_project(self.studio.engine, name)

    # -- RepoReader ---------------------------------------------------------------------

    def head(self, project: str) -> int:
        p = self.project(project)
        with self.studio.engine.connect() as conn:
            return rs.head(conn, p.id)

    def revision(self, project: str, rev: int) -> rs.RevisionRow:
        p = self.project(project)
        with self.studio.engine.connect() as conn:
            if rev == 0:
                return rs.RevisionRow(0, "", trees.EMPTY_OID, "", p.created, "")
            row = rs.revision(conn, p.id, rev)
            if row is None:
                h = rs.head(conn, p.id)
                raise NotFound(f"project {project!r} has no revision {rev} (head is r{h})")
            return row

    def log(self, project: str, path: str | None = None,
            limit: int | None = None) -> list[CommitInfo]:
        p = self.project(project)
        if path:
            path = P.normalise(path)
        with self.studio.engine.connect() as conn:
            rows = rs.log(conn, p.id, path, limit)
        return [CommitInfo(r.rev, r.author, r.time, r.message, ch, pr) for r, ch, pr in rows]

    def tree(self, project: str, rev: int) -> dict[str, Entry]:
        return dict(self.tree_and_folders(project, rev)[0])

    def tree_and_folders(self, project: str,
                         rev: int) -> tuple[dict[str, Entry], dict[str, str]]:
        row = self.revision(project, rev)
        return trees.load_tree(self.store, row.tree_oid)

    def tags(self, project: str) -> dict[str, int]:
        p = self.project(project)
        with self.studio.engine.connect() as conn:
            return rs.tags(conn, p.id)

    def locks(self, project: str) -> dict[str, LockInfo]:
        p = self.project(project)
        with self.studio.engine.connect() as conn:
            return {r.path: LockInfo(r.path, r.owner, r.time, r.message)
                    for r in rs.locks(conn, p.id)}

    def read(self, oid: str, offset: int, length: int) -> bytes:
        return self.store.read_range(oid, offset, length)

    def get_file(self, oid: str, dest: Path) -> None:
        self.store.get_file(oid, dest)

    # -- settings -----------------------------------------------------------------------

    def lock_rules(self, project: str) -> list[str]:
        p = self.project(project)
        with self.studio.engine.connect() as conn:
            return rs.lock_rules(conn, p.id)

    def add_lock_rules(self, project: str, patterns: list[str]) -> None:
        p = self.project(project)
        for pat in patterns:
            if not pat or len(pat) > 1000 or pat.startswith("/") or ".." in pat.split("/"):
                raise BadInput(f"bad lock rule {pat!r}")
        with self.studio.engine.begin() as conn:
            rs.add_lock_rules(conn, p.id, patterns)
            rules = rs.lock_rules(conn, p.id)
        self.store.put_ref(f"projects/{project}/lock-rules", json.dumps(rules).encode())

    def set_tag(self, project: str, name: str, rev: int | None = None) -> int:
        accounts.check_name("tag", name)
        p = self.project(project)
        with self.studio.engine.begin() as conn:
            h = rs.head(conn, p.id)
            rev = h if rev is None else rev
            if rev < 1 or rev > h:
                raise NotFound(f"project {project!r} has no revision {rev} (head is r{h})")
            rs.set_tag(conn, p.id, name, rev)
            all_tags = rs.tags(conn, p.id)
        self.store.put_ref(f"projects/{project}/tags", json.dumps(all_tags).encode())
        return rev

    # -- locks --------------------------------------------------------------------------

    def lock(self, project: str, path: str, owner: str, message: str = "") -> LockInfo:
        path = P.normalise(path)
        p = self.project(project)
        lock = rs.LockRow(path, owner, time.time(), message)
        held: rs.LockRow | None = None
        for _attempt in range(5):  # the holder may unlock between our insert and read
            try:
                with self.studio.engine.begin() as conn:
                    rs.take_lock(conn, p.id, lock)
                held = None
                self._record_lock(project, lock)
                break
            except rs.LockTaken:
                with self.studio.engine.connect() as conn:
                    held = rs.locks_on(conn, p.id, [path]).get(path)
                if held is not None:
                    break
        if held is not None and held.owner != owner:
            raise Locked(f"{path} is locked by {held.owner} since "
                         f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(held.time))}"
                         + (f": {held.message}" if held.message else ""))
        got = held or lock
        return LockInfo(got.path, got.owner, got.time, got.message)

    def unlock(self, project: str, path: str, user: str, force: bool = False) -> LockInfo:
        path = P.normalise(path)
        p = self.project(project)
        with self.studio.engine.begin() as conn:
            held = rs.locks_on(conn, p.id, [path]).get(path)
            if held is None:
                raise NotFound(f"{path} is not locked")
            if held.owner != user and not force:
                raise Locked(f"{path} is locked by {held.owner}, not you: "
                             "use --force to break the lock")
            rs.drop_lock(conn, p.id, path)
        self._forget_lock(project, path)
        return LockInfo(held.path, held.owner, held.time, held.message)

    # Each lock is also a ref ``projects/<name>/locks/<hash of path>`` (JSON), so that
    # ``catalog rebuild`` can restore locks from the bucket alone. The catalog stays the
    # authority (its unique key decides lock races); the ref is written after the
    # catalog's transaction commits, so a crash in between loses at most that record.

    def _record_lock(self, project: str, lock: rs.LockRow) -> None:
        self.store.put_ref(lock_ref(project, lock.path), json.dumps(
            {"path": lock.path, "owner": lock.owner, "time": lock.time,
             "message": lock.message}).encode())

    def _forget_lock(self, project: str, path: str) -> None:
        # NotFound: a lock taken before locks were recorded in the bucket
        with contextlib.suppress(NotFound):
            self.store.delete_ref(lock_ref(project, path))

    # -- commits ------------------------------------------------------------------------

    def commit(self, project: str, author: str, message: str, changes: list[Change], *,
               when: float | None = None, rev: int | None = None,
               allow_empty: bool = False, props: dict[str, str] | None = None,
               keep_empty: bool = False) -> int:
        """Record ``changes`` as the next revision and return its number.

        ``rev`` demands a specific number (imports keep Subversion's numbers); ``props``
        are revision properties (kept in the catalog and in the commit object);
        ``keep_empty``: folders left empty stay (imports; see ``trees.build_tree``).
        """
        p = self.project(project)
        for text in (author, message):
            if "\x00" in text:
                raise BadInput("commit messages and authors must not contain NUL characters")
        by_path: dict[str, Change] = {}
        for c in changes:
            path = P.normalise(c.path)
            if path in by_path:
                raise BadInput(f"{path} is changed twice in one commit")
            by_path[path] = c
        if not by_path and not allow_empty:
            raise BadInput("nothing to commit")
        for _attempt in range(20):
            try:
                return self._try_commit(p, author, message, by_path, when, rev, props or {},
                                        keep_empty)
            except rs.RevisionTaken:
                if rev is not None:
                    raise
                continue  # someone committed meanwhile: rebuild on the new head
        raise Conflict("the project is too busy: too many commits raced this one; try again")

    def _try_commit(self, p: Project, author: str, message: str, by_path: dict[str, Change],
                    when: float | None, want_rev: int | None, props: dict[str, str],
                    keep_empty: bool = False) -> int:
        engine = self.studio.engine
        with engine.connect() as conn:
            h = rs.head(conn, p.id)
            head_row = rs.revision(conn, p.id, h) if h else None
        if want_rev is not None and want_rev != h + 1:
            raise Conflict(f"cannot commit r{want_rev}: project {p.name!r} is at r{h}")
        base_files, base_folders = (trees.load_tree(self.store, head_row.tree_oid) if head_row
                                    else ({}, {}))
        stale = []
        for path, c in by_path.items():
            cur = base_files.get(path)
            if c.old != ANY and (cur.oid if cur else None) != c.old:
                stale.append(path)
        if stale:
            raise OutOfDate(self._stale_message(p, stale))
        new_paths = [path for path, c in by_path.items() if c.new and path not in base_files]
        if new_paths:
            P.check_case_collisions(*live_after(base_files, base_folders, by_path), new_paths)
        entries: dict[str, Entry | None] = {}
        for path, c in by_path.items():
            entries[path] = None if c.new is None else trees.canonical(path, c.new)
        now = time.time() if when is None else when
        rev = h + 1
        with self.store.writer() as w:  # durable when the block ends, before the commit
            created: list[str] = []
            tree_oid, _ = trees.build_tree(w, base_files, base_folders, entries, created,
                                           keep_empty=keep_empty)
            data = commit_object(p.name, rev, head_row.commit_oid if head_row else None,
                                 tree_oid, author, now, message, by_path, entries, created,
                                 props)
        # The commit's bytes live in its ref; its id is that of those bytes.
        commit_oid = trees.oid_of(data)
        with engine.begin() as conn:
            # Write first, then read: on SQLite a transaction that reads and then writes
            # cannot wait for another writer (it fails "database is locked"); one that
            # starts by writing waits its turn. The lock check still sees committed locks.
            rs.insert_revision(conn, p.id, rs.RevisionRow(rev, commit_oid, tree_oid, author,
                                                          now, message), by_path, props)
            refuse_locked(rs.locks_on(conn, p.id, list(by_path)), author)
            # Written while the row is still uncommitted: once the revision is visible,
            # the bucket can rebuild it. A crash before COMMIT leaves a ref that the next
            # commit of this number overwrites.
            self.store.put_ref(ref_name(p.name, rev), data)
        return rev

    def _stale_message(self, p: Project, stale: list[str]) -> str:
        names = ", ".join(sorted(stale)[:20]) + (f" and {len(stale) - 20} more"
                                                 if len(stale) > 20 else "")
        return (f"out of date: {names} changed in the repository since your working copy's "
                "version; run 'vstudio update' and commit again")

    def release_locks(self, project: str, owner: str, paths: list[str]) -> None:
        p = self.project(project)
        with self.studio.engine.begin() as conn:
            held = rs.locks_on(conn, p.id, paths)
            mine = [lk.path for lk in held.values() if lk.owner == owner]
            for path in mine:
                rs.drop_lock(conn, p.id, path)
        for path in mine:
            self._forget_lock(project, path)

def refuse_locked(held: Mapping[str, rs.LockRow], author: str) -> None:
    """``Locked`` if any of the locks ``held`` on a commit's paths is not ``author``'s."""
    others = sorted(f"{lk.path} (locked by {lk.owner})" for lk in held.values()
                    if lk.owner != author)
    if others:
        raise Locked("cannot commit locked paths: " + ", ".join(others[:20])
                     + (f" and {len(others) - 20} more" if len(others) > 20 else ""))


def commit_object(project: str, rev: int, parent: str | None, tree_oid: str, author: str,
                  when: float, message: str, changed: Iterable[str],
                  entries: dict[str, Entry | None], created: list[str],
                  props: dict[str, str]) -> bytes:
    """The bytes of a commit object (also its ref's value)."""
    # "objects" lists every id this revision brings in (new folders and file contents):
    # the store's gc keeps whatever ids a ref names, so the union of all revision refs
    # keeps every tree and file of the history alive.
    commit = {"t": "commit", "project": project, "rev": rev, "parent": parent,
              "tree": tree_oid, "author": author, "time": when, "message": message,
              "changed": sorted(changed),
              "objects": sorted(set(created) | {e.oid for e in entries.values()
                                                if e is not None and not e.is_dir})}
    if props:
        commit["props"] = dict(sorted(props.items()))
    return json.dumps(commit, separators=(",", ":"), ensure_ascii=False).encode()


def live_after(files: dict[str, Entry], folders: dict[str, str],
                by_path: dict[str, Change]) -> tuple[dict[str, Entry], list[str]]:
    """Files and folders that stay after this commit's removals (before its additions).

    A case-only rename (``foo.blend`` -> ``Foo.blend``, or ``Shots/`` -> ``shots/``)
    removes the old name in the same revision: comparing the new name with a tree that
    still holds the old one would refuse it.
    """
    removed = [p for p, c in by_path.items() if c.new is None and p in files]
    if not removed:
        return files, list(folders)
    live = {p: e for p, e in files.items() if p not in by_path or by_path[p].new is not None}
    # Only folders holding a removed file can become empty; keep those still holding one.
    maybe_gone = {a for p in removed for a in P.ancestors(p) if a}
    kept = {a for p in live for a in P.ancestors(p) if a in maybe_gone}
    return live, [f for f in folders if f not in maybe_gone or f in kept]


def lock_ref(project: str, path: str) -> str:
    """The ref recording a lock (a hash: paths may hold characters refs may not)."""
    import hashlib

    return f"projects/{project}/locks/{hashlib.sha256(path.encode()).hexdigest()[:32]}"
