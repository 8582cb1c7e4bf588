"""A working copy's stat cache and status scan, in the standard library only.

``vstudio status`` runs through ``vstudio.cli.fast_status``, which imports this module
and nothing heavy (no click, rich, SQLAlchemy or HTTP client): Python's start-up plus a
scan must stay under Subversion's ``svn status`` time.

The index (``.vstudio/index``) is a ``marshal`` dict, which loads 20,000 entries in a
few milliseconds::

    {"v": 1, "rev": int, "entries": {path: (oid, size, mtime_ns, mode)},
     "conflicts": {path: incoming_copy_path}, "locks": [paths I hold],
     "rules": [needs-lock globs]}

``oid`` is the id of the version the working copy started from (its *base*), and
``size``/``mtime_ns`` the file's stat when it last matched that id. A file whose stat
still matches is unchanged without reading it; a file whose stat differs is hashed and,
if it still has its base id, its new stat is written back (as git does).
"""

from __future__ import annotations

import fnmatch
import marshal
import os
import stat as st
import threading
from dataclasses import dataclass, field
from typing import Any

META = ".vstudio"
INDEX = "index"
VERSION = 1
DEFAULT_IGNORE = ("*.blend1", "*.blend2", "*~", ".DS_Store", "Thumbs.db", "*.swp",
                  "__pycache__/")
IGNORE_FILE = ".vstudioignore"


def find_root(start: str) -> str | None:
    """The working copy folder containing ``start``, or None."""
    d = os.path.abspath(start)
    while True:
        if os.path.isfile(os.path.join(d, META, "wc.json")):
            return d
        up = os.path.dirname(d)
        if up == d:
            return None
        d = up


@dataclass
class Index:
    rev: int = 0
    entries: dict[str, tuple[str, int, int, int]] = field(default_factory=dict)
    conflicts: dict[str, str] = field(default_factory=dict)
    locks: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, root: str) -> Index:
        with open(os.path.join(root, META, INDEX), "rb") as f:
            doc = marshal.loads(f.read())
        if not isinstance(doc, dict) or doc.get("v") != VERSION:
            raise ValueError("unknown index version")
        return cls(doc["rev"], doc["entries"], doc["conflicts"], list(doc["locks"]),
                   list(doc["rules"]))

    def save(self, root: str) -> None:
        path = os.path.join(root, META, INDEX)
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "wb") as f:
            f.write(marshal.dumps({"v": VERSION, "rev": self.rev, "entries": self.entries,
                                   "conflicts": self.conflicts, "locks": self.locks,
                                   "rules": self.rules}))
        os.replace(tmp, path)


