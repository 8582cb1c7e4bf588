"""Every ``/api/`` route, called by every role, answers the status its rights allow.

The routes come from the application itself (``app.routes``), so a route added without a
row in ``EXPECTED`` fails this test. Roles, in the order of each row:

    none      no credentials                 garbage   a token nobody was given
    admin     an admin                       owner     artist with rights on ``film``,
                                                       owner of the job
    other     artist with rights on ``film``, not the job's owner
    viewer    viewer with read on ``film``   worker    a render node's worker token
    outsider  an artist without any right on ``film``

Path parameters name the project ``film`` (r1 has one file), a job of ``film`` owned by
``owner`` (a fresh one for each call, so one role's cancel or delete does not change
what the next role sees), one of its tasks, the worker token's render node, the ref of
``film``'s r1, and a spare token of ``owner``'s (sessions). Store objects are asked for
without a read grant: only an admin reads them (``test_store_rights`` covers grants).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProc
from vstudio.catalog import accounts
from vstudio.errors import PermissionDenied
from vstudio.store.remote import RemoteStore
from vstudio.studio import Studio

ROLES = ("none", "garbage", "admin", "owner", "other", "viewer", "worker", "outsider")
EMPTY = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"  # blake3(b"")
REF = "projects/film/revs/0000000001"

# (method, path) -> status per role, in ROLES order.
A401 = (401, 401)
EXPECTED: dict[tuple[str, str], tuple[int, ...]] = {
    ("GET", "/api/me"): (*A401, 200, 200, 200, 200, 200, 200),
    ("GET", "/api/users"): (*A401, 200, 403, 403, 403, 403, 403),
    ("POST", "/api/users"): (*A401, 201, 403, 403, 403, 403, 403),
    ("GET", "/api/projects"): (*A401, 200, 200, 200, 200, 403, 200),
    ("POST", "/api/projects"): (*A401, 201, 201, 201, 403, 403, 201),  # artists make projects
    # sessions: everyone their own; the session asked about is a spare token of owner's
    ("GET", "/api/sessions"): (*A401, 200, 200, 200, 200, 403, 200),
    ("DELETE", "/api/sessions/{session_id}"): (*A401, 200, 200, 404, 404, 403, 404),
    # store: uploads for runners; reads only with a grant (none here) or as admin
    ("POST", "/api/store/chunks/missing"): (*A401, 200, 200, 200, 403, 200, 200),
    ("POST", "/api/store/chunks"): (*A401, 200, 200, 200, 403, 200, 200),
    ("POST", "/api/store/files"): (*A401, 200, 200, 200, 403, 200, 200),
    ("POST", "/api/store/objects/has"): (*A401, 200, 200, 200, 403, 200, 200),
    ("GET", "/api/store/objects/{oid}/size"): (*A401, 200, 403, 403, 403, 403, 403),
    ("GET", "/api/store/objects/{oid}/plan"): (*A401, 200, 403, 403, 403, 403, 403),
    ("GET", "/api/store/objects/{oid}"): (*A401, 200, 403, 403, 403, 403, 403),
    ("GET", "/api/store/objects/{oid}/pieces"): (*A401, 200, 403, 403, 403, 403, 403),
    # a grant by id: for whoever may read a project whose history holds the object
    ("GET", "/api/store/objects/{oid}/grant"): (*A401, 200, 200, 200, 200, 403, 403),
    ("GET", "/api/store/refs"): (*A401, 200, 403, 403, 403, 403, 403),
    ("GET", "/api/store/refs/{name:path}"): (*A401, 200, 403, 403, 403, 403, 403),
    ("PUT", "/api/store/refs/{name:path}"): (*A401, 403, 403, 403, 403, 403, 403),
    ("DELETE", "/api/store/refs/{name:path}"): (*A401, 403, 403, 403, 403, 403, 403),
    ("GET", "/api/store/stats"): (*A401, 200, 200, 200, 200, 403, 200),
    ("POST", "/api/store/gc"): (*A401, 200, 403, 403, 403, 403, 403),
    ("POST", "/api/store/check"): (*A401, 200, 403, 403, 403, 403, 403),
    # repository: read right to read, write right to write; workers neither
    ("GET", "/api/repo/{project}"): (*A401, 200, 200, 200, 200, 403, 403),
    ("GET", "/api/repo/{project}/log"): (*A401, 200, 200, 200, 200, 403, 403),
    ("GET", "/api/repo/{project}/tree/{rev}"): (*A401, 200, 200, 200, 200, 403, 403),
    ("GET", "/api/repo/{project}/locks"): (*A401, 200, 200, 200, 200, 403, 403),
    ("POST", "/api/repo/{project}/locks"): (*A401, 200, 200, 200, 403, 403, 403),
    # a.txt is not locked: writers get as far as the lock table
    ("POST", "/api/repo/{project}/unlock"): (*A401, 404, 404, 404, 403, 403, 403),
    ("POST", "/api/repo/{project}/locks/release"): (*A401, 204, 204, 204, 403, 403, 403),
    ("POST", "/api/repo/{project}/lock-rules"): (*A401, 200, 200, 200, 403, 403, 403),
    ("GET", "/api/repo/{project}/tags"): (*A401, 200, 200, 200, 200, 403, 403),
    ("POST", "/api/repo/{project}/tags"): (*A401, 200, 200, 200, 403, 403, 403),
    ("POST", "/api/repo/{project}/commits"): (*A401, 201, 201, 201, 403, 403, 403),
    ("POST", "/api/repo/{project}/blobs"): (*A401, 200, 200, 200, 200, 403, 403),
    ("POST", "/api/repo/{project}/blobs/put"): (*A401, 200, 200, 200, 403, 403, 403),
    # render nodes: a worker (or an admin) drives its own node; viewers run none
    ("POST", "/api/workers"): (*A401, 200, 200, 200, 403, 200, 200),
    ("POST", "/api/workers/{worker_id}/next"): (*A401, 204, 403, 403, 403, 204, 403),
    ("POST", "/api/workers/{worker_id}/heartbeat"): (*A401, 200, 403, 403, 403, 200, 403),
    ("POST", "/api/tasks/{task_id}/progress"): (*A401, 409, 409, 409, 403, 409, 409),
    ("POST", "/api/tasks/{task_id}/done"): (*A401, 409, 409, 409, 403, 409, 409),
    ("POST", "/api/tasks/{task_id}/fail"): (*A401, 409, 409, 409, 403, 409, 409),
    ("POST", "/api/tasks/{task_id}/release"): (*A401, 409, 409, 409, 403, 409, 409),
    # jobs: artists and admins submit; readers of the project see; owner or admin change
    ("POST", "/api/jobs"): (*A401, 201, 201, 201, 403, 403, 403),
    ("GET", "/api/jobs"): (*A401, 200, 200, 200, 200, 403, 200),
    ("GET", "/api/jobs/{job_id}"): (*A401, 200, 200, 200, 200, 403, 403),
    ("GET", "/api/jobs/{job_id}/outputs"): (*A401, 200, 200, 200, 200, 403, 403),
    ("POST", "/api/jobs/{job_id}/pause"): (*A401, 200, 200, 403, 403, 403, 403),
    ("POST", "/api/jobs/{job_id}/resume"): (*A401, 200, 200, 403, 403, 403, 403),
    ("POST", "/api/jobs/{job_id}/cancel"): (*A401, 200, 200, 403, 403, 403, 403),
    ("POST", "/api/jobs/{job_id}/retry"): (*A401, 200, 200, 403, 403, 403, 403),
    ("DELETE", "/api/jobs/{job_id}/blocklist"): (*A401, 200, 200, 403, 403, 403, 403),
    ("PUT", "/api/jobs/{job_id}/tags"): (*A401, 200, 200, 403, 403, 403, 403),
    ("DELETE", "/api/jobs/{job_id}/blocklist/{worker_id}"): (*A401, 200, 200, 403, 403, 403,
                                                             403),
    ("POST", "/api/jobs/{job_id}/priority"): (*A401, 200, 200, 403, 403, 403, 403),
    ("DELETE", "/api/jobs/{job_id}"): (*A401, 200, 200, 403, 403, 403, 403),
    ("POST", "/api/tasks/{task_id}/retry"): (*A401, 200, 200, 403, 403, 403, 403),
    ("GET", "/api/tasks/{task_id}/log"): (*A401, 200, 200, 200, 200, 403, 403),
    ("GET", "/api/workers"): (*A401, 200, 200, 200, 200, 403, 200),
    # the node is the worker token's: only an admin steers it from outside
    ("POST", "/api/workers/{worker_id}/{action}"): (*A401, 200, 403, 403, 403, 403, 403),
    # what a node has and when it may render: an admin's to say
    ("PUT", "/api/workers/{worker_id}/tags"): (*A401, 200, 403, 403, 403, 403, 403),
    ("PUT", "/api/workers/{worker_id}/schedule"): (*A401, 200, 403, 403, 403, 403, 403),
    ("GET", "/api/events"): (*A401, 200, 200, 200, 200, 403, 200),
}


def api_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every ``/api/`` route the application serves."""

    def walk(routes: list[Any]) -> Iterator[Any]:
        for r in routes:
            if hasattr(r, "effective_route_contexts"):  # an included router (FastAPI >= 0.16x)
                yield from r.effective_route_contexts()
            elif hasattr(r, "routes"):
                yield from walk(r.routes)
            else:
                yield r

    out = {(m, r.path) for r in walk(app.routes) if getattr(r, "path", "").startswith("/api/")
           for m in (getattr(r, "methods", None) or ()) if m != "HEAD"}
    # and every route the contract documents, should the walk above miss a kind of route
    for path, ops in app.openapi()["paths"].items():
        if path.startswith("/api/"):
            out |= {(m.upper(), path) for m in ops}
    return out


