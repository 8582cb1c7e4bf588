"""Project rights hold at the store level (issue 12, §1 and §3), against a real server.

Each test is one finding as reproduced on the old code: refs forged or deleted over HTTP,
any project read through the raw store routes, ids of another project served by
``/blobs`` or taken as job inputs, worker tokens reading repositories, and the event
stream showing jobs of projects the watcher may not read.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProc, start_server
from tests.helpers import wait_for
from vstudio.catalog import accounts
from vstudio.errors import PermissionDenied
from vstudio.store.remote import RemoteStore
from vstudio.studio import Studio, init_studio


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _secret_project(srv: ServerProc) -> dict[str, str]:
    """Project ``film`` that only ``alice`` reads and writes, and the other roles' tokens."""
    tokens = {"alice": srv.add_user("alice"), "bob": srv.add_user("bob"),
              "vic": srv.add_user("vic", "viewer"), "wok": srv.add_user("wok", "worker")}
    s = Studio.open(srv.studio)
    try:
        accounts.create_project(s.engine, "film")
        accounts.create_project(s.engine, "open")
        accounts.set_right(s.engine, "film", "alice", "write", True)
    finally:
        s.close()
    return tokens


def _commit(srv: ServerProc, token: str, project: str, path: str, data: bytes) -> tuple[int, str]:
    """Upload ``data`` as ``path`` and commit it over HTTP; (revision, object id)."""
    store = RemoteStore(srv.url, token)
    oid = store.put_bytes(data)
    change = {"path": path, "new": {"oid": oid, "size": len(data)}, "grant": store.grant(oid)}
    r = httpx.post(f"{srv.url}/api/repo/{project}/commits", headers=_h(token),
                   json={"message": f"add {path}", "changes": [change]})
    assert r.status_code == 201, r.text
    return int(r.json()["rev"]), oid


def test_nobody_writes_refs_over_http(server: ServerProc) -> None:
    t = _secret_project(server)
    _commit(server, t["alice"], "film", "a.txt", b"the real r1")
    ref = "projects/film/revs/0000000001"
    s = Studio.open(server.studio)
    try:
        before = s.store.get_ref(ref)
    finally:
        s.close()
    url = f"{server.url}/api/store/refs/{ref}"
    forged = json.dumps({"data": "Zm9yZ2Vk", "grants": {}})
    for who in ("bob", "alice", "wok"):  # not even the project's own writer
        assert httpx.put(url, content=forged, headers=_h(t[who])).status_code == 403, who
        assert httpx.delete(url, headers=_h(t[who])).status_code == 403, who
    assert httpx.put(url, content=b"forged", headers=_h(server.admin_token)).status_code == 403
    assert httpx.delete(url, headers=_h(server.admin_token)).status_code == 403
    assert httpx.put(f"{server.url}/api/store/refs/projects/film/revs/0000000002",
                     content=forged, headers=_h(t["bob"])).status_code == 403
    s = Studio.open(server.studio)
    try:
        assert s.store.get_ref(ref) == before
        assert s.store.list_refs("projects/film/revs/") == [ref]
    finally:
        s.close()


