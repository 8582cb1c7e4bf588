"""Opening working copies and the smaller operations: checkout, revert, diff, cat, locks."""

from __future__ import annotations

import difflib
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from vstudio.errors import AlreadyExists, BadInput, Conflict, NotFound
from vstudio.repo import paths as P
from vstudio.repo import wcindex as W
from vstudio.repo import wcstatus as S
from vstudio.repo.api import Entry, LockInfo
from vstudio.repo.backend import WcBackend
from vstudio.repo.wc import NotAWorkingCopy, WorkingCopy, read_meta, writable, write_meta
from vstudio.repo.wcfetch import fetch
from vstudio.store.api import NO_PROGRESS, Progress

CACHE_LIMIT = int(os.environ.get("VSTUDIO_WC_CACHE_MB", "256")) << 20
TEXT_LIMIT = 4 << 20


def parse_url(url: str) -> dict[str, str]:
    """``STUDIO_DIR/PROJECT`` or ``http(s)://HOST:PORT[/PREFIX]/PROJECT``."""
    url = url.rstrip("/")
    if url.startswith(("http://", "https://")):
        scheme, rest = url.split("://", 1)
        if "/" not in rest:
            raise BadInput(f"bad URL {url!r}: name the project, e.g. {url}/PROJECT")
        base, project = rest.rsplit("/", 1)
        return {"kind": "remote", "server": f"{scheme}://{base}", "project": project}
    if url.startswith("file://"):
        url = url[len("file://"):]
    path = Path(url).expanduser().absolute()
    if not path.name:
        raise BadInput(f"bad URL {url!r}: use STUDIO_DIR/PROJECT")
    return {"kind": "local", "studio": str(path.parent), "project": path.name}


# Opens the repository a working copy's settings (``parse_url``'s fields) name. The
# domain does not choose the transport: ``vstudio.cli.repos`` passes one that opens a
# studio folder or a server.
Opener = Callable[[dict[str, object]], WcBackend]


def open_wc(start: str | None, opener: Opener) -> WorkingCopy:
    """The working copy holding ``start`` (default: the current folder)."""
    root = W.find_root(start or os.getcwd())
    if root is None:
        raise NotAWorkingCopy()
    meta = read_meta(Path(root))
    return WorkingCopy(Path(root), meta, opener(meta))


def checkout(meta: dict[str, object], backend: WcBackend, dest: str | None, rev: int | None,
             progress: Progress = NO_PROGRESS) -> WorkingCopy:
    """Check out revision ``rev`` (default: head) of ``backend``'s project into ``dest``.

    ``meta`` (``parse_url``'s fields, and what the working copy should remember) is kept
    in the working copy for the next commands.
    """
    meta = dict(meta)
    root = Path(dest or str(meta["project"])).absolute()
    if root.exists() and not (root.is_dir() and not any(root.iterdir())):
        raise AlreadyExists(f"{root} exists and is not an empty folder")
    head = backend.head()
    target = head if rev is None else rev
    if target < 0 or target > head:
        raise NotFound(f"no revision {target} in {meta['project']} (head is r{head})")
    tree = {P.normalise(p): e for p, e in backend.tree(target).items()}
    root.mkdir(parents=True, exist_ok=True)
    meta["user"] = backend.user
    write_meta(root, meta)
    W.Index(rev=target, rules=backend.lock_rules()).save(str(root))
    wc = WorkingCopy(root, meta, backend)
    wc.index.locks = sorted(p for p, lk in backend.locks().items() if lk.owner == backend.user)
    entries = [tree[p] for p in sorted(tree) if not tree[p].is_dir]
    wc.index.dirs = sorted(p for p, e in tree.items() if e.is_dir)
    wc.make_folders(wc.index.dirs)
    stats = fetch(wc, entries, progress, replace=False)
    for e in entries:
        s = stats[e.path]
        wc.index.entries[e.path] = (e.oid, s.st_size, s.st_mtime_ns, e.mode)
    wc.apply_lock_modes()
    wc.save()
    return wc


# -- the bounded local cache that serves revert and diff --------------------------------