def _openapi_path(path: str) -> str:
    return path.replace("{name:path}", "{name}")


class World:
    """The studio the matrix runs in: users, project ``film``, a worker and jobs."""

    def __init__(self, srv: ServerProc) -> None:
        self.srv = srv
        self.n = itertools.count()
        names = {"owner": ("alice", "artist"), "other": ("bob", "artist"),
                 "viewer": ("vic", "viewer"), "worker": ("wok", "worker"),
                 "outsider": ("eve", "artist")}
        self.tokens = {"none": "", "garbage": "vst_" + "x" * 43, "admin": srv.admin_token}
        for role, (name, kind) in names.items():
            self.tokens[role] = srv.add_user(name, kind)
        s = Studio.open(srv.studio)
        try:
            accounts.create_project(s.engine, "film")
            for name in ("alice", "bob"):
                accounts.set_right(s.engine, "film", name, "read", True)
                accounts.set_right(s.engine, "film", name, "write", True)
            accounts.set_right(s.engine, "film", "vic", "read", True)
        finally:
            s.close()
        store = RemoteStore(srv.url, self.tokens["owner"])
        self.oid = store.put_bytes(b"frame one")
        r = self.call("owner", "POST", "/api/repo/film/commits", json={
            "message": "r1", "changes": [{"path": "a.txt", "grant": store.grant(self.oid),
                                          "new": {"oid": self.oid, "size": 9}}]})
        assert r.status_code == 201, r.text
        self.worker_id = self.call("worker", "POST", "/api/workers",
                                   json={"name": "node"}).json()["id"]

    def call(self, role: str, method: str, path: str, **kw: Any) -> httpx.Response:
        token = self.tokens[role]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kw.pop("headers", {}))
        return httpx.request(method, self.srv.url + path, headers=headers, timeout=30, **kw)

    def job(self) -> int:
        spec = {"name": f"j{next(self.n)}", "project": "film", "blocks": [
            {"type": "command", "params": {"argv": ["true"]}, "frames": "1"}]}
        r = self.call("owner", "POST", "/api/jobs", json=spec)
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def task(self) -> int:
        detail = self.call("owner", "GET", f"/api/jobs/{self.job()}").json()
        return int(detail["tasks"][0]["id"])

    def session(self) -> int:
        """A fresh spare token of the owner's: its id (revoking it locks nobody out)."""
        from vstudio.catalog import web_sessions

        s = Studio.open(self.srv.studio)
        try:
            accounts.new_user_token(s.engine, "alice")
            return max(r.id for r in web_sessions.list_sessions(s.engine, "alice"))
        finally:
            s.close()

    def params(self, path: str) -> dict[str, Any]:
        fill: dict[str, Callable[[], Any]] = {
            "project": lambda: "film", "rev": lambda: 1, "oid": lambda: self.oid,
            "name": lambda: REF, "job_id": self.job, "task_id": self.task,
            "worker_id": lambda: self.worker_id, "action": lambda: "drain",
            "session_id": self.session}
        return {k: f() for k, f in fill.items() if "{" + k + "}" in _openapi_path(path)}

    def body(self, method: str, path: str) -> dict[str, Any]:
        """A valid request body, so the answer is about rights, not about input."""
        n = next(self.n)
        job = {"name": f"j{n}", "project": "film", "blocks": [
            {"type": "command", "params": {"argv": ["true"]}, "frames": "1"}]}
        bodies: dict[str, Any] = {
            "/api/users": {"json": {"name": f"u{n}", "role": "viewer"}},
            "/api/projects": {"json": {"name": f"p{n}"}},
            "/api/store/chunks/missing": {"json": {"ids": [self.oid]}},
            "/api/store/chunks": {"content": b"",
                                  "headers": {"Content-Type": "application/octet-stream"}},
            "/api/store/files": {"json": {"id": EMPTY, "pieces": []}},
            "/api/store/objects/has": {"json": {"ids": [self.oid]}},
            "/api/store/refs/{name:path}": {"json": {"data": "", "grants": {}}},
            "/api/store/gc": {"json": {"live": [], "grace_seconds": 86400}},
            "/api/repo/{project}/locks": {"json": {"path": f"l{n}.blend"}},
            "/api/repo/{project}/unlock": {"json": {"path": "a.txt", "force": True}},
            "/api/repo/{project}/locks/release": {"json": {"paths": ["a.txt"]}},
            "/api/repo/{project}/lock-rules": {"json": {"patterns": ["*.psd"]}},
            "/api/repo/{project}/tags": {"json": {"name": f"t{n}", "rev": 1}},
            "/api/repo/{project}/commits": {"json": {"message": "m", "changes": [
                {"path": f"gone{n}.txt", "new": None}]}},
            "/api/repo/{project}/blobs": {"json": {"ids": []}},
            "/api/repo/{project}/blobs/put": {
                "content": b"", "headers": {"Content-Type": "application/octet-stream"}},
            "/api/workers": {"json": {"name": f"n{n}"}},
            "/api/workers/{worker_id}/next": {"json": {"timeout": 0}},
            "/api/workers/{worker_id}/heartbeat": {"json": {"state": "idle"}},
            "/api/tasks/{task_id}/progress": {"json": {"attempt": 1, "progress": 0.5}},
            "/api/tasks/{task_id}/done": {"json": {"attempt": 1, "outputs": []}},
            "/api/tasks/{task_id}/fail": {"json": {"attempt": 1, "error": "x"}},
            "/api/tasks/{task_id}/release": {"json": {"attempt": 1}},
            "/api/jobs": {"json": job},
            "/api/jobs/{job_id}/priority": {"json": {"priority": 10}},
            "/api/jobs/{job_id}/tags": {"json": {"tags": ["gpu"]}},
            "/api/workers/{worker_id}/tags": {"json": {"tags": None}},
            "/api/workers/{worker_id}/schedule": {"json": {"schedule": ""}},
        }
        if method in ("GET", "DELETE") and path != "/api/store/refs/{name:path}":
            return {}
        return dict(bodies.get(path, {}))

    def status(self, role: str, method: str, path: str) -> int:
        url = path.replace("{name:path}", "{name}").format(**self.params(path))
        kw = self.body(method, path)
        if path == "/api/events":  # a stream: the status line is the answer
            token = self.tokens[role]
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            with httpx.stream("GET", self.srv.url + url, headers=headers, timeout=30) as r:
                return r.status_code
        return self.call(role, method, url, **kw).status_code


