"""A working copy's stat cache (its index) and ignore rules, in the standard library only.

``vstudio status`` runs through ``vstudio.cli.fast_status``, which imports this module
(with ``wcscan`` and ``wcstatus``) and nothing heavy (no click, rich, SQLAlchemy or HTTP
client, not even ``re``): Python's start-up plus a scan must stay near Subversion's
``svn status`` time.

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
