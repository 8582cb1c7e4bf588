"""The repository's read side, as the mount, web page, render and worker code use it.

Terms: a *project* has a linear history of *revisions* r1, r2, ...; each revision has a
*commit* (parent, tree, author, time, message) and a *tree* (relative '/'-separated path
-> file entry). File bytes live in the object store under their id (``oid``).
Consumers depend on ``RepoReader`` only; ``vstudio.repo.open_reader(studio)`` gives the
embedded implementation and ``vstudio.client.repo`` the one over HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

# An empty folder is stored as a folder entry pointing at the empty folder object (whose
# bytes are never stored: every reader knows them). A folder holding anything is implied
# by its contents and never listed as an entry.
EMPTY_FOLDER_OID = "66f6a12784159e74404b13b068f194904698b7ad7d37c84953a158d988ee4813"
FOLDER_MODE = 0o40755  # stat.S_IFDIR | 0o755


@dataclass(frozen=True)
class Entry:
    """One file of a tree: ``mode`` is the permission bits (0o644 / 0o755); or an empty
    folder (``folder_entry``, ``is_dir``)."""

    path: str
    oid: str
    size: int
    mode: int = 0o644
    mtime: float = 0.0

    @property
    def is_dir(self) -> bool:
        return self.mode & 0o170000 == 0o040000


def folder_entry(path: str) -> Entry:
    """An empty folder, as a tree lists it."""
    return Entry(path, EMPTY_FOLDER_OID, 0, FOLDER_MODE, 0.0)


@dataclass(frozen=True)
class CommitInfo:
    """One revision of a project; ``changed`` lists the paths it added, changed or removed;
    ``props`` holds revision properties such as ``svn-original-rev``."""

    rev: int
    author: str
    time: float
    message: str
    changed: list[str] = field(default_factory=list)
    props: dict[str, str] = field(default_factory=dict)  # revision properties


@dataclass(frozen=True)
class LockInfo:
    """Who holds the lock on a path, since when and why."""

    path: str
    owner: str
    time: float
    message: str = ""


class RepoReader(Protocol):
    """Read access to every project's history, trees, tags, locks and file bytes."""

    def head(self, project: str) -> int:
        """The newest revision number; 0 for a project without commits."""
        ...

    def log(self, project: str, path: str | None = None,
            limit: int | None = None) -> list[CommitInfo]:
        """Revisions, newest first; with ``path``, only those touching it (or below it)."""
        ...

    def tree(self, project: str, rev: int) -> dict[str, Entry]:
        """Every file of revision ``rev``, and its empty folders (``Entry.is_dir``);
        ``NotFound`` for an unknown rev."""
        ...

    def tags(self, project: str) -> dict[str, int]:
        """Tag name -> revision."""
        ...

    def locks(self, project: str) -> dict[str, LockInfo]:
        """Locked path -> lock."""
        ...

    def read(self, oid: str, offset: int, length: int) -> bytes:
        """``length`` bytes of a file's content from ``offset`` (fewer at the end)."""
        ...

    def get_file(self, oid: str, dest: Path) -> None:
        """Write a file's whole content to ``dest`` (hash verified)."""
        ...