@pytest.fixture
def world(server: ServerProc) -> World:
    return World(server)


def test_every_api_route_has_an_expectation(server: ServerProc) -> None:
    from vstudio.api.app import create_app

    s = Studio.open(server.studio)
    try:
        served = {(m, _openapi_path(p)) for m, p in api_routes(create_app(s))}
    finally:
        s.close()
    listed = {(m, _openapi_path(p)) for m, p in EXPECTED}
    assert served - listed == set(), "routes without a row in EXPECTED"
    assert listed - served == set(), "rows in EXPECTED for routes that are gone"


def test_access_matrix(world: World) -> None:
    wrong = []
    table = []
    for (method, path), want in EXPECTED.items():
        got = tuple(world.status(role, method, path) for role in ROLES)
        table.append(f"    ({method!r}, {path!r}): (*A401, {', '.join(map(str, got[2:]))}),")
        if got != want:
            wrong.append(f"{method} {path}: want {want}, got {got}")
    if os.environ.get("VSTUDIO_PRINT_MATRIX"):
        print("\n".join(table))
    assert not wrong, "\n".join(wrong)
    assert len(EXPECTED) * len(ROLES) >= 400  # the matrix's size, for the record


# The render cache (issue 12): refs named render/<scope>/<key> and
# render-chunks/<scope>/<key>/<a>-<b> are read by the rights on their scope: a project's
# (p.film) by the project's read right and written by its write right, a user's (u.alice)
# by that user, unscoped ones (from before scopes) by an admin; workers by nobody.
# ``reader`` is an artist with the read right on film only. Status per role, in
# CACHE_ROLES order.
CACHE_ROLES = (*ROLES, "reader")
KEY = "ab" * 32
CACHE_EXPECTED: dict[tuple[str, str], tuple[int, ...]] = {
    ("GET", "/api/store/refs?prefix=render/p.film/"): (*A401, 200, 200, 200, 200, 403, 403, 200),
    ("GET", "/api/store/refs?prefix=render-chunks/p.film/"): (*A401, 200, 200, 200, 200, 403,
                                                               403, 200),
    ("GET", f"/api/store/refs/render/p.film/{KEY}"): (*A401, 200, 200, 200, 200, 403, 403, 200),
    ("GET", f"/api/store/refs/render/p.film/{KEY}?grants=true"): (*A401, 200, 200, 200, 200,
                                                                   403, 403, 200),
    ("GET", f"/api/store/refs/render-chunks/p.film/{KEY}/1-1"): (*A401, 200, 200, 200, 200, 403,
                                                                  403, 200),
    # viewers upload nothing, so they write no ref (the store's upload rule)
    ("PUT", "/api/store/refs/render/p.film/{fresh}"): (*A401, 200, 200, 200, 403, 403, 403, 403),
    ("PUT", "/api/store/refs/render-chunks/p.film/{fresh}/1-1"): (*A401, 200, 200, 200, 403,
                                                                   403, 403, 403),
    ("DELETE", "/api/store/refs/render/p.film/{fresh}"): (*A401, 200, 200, 200, 403, 403, 403,
                                                          403),
    ("DELETE", "/api/store/refs/render-chunks/p.film/{fresh}/1-1"): (*A401, 200, 200, 200, 403,
                                                                      403, 403, 403),
    # a user's own scope: plain files rendered outside any project
    ("GET", "/api/store/refs?prefix=render/u.alice/"): (*A401, 200, 200, 403, 403, 403, 403, 403),
    ("GET", f"/api/store/refs/render/u.alice/{KEY}"): (*A401, 200, 200, 403, 403, 403, 403, 403),
    ("PUT", "/api/store/refs/render/u.alice/{fresh}"): (*A401, 200, 200, 403, 403, 403, 403, 403),
    ("DELETE", f"/api/store/refs/render/u.alice/{KEY}x"): (*A401, 200, 200, 403, 403, 403, 403,
                                                           403),
    # refs from before scopes, and names that are no scope: an admin's
    ("GET", f"/api/store/refs/render/{KEY}"): (*A401, 200, 403, 403, 403, 403, 403, 403),
    ("PUT", "/api/store/refs/render/{fresh}"): (*A401, 200, 403, 403, 403, 403, 403, 403),
    ("PUT", "/api/store/refs/render/x.film/{fresh}"): (*A401, 200, 403, 403, 403, 403, 403, 403),
    ("GET", "/api/store/refs?prefix=render/p.film"): (*A401, 200, 200, 200, 200, 403, 200, 200),
    ("GET", "/api/store/refs?prefix=render/"): (*A401, 200, 200, 200, 200, 403, 200, 200),
    ("GET", "/api/store/refs?prefix="): (*A401, 200, 403, 403, 403, 403, 403, 403),
}


