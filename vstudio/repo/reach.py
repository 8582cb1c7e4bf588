"""Which readable project holds an object: read grants for ``store get ID`` by id alone.

A user who may read a project may read every object of its history (``cat FILE@N``
does), so the server may grant an id the user names when some revision of a project they
may read reaches it. The ids each project's history reaches are gathered once per
revision (trees are immutable and share folders, so each folder object is read once)
and kept, so a later question costs a set lookup. Nothing says whether an id exists in a
project the user may not read: the answer is the same as for an unknown id.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vstudio.catalog import accounts
from vstudio.catalog import repo_store as rs
from vstudio.errors import PermissionDenied
from vstudio.repo.trees import EMPTY_OID, decode_folder

if TYPE_CHECKING:
    from vstudio.catalog.accounts import User
    from vstudio.studio import Studio




class NotReadable(PermissionDenied):
    """No project you may read holds this object."""


@dataclass
class _Reached:
    upto: int = 0  # revisions 1..upto are in ``ids``
    ids: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Reach:
    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        # by (id, created): a removed project's id may be given to a new one
        self._projects: dict[tuple[int, float], _Reached] = {}
        self._lock = threading.Lock()

    def _reached(self, project: accounts.Project) -> set[str]:
        with self._lock:
            got = self._projects.setdefault((project.id, project.created), _Reached())
        with got.lock:  # one walk per project at a time; others wait for its result
            with self.studio.engine.connect() as conn:
                new = rs.trees_since(conn, project.id, got.upto)
            for rev, commit, tree in new:
                got.ids.add(commit)
                self._walk(tree, got.ids)
                got.upto = rev
            return got.ids

    def _walk(self, root: str, seen: set[str]) -> None:
        todo = [root]
        while todo:
            oid = todo.pop()
            if oid in seen:
                continue  # a folder met before: all below it too
            seen.add(oid)
            if oid == EMPTY_OID:
                continue
            for item in decode_folder(self.studio.store.get_bytes(oid), oid):
                if item[1] == "d":
                    todo.append(str(item[2]))
                else:
                    seen.add(str(item[2]))

    def project_of(self, user: User, oid: str, project: str | None = None) -> str:
        """A project ``user`` may read whose history holds ``oid``; NotReadable if none."""
        names = [project] if project else None
        for p in accounts.list_projects(self.studio.engine):
            if names is not None and p.name not in names:
                continue
            if accounts.rights(self.studio.engine, p, user)[0] and oid in self._reached(p):
                return p.name
        where = f"project {project!r}" if project else "any project you may read"
        raise NotReadable(f"{oid} is not in {where}: ask for read rights on its project, "
                          "or get it from a job's outputs")


def reach_of(studio: Studio) -> Reach:
    """The studio's one ``Reach`` (made on first use)."""
    return studio.shared("reach", lambda: Reach(studio))
