"""A content-addressed cache of input files, shared by tasks (and by workers on one machine).

Files are named by their store id and verified (BLAKE3) when fetched. Task folders get
hard links, so a file in use has a link count above one and is never evicted; the rest
is evicted least-recently-used (mtime is touched on every use) once over ``max_bytes``.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import uuid
from pathlib import Path
from typing import Protocol

from vstudio.errors import CorruptObject

_OID = re.compile(r"^[0-9a-f]{64}$")


class Fetcher(Protocol):
    def get_file(self, oid: str, dest: Path) -> None: ...


def blake3_file(path: Path) -> str:
    import blake3

    h = blake3.blake3()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


class InputCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.objects = root / "objects"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.hits = 0
        self.misses = 0

    def path_for(self, oid: str) -> Path:
        if not _OID.match(oid):
            raise CorruptObject(f"{oid!r} is not a store id", oid=oid)
        return self.objects / oid[:2] / oid

    def _lock(self, oid: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(oid, threading.Lock())

    def fetch(self, store: Fetcher, oid: str) -> Path:
        """The cached file for ``oid``, fetched and verified when absent."""
        path = self.path_for(oid)
        with self._lock(oid):
            if path.is_file():
                self.hits += 1
                os.utime(path)
                return path
            self.misses += 1
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.parent / f".{oid}.{uuid.uuid4().hex[:8]}.part"
            try:
                store.get_file(oid, tmp)
                got = blake3_file(tmp)
                if got != oid:
                    raise CorruptObject(f"input {oid[:12]} arrived corrupt (hash {got[:12]})",
                                        oid=oid)
                os.chmod(tmp, 0o444)  # shared by hard links: nobody should write it
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        self.evict()
        return path

    def place(self, store: Fetcher, oid: str, dest: Path) -> None:
        """Put the input ``oid`` at ``dest`` (a hard link to the cache when possible)."""
        src = self.fetch(store, oid)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists() or dest.is_symlink():
            dest.unlink()
        try:
            os.link(src, dest)
        except OSError:  # another filesystem: copy
            shutil.copyfile(src, dest)

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.objects.glob("*/*") if p.is_file())

    def evict(self) -> int:
        """Remove least recently used unlinked files until under the limit; bytes freed."""
        entries = []
        total = 0
        for p in self.objects.glob("*/*"):
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            if p.name.startswith("."):
                continue
            total += st.st_size
            entries.append((st.st_mtime, st.st_size, st.st_nlink, p))
        freed = 0
        if total <= self.max_bytes:
            return 0
        for _mtime, size, nlink, p in sorted(entries):
            if total - freed <= self.max_bytes:
                break
            if nlink > 1:  # in use by a task folder
                continue
            p.unlink(missing_ok=True)
            freed += size
        return freed
