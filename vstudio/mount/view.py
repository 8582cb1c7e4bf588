"""The mount's namespace: mount-relative paths -> directories and files of revisions.

Pure logic over a ``RepoReader``: no FUSE here, so it is tested with ``fake.FakeReader``.
Trees of numbered revisions never change, so their indexes are cached without expiry;
only ``head``, tags and locks are polled (``poll_seconds``) so ``latest/`` follows commits.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from vstudio.errors import NotFound, ServerError
from vstudio.repo.api import CommitInfo, Entry, RepoReader

log = logging.getLogger("vstudio.mount")

XATTR_PREFIX = "user.vstudio."


@dataclass(frozen=True)
class Node:
    """What a path is: a folder or a file, with the attributes ``stat`` reports."""

    is_dir: bool
    mode: int  # permission bits only
    size: int
    mtime: float
    rev: int = 0  # the revision this path is viewed in; 0 outside any revision
    entry: Entry | None = None  # files only
    immutable: bool = False  # content can never change (numbered revisions)


class RevisionIndex:
    """One revision's tree as folders: folder path ('' = root) -> {name: Entry or None}.

    ``None`` marks a sub-folder. Built once from the flat tree; no file content is read.
    """

    def __init__(self, tree: dict[str, Entry]) -> None:
        dirs: dict[str, dict[str, Entry | None]] = {"": {}}
        for path, entry in tree.items():
            if entry.is_dir:  # an empty folder
                self._add_folder(dirs, path)
                continue
            parent, _, name = path.rpartition("/")
            self._add_folder(dirs, parent)
            dirs[parent][name] = entry
        self.dirs = {k: dict(sorted(v.items())) for k, v in dirs.items()}
        self.files = tree

    @staticmethod
    def _add_folder(dirs: dict[str, dict[str, Entry | None]], folder: str) -> None:
        while folder not in dirs:
            dirs[folder] = {}
            parent, _, name = folder.rpartition("/")
            if parent not in dirs:
                RevisionIndex._add_folder(dirs, parent)
            dirs[parent][name] = None


class RepoView:
    """Resolves mount paths for one project of a ``RepoReader``; safe to use from threads."""

    def __init__(self, reader: RepoReader, project: str, *, poll_seconds: float = 1.0,
                 index_cache: int = 8, clock: Callable[[], float] = time.monotonic) -> None:
        self.reader = reader
        self.project = project
        self.poll_seconds = poll_seconds
        self._clock = clock
        self._lock = threading.RLock()
        self._indexes: OrderedDict[int, RevisionIndex] = OrderedDict()
        self._index_cache = index_cache
        self._polled: dict[str, tuple[float, object]] = {}
        self._commits: dict[int, CommitInfo] = {}
        self._changed_in: OrderedDict[tuple[str, int], CommitInfo | None] = OrderedDict()
        # The last poll's outcome: what ``vstudio mount-status`` says of the server.
        self.server_error: str | None = None
        self.server_checked_at: float | None = None
        self.head()  # fails early (NotFound) for an unknown project

    # -- polled state -----------------------------------------------------------------
    def _poll(self, key: str, fetch: Callable[[], object]) -> object:
        now = self._clock()
        with self._lock:
            hit = self._polled.get(key)
            if hit is not None and now - hit[0] < self.poll_seconds:
                return hit[1]
        try:
            value = fetch()
        except ServerError as e:
            self.server_error, self.server_checked_at = " ".join(e.message.split()), time.time()
            if hit is None:
                raise
            # The server is unreachable (or failing): serve what was last known, and ask
            # again only after another poll interval, so a writable mount keeps working
            # from its write cache and nothing waits on a dead server at every call.
            with self._lock:
                self._polled[key] = (now, hit[1])
            log.warning("%s not refreshed, the last known one is served: %s", key,
                        e.message)
            return hit[1]
        with self._lock:
            self._polled[key] = (now, value)
        self.server_error, self.server_checked_at = None, time.time()
        return value

    def server_state(self) -> dict[str, object]:
        """Whether the repository answered the last poll (polled afresh when due)."""
        with contextlib.suppress(ServerError):  # recorded by _poll
            self.head()
        return {"server_reachable": self.server_error is None,
                "server_checked_at": self.server_checked_at,
                "server_error": self.server_error}

    def forget(self, key: str) -> None:
        """Poll ``key`` ('head', 'tags', 'locks') afresh next time: this mount changed it."""
        with self._lock:
            self._polled.pop(key, None)

    def head(self) -> int:
        return int(self._poll("head", lambda: self.reader.head(self.project)))  # type: ignore[call-overload]

    def tags(self) -> dict[str, int]:
        return self._poll("tags", lambda: self.reader.tags(self.project))  # type: ignore[return-value]

    def lock_holder(self, path: str) -> str | None:
        locks = self._poll("locks", lambda: self.reader.locks(self.project))
        info = locks.get(path)  # type: ignore[attr-defined]
        return info.owner if info is not None else None

    # -- revisions ----------------------------------------------------------------------
    def commit(self, rev: int) -> CommitInfo:
        with self._lock:
            hit = self._commits.get(rev)
        if hit is not None:
            return hit
        # One log call fills every revision known so far; commits never change.
        for info in self.reader.log(self.project):
            with self._lock:
                self._commits[info.rev] = info
        with self._lock:
            if rev not in self._commits:
                raise NotFound(f"no revision {rev}")
            return self._commits[rev]

    def index(self, rev: int) -> RevisionIndex:
        with self._lock:
            hit = self._indexes.get(rev)
            if hit is not None:
                self._indexes.move_to_end(rev)
                return hit
        built = RevisionIndex(self.reader.tree(self.project, rev))
        with self._lock:
            self._indexes[rev] = built
            while len(self._indexes) > self._index_cache:
                self._indexes.popitem(last=False)
        return built

    def changed_in(self, path: str, rev: int) -> CommitInfo | None:
        """The newest revision <= ``rev`` that changed ``path`` (svn's 'last changed rev')."""
        key = (path, rev)
        with self._lock:
            if key in self._changed_in:
                return self._changed_in[key]
        found = next((c for c in self.reader.log(self.project, path=path) if c.rev <= rev), None)
        with self._lock:
            self._changed_in[key] = found
            while len(self._changed_in) > 4096:
                self._changed_in.popitem(last=False)
        return found

    # -- path resolution ----------------------------------------------------------------
    def _split(self, path: str) -> tuple[int | None, bool, list[str], list[str]]:
        """-> (revision or None, immutable, parts before the tree, parts inside the tree)."""
        parts = [p for p in path.split("/") if p]
        if not parts:
            return None, False, [], []
        top = parts[0]
        if top == "latest":
            head = self.head()
            if head == 0:
                if len(parts) > 1:
                    raise NotFound(path)
                return None, False, parts, []
            return head, False, parts[:1], parts[1:]
        if top == "r":
            if len(parts) == 1:
                return None, False, parts, []
            rev = _parse_rev(parts[1])
            if rev is None or rev > self.head():
                raise NotFound(path)
            return rev, True, parts[:2], parts[2:]
        if top == "tags":
            if len(parts) == 1:
                return None, False, parts, []
            rev = self.tags().get(parts[1])
            if rev is None:
                raise NotFound(path)
            return rev, False, parts[:2], parts[2:]
        raise NotFound(path)

    def _top_mtime(self) -> float:
        head = self.head()
        return self.commit(head).time if head else 0.0

    def lookup(self, path: str) -> Node:
        """The node at ``path``; ``NotFound`` if there is none."""
        rev, immutable, _, inner = self._split(path)
        if rev is None:
            return Node(True, 0o555, 0, self._top_mtime())
        rel = "/".join(inner)
        index = self.index(rev)
        if rel in index.dirs:
            return Node(True, 0o555, 0, self.commit(rev).time, rev, None, immutable)
        entry = index.files.get(rel)
        if entry is None:
            raise NotFound(path)
        return Node(False, (entry.mode or 0o644) & 0o7777, entry.size, float(entry.mtime), rev,
                    entry, immutable)

    def listdir(self, path: str) -> list[tuple[str, Node]]:
        """The names in folder ``path`` with their nodes; ``NotFound`` if not a folder."""
        rev, immutable, outer, inner = self._split(path)
        if rev is None:
            return self._list_top(outer)
        index = self.index(rev)
        folder = index.dirs.get("/".join(inner))
        if folder is None:
            raise NotFound(path)
        dir_time = self.commit(rev).time
        out: list[tuple[str, Node]] = []
        for name, entry in folder.items():
            if entry is None:
                out.append((name, Node(True, 0o555, 0, dir_time, rev, None, immutable)))
            else:
                out.append((name, Node(False, (entry.mode or 0o644) & 0o7777, entry.size,
                                       float(entry.mtime), rev, entry, immutable)))
        return out

    def _list_top(self, outer: list[str]) -> list[tuple[str, Node]]:
        head = self.head()
        top = Node(True, 0o555, 0, self._top_mtime())
        if not outer:
            return [("latest", top), ("r", top), ("tags", top)]
        if outer[0] == "latest":
            return []  # an empty project
        if outer[0] == "r":
            return [(str(n), Node(True, 0o555, 0, self.commit(n).time, n, None, True))
                    for n in range(1, head + 1)]
        tags = self.tags()
        return [(name, Node(True, 0o555, 0, self.commit(r).time, r))
                for name, r in sorted(tags.items()) if r <= head]

    def siblings_after(self, path: str, limit: int) -> list[Entry]:
        """Up to ``limit`` files following ``path`` in its folder: read-ahead candidates."""
        rev, _, _, inner = self._split(path)
        if rev is None or not inner:
            return []
        folder = self.index(rev).dirs.get("/".join(inner[:-1]), {})
        names = list(folder)
        try:
            start = names.index(inner[-1]) + 1
        except ValueError:
            return []
        out = [e for e in (folder[n] for n in names[start:start + limit]) if e is not None]
        return out

    # -- extended attributes ------------------------------------------------------------
    # Values are computed only when asked: ``ls -l`` probes ACL attributes of every file,
    # and the revision/author of a file costs a history query.
    def xattr_names(self, path: str) -> list[str]:
        """Names of the ``user.vstudio.*`` attributes of a path."""
        node = self.lookup(path)
        if node.entry is None:
            return [XATTR_PREFIX + "rev"] if node.rev else []
        names = [XATTR_PREFIX + n for n in ("author", "id", "rev")]
        if self.lock_holder(node.entry.path):
            names.append(XATTR_PREFIX + "lock")
        return names

    def xattr(self, path: str, name: str) -> bytes | None:
        """One attribute's value (files: id, rev, author, lock; folders: rev), or None."""
        if not name.startswith(XATTR_PREFIX):
            self.lookup(path)
            return None
        key = name[len(XATTR_PREFIX):]
        node = self.lookup(path)
        if node.entry is None:
            return str(node.rev).encode() if key == "rev" and node.rev else None
        entry = node.entry
        if key == "id":
            return entry.oid.encode()
        if key == "lock":
            holder = self.lock_holder(entry.path)
            return holder.encode() if holder else None
        if key in ("rev", "author"):
            info = self.changed_in(entry.path, node.rev) or self.commit(node.rev)
            return str(info.rev).encode() if key == "rev" else info.author.encode()
        return None


def _parse_rev(text: str) -> int | None:
    if not text.isdigit() or text.startswith("0"):
        return None
    return int(text)
