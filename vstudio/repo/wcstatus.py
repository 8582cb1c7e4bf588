"""A working copy's status: its changes against the base, as ``vstudio status`` shows them.

Standard library only (``vstudio status``'s fast path runs it): the scan (``wcscan``)
names new files and files whose stat changed; only those are read and hashed.
"""

from __future__ import annotations

import os

from vstudio.repo.wcindex import Entry, Index
from vstudio.repo.wcscan import walk


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


class Status:
    """Changes of a working copy against its base."""

    def __init__(self) -> None:
        self.modified: list[str] = []
        self.added: list[str] = []
        self.deleted: list[str] = []
        self.conflicts: list[str] = []
        self.links: list[str] = []
        self.added_dirs: list[str] = []  # empty folders new on disk
        self.deleted_dirs: list[str] = []  # the base's empty folders gone from disk
        self.stats: dict[str, os.stat_result] = {}  # of added and stat-changed files
        self.hashes: dict[str, str] = {}  # files read during the scan
        self.refreshed = False  # stat cache entries updated: save the index

    def lines(self, locks: list[str]) -> list[tuple[str, str]]:
        codes: dict[str, str] = {}
        for code, paths in (("M", self.modified), ("A", self.added), ("D", self.deleted),
                            ("C", self.conflicts), ("L", self.links)):
            for p in paths:
                codes[p] = code + " "
        for code, paths in (("A", self.added_dirs), ("D", self.deleted_dirs)):
            for p in paths:
                codes[p + "/"] = code + " "  # a folder: its name ends with '/'
        for p in locks:
            codes[p] = codes.get(p, "  ")[0] + "K"
        return sorted(((c, p) for p, c in codes.items()), key=lambda x: x[1])


def status(root: str, index: Index, under: str = "", hash_changed: bool = True) -> Status:
    """Compare the files on disk with the index; hash only files whose stat changed.

    With ``hash_changed=False`` a file whose stat changed counts as modified unread: a
    commit reads it anyway to store it, and drops it if its id turns out unchanged.
    """
    scan = walk(root, index, under)
    if scan.listed and not under:
        from vstudio.repo import wccache

        res_cache = wccache.rebuild(root, index, scan)
    else:
        res_cache = False
    res = Status()
    res.links = sorted(scan.links)
    res.stats = scan.changed
    t = index.table()
    refresh: dict[str, Entry] = {}
    for path, s in scan.changed.items():
        i = t.pos.get(path)
        if i is None:
            res.added.append(path)
            continue
        if not hash_changed:
            res.modified.append(path)
            continue
        h = hash_file(os.path.join(root, path))
        res.hashes[path] = h
        if h == t.oid(i) and t.modes[i] == (1 if s.st_mode & 0o100 else 0):
            refresh[path] = (h, s.st_size, s.st_mtime_ns, 0o755 if t.modes[i] else 0o644)
        else:
            res.modified.append(path)
    if 0 in scan.seen:  # some indexed file was not found
        prefix = under + "/" if under else ""
        seen = scan.seen
        for i, path in enumerate(t.paths):
            if not seen[i] and (not under or path == under or path.startswith(prefix)):
                res.deleted.append(path)
    if refresh:
        index.entries.update(refresh)  # drops the folder cache: the next scan remakes it
        res.refreshed = True
    elif res_cache:
        res.refreshed = True  # save the new folder cache
    for path, copy in index.conflicts.items():
        if os.path.exists(os.path.join(root, copy)):
            res.conflicts.append(path)
    base_dirs = set(index.dirs)
    res.added_dirs = sorted(d for d in scan.empty if d not in base_dirs)
    prefix = under + "/" if under else ""
    res.deleted_dirs = [d for d in index.dirs if (not under or d == under or d.startswith(prefix))
                        and not os.path.isdir(os.path.join(root, d))]
    for lst in (res.modified, res.added, res.deleted, res.conflicts):
        lst.sort()
    return res


def format_lines(lines: list[tuple[str, str]]) -> str:
    return "".join(f"{c} {p}\n" for c, p in lines)


def status_json(res: Status, locks: list[str], user: str | None) -> list[dict[str, object]]:
    """Rows as ``status --json`` prints them (the full command adds others' locks)."""
    names = {"M": "modified", "A": "added", "D": "deleted", "C": "conflicted",
             "L": "link", " ": "normal"}
    return [{"path": p, "status": names[c[0]], "locked": c[1] == "K",
             "lock_owner": user if c[1] == "K" else None, "out_of_date": False}
            for c, p in res.lines(locks)]
