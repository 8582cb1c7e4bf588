"""Update: bring a working copy to a revision, keeping local changes.

A file changed here and upstream is never merged: the user's file stays, the incoming
version lands beside it as ``FILE.rN`` (a conflict to resolve before committing). A file
removed upstream but changed here is kept. A file here where upstream now has a folder
(a tree conflict, as svn calls it) is set aside as ``FILE.mine`` and the folder comes in:
the update finishes and the user's bytes stay. Empty folders follow the revision: made,
removed when nothing is left in them, never reported new when they were here already;
each folder the update makes is listed, as svn lists them.
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
    aside: dict[str, str] = field(default_factory=dict)  # a folder upstream: file -> new name


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
    targets = [incoming.get(e.path, e.path) for e in fetch]
    _clear_folders(wc, targets, target)
    new_dirs = want_dirs - set(wc.index.dirs)
    folders = {a for t in targets for a in P.ancestors(t) if a}
    folders |= {a for d in new_dirs for a in (d, *P.ancestors(d)) if a}
    _set_aside(wc, folders, set(tree) | folders, out)
    out.added += [d + "/" for d in sorted(folders) if not os.path.isdir(wc.root / d)]
    out.added.sort(key=lambda p: p.rstrip("/"))  # a folder before what is in it
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


def _set_aside(wc: WorkingCopy, folders: set[str], taken: set[str],
               out: UpdateResult) -> None:
    """Move the user's files out of the way of folders the update makes (a file changed
    here that became a folder upstream, or an unversioned one): ``FILE.mine``, or
    ``FILE.mine.N`` when that name is taken. Outermost first: what moves takes its
    contents' paths with it."""
    for d in sorted(folders, key=lambda d: d.count("/")):
        full = wc.root / d
        if not os.path.lexists(full) or (os.path.isdir(full) and not os.path.islink(full)):
            continue
        if os.path.islink(full):
            continue  # refused by safe_parent with its own message; never moved
        name, n = f"{d}.mine", 1
        while os.path.lexists(wc.root / name) or name in taken:  # upstream's names too
            n += 1
            name = f"{d}.mine.{n}"
        os.rename(full, wc.root / name)
        out.aside[d] = name
        if d in out.kept:
            out.kept.remove(d)


def _update_dirs(wc: WorkingCopy, want: set[str], out: UpdateResult) -> None:
    """Empty folders made upstream appear; folders gone upstream (removed, or emptied
    by removals) go here too when nothing is left in them."""
    have = set(wc.index.dirs)
    new = sorted(want - have)
    wc.make_folders(new)
    held = {a for p in wc.index.entries for a in P.ancestors(p)} | want
    gone = (have - want) | {a for p in out.removed for a in P.ancestors(p) if a}
    for d in sorted(gone - held, key=lambda d: -d.count("/")):  # deepest first
        with contextlib.suppress(OSError):  # not empty here: left alone
            os.rmdir(wc.root / d)
            if d in have:
                out.removed.append(d + "/")
    wc.index.dirs = sorted(want)