def test_render_cache_by_project_rights(world: World) -> None:
    """Issue 12: any artist listed, read (with grants), overwrote and deleted every
    project's render cache; now the scope in each ref's name decides, by project rights."""
    import base64
    import json

    world.tokens["reader"] = world.srv.add_user("rita", "artist")
    s = Studio.open(world.srv.studio)
    try:
        accounts.set_right(s.engine, "film", "rita", "read", True)
    finally:
        s.close()
    alice = RemoteStore(world.srv.url, world.tokens["owner"])
    frame = alice.put_bytes(b"film's frame 1")  # alice uploaded it: her grant
    manifest = json.dumps({"key": KEY, "frames": [[1, frame]]}).encode()
    for name in (f"render/p.film/{KEY}", f"render/u.alice/{KEY}"):
        alice.put_ref(name, manifest)
    alice.put_ref(f"render-chunks/p.film/{KEY}/1-1", json.dumps([[1, frame]]).encode())
    RemoteStore(world.srv.url, world.srv.admin_token).put_ref(f"render/{KEY}", b"{}")
    fresh = itertools.count()
    wrong, table = [], []
    for (method, path), want in CACHE_EXPECTED.items():
        got = []
        for role in CACHE_ROLES:
            url = path.replace("{fresh}", f"{next(fresh):064x}")
            body = {"json": {"data": base64.b64encode(b"{}").decode()}} if method == "PUT" else {}
            got.append(world.call(role, method, url, **body).status_code)
        table.append(f"    ({method!r}, {path!r}): (*A401, {', '.join(map(str, got[2:]))}),")
        if tuple(got) != want:
            wrong.append(f"{method} {path}: want {want}, got {tuple(got)}")
    if os.environ.get("VSTUDIO_PRINT_MATRIX"):
        print("\n".join(table))
    assert not wrong, "\n".join(wrong)

    def listed(role: str, prefix: str) -> set[str]:
        r = world.call(role, "GET", "/api/store/refs", params={"prefix": prefix})
        return {n.split("/")[1] for n in r.json()["refs"]}

    # listing without a scope shows only the scopes the caller may read
    assert listed("admin", "render/") >= {"p.film", "u.alice", KEY}
    assert listed("owner", "render/") == {"p.film", "u.alice"}
    assert listed("reader", "render/") == {"p.film"}
    assert listed("outsider", "render/") == set()
    assert listed("outsider", "render-chunks/") == set()
    # a reader's grants open the frames; an outsider gets neither ref nor frame
    r = world.call("reader", "GET", f"/api/store/refs/render/p.film/{KEY}",
                   params={"grants": "true"})
    rita = RemoteStore(world.srv.url, world.tokens["reader"])
    rita.remember(r.json()["grants"])
    assert rita.get_bytes(frame) == b"film's frame 1"
    # poisoning: an outsider's own frame (his grant) over film's cached render
    eve = RemoteStore(world.srv.url, world.tokens["outsider"])
    fake = eve.put_bytes(b"eve's frame")
    with pytest.raises(PermissionDenied, match="may not write"):
        eve.put_ref(f"render/p.film/{KEY}", json.dumps({"key": KEY,
                                                        "frames": [[1, fake]]}).encode())
    assert alice.get_ref(f"render/p.film/{KEY}") == manifest


