"""The repository through a real ``vstudio serve`` process: working copies over HTTP,
authentication and rights, lock races, bad input."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProc
from tests.integration.test_repo_wc import InProcess, run_two_copies


@pytest.fixture
def vs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcess:
    return InProcess(monkeypatch, capsys)


def _project(server: ServerProc, name: str) -> None:
    r = httpx.post(f"{server.url}/api/projects", json={"name": name},
                   headers={"Authorization": f"Bearer {server.admin_token}"})
    assert r.status_code == 201, r.text


def test_two_working_copies_through_server(server: ServerProc, tmp_path: Path,
                                           vs: InProcess) -> None:
    _project(server, "film")
    env_a = {"VSTUDIO_TOKEN": server.add_user("alice"), "VSTUDIO_USER": "alice"}
    env_b = {"VSTUDIO_TOKEN": server.add_user("bob"), "VSTUDIO_USER": "bob"}
    run_two_copies(tmp_path, f"{server.url}/film", env_a, env_b, runner=vs)
    # The token given to checkout is remembered by the working copy.
    wc = tmp_path / "c"
    vs.cli("checkout", f"{server.url}/film", str(wc), "--token", env_a["VSTUDIO_TOKEN"])
    assert vs.cli_json("info", cwd=wc)["user"] == "alice"
    assert (wc / "notes.txt").read_text() == "line 1\nline 2 from a\nline 3\n"


def _h(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def test_authentication_rights_and_bad_input(server: ServerProc, tmp_path: Path,
                                             vs: InProcess) -> None:
    _project(server, "film")
    _project(server, "secret")
    alice = server.add_user("alice")
    viewer = server.add_user("vic", "viewer")
    worker = server.add_user("rn1", "worker")
    outsider = server.add_user("olga")
    base = f"{server.url}/api/repo"
    assert httpx.get(f"{base}/film").status_code == 401
    assert httpx.get(f"{base}/film", headers=_h("vst_nonsense")).status_code == 401
    assert httpx.get(f"{base}/film", headers=_h(viewer)).json()["head"] == 0
    # Rights: once set on 'secret', only alice may read or write it.
    r = httpx.post(f"{server.url}/api/users", headers=_h(server.admin_token),
                   json={"name": "tmp", "role": "viewer"})
    assert r.status_code == 201
    from vstudio.catalog import accounts
    from vstudio.studio import Studio

    s = Studio.open(server.studio)
    try:
        accounts.set_right(s.engine, "secret", "alice", "write", True)
    finally:
        s.close()
    assert httpx.get(f"{base}/secret", headers=_h(outsider)).status_code == 403
    assert httpx.get(f"{base}/secret", headers=_h(alice)).status_code == 200
    r = vs.cli("checkout", f"{server.url}/secret", str(tmp_path / "x"), "--token", outsider,
               check=False)
    assert r.returncode == 1 and "may not read" in r.stderr

    wc = tmp_path / "wc"
    vs.cli("checkout", f"{server.url}/film", str(wc), "--token", alice)
    (wc / "a.txt").write_text("a")
    assert vs.cli_json("commit", "-m", "one", cwd=wc)["rev"] == 1
    doc = httpx.get(f"{base}/film/tree/1", headers=_h(alice)).json()
    oid, grant = doc["entries"][0][1], doc["grants"][0]
    good = {"message": "m", "changes": [{"path": "b.txt", "new": {"oid": oid, "size": 1},
                                         "grant": grant}]}
    # naming a known id is not enough: a commit needs the author's grant for it
    ungranted = {"message": "m", "changes": [{"path": "b.txt", "new": {"oid": oid, "size": 1}}]}
    r = httpx.post(f"{base}/film/commits", json=ungranted, headers=_h(alice))
    assert r.status_code == 403 and "grant" in r.json()["detail"]
    # Viewers and workers cannot commit; nobody commits unknown or out-of-project paths.
    assert httpx.post(f"{base}/film/commits", json=good,
                      headers=_h(viewer)).status_code == 403
    assert httpx.post(f"{base}/film/commits", json=good,
                      headers=_h(worker)).status_code == 403
    for bad_path in ("../../etc/passwd", "/etc/passwd", "a/../../b", ".vstudio/x", "a\\b"):
        body = {"message": "m", "changes": [{"path": bad_path, "grant": grant,
                                             "new": {"oid": oid, "size": 1}}]}
        r = httpx.post(f"{base}/film/commits", json=body, headers=_h(alice))
        assert r.status_code == 400, (bad_path, r.text)
        assert "detail" in r.json()
    missing = {"message": "m", "changes": [{"path": "c.txt",
                                            "new": {"oid": "0" * 64, "size": 1}}]}
    r = httpx.post(f"{base}/film/commits", json=missing, headers=_h(alice))
    assert r.status_code == 400 and "no content" in r.json()["detail"]
    skip_check = {"message": "m", "changes": [{"path": "a.txt", "old": "*", "new": None}]}
    assert httpx.post(f"{base}/film/commits", json=skip_check,
                      headers=_h(alice)).status_code == 422
    stale = {"message": "m", "changes": [{"path": "a.txt", "old": None, "grant": grant,
                                          "new": {"oid": oid, "size": 1}}]}
    r = httpx.post(f"{base}/film/commits", json=stale, headers=_h(alice))
    assert r.status_code == 409 and "a.txt" in r.json()["detail"]
    imp = dict(good, **{"import": {"rev": 2, "author": "x", "time": 1.0}})
    assert httpx.post(f"{base}/film/commits", json=imp,
                      headers=_h(alice)).status_code == 403  # imports are for admins
    assert httpx.get(f"{base}/film/tree/9", headers=_h(alice)).status_code == 404
    assert httpx.get(f"{base}/nosuch", headers=_h(alice)).status_code == 404
    assert httpx.post(f"{base}/film/commits", content=b"{not json",
                      headers=_h(alice)).status_code == 422
    assert httpx.post(f"{base}/film/commits", json=good,
                      headers=_h(alice)).status_code == 201


def test_lock_race_exactly_one_wins(server: ServerProc) -> None:
    _project(server, "film")
    tokens = [server.add_user(f"artist{i}") for i in range(6)]
    base = f"{server.url}/api/repo/film"
    for attempt in range(3):
        path = f"shot{attempt}.blend"
        results: list[int] = []
        go = threading.Barrier(len(tokens))

        def take(tok: str, path: str = path, go: threading.Barrier = go,
                 results: list[int] = results) -> None:
            go.wait()
            r = httpx.post(f"{base}/locks", json={"path": path}, headers=_h(tok), timeout=30)
            results.append(r.status_code)

        threads = [threading.Thread(target=take, args=(t,)) for t in tokens]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [200] + [409] * (len(tokens) - 1)
        locks = httpx.get(f"{base}/locks", headers=_h(tokens[0])).json()
        assert [lk["path"] for lk in locks].count(path) == 1


def test_text_postgres_cannot_store_is_a_4xx(tmp_path: Path, pg_url: str) -> None:
    from tests.conftest import start_server
    from vstudio.studio import init_studio

    root = tmp_path / "pg-studio"
    init_studio(root, store_url=None, db_url=pg_url).close()
    srv = start_server(root, tmp_path / "pg-server.log")
    try:
        _project(srv, "film")
        h = {**_h(srv.admin_token), "Content-Type": "application/json"}
        base = f"{srv.url}/api/repo"
        bad = '"a\\u0000b"'
        for url, body in [
            ("/film/commits", '{"message": ' + bad + ', "changes": []}'),
            ("/film/locks", '{"path": "x.blend", "message": ' + bad + '}'),
            ("/film/locks", '{"path": ' + bad + '}'),
            ("/film/tags", '{"name": ' + bad + '}'),
            ("/film/lock-rules", '{"patterns": [' + bad + ']}'),
            ("/film/commits", '{"message": "\\ud800", "changes": []}'),
        ]:
            r = httpx.post(base + url, content=body, headers=h)
            assert 400 <= r.status_code < 500, (url, body, r.text)
        for url in ("/fi%00lm", "/film/tree/99999999999999999999", "/film/tree/-1",
                    "/film/log?path=a%00b", "/film/log?limit=0"):
            r = httpx.get(base + url, headers=h)
            assert 400 <= r.status_code < 500, (url, r.text)
    finally:
        srv.process.kill()
        srv.process.wait(10)


def test_checkout_batches_small_files(server: ServerProc, tmp_path: Path, vs: InProcess,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Many small files come in few ``/blobs`` requests, each checked against its id."""
    import os

    from vstudio.client import repo as remote
    from vstudio.repo import wcbatch

    _project(server, "film")
    _project(server, "secret")
    alice = server.add_user("alice")
    server.add_user("rn1")
    wc = tmp_path / "wc"
    vs.cli("checkout", f"{server.url}/film", str(wc), "--token", alice)
    files = {f"d{i % 7}/f{i}.txt": os.urandom(50 + i % 300) for i in range(300)}
    files["big.bin"] = os.urandom(3 << 19)  # above the batch size: fetched on its own
    for rel, data in files.items():
        (wc / rel).parent.mkdir(exist_ok=True)
        (wc / rel).write_bytes(data)
    puts: list[int] = []
    real_put = remote.RemoteBackend.put_many

    def counting_put(self: remote.RemoteBackend, blobs: list[bytes]) -> list[str]:
        puts.append(len(blobs))
        return real_put(self, blobs)

    monkeypatch.setattr(remote.RemoteBackend, "put_many", counting_put)
    monkeypatch.setattr(wcbatch, "BATCH_COUNT", 120)  # small numbers keep the test quick
    vs.cli("commit", "-m", "many", cwd=wc)
    assert sorted(puts) == [60, 120, 120]  # the big file went on its own
    calls: list[int] = []
    real = remote.RemoteBackend.get_many

    def counting(self: remote.RemoteBackend, oids: list[str]) -> list[bytes]:
        calls.append(len(oids))
        return real(self, oids)

    monkeypatch.setattr(remote.RemoteBackend, "get_many", counting)
    co = tmp_path / "co"
    vs.cli("checkout", f"{server.url}/film", str(co), "--token", alice)
    assert sorted(calls) == [60, 120, 120]  # 300 small files, three requests
    for rel, data in files.items():
        assert (co / rel).read_bytes() == data
    assert vs.cli("status", cwd=co).stdout == ""

    base = f"{server.url}/api/repo"
    doc = httpx.get(f"{base}/film/tree/1", headers=_h(alice)).json()
    tree, granted = doc["entries"], dict(zip((e[1] for e in doc["entries"]), doc["grants"],
                                             strict=True))
    small = [e[1] for e in tree if e[2] < 1000][:3]
    big = next(e[1] for e in tree if e[0] == "big.bin")
    body = {"ids": small, "grants": [granted[o] for o in small]}
    r = httpx.post(f"{base}/film/blobs", json=body, headers=_h(alice))
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert httpx.post(f"{base}/film/blobs", json=body).status_code == 401
    r = httpx.post(f"{base}/film/blobs", json={"ids": small}, headers=_h(alice))
    assert r.status_code == 403 and "grant" in r.json()["detail"]  # ids alone read nothing
    assert httpx.post(f"{base}/film/blobs", json={"ids": ["0" * 64]},
                      headers=_h(server.admin_token)).status_code == 404
    assert httpx.post(f"{base}/film/blobs", json={"ids": ["../etc/passwd"]},
                      headers=_h(alice)).status_code == 422
    r = httpx.post(f"{base}/film/blobs", json={"ids": [big] * 22,
                                               "grants": [granted[big]] * 22},
                   headers=_h(alice))
    assert r.status_code == 400 and "at most" in r.json()["detail"]
    from vstudio.catalog import accounts
    from vstudio.studio import Studio

    s = Studio.open(server.studio)
    try:
        accounts.set_right(s.engine, "secret", "rn1", "read", True)
    finally:
        s.close()
    assert httpx.post(f"{base}/secret/blobs", json={"ids": small},
                      headers=_h(alice)).status_code == 403
    # Batched puts: the ids come back; a malformed body, a reader or no token: 4xx.
    body = b"".join(len(b).to_bytes(8, "little") + b for b in (b"x", b"hello"))
    r = httpx.post(f"{base}/film/blobs/put", content=body, headers=_h(alice))
    assert r.status_code == 200 and len(r.json()["ids"]) == 2
    for bad in (b"\x01", (99).to_bytes(8, "little") + b"short"):
        r = httpx.post(f"{base}/film/blobs/put", content=bad, headers=_h(alice))
        assert r.status_code == 400 and "malformed" in r.json()["detail"]
    assert httpx.post(f"{base}/film/blobs/put", content=body).status_code == 401
    assert httpx.post(f"{base}/secret/blobs/put", content=body,
                      headers=_h(alice)).status_code == 403
