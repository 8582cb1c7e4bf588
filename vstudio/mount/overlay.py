"""The writable ``latest/``: the newest revision with the mount's pending changes on top.

Paths here are relative to ``latest/`` ('' is ``latest/`` itself). A node is a committed
file (``Entry``), a pending file (``Pending``) or a folder (``None``). The folder index is
kept up to date change by change and rebuilt only when the revision below moves (another
writer's commit, or the mount's own). Errors are ``OSError`` with the errno a file system
gives (ENOENT, EEXIST, ENOTEMPTY, ...); the FUSE layer passes them on.

Folders: a revision holds files and empty folders (a folder holding anything is implied
by its contents). Folders made by ``mkdir``, or left empty by removals, are *local
folders*: journaled and shown by this mount; the committer records those still empty as
empty folders. ``rmdir`` of a committed empty folder is a pending removal (``gone``).
"""

from __future__ import annotations

import errno
import logging
import posixpath
import threading
import time
from collections.abc import Callable, Iterator

from vstudio.mount.writecache import Pending, WriteCache
from vstudio.repo import paths as P
from vstudio.repo.api import Entry

log = logging.getLogger("vstudio.mount")

Node = Entry | Pending | None
Snapshot = list[tuple[Pending, tuple[object, ...]]]


def _err(code: int, path: str) -> OSError:
    return OSError(code, posixpath.basename(path) or "latest", path)


def state_key(p: Pending) -> tuple[object, ...]:
    """What a commit saw of a pending change; if any of it moves, the change stays."""
    return (p.path, p.data, p.oid, p.size, p.mode, p.mtime, p.gone)