# A job without a project (plain files rendered, `vstudio submit` of local files, a
# `render --farm` whose cache the server refused, an older mount) is private (issue 12):
# its owner and admins see it and its tasks; every other role is refused exactly as for a
# job of a project it may not read. Status per role, in ROLES order; the list and the
# event stream answer 200 to every person and are checked by what they hold.
PRIVATE_SEEN = (*A401, 200, 200, 403, 403, 403, 403)  # admin and owner only
PRIVATE_EXPECTED: dict[tuple[str, str], tuple[int, ...]] = {
    route: PRIVATE_SEEN for route in [
        ("GET", "/api/jobs/{job_id}"), ("GET", "/api/jobs/{job_id}/outputs"),
        ("GET", "/api/tasks/{task_id}/log"), ("POST", "/api/tasks/{task_id}/retry"),
        ("POST", "/api/jobs/{job_id}/priority"), ("PUT", "/api/jobs/{job_id}/tags"),
        ("DELETE", "/api/jobs/{job_id}/blocklist/{worker_id}"), ("DELETE", "/api/jobs/{job_id}"),
        ("DELETE", "/api/jobs/{job_id}/blocklist"),
        *(("POST", f"/api/jobs/{{job_id}}/{a}") for a in ("pause", "resume", "cancel", "retry"))]
}
SEERS = {"admin", "owner"}  # who sees a private job of the owner's


