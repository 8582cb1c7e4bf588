"""The repository through ``vstudio serve``: a working-copy backend and a ``RepoReader``.

Metadata goes to ``/api/repo/...``; bytes go through the store's ``RemoteStore`` (which
uses pre-signed bucket URLs where the server offers them and verifies every hash). A tree
comes with a read grant per file; the reader keeps them in the store and fetches the tree
again when a grant it needs is about to expire (a long-lived mount).
"""

from __future__ import annotations

import time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from vstudio.client.http import ApiClient
from vstudio.errors import (
    CorruptObject,
    NotAuthenticated,
)
from vstudio.repo.api import CommitInfo, Entry, LockInfo
from vstudio.repo.service import ANY, Change

if TYPE_CHECKING:
    from collections.abc import Callable

    from vstudio.repo.importbatch import ImportRevision
    from vstudio.store.api import ObjectStore, Writer
    from vstudio.store.remote import RemoteStore

class Client:
    """Repository calls to the server; errors mapped once, in ``vstudio.client.http``."""

    def __init__(self, server: str, token: str | None) -> None:
        self.api = ApiClient(server, token, timeout=300)
        self.server = self.api.server
        self.token = token
        self.http = self.api.http

    def call(self, method: str, path: str, *, raw: bool = False, **kw: Any) -> Any:
        r = self.api.request(method, path, **kw)
        if raw:
            return r.content
        return r.json() if r.status_code != 204 and r.content else None

    @cached_property
    def remote(self) -> RemoteStore:
        from vstudio.store.remote import RemoteStore

        return RemoteStore(self.server, self.token)

    @property
    def store(self) -> ObjectStore:
        return self.remote


def _p(project: str) -> str:
    return "/api/repo/" + quote(project, safe="")


class RemoteReader:
    """``RepoReader`` over HTTP, for every project the token may read."""

    def __init__(self, server: str, token: str | None) -> None:
        self.client = Client(server, token)
        self._origin: dict[str, tuple[str, int]] = {}  # id -> a tree that granted it
        self._base: tuple[str, int] | None = None
        self._tried: dict[str, float] = {}  # id -> when its grant was last sought
        self.client.remote.renew = self._renew

    def _renew(self, oid: str) -> None:
        """Fetch again the tree that granted ``oid`` (or the working copy's base tree),
        at most once a minute per id: an id no tree holds costs one try."""
        origin = self._origin.get(oid) or self._base
        now = time.monotonic()
        if origin is None or self._tried.get(oid, -60.0) > now - 60:
            return
        if len(self._tried) > 100_000:
            self._tried.clear()
        self._tried[oid] = now
        self.tree(*origin)

    def head(self, project: str) -> int:
        return int(self.client.call("GET", _p(project))["head"])

    def log(self, project: str, path: str | None = None,
            limit: int | None = None) -> list[CommitInfo]:
        params: dict[str, Any] = {}
        if path:
            params["path"] = path
        if limit:
            params["limit"] = limit
        rows = self.client.call("GET", _p(project) + "/log", params=params)
        return [CommitInfo(r["rev"], r["author"], r["time"], r["message"], r["changed"],
                           r.get("props") or {}) for r in rows]

    def tree(self, project: str, rev: int) -> dict[str, Entry]:
        doc = self.client.call("GET", f"{_p(project)}/tree/{int(rev)}")
        grants = doc.get("grants") or []
        self.client.remote.remember({e[1]: g for e, g in zip(doc["entries"], grants,
                                                             strict=False)})
        if len(self._origin) > 1_000_000:
            self._origin.clear()
        self._origin.update((e[1], (project, int(rev))) for e in doc["entries"])
        return {e[0]: Entry(e[0], e[1], int(e[2]), int(e[3]), float(e[4]))
                for e in doc["entries"]}

    def tags(self, project: str) -> dict[str, int]:
        return {k: int(v) for k, v in self.client.call("GET", _p(project) + "/tags").items()}

    def locks(self, project: str) -> dict[str, LockInfo]:
        rows = self.client.call("GET", _p(project) + "/locks")
        return {r["path"]: LockInfo(r["path"], r["owner"], r["time"], r["message"])
                for r in rows}

    def read(self, oid: str, offset: int, length: int) -> bytes:
        return self.client.store.read_range(oid, offset, length)

    def get_file(self, oid: str, dest: Path) -> None:
        self.client.store.get_file(oid, dest)