class ObjectCache:
    """Base versions of files, fetched once; the oldest go when over ``limit`` bytes."""

    def __init__(self, wc: WorkingCopy, limit: int = CACHE_LIMIT) -> None:
        self.dir = wc.root / W.META / "cache"
        self.store = wc.backend.store
        # through a server, base versions are read with the grants of the base tree
        wc.backend.grant_base(wc.index.rev)
        self.limit = limit

    def path(self, oid: str, size: int) -> Path:
        p = self.dir / oid
        if p.exists():
            os.utime(p)
            return p
        self.dir.mkdir(exist_ok=True)
        tmp = self.dir / f"{oid}.tmp"
        self.store.get_file(oid, tmp)
        os.replace(tmp, p)
        self._trim(keep=p)
        return p

    def _trim(self, keep: Path) -> None:
        files = [(f.stat().st_mtime, f.stat().st_size, f) for f in self.dir.iterdir()
                 if f.is_file() and f != keep]
        total = sum(s for _, s, _ in files) + keep.stat().st_size
        for _, size, f in sorted(files):
            if total <= self.limit:
                break
            f.unlink(missing_ok=True)
            total -= size


def revert(wc: WorkingCopy, targets: list[str]) -> list[str]:
    """Put base versions back (content and mode); drop conflict copies. Returns paths."""
    cache = ObjectCache(wc)
    done: list[str] = []
    for t in targets:
        rel = wc.rel(t)
        prefix = rel + "/" if rel else ""
        paths = [p for p in wc.index.entries if p == rel or not rel or p.startswith(prefix)]
        dirs = [d for d in wc.index.dirs if d == rel or not rel or d.startswith(prefix)]
        if not paths and not dirs:
            raise NotFound(f"{t} is not versioned: delete it if you do not want it")
        res = S.status(str(wc.root), wc.index, rel)
        dirty = set(res.modified) | set(res.deleted) | set(res.conflicts)
        for p in sorted(dirty & set(paths)):
            oid, _size, _m, mode = wc.index.entries[p]
            src = cache.path(oid, _size)
            wc.safe_parent(p, set())
            tmp = wc.root / W.META / "tmp" / "revert"
            tmp.parent.mkdir(exist_ok=True)
            shutil.copyfile(src, tmp)
            os.chmod(tmp, writable(mode, wc.needs_lock(p) and p not in wc.index.locks))
            os.replace(tmp, wc.root / p)
            s = os.lstat(wc.root / p)
            wc.index.entries[p] = (oid, s.st_size, s.st_mtime_ns, mode)
            copy = wc.index.conflicts.pop(p, None)
            if copy:
                (wc.root / copy).unlink(missing_ok=True)
            done.append(p)
        done += _revert_dirs(wc, dirs)
    wc.save()
    return done


def _revert_dirs(wc: WorkingCopy, dirs: list[str]) -> list[str]:
    """Make the base's empty folders among ``dirs`` that are gone from disk again."""
    gone = [d for d in dirs if not os.path.isdir(wc.root / d)]
    for d in gone:
        if os.path.lexists(wc.root / d):  # the user's file where the folder was: theirs
            raise Conflict(f"{d} is a file here but an empty folder in the base: move the "
                           "file away to revert it")
    wc.make_folders(gone)
    return [d + "/" for d in gone]


def incoming(wc: WorkingCopy) -> set[str]:
    """Paths whose head version differs from the working copy's base: files added,
    changed or removed upstream, and folders (named ``folder/``) added or removed."""
    entries = wc.index.entries
    head = wc.backend.tree(wc.backend.head())
    files = {p: e for p, e in head.items() if not e.is_dir}
    out = {p for p in set(files) | set(entries)
           if (entries[p][0] if p in entries else None) != (files[p].oid if p in files else None)}
    # An empty folder's own folders count too (``up/`` of an empty ``up/sub/``).
    there = _folders(head) | {p for p, e in head.items() if e.is_dir}
    here = _folders(entries) | _folders(wc.index.dirs) | set(wc.index.dirs)
    return out | {d + "/" for d in there ^ here}