class PrivateWorld(World):
    """The same studio, its jobs submitted by ``owner`` without a project."""

    def job(self) -> int:
        spec = {"name": f"private{next(self.n)}", "blocks": [
            {"type": "command", "params": {"argv": ["true"]}, "frames": "1"}]}
        r = self.call("owner", "POST", "/api/jobs", json=spec)
        assert r.status_code == 201, r.text
        return int(r.json()["id"])


def test_a_job_without_a_project_is_its_owners_alone(server: ServerProc) -> None:
    _owners_alone(PrivateWorld(server))


class RemovedWorld(World):
    """The same studio, its jobs submitted by ``owner`` in a project that every role
    but the outsider could read and that an admin then removed (``vstudio project rm``)."""

    def job(self) -> int:
        job, name = self.job_in_project()
        self.remove(name)
        return job

    def job_in_project(self) -> tuple[int, str]:
        """A job of a new project ``owner`` and ``other`` write and ``viewer`` reads."""
        name = f"gone{next(self.n)}"
        s = Studio.open(self.srv.studio)
        try:
            accounts.create_project(s.engine, name)
            for user in ("alice", "bob"):
                accounts.set_right(s.engine, name, user, "write", True)
            accounts.set_right(s.engine, name, "vic", "read", True)
        finally:
            s.close()
        spec = {"name": f"j{name}", "project": name, "blocks": [
            {"type": "command", "params": {"argv": ["true"]}, "frames": "1"}]}
        r = self.call("owner", "POST", "/api/jobs", json=spec)
        assert r.status_code == 201, r.text
        return int(r.json()["id"]), name

    def remove(self, project: str) -> None:
        from vstudio.repo.removal import remove_project

        s = Studio.open(self.srv.studio)
        try:
            remove_project(s, project)  # what `vstudio project rm NAME --yes` does
        finally:
            s.close()


