"""A working copy's stat cache and status scan, in the standard library only.

``vstudio status`` runs through ``vstudio.cli.fast_status``, which imports this module
and nothing heavy (no click, rich, SQLAlchemy or HTTP client, not even ``re``): Python's
start-up plus a scan must stay near Subversion's ``svn status`` time.

The index (``.vstudio/index``) is one ``marshal`` dict whose per-file data are packed
columns, so 20,000 entries load in a few milliseconds without creating 100,000 objects::

    {"v": 2, "rev": int, "paths": [str], "stats": bytes (int64 size, mtime_ns per path),
     "oids": bytes (32 per path), "modes": bytes (1 = executable), "conflicts": {path:
     incoming_copy}, "locks": [paths I hold], "rules": [needs-lock globs],
     "dirs": [empty folders of the base]}   (optional: an older reader ignores it)

A file's ``oid`` is the id of the version the working copy started from (its *base*);
``size``/``mtime_ns`` its stat when it last matched that id. A file whose stat still
matches is unchanged without reading it; a file whose stat differs is hashed and, if it
still has its base id, its new stat is written back (as git does).
"""

from __future__ import annotations

import marshal
import os
import stat as st
import time

# Not ``typing.TYPE_CHECKING``: importing typing costs the fast status path ~2 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

META = ".vstudio"
INDEX = "index"
VERSION = 2
DEFAULT_IGNORE = ("*.blend1", "*.blend2", "*~", ".DS_Store", "Thumbs.db", "*.swp",
                  "__pycache__/")
IGNORE_FILE = ".vstudioignore"

Entry = tuple[str, int, int, int]  # (oid hex, size, mtime_ns, mode)


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


class Table:
    """The packed columns of the index, read without building per-file objects."""

    def __init__(self, paths: list[str], stats: bytes, oids: bytes, modes: bytes) -> None:
        self.paths = paths
        self.stats = memoryview(stats).cast("q")
        self.oids = oids
        self.modes = modes
        self._pos: dict[str, int] | None = None

    @property
    def pos(self) -> dict[str, int]:
        if self._pos is None:
            self._pos = {p: i for i, p in enumerate(self.paths)}
        return self._pos

    def oid(self, i: int) -> str:
        return self.oids[32 * i:32 * i + 32].hex()

    def entry(self, i: int) -> Entry:
        return (self.oid(i), self.stats[2 * i], self.stats[2 * i + 1],
                0o755 if self.modes[i] else 0o644)

    @classmethod
    def from_entries(cls, entries: dict[str, Entry]) -> Table:
        from array import array

        # Grouped by folder (each folder's files next to each other), so the folder cache
        # can name a folder's files as one slice of the columns.
        paths = sorted(entries, key=lambda p: p.rpartition("/")[::2])
        stats = array("q")
        oids = bytearray()
        modes = bytearray()
        for p in paths:
            oid, size, mtime, mode = entries[p]
            stats.append(size)
            stats.append(mtime)
            oids += bytes.fromhex(oid)
            modes.append(1 if mode & 0o100 else 0)
        return cls(paths, stats.tobytes(), bytes(oids), bytes(modes))


class Index:
    def __init__(self, rev: int = 0, entries: dict[str, Entry] | None = None,
                 conflicts: dict[str, str] | None = None, locks: list[str] | None = None,
                 rules: list[str] | None = None) -> None:
        self.rev = rev
        self._entries: dict[str, Entry] | None = entries if entries is not None else {}
        self._table: Table | None = None
        self.conflicts = conflicts or {}
        self.locks = locks or []
        self.rules = rules or []
        self.dirs: list[str] = []  # the base's empty folders (a folder holding files is implied)
        # Folder cache (see ``wccache``): valid only for the table it was made with.
        self.dcache: dict[str, Any] | None = None

    @property
    def entries(self) -> dict[str, Entry]:
        """path -> (oid, size, mtime_ns, mode); the caller may change it."""
        self.dcache = None  # the caller may change entries: the folder cache no longer holds
        if self._entries is None:
            t = self._table
            self._entries = {p: t.entry(i) for i, p in enumerate(t.paths)} if t else {}
        self._table = None
        return self._entries

    def table(self) -> Table:
        if self._table is None:
            self._table = Table.from_entries(self._entries or {})
            self._entries = None
        return self._table

    @classmethod
    def load(cls, root: str) -> Index:
        with open(os.path.join(root, META, INDEX), "rb") as f:
            doc = marshal.loads(f.read())
        if not isinstance(doc, dict) or doc.get("v") != VERSION:
            raise ValueError("unknown index version")
        idx = cls(doc["rev"], None, doc["conflicts"], list(doc["locks"]), list(doc["rules"]))
        idx._entries = None
        idx._table = Table(doc["paths"], doc["stats"], doc["oids"], doc["modes"])
        idx.dcache = doc.get("dcache")
        idx.dirs = list(doc.get("dirs", ()))
        return idx

    def save(self, root: str) -> None:
        t = self.table()
        path = os.path.join(root, META, INDEX)
        tmp = f"{path}.{os.getpid()}.tmp"
        doc = {"v": VERSION, "rev": self.rev, "paths": t.paths, "stats": t.stats.tobytes(),
               "oids": t.oids, "modes": t.modes, "conflicts": self.conflicts,
               "locks": self.locks, "rules": self.rules}
        if self.dcache is not None:  # an optional key: older readers ignore it
            doc["dcache"] = self.dcache
        if self.dirs:  # optional too
            doc["dirs"] = self.dirs
        with open(tmp, "wb") as f:
            f.write(marshal.dumps(doc))
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