def read_ignore(root: str) -> list[str]:
    pats = list(DEFAULT_IGNORE)
    try:
        with open(os.path.join(root, IGNORE_FILE), encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    pats.append(line)
    except FileNotFoundError:
        pass
    return pats


class Ignore:
    def __init__(self, patterns: list[str], extra_files: set[str]) -> None:
        self.dirs = [p.rstrip("/") for p in patterns if p.endswith("/")]
        self.files = [p for p in patterns if not p.endswith("/")]
        self.extra = extra_files  # conflict copies: never committed

    def skip_dir(self, rel: str, name: str) -> bool:
        return _match(rel, name, self.dirs) or _match(rel, name, self.files)

    def skip_file(self, rel: str, name: str) -> bool:
        return rel in self.extra or _match(rel, name, self.files)


def _match(rel: str, name: str, pats: list[str]) -> bool:
    for p in pats:
        if "/" in p:
            if fnmatch.fnmatchcase(rel, p):
                return True
        elif fnmatch.fnmatchcase(name, p):
            return True
    return False


@dataclass
class Scan:
    """What a scan found: path -> lstat result of every candidate file, and oddities."""

    files: dict[str, os.stat_result] = field(default_factory=dict)
    links: list[str] = field(default_factory=list)  # symbolic links: never committed
    ignored: int = 0


def walk(root: str, index: Index, under: str = "") -> Scan:
    """List the working copy's files (below ``under``) with their stat, in threads."""
    ign = Ignore(read_ignore(root), set(index.conflicts.values()))
    if under and not os.path.isdir(os.path.join(root, under)):
        try:
            s = os.lstat(os.path.join(root, under))
        except FileNotFoundError:
            return Scan()
        if st.S_ISLNK(s.st_mode):
            return Scan(links=[under])
        return Scan({under: s})
    names: list[str] = []
    links: list[str] = []
    todo = [under]
    ignored = 0
    while todo:
        rel = todo.pop()
        try:
            it = os.scandir(os.path.join(root, rel) if rel else root)
        except (FileNotFoundError, NotADirectoryError):
            continue
        with it:
            for e in it:
                r = f"{rel}/{e.name}" if rel else e.name
                if not rel and e.name == META:
                    continue
                if e.is_symlink():
                    links.append(r)
                elif e.is_dir(follow_symlinks=False):
                    if ign.skip_dir(r, e.name):
                        ignored += 1
                    else:
                        todo.append(r)
                elif ign.skip_file(r, e.name):
                    ignored += 1
                else:
                    names.append(r)
    return Scan(_stat_all(root, names), links, ignored)


def _stat_all(root: str, names: list[str]) -> dict[str, os.stat_result]:
    out: dict[str, os.stat_result] = {}
    n = len(names)
    workers = 1 if n < 2000 else min(8, (os.cpu_count() or 2) * 2)
    lstat = os.lstat
    prefix = root + os.sep

    def run(part: list[str]) -> None:
        local = {}
        for r in part:
            try:  # noqa: SIM105 - a with-block per file costs time here
                local[r] = lstat(prefix + r)
            except FileNotFoundError:  # vanished since the scan: counts as absent
                pass
        out.update(local)

    if workers == 1:
        run(names)
        return out
    step = (n + workers - 1) // workers
    threads = [threading.Thread(target=run, args=(names[i:i + step],))
               for i in range(0, n, step)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def hash_file(path: str) -> str:
    import blake3

    size = os.path.getsize(path)
    h = blake3.blake3(max_threads=blake3.blake3.AUTO if size > 8 << 20 else 1)
    if size > 1 << 20:
        h.update_mmap(path)
    else:
        with open(path, "rb") as f:
            h.update(f.read())
    return str(h.hexdigest())


def repo_mode(s: os.stat_result) -> int:
    return 0o755 if s.st_mode & 0o100 else 0o644


def same_stat(entry: tuple[str, int, int, int], s: os.stat_result) -> bool:
    return (entry[1] == s.st_size and entry[2] == s.st_mtime_ns
            and (entry[3] & 0o100) == (repo_mode(s) & 0o100))


@dataclass
class Status:
    """Changes of a working copy against its base."""

    modified: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    stats: dict[str, os.stat_result] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)  # files read during the scan
    refreshed: bool = False  # stat cache entries updated: save the index

    def lines(self, locks: list[str]) -> list[tuple[str, str]]:
        codes: dict[str, str] = {}
        for p in self.modified:
            codes[p] = "M"
        for p in self.added:
            codes[p] = "A"
        for p in self.deleted:
            codes[p] = "D"
        for p in self.conflicts:
            codes[p] = "C"
        for p in self.links:
            codes[p] = "L"
        out = {p: c + " " for p, c in codes.items()}
        for p in locks:
            out[p] = out.get(p, "  ")[0] + "K"
        return sorted(((c, p) for p, c in out.items()), key=lambda x: x[1])


def status(root: str, index: Index, under: str = "") -> Status:
    """Compare the files on disk with the index; hash only files whose stat changed."""
    scan = walk(root, index, under)
    res = Status(links=sorted(scan.links), stats=scan.files)
    entries = index.entries
    prefix = under + "/" if under else ""
    for path, s in scan.files.items():
        e = entries.get(path)
        if e is None:
            res.added.append(path)
        elif not same_stat(e, s):
            h = hash_file(os.path.join(root, path))
            res.hashes[path] = h
            if h == e[0] and (e[3] & 0o100) == (repo_mode(s) & 0o100):
                entries[path] = (e[0], s.st_size, s.st_mtime_ns, e[3])
                res.refreshed = True
            else:
                res.modified.append(path)
    for path in entries:
        if path not in scan.files and (not under or path == under or path.startswith(prefix)):
            res.deleted.append(path)
    for path, copy in index.conflicts.items():
        if os.path.exists(os.path.join(root, copy)):
            res.conflicts.append(path)
    for lst in (res.modified, res.added, res.deleted, res.conflicts):
        lst.sort()
    return res


def format_lines(lines: list[tuple[str, str]]) -> str:
    return "".join(f"{c} {p}\n" for c, p in lines)


def status_json(res: Status, locks: list[str]) -> list[dict[str, Any]]:
    names = {"M": "modified", "A": "added", "D": "deleted", "C": "conflicted",
             "L": "link", " ": "normal"}
    return [{"path": p, "status": names[c[0]], "locked": c[1] == "K"}
            for c, p in res.lines(locks)]


def is_regular(s: os.stat_result) -> bool:
    return st.S_ISREG(s.st_mode)
