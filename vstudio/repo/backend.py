"""What a working copy needs from its repository, embedded or through a server.

``LocalBackend`` talks to a studio folder directly (catalog + store); ``vstudio.client.
repo.RemoteBackend`` talks to ``vstudio serve`` and moves bytes through the store's
``RemoteStore``. The working copy code sees only ``WcBackend``.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from vstudio.repo.api import CommitInfo, Entry, LockInfo
from vstudio.repo.importbatch import ImportRevision, commit_batch
from vstudio.repo.service import Change, RepoService

if TYPE_CHECKING:
    from vstudio.store.api import ObjectStore, Writer
    from vstudio.studio import Studio


class SmallFiles(Protocol):
    """Small files many to a request (``repo/wcbatch.py``), each checked against its id."""

    def put_many(self, blobs: list[bytes]) -> list[str]: ...
    def get_many(self, oids: list[str]) -> list[bytes]: ...


class WcBackend(Protocol):
    project: str
    user: str

    @property
    def store(self) -> ObjectStore: ...
    def head(self) -> int: ...
    def tree(self, rev: int) -> dict[str, Entry]: ...
    def log(self, path: str | None, limit: int | None) -> list[CommitInfo]: ...
    def tags(self) -> dict[str, int]: ...
    def set_tag(self, name: str, rev: int | None) -> int: ...
    def locks(self) -> dict[str, LockInfo]: ...
    def lock(self, path: str, message: str) -> LockInfo: ...
    def unlock(self, path: str, force: bool) -> LockInfo: ...
    def lock_rules(self) -> list[str]: ...
    def add_lock_rules(self, patterns: list[str]) -> None: ...
    def commit(self, message: str, changes: list[Change]) -> int: ...
    def import_commit(self, rev: int, author: str, when: float, message: str,
                      changes: list[Change], props: dict[str, str] | None = None) -> int: ...
    def import_batch(self, revisions: list[ImportRevision], w: Writer | None,
                     close: Callable[[], None]) -> None: ...
    def release_locks(self, paths: list[str]) -> None: ...
    def close(self) -> None: ...
    # Optional: small files many to a request (through a server, where one request per
    # file is slow); None: every file goes through ``store`` on its own.
    @property
    def small_files(self) -> SmallFiles | None: ...
    # Base versions (revert, diff) read at ``rev``: a server's client fetches their read
    # grants with that tree; a studio folder needs none.
    def grant_base(self, rev: int) -> None: ...


def local_user() -> str:
    return os.environ.get("VSTUDIO_USER") or getpass.getuser()


class LocalBackend:
    """A project of a studio on this machine: no server, the local user's name."""

    def __init__(self, studio: Studio, project: str, user: str | None = None) -> None:
        self.studio = studio
        self.service = RepoService(studio)
        self.project = project
        self.user = user or local_user()
        self.service.project(project)  # NotFound early, with the hint to create it

    @property
    def store(self) -> ObjectStore:
        return self.studio.store

    def head(self) -> int:
        return self.service.head(self.project)

    def tree(self, rev: int) -> dict[str, Entry]:
        return self.service.tree(self.project, rev)

    def log(self, path: str | None, limit: int | None) -> list[CommitInfo]:
        return self.service.log(self.project, path, limit)

    def tags(self) -> dict[str, int]:
        return self.service.tags(self.project)

    def set_tag(self, name: str, rev: int | None) -> int:
        return self.service.set_tag(self.project, name, rev)

    def locks(self) -> dict[str, LockInfo]:
        return self.service.locks(self.project)

    def lock(self, path: str, message: str) -> LockInfo:
        return self.service.lock(self.project, path, self.user, message)

    def unlock(self, path: str, force: bool) -> LockInfo:
        return self.service.unlock(self.project, path, self.user, force)

    def lock_rules(self) -> list[str]:
        return self.service.lock_rules(self.project)

    def add_lock_rules(self, patterns: list[str]) -> None:
        self.service.add_lock_rules(self.project, patterns)

    def commit(self, message: str, changes: list[Change]) -> int:
        return self.service.commit(self.project, self.user, message, changes)

    def import_commit(self, rev: int, author: str, when: float, message: str,
                      changes: list[Change], props: dict[str, str] | None = None) -> int:
        return self.service.commit(self.project, author, message, changes, when=when, rev=rev,
                                   allow_empty=True, props=props, keep_empty=True)

    def import_batch(self, revisions: list[ImportRevision], w: Writer | None,
                     close: Callable[[], None]) -> None:
        """Imported revisions whose contents are in ``w``: see ``importbatch``."""
        commit_batch(self.service, self.project, revisions, w, close)

    def release_locks(self, paths: list[str]) -> None:
        self.service.release_locks(self.project, self.user, paths)

    def close(self) -> None:
        self.studio.close()

    @property
    def small_files(self) -> SmallFiles | None:
        return None  # the store on this machine batches small files in packs itself

    def grant_base(self, rev: int) -> None:
        """Nothing to fetch: the studio's own store needs no read grants."""
