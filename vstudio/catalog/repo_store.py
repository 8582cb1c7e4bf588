"""SQL of the repository: the revision index, locks, tags and lock rules of projects."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vstudio.catalog.repo_tables import (
    repo_changes,
    repo_lock_rules,
    repo_locks,
    repo_revisions,
    repo_revprops,
    repo_tags,
)
from vstudio.errors import Conflict


@dataclass(frozen=True)
class RevisionRow:
    rev: int
    commit_oid: str
    tree_oid: str
    author: str
    time: float
    message: str


class RevisionTaken(Conflict):
    """Another commit took this revision number first."""


def head(conn: Connection, project_id: int) -> int:
    q = sa.select(sa.func.max(repo_revisions.c.rev)).where(
        repo_revisions.c.project_id == project_id)
    return int(conn.execute(q).scalar() or 0)


def _row(r: sa.Row) -> RevisionRow:
    return RevisionRow(r.rev, r.commit_oid, r.tree_oid, r.author, r.time, r.message)


def revision(conn: Connection, project_id: int, rev: int) -> RevisionRow | None:
    r = conn.execute(sa.select(repo_revisions).where(
        (repo_revisions.c.project_id == project_id) & (repo_revisions.c.rev == rev))).first()
    return _row(r) if r else None


def insert_revision(conn: Connection, project_id: int, row: RevisionRow,
                    changed: Iterable[str], props: dict[str, str] | None = None) -> None:
    """Insert one revision; ``RevisionTaken`` if its number exists already.

    No SAVEPOINT here: with Python's sqlite3 driver a SAVEPOINT outside a transaction
    starts one that its RELEASE commits, which would make the revision visible before
    the rest of its transaction. After ``RevisionTaken`` the caller's transaction is
    spoiled and must be rolled back (it is, by leaving its ``with`` block).
    """
    try:
        conn.execute(repo_revisions.insert().values(
            project_id=project_id, rev=row.rev, commit_oid=row.commit_oid,
            tree_oid=row.tree_oid, author=row.author, time=row.time, message=row.message))
    except sa.exc.IntegrityError:
        raise RevisionTaken(f"revision {row.rev} was committed by someone else first") from None
    rows = [{"project_id": project_id, "rev": row.rev, "path": p} for p in sorted(set(changed))]
    if rows:
        conn.execute(repo_changes.insert(), rows)
    if props:
        conn.execute(repo_revprops.insert(), [
            {"project_id": project_id, "rev": row.rev, "name": k, "value": v}
            for k, v in sorted(props.items())])


def revprops(conn: Connection, project_id: int, lo: int, hi: int) -> dict[int, dict[str, str]]:
    """Revision properties of revisions ``lo..hi``: rev -> name -> value."""
    q = sa.select(repo_revprops).where((repo_revprops.c.project_id == project_id)
                                       & (repo_revprops.c.rev >= lo) & (repo_revprops.c.rev <= hi))
    out: dict[int, dict[str, str]] = {}
    for r in conn.execute(q):
        out.setdefault(r.rev, {})[r.name] = r.value
    return out


def log(conn: Connection, project_id: int, path: str | None,
        limit: int | None) -> list[tuple[RevisionRow, list[str], dict[str, str]]]:
    """Revisions newest first, each with its changed paths; ``path`` filters (file or folder)."""
    q = sa.select(repo_revisions).where(repo_revisions.c.project_id == project_id)
    if path:
        sub = sa.select(repo_changes.c.rev).where(
            (repo_changes.c.project_id == project_id)
            & ((repo_changes.c.path == path) | repo_changes.c.path.startswith(path + "/",
                                                                               autoescape=True)))
        q = q.where(repo_revisions.c.rev.in_(sub))
    q = q.order_by(repo_revisions.c.rev.desc())
    if limit:
        q = q.limit(limit)
    revs = [_row(r) for r in conn.execute(q)]
    if not revs:
        return []
    lo, hi = revs[-1].rev, revs[0].rev
    changed: dict[int, list[str]] = {}
    cq = sa.select(repo_changes.c.rev, repo_changes.c.path).where(
        (repo_changes.c.project_id == project_id) & (repo_changes.c.rev >= lo)
        & (repo_changes.c.rev <= hi)).order_by(repo_changes.c.path)
    for rev, p in conn.execute(cq):
        changed.setdefault(rev, []).append(p)
    props = revprops(conn, project_id, lo, hi)
    return [(r, changed.get(r.rev, []), props.get(r.rev, {})) for r in revs]


def delete_project_history(conn: Connection, project_id: int) -> None:
    for t in (repo_changes, repo_revprops, repo_revisions, repo_tags, repo_lock_rules):
        conn.execute(t.delete().where(t.c.project_id == project_id))


# -- locks ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LockRow:
    path: str
    owner: str
    time: float
    message: str


def locks(conn: Connection, project_id: int) -> list[LockRow]:
    q = sa.select(repo_locks).where(repo_locks.c.project_id == project_id).order_by(
        repo_locks.c.path)
    return [LockRow(r.path, r.owner, r.time, r.message) for r in conn.execute(q)]


def locks_on(conn: Connection, project_id: int, paths: Iterable[str]) -> dict[str, LockRow]:
    out: dict[str, LockRow] = {}
    wanted = sorted(set(paths))
    for i in range(0, len(wanted), 500):  # keep IN lists small for every database
        q = sa.select(repo_locks).where((repo_locks.c.project_id == project_id)
                                        & repo_locks.c.path.in_(wanted[i:i + 500]))
        for r in conn.execute(q):
            out[r.path] = LockRow(r.path, r.owner, r.time, r.message)
    return out


class LockTaken(Conflict):
    """Someone holds this lock already."""


def take_lock(conn: Connection, project_id: int, lock: LockRow) -> None:
    """Insert a lock; ``LockTaken`` (transaction spoiled) when the path is locked."""
    try:
        conn.execute(repo_locks.insert().values(project_id=project_id, path=lock.path,
                                                owner=lock.owner, time=lock.time,
                                                message=lock.message))
    except sa.exc.IntegrityError:
        raise LockTaken(f"{lock.path} is locked already") from None


def drop_lock(conn: Connection, project_id: int, path: str) -> None:
    conn.execute(repo_locks.delete().where((repo_locks.c.project_id == project_id)
                                           & (repo_locks.c.path == path)))


# -- tags and lock rules ----------------------------------------------------------------

def tags(conn: Connection, project_id: int) -> dict[str, int]:
    q = sa.select(repo_tags.c.name, repo_tags.c.rev).where(repo_tags.c.project_id == project_id)
    return {name: int(rev) for name, rev in conn.execute(q)}


def set_tag(conn: Connection, project_id: int, name: str, rev: int) -> None:
    conn.execute(repo_tags.delete().where((repo_tags.c.project_id == project_id)
                                          & (repo_tags.c.name == name)))
    conn.execute(repo_tags.insert().values(project_id=project_id, name=name, rev=rev))


def lock_rules(conn: Connection, project_id: int) -> list[str]:
    q = sa.select(repo_lock_rules.c.pattern).where(repo_lock_rules.c.project_id == project_id)
    return sorted(p for (p,) in conn.execute(q))


def add_lock_rules(conn: Connection, project_id: int, patterns: Iterable[str]) -> None:
    have = set(lock_rules(conn, project_id))
    new = [{"project_id": project_id, "pattern": p} for p in sorted(set(patterns) - have)]
    if new:
        conn.execute(repo_lock_rules.insert(), new)


def trees_since(conn: Connection, project_id: int, after: int) -> list[tuple[int, str, str]]:
    """(rev, commit id, tree id) of the revisions after ``after``, oldest first."""
    q = (sa.select(repo_revisions.c.rev, repo_revisions.c.commit_oid, repo_revisions.c.tree_oid)
         .where((repo_revisions.c.project_id == project_id) & (repo_revisions.c.rev > after))
         .order_by(repo_revisions.c.rev))
    return [(int(r.rev), str(r.commit_oid), str(r.tree_oid)) for r in conn.execute(q)]