class RemoteBackend:
    """A working copy's backend on a server project (``WcBackend``)."""

    def __init__(self, server: str, token: str | None, project: str) -> None:
        if not token:
            raise NotAuthenticated()
        self.reader = RemoteReader(server, token)
        self.client = self.reader.client
        self.project = project
        info = self.client.call("GET", _p(project))
        self.user = str(info["user"])

    @property
    def store(self) -> ObjectStore:
        return self.client.store

    def head(self) -> int:
        return self.reader.head(self.project)

    def tree(self, rev: int) -> dict[str, Entry]:
        return self.reader.tree(self.project, rev)

    def log(self, path: str | None, limit: int | None) -> list[CommitInfo]:
        return self.reader.log(self.project, path, limit)

    def tags(self) -> dict[str, int]:
        return self.reader.tags(self.project)

    def grant_base(self, rev: int) -> None:
        """Objects of ``rev`` may be read without fetching its tree first (revert, diff):
        their grants come with that tree when first needed."""
        self.reader._base = (self.project, rev)

    def set_tag(self, name: str, rev: int | None) -> int:
        tags = self.client.call("POST", _p(self.project) + "/tags",
                                json={"name": name, "rev": rev})
        return int(tags[name])

    def locks(self) -> dict[str, LockInfo]:
        return self.reader.locks(self.project)

    def lock(self, path: str, message: str) -> LockInfo:
        r = self.client.call("POST", _p(self.project) + "/locks",
                             json={"path": path, "message": message})
        return LockInfo(r["path"], r["owner"], r["time"], r["message"])

    def unlock(self, path: str, force: bool) -> LockInfo:
        r = self.client.call("POST", _p(self.project) + "/unlock",
                             json={"path": path, "force": force})
        return LockInfo(r["path"], r["owner"], r["time"], r["message"])

    def lock_rules(self) -> list[str]:
        return list(self.client.call("GET", _p(self.project))["lock_rules"])

    def add_lock_rules(self, patterns: list[str]) -> None:
        self.client.call("POST", _p(self.project) + "/lock-rules", json={"patterns": patterns})

    def _commit(self, message: str, changes: list[Change],
                imp: dict[str, Any] | None) -> int:
        grant = self.client.remote.grant
        body: dict[str, Any] = {"message": message, "changes": [
            {"path": c.path, "old": None if imp else c.old,  # imports skip the check
             "new": None if c.new is None else {"oid": c.new.oid, "size": c.new.size,
                                                "mode": c.new.mode, "mtime": c.new.mtime},
             "grant": None if c.new is None or c.new.is_dir else grant(c.new.oid)}
            for c in changes]}
        if imp:
            body["import"] = imp
        return int(self.client.call("POST", _p(self.project) + "/commits", json=body)["rev"])

    def commit(self, message: str, changes: list[Change]) -> int:
        return self._commit(message, changes, None)

    def import_commit(self, rev: int, author: str, when: float, message: str,
                      changes: list[Change], props: dict[str, str] | None = None) -> int:
        return self._commit(message, changes, {"rev": rev, "author": author, "time": when,
                                               "props": props or {}})

    def import_batch(self, revisions: list[ImportRevision], w: Writer | None,
                     close: Callable[[], None]) -> None:
        """Through the server, a commit per revision, once the contents are uploaded."""
        close()
        for r in revisions:
            self.import_commit(r.rev, r.author, r.when, r.message,
                               [Change(p, ANY, e) for p, e in r.changes.items()], r.props)

    def release_locks(self, paths: list[str]) -> None:
        self.client.call("POST", _p(self.project) + "/locks/release", json={"paths": paths})

    @property
    def small_files(self) -> RemoteBackend:
        return self  # ``put_many``/``get_many``: one request per batch of small files

    def put_many(self, blobs: list[bytes]) -> list[str]:
        """Small files stored in one request (``/blobs/put``); returns their ids, each
        compared with the id computed here."""
        import struct

        import blake3

        body = b"".join(struct.pack("<Q", len(b)) + b for b in blobs)
        doc = self.client.call("POST", _p(self.project) + "/blobs/put", content=body,
                               headers={"Content-Type": "application/octet-stream"})
        want = [blake3.blake3(b).hexdigest() for b in blobs]
        if doc["ids"] != want:
            raise CorruptObject("the server stored other bytes than were sent")
        self.client.remote.remember(dict(zip(want, doc.get("grants") or [], strict=False)))
        return want

    def get_many(self, oids: list[str]) -> list[bytes]:
        """Small files in one request (``/blobs``), each checked against its id."""
        import struct

        import blake3

        grant = self.client.remote.grant
        body = self.client.call("POST", _p(self.project) + "/blobs", raw=True,
                                json={"ids": oids, "grants": [grant(o) or "" for o in oids]})
        view = memoryview(body)
        out: list[bytes] = []
        at = 0
        for oid in oids:
            if at + 8 > len(view):
                raise CorruptObject(f"the server's answer ended before {oid}")
            (n,) = struct.unpack_from("<Q", view, at)
            data = bytes(view[at + 8:at + 8 + n])
            at += 8 + n
            if len(data) != n or blake3.blake3(data).hexdigest() != oid:
                raise CorruptObject(f"object {oid} arrived corrupt (it does not match its id)")
            out.append(data)
        return out

    def close(self) -> None:
        self.client.http.close()