def test_a_job_of_a_removed_project_is_its_owners_alone(server: ServerProc) -> None:
    """A removed project's rights go with it: its jobs were seen by every user (a gone
    project counted as read by all); now by their owner and admins only, as a job without
    a project, on every route, in the list, the events, and when acted on."""
    from tests.helpers import cli, wait_for

    world = RemovedWorld(server)
    job, name = world.job_in_project()
    assert world.call("other", "GET", f"/api/jobs/{job}").status_code == 200  # before
    cli("project", "rm", name, "--yes", "--studio", str(server.studio))
    # a person's read rights are kept for the API's read cache's 0.25 s
    wait_for(lambda: world.call("other", "GET", f"/api/jobs/{job}").status_code == 403, 5,
             "the removed project's job to be hidden from bob")
    for role in ("admin", "owner"):
        assert world.call(role, "GET", f"/api/jobs/{job}").status_code == 200, role
    _owners_alone(world)


def _owners_alone(world: World) -> None:
    """``world.job()`` makes jobs only their owner and admins may see or act on."""
    job_routes = {k for k in EXPECTED if ("{job_id}" in k[1] or "{task_id}" in k[1])
                  and k[1] not in {f"/api/tasks/{{task_id}}/{w}"
                                   for w in ("progress", "done", "fail", "release")}}
    assert job_routes == set(PRIVATE_EXPECTED), "every people's job route has a row"
    wrong = []
    for (method, path), want in PRIVATE_EXPECTED.items():
        got = tuple(world.status(role, method, path) for role in ROLES)
        if got != want:
            wrong.append(f"{method} {path}: want {want}, got {got}")
    assert not wrong, "\n".join(wrong)

    job = world.job()
    task = int(world.call("owner", "GET", f"/api/jobs/{job}").json()["tasks"][0]["id"])
    for role in ROLES[2:]:
        listed = world.call(role, "GET", "/api/jobs")
        ids = {j["id"] for j in listed.json()} if listed.status_code == 200 else set()
        assert (job in ids) == (role in SEERS), (role, listed.status_code)
    # refused in the same words as a job of a project the user may not read
    film = World.job(world)  # a job of film, which the outsider may not read
    theirs = world.call("outsider", "GET", f"/api/jobs/{film}").json()["detail"]
    for role in ("other", "viewer", "outsider"):
        for path in (f"/api/jobs/{job}", f"/api/jobs/{job}/outputs", f"/api/tasks/{task}/log"):
            r = world.call(role, "GET", path)
            assert r.status_code == 403, (role, path)
            assert r.json()["detail"] == theirs.replace(str(film), str(job)), (role, path)
    for role in ("admin", "owner", "other", "viewer", "outsider"):  # the web page too
        page = _web(world, role, f"/jobs/{job}")
        assert page.status_code == (200 if role in SEERS else 403), (role, page.status_code)
    assert _event_watchers(world, job) == SEERS