def test_store_routes_serve_only_what_the_caller_may_read(server: ServerProc) -> None:
    t = _secret_project(server)
    secret = b"the director's secret plan " * 1000
    _, oid = _commit(server, t["alice"], "film", "plan.txt", secret)
    # the old way in: the revision ref, then its tree and files by id
    r = httpx.get(f"{server.url}/api/store/refs/projects/film/revs/0000000001",
                  headers=_h(t["bob"]))
    assert r.status_code == 403
    for who in ("bob", "vic", "wok"):
        for route in ("", "/size", "/plan", "/pieces"):
            r = httpx.get(f"{server.url}/api/store/objects/{oid}{route}", headers=_h(t[who]))
            assert r.status_code == 403 and "grant" in r.json()["detail"], (who, route)
    # alice's grant is hers: handed to bob it opens nothing
    tree = httpx.get(f"{server.url}/api/repo/film/tree/1", headers=_h(t["alice"])).json()
    grant = tree["grants"][0]
    assert tree["entries"][0][1] == oid
    r = httpx.get(f"{server.url}/api/store/objects/{oid}", params={"g": grant},
                  headers=_h(t["bob"]))
    assert r.status_code == 403 and "not valid" in r.json()["detail"]
    r = httpx.get(f"{server.url}/api/store/objects/{oid}", params={"g": grant},
                  headers=_h(t["alice"]))
    assert r.status_code == 200 and r.content == secret
    # /blobs of a project bob may read does not serve film's ids
    r = httpx.post(f"{server.url}/api/repo/open/blobs", json={"ids": [oid]},
                   headers=_h(t["bob"]))
    assert r.status_code == 403
    r = httpx.post(f"{server.url}/api/repo/open/blobs", json={"ids": [oid], "grants": [grant]},
                   headers=_h(t["bob"]))
    assert r.status_code == 403
    # nor does a commit to his own project turn film's id into his file
    change = {"path": "stolen.txt", "new": {"oid": oid, "size": len(secret)}}
    r = httpx.post(f"{server.url}/api/repo/open/commits", headers=_h(t["bob"]),
                   json={"message": "m", "changes": [change]})
    assert r.status_code == 403
    # nor a job: its render node would hand the bytes back as outputs
    job = {"name": "steal", "inputs": [{"path": "x.txt", "oid": oid}],
           "blocks": [{"type": "command", "params": {"argv": ["cat", "x.txt"]}, "frames": "1"}]}
    r = httpx.post(f"{server.url}/api/jobs", json=job, headers=_h(t["bob"]))
    assert r.status_code == 403 and "grant" in r.json()["detail"]
    # the client library: bob's store cannot read it either
    with pytest.raises(PermissionDenied):
        RemoteStore(server.url, t["bob"]).get_bytes(oid)


def test_job_inputs_by_id_need_the_submitters_grant(server: ServerProc,
                                                     tmp_path: Path) -> None:
    t = _secret_project(server)
    store = RemoteStore(server.url, t["bob"])
    mine = store.put_bytes(b"bob's own input")  # an upload brings its grant
    job = {"name": "ok", "inputs": [{"path": "x.txt", "oid": mine, "grant": store.grant(mine)}],
           "blocks": [{"type": "command", "params": {"argv": ["true"]}, "frames": "1"}]}
    r = httpx.post(f"{server.url}/api/jobs", json=job, headers=_h(t["bob"]))
    assert r.status_code == 201, r.text
    job["inputs"] = [{"path": "x.txt", "oid": mine, "grant": "1.AAAA"}]
    assert httpx.post(f"{server.url}/api/jobs", json=job,
                      headers=_h(t["bob"])).status_code == 403


def test_an_upload_earns_a_grant_only_with_the_bytes(server: ServerProc) -> None:
    """Uploads send only missing chunks; naming present ones must not buy a grant."""
    t = _secret_project(server)
    small = b"a small secret, one chunk"
    big = random.Random(5).randbytes(3_000_000)  # several chunks
    _, one = _commit(server, t["alice"], "film", "one.txt", small)
    _, many = _commit(server, t["alice"], "film", "many.bin", big)
    files = f"{server.url}/api/store/files"
    r = httpx.post(files, headers=_h(t["bob"]), json={
        "id": one, "pieces": [{"id": one, "length": len(small)}]})
    assert r.status_code == 200 and "grant" not in r.json()
    fake = {one: {"nonce": "1.AAAA", "mac": "00" * 32}}
    r = httpx.post(files, headers=_h(t["bob"]), json={
        "id": one, "pieces": [{"id": one, "length": len(small)}], "proofs": fake})
    assert "grant" not in r.json()
    nonce = httpx.post(f"{server.url}/api/store/chunks/missing", headers=_h(t["bob"]),
                       json={"ids": [one]}).json()["nonce"]
    r = httpx.post(files, headers=_h(t["bob"]), json={
        "id": one, "pieces": [{"id": one, "length": len(small)}],
        "proofs": {one: {"nonce": nonce, "mac": "00" * 32}}})
    assert "grant" not in r.json()
    bob = RemoteStore(server.url, t["bob"])
    with pytest.raises(PermissionDenied):
        bob.get_bytes(one)
    # whoever has the bytes proves it without sending them again, big files included
    before = bob.stats()["stored_bytes"]
    assert bob.put_bytes(small) == one and bob.put_bytes(big) == many
    assert bob.stats()["stored_bytes"] - before < 1000  # nothing new was stored
    assert bob.get_bytes(one) == small and bob.get_bytes(many) == big