class Matcher:
    """Glob patterns split into the cheap common cases and the rest (fnmatch, lazily)."""

    def __init__(self, patterns: list[str]) -> None:
        suffixes, names, other = [], set(), []
        for p in patterns:
            if "/" in p:
                other.append(p)
            elif p.startswith("*") and not any(c in p[1:] for c in "*?["):
                suffixes.append(p[1:])
            elif not any(c in p for c in "*?["):
                names.add(p)
            else:
                other.append(p)
        self.suffixes = tuple(suffixes)
        self.names = names
        self.other = other

    def __call__(self, rel: str, name: str) -> bool:
        if name in self.names or (self.suffixes and name.endswith(self.suffixes)):
            return True
        if self.other:
            from fnmatch import fnmatchcase

            for p in self.other:
                if fnmatchcase(rel if "/" in p else name, p):
                    return True
        return False


class Ignore:
    def __init__(self, patterns: list[str], extra_files: set[str]) -> None:
        self.dirs = Matcher([p.rstrip("/") for p in patterns if p.endswith("/")]
                            + [p for p in patterns if not p.endswith("/")])
        self.files = Matcher([p for p in patterns if not p.endswith("/")])
        self.extra = extra_files  # conflict copies: never committed
        self._tracked_dirs: set[str] | None = None
        self.hidden: set[str] = set()  # ignored folders entered only for tracked files

    def enter_ignored(self, rel: str, table: Table) -> bool:
        if self.holds_tracked(rel, table):
            self.hidden.add(rel)
            return True
        return False

    def holds_tracked(self, rel: str, table: Table) -> bool:
        """Whether a matching folder holds tracked files: those are never ignored (a
        commit would delete them). Built on the first ignored folder seen."""
        if self._tracked_dirs is None:
            dirs: set[str] = set()
            for p in table.paths:
                i = p.rfind("/")
                while i > 0 and p[:i] not in dirs:
                    dirs.add(p[:i])
                    i = p.rfind("/", 0, i)
            self._tracked_dirs = dirs
        return rel in self._tracked_dirs

    def skip_dir(self, rel: str, name: str) -> bool:
        return self.dirs(rel, name)

    def skip_file(self, rel: str, name: str) -> bool:
        return rel in self.extra or self.files(rel, name)


class Scan:
    """What a scan found: files that are new or whose stat changed, and what was seen."""

    def __init__(self) -> None:
        self.changed: dict[str, os.stat_result] = {}  # not in the index, or stat differs
        self.links: list[str] = []  # symbolic links: never committed
        self.seen = bytearray()  # per index entry: 1 when found on disk
        # Folders listed (not answered by the folder cache): rel -> (folder mtime_ns,
        # clean: only indexed or ignored entries, subfolders); feeds ``wccache.rebuild``.
        self.listed: dict[str, tuple[int, bool, list[str]]] = {}
        self.st_modes: dict[int, int] = {}  # index position -> st_mode seen when listing
        self.hits: list[str] = []  # folders answered by the folder cache
        self.empty: list[str] = []  # folders (not the top) holding nothing not ignored
        self.start = time.time_ns()


def _cached_dir(fd: int, rel: str, c: tuple[int, int, int, list[str]], table: Table,
                cmodes: memoryview, seen: bytearray, subdirs: list[str]) -> bool:
    """Answer a folder from the cache: True when its mtime is unchanged (no entry added,
    removed or renamed since the cache was made) and each indexed file's stat matches."""
    mtime, first, count, subs = c
    if os.fstat(fd).st_mtime_ns != mtime:
        return False
    end = first + count
    k = len(rel) + 1 if rel else 0
    stat = os.stat
    try:
        got = [(s.st_size, s.st_mtime_ns, s.st_mode) for s in
               [stat(p[k:], dir_fd=fd, follow_symlinks=False) for p in table.paths[first:end]]]
    except OSError:
        return False
    stats = table.stats
    if got != list(zip(stats[2 * first:2 * end:2], stats[2 * first + 1:2 * end:2],
                       cmodes[first:end], strict=True)):
        return False
    seen[first:end] = b"\x01" * count
    subdirs.extend(subs)
    return True