class Overlay:
    """Pending changes over a base revision; every method is thread-safe."""

    def __init__(self, cache: WriteCache, load_base: Callable[[int], dict[str, Entry]],
                 head: Callable[[], int]) -> None:
        self.cache = cache
        self._load_base = load_base
        self._head = head
        self.lock = threading.RLock()
        self.pending, self.local_dirs = cache.replay()
        cache.sweep({p.data for p in self.pending.values() if p.data})
        self.base_rev = -1
        self.base: dict[str, Entry] = {}
        self.dirs: dict[str, dict[str, Node]] = {"": {}}
        self.changed_at = 0.0
        self.changed = threading.Event()  # set on every change; the committer waits on it
        if self.pending:
            self.changed.set()

    # -- the base revision ---------------------------------------------------------------
    def refresh(self) -> None:
        """Follow new revisions (polled by ``head``); never go back to an older one."""
        head = self._head()
        if head > self.base_rev:
            self.rebase(head, self._load_base(head) if head else {})

    def rebase(self, rev: int, files: dict[str, Entry]) -> None:
        with self.lock:
            if rev < self.base_rev:
                return
            self.base_rev, self.base = rev, files
            self._rebuild()

    def _rebuild(self) -> None:
        live: dict[str, Entry | Pending] = dict(self.base)
        for path, p in self.pending.items():
            if p.gone:
                live.pop(path, None)
            else:
                live[path] = p
        dirs: dict[str, dict[str, Node]] = {"": {}}
        for d in sorted(self.local_dirs):
            _add_folder(dirs, d)
        for path, node in live.items():
            if isinstance(node, Entry) and node.is_dir:
                _add_folder(dirs, path)  # a committed empty folder
                continue
            parent, _, name = path.rpartition("/")
            _add_folder(dirs, parent)
            if path not in dirs:  # a folder wins over a file of the same name
                dirs[parent][name] = node
        self.dirs = dirs

    # -- reading -----------------------------------------------------------------------
    def lookup(self, path: str) -> Node:
        self.refresh()
        with self.lock:
            if path in self.dirs:
                return None
            parent, _, name = path.rpartition("/")
            folder = self.dirs.get(parent)
            if folder is None or name not in folder:
                raise _err(errno.ENOENT, path)
            return folder[name]

    def listdir(self, path: str) -> list[tuple[str, Node]]:
        self.refresh()
        with self.lock:
            folder = self.dirs.get(path)
            if folder is None:
                raise _err(errno.ENOTDIR if self._is_file(path) else errno.ENOENT, path)
            return sorted(folder.items())

    def _is_file(self, path: str) -> bool:
        parent, _, name = path.rpartition("/")
        return self.dirs.get(parent, {}).get(name) is not None

    def base_for(self, path: str) -> str | None:
        p = self.pending.get(path)
        if p is not None:
            return p.base
        e = self.base.get(path)
        return e.oid if e else None

    # -- changing ----------------------------------------------------------------------
    def _touch(self) -> None:
        self.changed_at = time.monotonic()
        self.changed.set()

    def _parent_dir(self, path: str) -> dict[str, Node]:
        parent = posixpath.dirname(path)
        folder = self.dirs.get(parent)
        if folder is None:
            raise _err(errno.ENOTDIR if self._is_file(parent) else errno.ENOENT, parent)
        return folder

    def put(self, p: Pending, *, journal: bool = True) -> None:
        """Make ``p`` the content at ``p.path`` (its folder must exist)."""
        with self.lock:
            folder = self._parent_dir(p.path)
            name = posixpath.basename(p.path)
            if p.path in self.dirs:
                raise _err(errno.EISDIR, p.path)
            if journal:
                self.cache.log([p.record()], sync=False)
            old = self.pending.get(p.path)
            self.pending[p.path] = p
            folder[name] = p
            if old is not None and old is not p:
                if journal:
                    self._release_data(old)
                else:  # the journal still names its bytes: dropped once p is journaled
                    p.extra.setdefault("prev", old)
            self._touch()

    def new_file(self, path: str, data: str, mode: int, now: float) -> Pending:
        """An empty file at ``path`` (unjournaled until its first close or fsync)."""
        with self.lock:
            p = Pending(path, self.base_for(path), data=data, mode=mode, mtime=now, writers=1)
            self.put(p, journal=False)
            return p

    def remove(self, path: str, *, journal: bool = True) -> list[dict[str, object]]:
        """Remove the file at ``path``; returns the journal lines (written if ``journal``)."""
        with self.lock:
            folder = self._parent_dir(path)
            name = posixpath.basename(path)
            if name not in folder:
                raise _err(errno.ENOENT, path)
            if folder[name] is None:
                raise _err(errno.EISDIR, path)
            base = self.base_for(path)
            old = self.pending.get(path)
            recs: list[dict[str, object]]
            if base is None:
                self.pending.pop(path, None)
                recs = [{"k": "u", "p": path}]
            else:
                self.pending[path] = Pending(path, base, gone=True)
                recs = [self.pending[path].record()]
            del folder[name]
            recs += self._keep_empty(posixpath.dirname(path))
            if journal:
                self.cache.log(recs, sync=False)
            if old is not None:
                self._release_data(old)
            self._touch()
            return recs

    def _keep_empty(self, folder: str) -> list[dict[str, object]]:
        """A folder emptied by a removal stays (as a local folder) until ``rmdir``."""
        if folder and not self.dirs.get(folder) and folder not in self.local_dirs:
            self.local_dirs.add(folder)
            return [{"k": "D", "p": folder}]
        return []

    def _release_data(self, p: Pending) -> None:
        # Bytes still written to (an open handle) or uploaded are dropped by their user.
        if p.data and p.writers == 0 and not p.frozen and p.data not in self.datas():
            self.cache.drop_data(p.data)

    def datas(self) -> set[str]:
        return {q.data for q in self.pending.values() if q.data}

    def mkdir(self, path: str) -> None:
        with self.lock:
            folder = self._parent_dir(path)
            name = posixpath.basename(path)
            if name in folder:
                raise _err(errno.EEXIST, path)
            recs: list[dict[str, object]] = [{"k": "D", "p": path}]
            gone = self.pending.get(path)
            if gone is not None and gone.gone:  # a committed empty folder removed, made again
                del self.pending[path]
                recs.insert(0, {"k": "u", "p": path})
            self.cache.log(recs, sync=False)
            self.local_dirs.add(path)
            self.dirs[path] = {}
            folder[name] = None
            self._touch()

    def rmdir(self, path: str) -> None:
        with self.lock:
            if not path:
                raise _err(errno.EBUSY, path)
            if path not in self.dirs:
                raise _err(errno.ENOTDIR if self._is_file(path) else errno.ENOENT, path)
            if self.dirs[path]:
                raise _err(errno.ENOTEMPTY, path)
            recs: list[dict[str, object]] = [{"k": "R", "p": path}]
            recs += self._drop_folder(path)
            self.local_dirs.discard(path)
            del self.dirs[path]
            del self._parent_dir(path)[posixpath.basename(path)]
            recs += self._keep_empty(posixpath.dirname(path))
            self.cache.log(recs, sync=False)
            self._touch()

    def _drop_folder(self, path: str) -> list[dict[str, object]]:
        """A committed empty folder at ``path`` goes: a pending removal of it."""
        e = self.base.get(path)
        if e is None or not e.is_dir:
            return []
        self.pending[path] = Pending(path, e.oid, gone=True)
        return [self.pending[path].record()]

    def files_under(self, folder: str) -> Iterator[tuple[str, Entry | Pending]]:
        todo = [folder]
        while todo:
            d = todo.pop()
            for name, node in self.dirs.get(d, {}).items():
                path = f"{d}/{name}" if d else name
                if node is None:
                    todo.append(path)
                else:
                    yield path, node

    def rename(self, src: str, dst: str, no_replace: bool = False) -> None:
        with self.lock:
            node = self.lookup(src)
            self._parent_dir(dst)
            try:
                target: Node | str = self.lookup(dst)
            except FileNotFoundError:
                target = "none"
            if target != "none" and no_replace:
                raise _err(errno.EEXIST, dst)
            if src == dst:
                return
            if node is not None:
                if target is None:
                    raise _err(errno.EISDIR, dst)
                self._move_file(src, dst, node)
                return
            if target is not None and target != "none":
                raise _err(errno.ENOTDIR, dst)
            if dst.startswith(src + "/"):
                raise _err(errno.EINVAL, dst)
            if target is None and self.dirs.get(dst):
                raise _err(errno.ENOTEMPTY, dst)
            self._move_folder(src, dst)

    def _moved(self, node: Entry | Pending, dst: str) -> Pending:
        base = self.base_for(dst)
        if isinstance(node, Pending):
            node.path, node.base = dst, base
            return node
        return Pending(dst, base, oid=node.oid, size=node.size, mode=node.mode or 0o644,
                       mtime=node.mtime)

    def _take_out(self, path: str, node: Entry | Pending) -> list[dict[str, object]]:
        """Leave ``path`` empty as a rename's source: removed, or no change at all."""
        base = self.base_for(path)
        if isinstance(node, Pending) and self.pending.get(path) is node:
            del self.pending[path]  # the object moves on; the old path gets its own state
        if base is not None:
            self.pending[path] = Pending(path, base, gone=True)
            return [self.pending[path].record()]
        self.pending.pop(path, None)
        return [{"k": "u", "p": path}]

    def _move_file(self, src: str, dst: str, node: Entry | Pending) -> None:
        recs = self._take_out(src, node)
        self._parent_dir(src).pop(posixpath.basename(src), None)
        recs += self._keep_empty(posixpath.dirname(src))
        moved = self._moved(node, dst)
        recs.append(moved.record())
        self.cache.log(recs, sync=False)
        self.put(moved, journal=False)

    def _move_folder(self, src: str, dst: str) -> None:
        recs: list[dict[str, object]] = []
        files = list(self.files_under(src))
        subdirs = [d for d in self.dirs if d == src or d.startswith(src + "/")]
        for path, node in files:
            recs += self._take_out(path, node)
        for path, node in files:
            moved = self._moved(node, dst + path[len(src):])
            self.pending[moved.path] = moved
            recs.append(moved.record())
        self.local_dirs.discard(dst)
        for d in subdirs:  # every folder moves, empty ones included
            recs += self._drop_folder(d)
            self.local_dirs.discard(d)
            new_dir = dst + d[len(src):]
            self.local_dirs.add(new_dir)
            recs += [{"k": "R", "p": d}, {"k": "D", "p": new_dir}]
        parent = posixpath.dirname(src)
        self._rebuild()
        if parent and parent not in self.dirs:
            self.local_dirs.add(parent)  # the folder it left stays, as POSIX says
            recs.append({"k": "D", "p": parent})
            self._rebuild()
        self.cache.log(recs, sync=False)
        self._touch()

    # -- committing --------------------------------------------------------------------
    def snapshot(self, skip: Callable[[str], bool]) -> Snapshot:
        """Changes ready to commit (closed, not ignored); they are frozen until committed."""
        with self.lock:
            out = []
            for p in self.pending.values():
                if p.writers or skip(p.path):
                    continue
                p.frozen = True
                out.append((p, state_key(p)))
            return out

    def committed(self, rev: int, files: dict[str, Entry], snap: Snapshot) -> None:
        """Drop the changes revision ``rev`` recorded; rebase on it."""
        with self.lock:
            for p, key in snap:
                p.frozen = False
                path = str(key[0])
                cur = self.pending.get(path)
                if cur is p and state_key(p) == key:
                    del self.pending[path]
                elif cur is not None:  # changed again meanwhile: its base is now ours
                    e = files.get(path)
                    cur.base = e.oid if e else None
            for p in self.pending.values():
                e = files.get(p.path)
                if p.gone and e is None:
                    p.base = None  # removed upstream too
            self.pending = {k: v for k, v in self.pending.items()
                            if not (v.gone and v.base is None)}
            self.base_rev, self.base = rev, files
            # Local folders the revision has now (empty, or holding files) are its own.
            if self.local_dirs:
                gone = {k for k, v in self.pending.items() if v.gone}
                held = {a for path in files if path not in gone for a in P.ancestors(path)}
                self.local_dirs -= {d for d in self.local_dirs if d in held or (
                    d in files and files[d].is_dir)}
            self._rebuild()
            try:
                self.cache.compact(self.pending, self.local_dirs)
            except OSError as e:  # the old journal only replays what is committed already
                log.error("could not rewrite the write cache's journal: %s", e)
                return
            live = self.datas()
            for p, _key in snap:  # bytes nothing pending refers to any more
                if p.data and not p.writers and p.data not in live:
                    self.cache.drop_data(p.data)

    def thaw(self, snap: Snapshot) -> None:
        """A commit failed: its changes stay pending."""
        with self.lock:
            for p, _key in snap:
                p.frozen = False


def _add_folder(dirs: dict[str, dict[str, Node]], folder: str) -> None:
    while folder not in dirs:
        dirs[folder] = {}
        parent, _, name = folder.rpartition("/")
        _add_folder(dirs, parent)
        dirs[parent][name] = None