def test_worker_token_reads_only_its_tasks_inputs(server: ServerProc) -> None:
    t = _secret_project(server)
    _, secret = _commit(server, t["alice"], "film", "plan.txt", b"secret")
    base = f"{server.url}/api/repo"
    for route in ("/film", "/film/log", "/film/tree/1", "/film/locks", "/film/tags",
                  "/open", "/open/log", "/open/tree/0"):
        r = httpx.get(base + route, headers=_h(t["wok"]))
        assert r.status_code == 403, (route, r.text)
    r = httpx.post(f"{base}/film/blobs", json={"ids": [secret]}, headers=_h(t["wok"]))
    assert r.status_code == 403
    # alice's job hands the worker one input; the worker reads it and nothing else
    alice = RemoteStore(server.url, t["alice"])
    given = alice.put_bytes(b"the task's input")
    job = {"name": "j", "project": "film",
           "inputs": [{"path": "in.txt", "oid": given, "grant": alice.grant(given)}],
           "blocks": [{"type": "command", "params": {"argv": ["true"]}, "frames": "1"}]}
    assert httpx.post(f"{server.url}/api/jobs", json=job,
                      headers=_h(t["alice"])).status_code == 201
    wid = httpx.post(f"{server.url}/api/workers", headers=_h(t["wok"]), json={
        "name": "n1", "slots": 1, "job_types": ["command"],
        "allow_commands": True}).json()["id"]
    task = httpx.post(f"{server.url}/api/workers/{wid}/next", json={"timeout": 5},
                      headers=_h(t["wok"]), timeout=30).json()["task"]
    (item,) = task["inputs"]
    assert item["oid"] == given and item["grant"]
    node = RemoteStore(server.url, t["wok"])
    node.remember({given: item["grant"]})
    assert node.get_bytes(given) == b"the task's input"
    with pytest.raises(PermissionDenied):
        node.get_bytes(secret)
    # nor can it launder an id it knows into the job's outputs (readable by the job's
    # readers): an output needs the node's grant from its own upload
    done = f"{server.url}/api/tasks/{task['id']}/done"
    stolen = {"frame": 1, "oid": secret, "name": "f1.png"}
    r = httpx.post(done, json={"attempt": task["attempt"], "outputs": [stolen]},
                   headers=_h(t["wok"]))
    assert r.status_code == 403 and "grant" in r.json()["detail"]
    frame = node.put_bytes(b"a rendered frame")
    mine = {"frame": 1, "oid": frame, "name": "f1.png", "grant": node.grant(frame)}
    r = httpx.post(done, json={"attempt": task["attempt"], "outputs": [mine]},
                   headers=_h(t["wok"]))
    assert r.status_code == 200, r.text


def test_events_show_only_jobs_of_readable_projects(server: ServerProc) -> None:
    t = _secret_project(server)
    seen: dict[str, list[dict[str, Any]]] = {"bob": [], "admin": []}
    stop = threading.Event()

    def watch(who: str, token: str) -> None:
        url = f"{server.url}/api/events"
        with contextlib.suppress(httpx.HTTPError), httpx.stream(
                "GET", url, headers=_h(token), timeout=httpx.Timeout(5, read=30)) as r:
            kind = ""
            for line in r.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind in ("job", "task"):
                    seen[who].append(json.loads(line[6:]))

    threads = [threading.Thread(target=watch, args=(w, tok), daemon=True)
               for w, tok in (("bob", t["bob"]), ("admin", server.admin_token))]
    for th in threads:
        th.start()
    # "public": a job of the project everyone reads (one without a project is alice's alone)
    spec: dict[str, Any] = {"name": "j", "project": "open", "blocks": [
        {"type": "command", "params": {"argv": ["true"]}, "frames": "1-3"}]}
    wait_for(lambda: _submit_and_see(server, t, spec, seen), 20, "the watchers to connect")
    secret = httpx.post(f"{server.url}/api/jobs", json={**spec, "project": "film"},
                        headers=_h(t["alice"])).json()["id"]
    public = httpx.post(f"{server.url}/api/jobs", json=spec,
                        headers=_h(t["alice"])).json()["id"]
    wait_for(lambda: any(e.get("id") == public for e in seen["bob"]), 20,
             "bob to see the public job")
    wait_for(lambda: any(e.get("id") == public for e in seen["admin"]), 20,
             "the admin to see the public job")
    stop.set()
    assert any(e.get("id") == secret for e in seen["admin"])
    assert not [e for e in seen["bob"]
                if secret in (e.get("id"), e.get("job_id"))], seen["bob"]


