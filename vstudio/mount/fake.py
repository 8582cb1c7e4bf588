"""An in-memory ``RepoReader`` for fast tests of the mount's path and block logic."""

from __future__ import annotations

import time
from pathlib import Path

import blake3

from vstudio.errors import NotFound, ObjectMissing
from vstudio.repo.api import CommitInfo, Entry, LockInfo


class FakeReader:
    """One or more projects held in dicts; ``commit`` adds a revision like a working copy."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.revs: dict[str, list[tuple[CommitInfo, dict[str, Entry]]]] = {}
        self.tag_map: dict[str, dict[str, int]] = {}
        self.lock_map: dict[str, dict[str, LockInfo]] = {}
        self.reads: list[tuple[str, int, int]] = []  # every read(), for tests of laziness
        self.fail_oids: dict[str, Exception] = {}

    def commit(self, project: str, files: dict[str, bytes | None], *, author: str = "ann",
               message: str = "", when: float | None = None,
               modes: dict[str, int] | None = None) -> int:
        """Apply ``files`` (None deletes) on top of head and return the new revision."""
        history = self.revs.setdefault(project, [])
        tree = dict(history[-1][1]) if history else {}
        when = time.time() if when is None else when
        for path, data in files.items():
            if data is None:
                tree.pop(path, None)
                continue
            oid = blake3.blake3(data).hexdigest()
            self.blobs[oid] = data
            mode = (modes or {}).get(path, 0o644)
            tree[path] = Entry(path, oid, len(data), mode, when)
        rev = len(history) + 1
        history.append((CommitInfo(rev, author, when, message, sorted(files)), tree))
        return rev

    def head(self, project: str) -> int:
        return len(self._history(project))

    def _history(self, project: str) -> list[tuple[CommitInfo, dict[str, Entry]]]:
        if project not in self.revs:
            raise NotFound(f"no project {project!r}")
        return self.revs[project]

    def log(self, project: str, path: str | None = None,
            limit: int | None = None) -> list[CommitInfo]:
        out = [c for c, _ in reversed(self._history(project))
               if path is None or any(p == path or p.startswith(path + "/") for p in c.changed)]
        return out[:limit] if limit is not None else out

    def tree(self, project: str, rev: int) -> dict[str, Entry]:
        history = self._history(project)
        if not 1 <= rev <= len(history):
            raise NotFound(f"no revision {rev} in {project}")
        return dict(history[rev - 1][1])

    def tags(self, project: str) -> dict[str, int]:
        return dict(self.tag_map.get(project, {}))

    def locks(self, project: str) -> dict[str, LockInfo]:
        return dict(self.lock_map.get(project, {}))

    def read(self, oid: str, offset: int, length: int) -> bytes:
        if oid in self.fail_oids:
            raise self.fail_oids[oid]
        if oid not in self.blobs:
            raise ObjectMissing(f"no object {oid}")
        self.reads.append((oid, offset, length))
        return self.blobs[oid][offset:offset + length]

    def get_file(self, oid: str, dest: Path) -> None:
        dest.write_bytes(self.read(oid, 0, len(self.blobs.get(oid, b""))))
