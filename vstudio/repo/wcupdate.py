"""Update: bring a working copy to a revision, keeping local changes.

A file changed here and upstream is never merged: the user's file stays, the incoming
version lands beside it as ``FILE.rN`` (a conflict to resolve before committing). A file
removed upstream but changed here is kept. Empty folders follow the revision: made,
removed when nothing is left in them, never reported new when they were here already.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vstudio.errors import Conflict, NotFound
from vstudio.repo import paths as P
from vstudio.repo import wcstatus as S
from vstudio.repo.api import Entry
from vstudio.repo.wcfetch import fetch as fetch_files
from vstudio.store.api import NO_PROGRESS, Progress

if TYPE_CHECKING:
    from vstudio.repo.wc import WorkingCopy


@dataclass
class UpdateResult:
    rev: int
    updated: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # user's file kept, incoming beside it
    kept: list[str] = field(default_factory=list)  # removed upstream, kept as modified


def update(wc: WorkingCopy, rev: int | None = None,
           progress: Progress = NO_PROGRESS) -> UpdateResult:
    head = wc.backend.head()
    target = head if rev is None else rev
    if target < 0 or target > head:
        raise NotFound(f"no revision {target} (head is r{head})")
    tree = {P.normalise(p): e for p, e in wc.backend.tree(target).items()}
    want_dirs = {p for p, e in tree.items() if e.is_dir}
    tree = {p: e for p, e in tree.items() if not e.is_dir}
    wc.index.rules = wc.backend.lock_rules()
    wc.index.locks = sorted(p for p, lk in wc.backend.locks().items()
                            if lk.owner == wc.backend.user)
    out = UpdateResult(target)
    fetch, incoming = _plan(wc, tree, out)
    _clear_folders(wc, [incoming.get(e.path, e.path) for e in fetch], target)
    stats = fetch_files(wc, fetch, progress, replace=True, name_of=incoming)
    entries = wc.index.entries
    for e in fetch:
        if e.path in incoming:
            wc.index.conflicts[e.path] = incoming[e.path]
            # Base is now the incoming version; the stat never matches, so the
            # user's file shows as modified until resolved and committed.
            entries[e.path] = (e.oid, -1, 0, e.mode)
        else:
            s = stats[e.path]
            entries[e.path] = (e.oid, s.st_size, s.st_mtime_ns, e.mode)
    _update_dirs(wc, want_dirs, out)
    wc.apply_lock_modes()
    wc.index.rev = target
    wc.save()
    return out


def _plan(wc: WorkingCopy, tree: dict[str, Entry],
          out: UpdateResult) -> tuple[list[Entry], dict[str, str]]:
    """Compare the base with ``tree``: drop files removed upstream (unless changed here),
    adopt the same change made on both sides; return what to fetch and, for conflicts,
    the name each incoming version is written to."""
    local = S.status(str(wc.root), wc.index)
    changed_local = set(local.modified) | set(local.added)
    missing = set(local.deleted)
    fetch: list[Entry] = []
    incoming: dict[str, str] = {}
    entries = wc.index.entries
    for path in sorted(set(entries) | set(tree)):
        have = entries.get(path)
        want = tree.get(path)
        if (have[0] if have else None) == (want.oid if want else None):
            continue
        if want is None:  # removed upstream
            if path in changed_local:
                out.kept.append(path)
            elif path not in missing:
                (wc.root / path).unlink(missing_ok=True)
                out.removed.append(path)
            entries.pop(path, None)
            continue
        if path in changed_local:
            h = local.hashes.get(path) or S.hash_file(str(wc.root / path))
            if h == want.oid:  # the same change on both sides
                s = local.stats[path]
                entries[path] = (want.oid, s.st_size, s.st_mtime_ns, want.mode)
                continue
            incoming[path] = f"{path}.r{out.rev}"
            fetch.append(want)
            out.conflicts.append(path)
            continue
        fetch.append(want)
        (out.updated if have else out.added).append(path)
    return fetch, incoming


def _clear_folders(wc: WorkingCopy, paths: list[str], rev: int) -> None:
    """Remove empty folders where files come in (an empty folder made a file
    upstream); a folder holding something is refused before anything changes."""
    dirs = [p for p in paths if os.path.isdir(wc.root / p)
            and not os.path.islink(wc.root / p)]
    for d in dirs:
        with os.scandir(wc.root / d) as it:
            held = any(it)
        if held:
            raise Conflict(f"{d} is a folder here but a file in r{rev}: move the "
                           "folder away and update again")
    for d in dirs:
        os.rmdir(wc.root / d)


def _update_dirs(wc: WorkingCopy, want: set[str], out: UpdateResult) -> None:
    """Empty folders made upstream appear; folders gone upstream (removed, or emptied
    by removals) go here too when nothing is left in them."""
    have = set(wc.index.dirs)
    new = sorted(want - have)
    # A folder emptied upstream is here already (it held the removed files): not new.
    out.added += [d + "/" for d in new if not os.path.isdir(wc.root / d)]
    wc.make_folders(new)
    held = {a for p in wc.index.entries for a in P.ancestors(p)} | want
    gone = (have - want) | {a for p in out.removed for a in P.ancestors(p) if a}
    for d in sorted(gone - held, key=lambda d: -d.count("/")):  # deepest first
        with contextlib.suppress(OSError):  # not empty here: left alone
            os.rmdir(wc.root / d)
            if d in have:
                out.removed.append(d + "/")
    wc.index.dirs = sorted(want)