def _submit_and_see(server: ServerProc, t: dict[str, str], spec: dict[str, Any],
                    seen: dict[str, list[dict[str, Any]]]) -> bool:
    """Submit a public job; True once both watchers saw one (the streams are live)."""
    jid = httpx.post(f"{server.url}/api/jobs", json=spec, headers=_h(t["alice"])).json()["id"]
    return any(e.get("id") == jid for e in seen["bob"]) and \
        any(e.get("id") == jid for e in seen["admin"])


def test_presigned_reads_need_a_grant_and_still_go_to_the_bucket(tmp_path: Path,
                                                                   s3_url: str) -> None:
    init_studio(tmp_path / "st", store_url=s3_url, db_url=None).close()
    srv = start_server(tmp_path / "st", tmp_path / "server.log")
    try:
        t = _secret_project(srv)
        data = random.Random(3).randbytes(2_500_000)
        _, oid = _commit(srv, t["alice"], "film", "big.bin", data)
        r = httpx.get(f"{srv.url}/api/store/objects/{oid}/plan", headers=_h(t["bob"]))
        assert r.status_code == 403  # no pre-signed bucket URL without a grant
        tree = httpx.get(f"{srv.url}/api/repo/film/tree/1", headers=_h(t["alice"])).json()
        plan = httpx.get(f"{srv.url}/api/store/objects/{oid}/plan",
                         params={"g": tree["grants"][0], "ranged": 1},
                         headers=_h(t["alice"])).json()
        assert plan["direct"] and all("range" in p["url"] for p in plan["parts"])
        reader = RemoteStore(srv.url, t["alice"])
        reader.remember({oid: tree["grants"][0]})
        assert reader.get_bytes(oid) == data
    finally:
        srv.process.terminate()
        srv.process.wait(10)


def test_store_get_by_id_for_whoever_reads_its_project(server: ServerProc,
                                                       tmp_path: Path) -> None:
    """``vstudio store get ID --server``: the id alone is enough for a user who may read a
    project whose history holds it; others get one line, exit 1."""
    from tests.helpers import cli

    t = _secret_project(server)
    _, old = _commit(server, t["alice"], "film", "a.txt", b"first take")
    _, new = _commit(server, t["alice"], "film", "sub/c.txt", b"second take")
    _, mine = _commit(server, t["bob"], "open", "b.txt", b"bob's own")
    s = Studio.open(server.studio)
    try:
        accounts.set_right(s.engine, "film", "vic", "read", True)
        accounts.set_right(s.engine, "open", "bob", "write", True)  # open: bob's alone
    finally:
        s.close()

    def get(who: str, oid: str, *args: str) -> tuple[int, str, Path]:
        out = tmp_path / f"{who}-{oid[:8]}"
        p = cli("store", "get", oid, str(out), "--server", server.url, *args, check=False,
                env={"VSTUDIO_TOKEN": t[who]}, timeout=60)
        return p.returncode, p.stderr.strip(), out

    for who in ("alice", "vic"):
        for oid, data in ((old, b"first take"), (new, b"second take")):
            code, err, out = get(who, oid)
            assert code == 0 and out.read_bytes() == data, (who, err)
    code, err, out = get("bob", mine)
    assert code == 0 and out.read_bytes() == b"bob's own"
    unknown = "ab" * 32
    for who, oid in (("bob", old), ("bob", unknown), ("vic", mine)):
        code, err, out = get(who, oid)
        assert code == 1 and not out.exists(), (who, err)
        assert err == (f"error: {oid} is not in any project you may read: ask for read "
                       "rights on its project, or get it from a job's outputs")
    code, err, _ = get("alice", old, "--project", "open")
    assert code == 1 and "is not in project 'open'" in err
    code, err, _ = get("wok", old)
    assert code == 1 and "worker" in err
    r = httpx.get(f"{server.url}/api/store/objects/{old}/grant", headers=_h(t["bob"]))
    assert r.status_code == 403
    r = httpx.get(f"{server.url}/api/store/objects/{old}/grant", headers=_h(t["vic"]))
    assert r.status_code == 200 and r.json()["project"] == "film"
