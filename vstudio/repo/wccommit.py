"""Commit from a working copy: what changed below the targets, the upload of its files,
the new revision, and the index and locks afterwards.

Implicit add and remove: a new file (not ignored) is added, a deleted one removed, an
empty folder made or removed on disk is too. A file is checked after its bytes are
stored: one that vanished or changed meanwhile fails the whole commit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from vstudio.errors import BadInput, Conflict, NotFound
from vstudio.repo import paths as P
from vstudio.repo import wcstatus as S
from vstudio.repo.api import EMPTY_FOLDER_OID, Entry, folder_entry
from vstudio.repo.service import Change
from vstudio.repo.wc import writable
from vstudio.repo.wcbatch import BATCH_FILE, batches_by
from vstudio.store.api import NO_PROGRESS, Progress

if TYPE_CHECKING:
    from vstudio.repo.wc import WorkingCopy

SMALL_UPLOAD = 1 << 20


def commit(wc: WorkingCopy, message: str, targets: list[str] | None = None,
           progress: Progress = NO_PROGRESS,
           keep_locks: bool = False) -> tuple[int, list[str]] | None:
    """Commit the changes below ``targets`` (all by default); None if nothing changed.

    The committer's locks on committed paths are released unless ``keep_locks``."""
    if not message.strip():
        raise BadInput("a commit needs a message: -m MESSAGE")
    res = _status(wc, targets)
    upload = sorted(set(res.modified) | set(res.added))
    if not upload and not res.deleted and not res.added_dirs and not res.deleted_dirs:
        return None
    for p in res.added_dirs + upload:
        P.normalise(p)
    changes = _changes(wc, res, _upload(wc, upload, res.stats, progress))
    if not changes:
        wc.save()
        return None
    rev = wc.backend.commit(message, changes)
    _record(wc, rev, changes, res)
    mine = [c.path for c in changes if c.path in wc.index.locks]
    if mine and not keep_locks:  # as Subversion does, unless --keep-locks
        wc.backend.release_locks(mine)
        wc.index.locks = [p for p in wc.index.locks if p not in mine]
        for p in mine:
            if os.path.lexists(wc.root / p) and wc.needs_lock(p):
                os.chmod(wc.root / p, writable(wc.index.entries[p][3], True))
    wc.save()
    return rev, sorted(c.path for c in changes)


def _status(wc: WorkingCopy, targets: list[str] | None) -> S.Status:
    """The changes below each target, in one ``Status``; refused with links or conflicts."""
    res = S.Status()
    for under in targets or [""]:
        r = S.status(str(wc.root), wc.index, under, hash_changed=False)
        for name in ("modified", "added", "deleted", "conflicts", "links"):
            getattr(res, name).extend(getattr(r, name))
        res.stats.update(r.stats)
        res.added_dirs += r.added_dirs
        res.deleted_dirs += r.deleted_dirs
    if res.links:
        raise P.BadPath("symbolic links cannot be committed: " + ", ".join(res.links[:10]))
    if res.conflicts:
        raise Conflict("resolve the conflicts first (keep your file, delete the incoming "
                       "copy): " + ", ".join(
                           f"{p} ({wc.index.conflicts[p]})" for p in res.conflicts[:10]))
    return res


def _changes(wc: WorkingCopy, res: S.Status, uploaded: list[Change]) -> list[Change]:
    """The revision's changes: uploaded files that really changed, removals, folders."""
    entries = wc.index.entries
    same = [c for c in uploaded if c.new is not None and c.old == c.new.oid
            and c.new.mode == entries[c.path][3]]
    for c in same:  # touched but unchanged: only the stat cache learns something
        s = res.stats[c.path]
        entries[c.path] = (c.old or "", s.st_size, s.st_mtime_ns, c.new.mode
                           if c.new else 0o644)
    by_path = {c.path: c for c in uploaded if c not in same}
    for p in res.deleted:
        by_path[p] = Change(p, entries[p][0], None)
    # A path whose kind changed (an empty folder now a file, or the other way) is one
    # change from what the base had to what is here.
    for d in res.added_dirs:
        by_path[d] = Change(d, by_path[d].old if d in by_path else None, folder_entry(d))
    for d in res.deleted_dirs:
        by_path[d] = Change(d, EMPTY_FOLDER_OID, by_path[d].new if d in by_path else None)
    return [by_path[p] for p in sorted(by_path)]