def _scan_dirs(root: str, dirs: list[str], ign: Ignore, table: Table, out: Scan,
               subdirs: list[str], cache: dict[str, Any] | None) -> None:
    """Scan ``dirs`` (not recursively), comparing each file's stat with the index."""
    pos = table.pos
    stats = table.stats
    modes = table.modes
    seen = out.seen
    changed = out.changed
    names = ign.files.names
    suffixes = ign.files.suffixes
    slow = bool(ign.files.other) or bool(ign.extra)
    cdirs = cache["dirs"] if cache else {}
    cmodes = memoryview(cache["st_modes"]).cast("I") if cache else memoryview(b"")
    st_modes = out.st_modes
    for rel in dirs:
        # A folder descriptor: each stat is an fstatat() of a bare name, so the kernel
        # does not walk the whole path again for every file.
        try:
            fd = os.open(root + "/" + rel if rel else root, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            continue
        c = cdirs.get(rel)
        if c is not None and _cached_dir(fd, rel, c, table, cmodes, seen, subdirs):
            os.close(fd)
            out.hits.append(rel)
            if rel and not c[2] and not c[3]:  # no files, no folders
                out.empty.append(rel)
            continue
        dir_mtime = os.fstat(fd).st_mtime_ns
        hidden = rel in ign.hidden  # an ignored folder entered for its tracked files
        clean = True
        held = False  # anything not ignored in it
        mine: list[str] = []
        try:
            it = os.scandir(fd)
        except OSError:
            os.close(fd)
            continue
        with it:
            for e in it:
                name = e.name
                r = rel + "/" + name if rel else name
                if (hidden or name in names or (suffixes and name.endswith(suffixes))) \
                        and r not in pos and not ign.holds_tracked(r, table):
                    continue  # ignored (file or folder): no stat needed
                try:
                    # One stat call gives the type too: cheaper than is_symlink()/is_dir().
                    s = e.stat(follow_symlinks=False)
                except FileNotFoundError:  # vanished during the scan: counts as absent
                    clean = False
                    continue
                kind = s.st_mode & 0o170000
                if kind != 0o100000:  # not a regular file
                    if kind == 0o040000:
                        if not (not rel and name == META) and (
                                not (hidden or ign.skip_dir(r, name))
                                or ign.enter_ignored(r, table)):
                            subdirs.append(r)
                            mine.append(r)
                    else:
                        clean, held = False, True
                        if kind == 0o120000:
                            out.links.append(r)
                    continue
                if (slow or hidden) and r not in pos and (hidden or ign.skip_file(r, name)):
                    continue  # a tracked file is never ignored
                held = True
                i = pos.get(r)
                if i is None:
                    changed[r] = s
                    clean = False
                    continue
                seen[i] = 1
                st_modes[i] = s.st_mode
                if (stats[2 * i] != s.st_size or stats[2 * i + 1] != s.st_mtime_ns
                        or modes[i] != (1 if s.st_mode & 0o100 else 0)):
                    changed[r] = s
        os.close(fd)
        out.listed[rel] = (dir_mtime, clean, mine)
        if rel and not held and not mine:
            out.empty.append(rel)


def walk(root: str, index: Index, under: str = "") -> Scan:
    """Scan the working copy (below ``under``) against the index, folder by folder.

    Folders whose mtime has not changed since the folder cache was made are not listed
    again (as git's untracked cache does): their indexed files are still each stat-ed.
    """
    patterns = read_ignore(root)
    ign = Ignore(patterns, set(index.conflicts.values()))
    table = index.table()
    out = Scan()
    out.seen = bytearray(len(table.paths))
    if under and not os.path.isdir(os.path.join(root, under)):
        try:
            s = os.lstat(os.path.join(root, under))
        except FileNotFoundError:
            return out
        if st.S_ISLNK(s.st_mode):
            out.links.append(under)
            return out
        i = table.pos.get(under)
        if i is not None:
            out.seen[i] = 1
        if i is None or table.entry(i)[1:3] != (s.st_size, s.st_mtime_ns) or \
                table.modes[i] != (1 if s.st_mode & 0o100 else 0):
            out.changed[under] = s
        return out
    cache = index.dcache
    if cache is not None and (cache.get("ignore") != patterns
                              or cache.get("conflicts") != index.conflicts
                              or len(cache.get("st_modes", b"")) != 4 * len(table.paths)):
        cache = index.dcache = None  # made under other ignore rules or conflicts
    # One thread: measured here, splitting the folders between threads was slower, as
    # each stat is too short to pay for handing the GIL over.
    level = [under]
    while level:
        nxt: list[str] = []
        _scan_dirs(root, level, ign, table, out, nxt, cache)
        level = nxt
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