def _folders(paths: Iterable[str]) -> set[str]:
    """Every folder holding one of ``paths`` (not the top)."""
    out: set[str] = set()
    for p in paths:
        for a in P.ancestors(p):
            if not a or a in out:
                break  # its own folders are in already
            out.add(a)
    return out


@dataclass
class FileDiff:
    path: str
    status: str  # modified, added, deleted
    added: int  # lines (text) or -1 for binary
    removed: int
    old_size: int
    new_size: int
    text: str = ""


def _text(data: bytes) -> list[str] | None:
    if len(data) > TEXT_LIMIT or b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def diff(wc: WorkingCopy, targets: list[str]) -> list[FileDiff]:
    cache = ObjectCache(wc)
    out: list[FileDiff] = []
    for t in targets or [""]:
        rel = wc.rel(t) if t else ""
        res = wc.status(rel)
        for status, paths in (("modified", res.modified), ("added", res.added),
                              ("deleted", res.deleted)):
            for p in paths:
                old = b""
                if p in wc.index.entries:
                    oid, size, _m, _mode = wc.index.entries[p]
                    old = cache.path(oid, size).read_bytes()
                new = b"" if status == "deleted" else (wc.root / p).read_bytes()
                a, b = _text(old), _text(new)
                if a is None or b is None:
                    out.append(FileDiff(p, status, -1, -1, len(old), len(new)))
                    continue
                lines = list(difflib.unified_diff(a, b, f"a/{p}", f"b/{p}"))
                plus = sum(1 for ln in lines if ln.startswith("+") and not ln.startswith("+++"))
                minus = sum(1 for ln in lines
                            if ln.startswith("-") and not ln.startswith("---"))
                out.append(FileDiff(p, status, plus, minus, len(old), len(new), "".join(lines)))
    return sorted(out, key=lambda d: d.path)


def resolve_rev(backend: WcBackend, spec: str) -> int:
    if spec.upper() in ("HEAD", ""):
        return backend.head()
    s = spec[1:] if spec[:1] in "rR" and spec[1:].isdigit() else spec
    if s.isdigit():
        return int(s)
    tags = backend.tags()
    if spec in tags:
        return tags[spec]
    raise NotFound(f"no revision or tag {spec!r}")


def cat_entry(wc: WorkingCopy | None, backend: WcBackend, spec: str) -> Entry:
    """The entry of ``PATH@REV`` (REV: number, rN, HEAD or a tag; default: the base)."""
    path, _, rev_s = spec.rpartition("@") if "@" in spec else (spec, "", "")
    rel = wc.rel(path) if wc is not None else P.normalise(path)
    if not rev_s and wc is not None:
        e = wc.index.entries.get(rel)
        if e is None:
            raise NotFound(f"{path} is not versioned in this working copy")
        return Entry(rel, e[0], e[1], e[3])
    rev = resolve_rev(backend, rev_s)
    head = backend.head()
    if rev < 1 or rev > head:
        raise NotFound(f"no revision {rev} (head is r{head})")
    entry = backend.tree(rev).get(rel)
    if entry is None:
        raise NotFound(f"{rel} does not exist in r{rev}")
    if entry.is_dir:
        raise BadInput(f"{rel} is a folder in r{rev}")
    return entry


def lock(wc: WorkingCopy, target: str, message: str) -> LockInfo:
    rel = wc.rel(target)
    if rel not in wc.index.entries:
        raise NotFound(f"{target} is not versioned: commit it before locking it")
    info = wc.backend.lock(rel, message)
    if rel not in wc.index.locks:
        wc.index.locks.append(rel)
        wc.index.locks.sort()
    full = wc.root / rel
    if full.exists():
        os.chmod(full, writable(wc.index.entries[rel][3], False))
    wc.save()
    return info


def unlock(wc: WorkingCopy, target: str, force: bool) -> LockInfo:
    rel = wc.rel(target)
    info = wc.backend.unlock(rel, force)
    if rel in wc.index.locks:
        wc.index.locks.remove(rel)
    full = wc.root / rel
    if full.exists() and rel in wc.index.entries and wc.needs_lock(rel):
        os.chmod(full, writable(wc.index.entries[rel][3], True))
    wc.save()
    return info