def _record(wc: WorkingCopy, rev: int, changes: list[Change], res: S.Status) -> None:
    """The committed versions become the working copy's base."""
    wc.index.dirs = sorted((set(wc.index.dirs) | set(res.added_dirs))
                           - set(res.deleted_dirs))
    for c in changes:
        if c.new is None or c.new.is_dir:
            wc.index.entries.pop(c.path, None)
        else:
            s = res.stats[c.path]
            wc.index.entries[c.path] = (c.new.oid, s.st_size, s.st_mtime_ns, c.new.mode)
    wc.held_dirs()
    if wc.index.rev == rev - 1:
        wc.index.rev = rev


def _upload(wc: WorkingCopy, paths: list[str], stats: dict[str, os.stat_result],
            progress: Progress) -> list[Change]:
    changes: list[Change] = []
    progress.start(sum(stats[p].st_size for p in paths), "commit")
    batched = wc.backend.small_files
    if batched is not None:  # through a server: small files many to a request
        small = [p for p in paths if stats[p].st_size <= BATCH_FILE]
        paths = [p for p in paths if stats[p].st_size > BATCH_FILE]
        for group in batches_by(small, lambda p: stats[p].st_size):
            datas = [_read_small(wc, p) for p in group]
            for p, oid in zip(group, batched.put_many(datas), strict=True):
                changes.append(_stored(wc, p, stats, oid))
                progress.advance(stats[p].st_size)
    with wc.backend.store.writer() as w:
        root = str(wc.root)
        for p in paths:
            full = root + "/" + p
            old = wc.index.entries.get(p)
            try:
                if stats[p].st_size <= SMALL_UPLOAD:
                    # One read and an in-memory put: per small file this is ~2.5x
                    # cheaper than put_file's checks (20,000-file commits).
                    with open(full, "rb") as f:
                        oid = w.put_bytes(f.read())
                elif old and p.endswith(".blend"):
                    # The base id lets the store delta a .blend against it (scattered
                    # pointer changes defeat plain chunking); for other files that
                    # costs a full read of the base and was measured slower.
                    oid = cast(Any, w).put_file(Path(full), previous=old[0])
                else:
                    oid = w.put_file(Path(full))
            except (FileNotFoundError, BadInput, NotFound):
                if os.path.lexists(full):  # the store's own error, not a lost file
                    raise
                raise BadInput(f"{p} vanished during the commit; nothing was "
                               "committed") from None
            changes.append(_stored(wc, p, stats, oid))
            progress.advance(stats[p].st_size)
    progress.done()
    return changes


def _read_small(wc: WorkingCopy, p: str) -> bytes:
    try:
        with open(str(wc.root) + "/" + p, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise BadInput(f"{p} vanished during the commit; nothing was committed") from None


def _stored(wc: WorkingCopy, p: str, stats: dict[str, os.stat_result], oid: str) -> Change:
    """The change of a file once its bytes are stored: refused if it changed meanwhile."""
    before = stats[p]
    try:
        after = os.lstat(str(wc.root) + "/" + p)
    except FileNotFoundError:
        raise BadInput(f"{p} vanished during the commit; nothing was committed") from None
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise Conflict(f"{p} changed during the commit; nothing was committed: "
                       "save your work and commit again")
    stats[p] = after
    old = wc.index.entries.get(p)
    return Change(p, old[0] if old else None,
                  Entry(p, oid, after.st_size, S.repo_mode(after), after.st_mtime))
