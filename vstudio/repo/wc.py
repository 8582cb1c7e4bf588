"""Working copies: checkout, commit and update against a ``WcBackend``.

Implicit add and remove: the working copy is taken as it is. A new file (not ignored by
``.vstudioignore`` or the built-in patterns) is added by the next commit, a deleted file
is removed. There is no pristine copy of each file: the index holds each file's base id
and stat; ``revert`` and ``diff`` fetch the base from the store through a bounded cache.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from vstudio.errors import BadInput, Conflict, NotFound, VStudioError
from vstudio.repo import paths as P
from vstudio.repo import wcindex as W
from vstudio.repo.api import EMPTY_FOLDER_OID, Entry, folder_entry
from vstudio.repo.backend import WcBackend
from vstudio.repo.service import Change
from vstudio.repo.wcbatch import BATCH_FILE, BATCH_THREADS, batches, batches_by
from vstudio.store.api import NO_PROGRESS, Progress

FETCH_THREADS = 8
SMALL_FILE = 4 << 20
SMALL_UPLOAD = 1 << 20


class NotAWorkingCopy(VStudioError):
    """Not in a working copy: run 'vstudio checkout URL [DIR]' first."""


@dataclass
class UpdateResult:
    rev: int
    updated: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # user's file kept, incoming beside it
    kept: list[str] = field(default_factory=list)  # removed upstream, kept as modified


def writable(mode: int, readonly: bool) -> int:
    return (mode & ~0o222) if readonly else mode


class WorkingCopy:
    def __init__(self, root: Path, meta: dict[str, object], backend: WcBackend) -> None:
        self.root = root
        self.meta = meta
        self.backend = backend
        self.index = W.Index.load(str(root))

    # -- helpers ------------------------------------------------------------------------

    def save(self) -> None:
        self.index.save(str(self.root))

    def abspath(self, rel: str) -> Path:
        return self.root / rel

    def rel(self, user_path: str) -> str:
        """A path given on the command line (relative to the current folder) as repo path."""
        full = os.path.abspath(user_path)
        rel = os.path.relpath(full, self.root)
        if rel == ".":
            return ""
        if rel.startswith(".."):
            raise P.BadPath(f"{user_path} is outside the working copy {self.root}")
        return P.normalise(rel.replace(os.sep, "/"))

    def needs_lock(self, path: str) -> bool:
        return bool(self.index.rules) and P.matches_any(path, self.index.rules)

    def _safe_parent(self, rel: str, checked: set[str]) -> Path:
        """Create the folders of ``rel``; refuse to write through a symbolic link."""
        d = P.parent(rel)
        if d in checked or not d:
            return self.root / d
        cur = ""
        for part in d.split("/"):
            cur = f"{cur}/{part}" if cur else part
            if cur in checked:
                continue
            full = os.path.join(self.root, cur)
            if os.path.islink(full):
                raise P.BadPath(f"{cur} is a symbolic link: refusing to write through it")
            if os.path.lexists(full) and not os.path.isdir(full):
                raise Conflict(f"{cur} is a file in the working copy but a folder upstream")
            with contextlib.suppress(FileExistsError):
                os.mkdir(full)
            checked.add(cur)
        return self.root / d

    def make_folders(self, dirs: list[str]) -> None:
        """Create the base's empty folders (and the folders above them)."""
        checked: set[str] = set()
        for d in dirs:
            self._safe_parent(d + "/-", checked)  # the parent of "d/-" is d itself

    def _held_dirs(self) -> None:
        """Forget empty folders that now hold files: their contents imply them."""
        if self.index.dirs:
            held = {a for p in self.index.entries for a in P.ancestors(p)}
            self.index.dirs = [d for d in self.index.dirs if d not in held]

    def _fetch(self, entries: list[Entry], progress: Progress, *, replace: bool,
               name_of: dict[str, str] | None = None) -> dict[str, os.stat_result]:
        """Write each entry's content to its path (or ``name_of[path]``); return stats."""
        store = self.backend.store
        checked: set[str] = set()
        tmpdir = self.root / W.META / "tmp"
        tmpdir.mkdir(exist_ok=True)
        progress.start(sum(e.size for e in entries), "fetch")
        lock = threading.Lock()
        stats: dict[str, os.stat_result] = {}
        targets = {e.path: (name_of or {}).get(e.path, e.path) for e in entries}
        for e in entries:  # folders first, in one thread: creating them races otherwise
            self._safe_parent(targets[e.path], checked)

        root = str(self.root)

        def one(e: Entry, data: bytes | None = None) -> None:
            target = root + "/" + targets[e.path]
            mode = writable(e.mode, self.needs_lock(e.path) and e.path not in self.index.locks)
            dest = tmpdir / f"{threading.get_ident()}.tmp" if replace else Path(target)
            if e.size <= SMALL_FILE:
                # Small files in one read and one write: the store's own get_file makes
                # a temporary file and renames it, which doubles the cost per file.
                if data is None:
                    data = store.get_bytes(e.oid)
                if replace:  # a fresh file takes ``mode`` (less the umask)
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(dest)
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                    s = os.fstat(fd)
                finally:
                    os.close(fd)
            else:
                store.get_file(e.oid, dest)
                os.chmod(dest, mode)
                s = os.lstat(dest)
            if replace:
                os.replace(dest, target)
            with lock:
                stats[e.path] = s
                progress.advance(e.size)

        def batch(part: list[Entry]) -> None:
            for e in part:
                one(e)

        batched = self.backend.small_files
        if batched is not None:
            groups = batches([e for e in entries if e.size <= BATCH_FILE])
            entries = [e for e in entries if e.size > BATCH_FILE]

            def fetch_group(group: list[Entry]) -> None:
                for e, data in zip(group, batched.get_many([e.oid for e in group]),
                                   strict=True):
                    one(e, data)

            if groups:
                with ThreadPoolExecutor(min(BATCH_THREADS, len(groups))) as pool:
                    list(pool.map(fetch_group, groups))

        n = FETCH_THREADS if len(entries) >= 4 else 1
        if n == 1:
            batch(entries)
        else:  # one task per thread, not per file: 20,000 futures cost seconds
            with ThreadPoolExecutor(n) as pool:
                list(pool.map(batch, [entries[i::n] for i in range(n)]))
        progress.done()
        return stats

    # -- commit -------------------------------------------------------------------------

    def status(self, under: str = "") -> W.Status:
        res = W.status(str(self.root), self.index, under)
        if res.refreshed:
            self.save()
        return res

    def commit(self, message: str, targets: list[str] | None = None,
               progress: Progress = NO_PROGRESS,
               keep_locks: bool = False) -> tuple[int, list[str]] | None:
        """Commit the changes below ``targets`` (all by default); None if nothing changed.

        The committer's locks on committed paths are released unless ``keep_locks``."""
        if not message.strip():
            raise BadInput("a commit needs a message: -m MESSAGE")
        res = W.Status()
        for under in targets or [""]:
            r = W.status(str(self.root), self.index, under, hash_changed=False)
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
                               f"{p} ({self.index.conflicts[p]})" for p in res.conflicts[:10]))
        upload = sorted(set(res.modified) | set(res.added))
        if not upload and not res.deleted and not res.added_dirs and not res.deleted_dirs:
            return None
        for d in res.added_dirs:
            P.normalise(d)
        for p in upload:
            P.normalise(p)
        changes = self._upload(upload, res.stats, progress)
        same = [c for c in changes if c.new is not None and c.old == c.new.oid
                and c.new.mode == self.index.entries[c.path][3]]
        for c in same:  # touched but unchanged: only the stat cache learns something
            s = res.stats[c.path]
            self.index.entries[c.path] = (c.old or "", s.st_size, s.st_mtime_ns, c.new.mode
                                          if c.new else 0o644)
        by_path = {c.path: c for c in changes if c not in same}
        for p in res.deleted:
            by_path[p] = Change(p, self.index.entries[p][0], None)
        # A path whose kind changed (an empty folder now a file, or the other way) is one
        # change from what the base had to what is here.
        for d in res.added_dirs:
            by_path[d] = Change(d, by_path[d].old if d in by_path else None, folder_entry(d))
        for d in res.deleted_dirs:
            by_path[d] = Change(d, EMPTY_FOLDER_OID, by_path[d].new if d in by_path else None)
        changes = [by_path[p] for p in sorted(by_path)]
        if not changes:
            self.save()
            return None
        rev = self.backend.commit(message, changes)
        self.index.dirs = sorted((set(self.index.dirs) | set(res.added_dirs))
                                 - set(res.deleted_dirs))
        for c in changes:
            if c.new is None or c.new.is_dir:
                self.index.entries.pop(c.path, None)
            else:
                s = res.stats[c.path]
                self.index.entries[c.path] = (c.new.oid, s.st_size, s.st_mtime_ns, c.new.mode)
        self._held_dirs()
        if self.index.rev == rev - 1:
            self.index.rev = rev
        mine = [c.path for c in changes if c.path in self.index.locks]
        if mine and not keep_locks:  # as Subversion does, unless --keep-locks
            self.backend.release_locks(mine)
            self.index.locks = [p for p in self.index.locks if p not in mine]
            for p in mine:
                if c_exists(self.root / p) and self.needs_lock(p):
                    os.chmod(self.root / p, writable(self.index.entries[p][3], True))
        self.save()
        return rev, sorted(c.path for c in changes)

    def _upload(self, paths: list[str], stats: dict[str, os.stat_result],
                progress: Progress) -> list[Change]:
        changes: list[Change] = []
        progress.start(sum(stats[p].st_size for p in paths), "commit")
        batched = self.backend.small_files
        if batched is not None:  # through a server: small files many to a request
            small = [p for p in paths if stats[p].st_size <= BATCH_FILE]
            paths = [p for p in paths if stats[p].st_size > BATCH_FILE]
            for group in batches_by(small, lambda p: stats[p].st_size):
                datas = [self._read_small(p) for p in group]
                for p, oid in zip(group, batched.put_many(datas), strict=True):
                    changes.append(self._uploaded(p, stats, oid))
                    progress.advance(stats[p].st_size)
        with self.backend.store.writer() as w:
            root = str(self.root)
            for p in paths:
                full = root + "/" + p
                before = stats[p]
                old = self.index.entries.get(p)
                try:
                    if before.st_size <= SMALL_UPLOAD:
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
                    after = os.lstat(full)
                except (FileNotFoundError, BadInput, NotFound):
                    if os.path.lexists(full):  # the store's own error, not a lost file
                        raise
                    raise BadInput(f"{p} vanished during the commit; nothing was "
                                   "committed") from None
                if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                    raise Conflict(f"{p} changed during the commit; nothing was committed: "
                                   "save your work and commit again")
                stats[p] = after
                changes.append(Change(p, old[0] if old else None,
                                      Entry(p, oid, after.st_size, W.repo_mode(after),
                                            after.st_mtime)))
                progress.advance(after.st_size)
        progress.done()
        return changes

    def _read_small(self, p: str) -> bytes:
        try:
            with open(str(self.root) + "/" + p, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise BadInput(f"{p} vanished during the commit; nothing was committed") from None

    def _uploaded(self, p: str, stats: dict[str, os.stat_result], oid: str) -> Change:
        """The change of a file sent in a batch, once its bytes are stored."""
        before = stats[p]
        try:
            after = os.lstat(str(self.root) + "/" + p)
        except FileNotFoundError:
            raise BadInput(f"{p} vanished during the commit; nothing was committed") from None
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise Conflict(f"{p} changed during the commit; nothing was committed: "
                           "save your work and commit again")
        stats[p] = after
        old = self.index.entries.get(p)
        return Change(p, old[0] if old else None,
                      Entry(p, oid, after.st_size, W.repo_mode(after), after.st_mtime))

    # -- update -------------------------------------------------------------------------

    def update(self, rev: int | None = None, progress: Progress = NO_PROGRESS) -> UpdateResult:
        head = self.backend.head()
        target = head if rev is None else rev
        if target < 0 or target > head:
            raise NotFound(f"no revision {target} (head is r{head})")
        tree = {P.normalise(p): e for p, e in self.backend.tree(target).items()}
        want_dirs = {p for p, e in tree.items() if e.is_dir}
        tree = {p: e for p, e in tree.items() if not e.is_dir}
        self.index.rules = self.backend.lock_rules()
        self.index.locks = sorted(p for p, lk in self.backend.locks().items()
                                  if lk.owner == self.backend.user)
        local = W.status(str(self.root), self.index)
        changed_local = set(local.modified) | set(local.added)
        missing = set(local.deleted)
        out = UpdateResult(target)
        fetch: list[Entry] = []
        incoming: dict[str, str] = {}
        entries = self.index.entries
        for path in sorted(set(entries) | set(tree)):
            have = entries.get(path)
            want = tree.get(path)
            if (have[0] if have else None) == (want.oid if want else None):
                continue
            if want is None:  # removed upstream
                if path in changed_local:
                    out.kept.append(path)
                elif path not in missing:
                    (self.root / path).unlink(missing_ok=True)
                    out.removed.append(path)
                entries.pop(path, None)
                continue
            if path in changed_local:
                h = local.hashes.get(path) or W.hash_file(str(self.root / path))
                if h == want.oid:  # the same change on both sides
                    s = local.stats[path]
                    entries[path] = (want.oid, s.st_size, s.st_mtime_ns, want.mode)
                    continue
                copy = f"{path}.r{target}"
                incoming[path] = copy
                fetch.append(want)
                out.conflicts.append(path)
                continue
            fetch.append(want)
            (out.updated if have else out.added).append(path)
        self._clear_folders([incoming.get(e.path, e.path) for e in fetch], target)
        stats = self._fetch(fetch, progress, replace=True, name_of=incoming)
        for e in fetch:
            if e.path in incoming:
                self.index.conflicts[e.path] = incoming[e.path]
                # Base is now the incoming version; the stat never matches, so the
                # user's file shows as modified until resolved and committed.
                entries[e.path] = (e.oid, -1, 0, e.mode)
            else:
                s = stats[e.path]
                entries[e.path] = (e.oid, s.st_size, s.st_mtime_ns, e.mode)
        self._update_dirs(want_dirs, out)
        self._apply_lock_modes()
        self.index.rev = target
        self.save()
        return out

    def _clear_folders(self, paths: list[str], rev: int) -> None:
        """Remove empty folders where files come in (an empty folder made a file
        upstream); a folder holding something is refused before anything changes."""
        dirs = [p for p in paths if os.path.isdir(self.root / p)
                and not os.path.islink(self.root / p)]
        for d in dirs:
            with os.scandir(self.root / d) as it:
                held = any(it)
            if held:
                raise Conflict(f"{d} is a folder here but a file in r{rev}: move the "
                               "folder away and update again")
        for d in dirs:
            os.rmdir(self.root / d)

    def _update_dirs(self, want: set[str], out: UpdateResult) -> None:
        """Empty folders made upstream appear; folders gone upstream (removed, or emptied
        by removals) go here too when nothing is left in them."""
        have = set(self.index.dirs)
        new = sorted(want - have)
        # A folder emptied upstream is here already (it held the removed files): not new.
        out.added += [d + "/" for d in new if not os.path.isdir(self.root / d)]
        self.make_folders(new)
        held = {a for p in self.index.entries for a in P.ancestors(p)} | want
        gone = (have - want) | {a for p in out.removed for a in P.ancestors(p) if a}
        for d in sorted(gone - held, key=lambda d: -d.count("/")):  # deepest first
            with contextlib.suppress(OSError):  # not empty here: left alone
                os.rmdir(self.root / d)
                if d in have:
                    out.removed.append(d + "/")
        self.index.dirs = sorted(want)

    def _apply_lock_modes(self) -> None:
        for p, e in self.index.entries.items():
            if self.needs_lock(p):
                full = self.root / p
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(full, writable(e[3], p not in self.index.locks))


def c_exists(p: Path) -> bool:
    return os.path.lexists(p)


def write_meta(root: Path, meta: dict[str, object]) -> None:
    d = root / W.META
    d.mkdir(exist_ok=True)
    path = d / "wc.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds a token
    with os.fdopen(fd, "w") as f:
        json.dump(meta, f, indent=2)


def read_meta(root: Path) -> dict[str, object]:
    try:
        data = json.loads((root / W.META / "wc.json").read_text())
    except (OSError, ValueError) as e:
        raise NotAWorkingCopy(f"{root} is not a usable working copy: {e}") from None
    if not isinstance(data, dict):
        raise NotAWorkingCopy(f"{root}: bad working copy metadata")
    return data