def _web(world: World, role: str, path: str) -> httpx.Response:
    """A web page as ``role`` sees it (a GET needs the session cookie, no CSRF token)."""
    return httpx.get(world.srv.url + path, cookies={"vstudio_session": world.tokens[role]},
                     timeout=30)


# A render node's running task is named (its id, job, frames, progress) only to those who
# see its job (issue: ``GET /api/workers`` listed every node's task ids to everyone);
# others see the node busy, with a count. Per role: (which of the tasks of film's job and
# of the owner's private job are shown, how many others are counted).
NODE_SEEN = {"outsider": (set(), 2), "other": ({"film"}, 1), "viewer": ({"film"}, 1),
             "owner": ({"film", "private"}, 0), "admin": ({"film", "private"}, 0)}


def test_a_render_nodes_tasks_are_named_only_to_who_sees_their_jobs(world: World) -> None:
    from tests.helpers import cli

    node = world.call("worker", "POST", "/api/workers",
                      json={"name": "busy", "slots": 2, "job_types": ["command"],
                            "allow_commands": True}).json()["id"]
    private = world.call("owner", "POST", "/api/jobs", json={"name": "mine", "blocks": [
        {"type": "command", "params": {"argv": ["true"]}, "frames": "1"}]}).json()["id"]
    jobs = {"film": world.job(), "private": int(private)}
    tasks = {}
    for _ in jobs:
        r = world.call("worker", "POST", f"/api/workers/{node}/next", json={"timeout": 10})
        assert r.status_code == 200, r.text
        task = r.json()["task"]
        tasks[next(k for k, j in jobs.items() if j == task["job_id"])] = int(task["id"])
    assert set(tasks) == set(jobs)
    env = {"VSTUDIO_SERVER": world.srv.url}
    for role, (named, others) in NODE_SEEN.items():
        shown = next(w for w in world.call(role, "GET", "/api/workers").json()
                     if w["id"] == node)
        assert sorted(shown["tasks"]) == sorted(tasks[k] for k in named), role
        assert shown["other_tasks"] == others, role
        assert shown["state"] == "busy", role  # busy all the same
        page = _web(world, role, "/workers").text + _web(world, role, "/workers/rows").text
        for k, job in jobs.items():
            name = world.call("admin", "GET", f"/api/jobs/{job}").json()["name"]
            for clue in (f"task {tasks[k]} (", f"/jobs/{job}#", f">{name} · task"):
                assert (clue in page) == (k in named), (role, clue)
        assert (f"{others} task" in page) == bool(others), role
        out = cli("workers", env={**env, "VSTUDIO_TOKEN": world.tokens[role]}).stdout
        line = next(x for x in out.splitlines() if x.split()[1] == "busy")
        listed = line.split(" tasks ", 1)[1].split("  tags", 1)[0]
        phrase = f"{others} of jobs you may not see"
        assert listed.endswith(phrase) == bool(others), (role, line)
        ids = listed.removesuffix(phrase).strip(" +")
        assert {int(t) for t in ids.split(",") if t} == {tasks[k] for k in named}, (role, line)


def _event_watchers(world: World, job: int) -> set[str]:
    """The roles whose ``/api/events`` stream tells of a change to ``job``."""
    import threading

    heard: set[str] = set()
    ready = threading.Barrier(len(ROLES) - 2 + 1, timeout=30)

    def watch(role: str) -> None:
        headers = {"Authorization": f"Bearer {world.tokens[role]}"}
        timeout = httpx.Timeout(30, read=4)
        try:
            with httpx.stream("GET", world.srv.url + "/api/events", headers=headers,
                              timeout=timeout) as r:
                lines = r.iter_lines()
                if r.status_code == 200:
                    next(lines)  # the stream's opening comment: subscribed
                ready.wait()
                if r.status_code != 200:
                    return
                for line in lines:
                    if f'"job_id": {job}' in line or line == f'data: {{"id": {job}}}':
                        heard.add(role)
                        return
        except httpx.ReadTimeout:
            return

    threads = [threading.Thread(target=watch, args=(role,)) for role in ROLES[2:]]
    for t in threads:
        t.start()
    ready.wait()
    assert world.call("owner", "POST", f"/api/jobs/{job}/pause").status_code == 200
    for t in threads:
        t.join(30)
    return heard
