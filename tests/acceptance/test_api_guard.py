"""Issue 12, section 3, against a real `vstudio serve`: authentication before any body is
read, capped bodies, CSRF on cookie-authenticated API calls, login backoff, sessions
that expire and can be listed and revoked."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import ServerProc, start_server
from tests.helpers import cli, wait_for

HUGE = 100 * 2**20


def _stop(srv: ServerProc) -> None:
    srv.process.terminate()
    try:
        srv.process.wait(10)
    except subprocess.TimeoutExpired:
        srv.process.kill()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    from vstudio.studio import init_studio

    root = tmp_path_factory.mktemp("guard") / "studio"
    init_studio(root, store_url=None, db_url=None).close()
    server = start_server(root, root.parent / "server.log")
    try:
        yield server
    finally:
        _stop(server)


def _raw_post(url: str, path: str, length: int, headers: str = "", send: int = 65536,
              chunked: bool = False, ctype: str = "application/json") -> tuple[int, bytes, float]:
    """Announce a body of ``length`` bytes, send only ``send`` of them, and read the
    answer: (status, body, seconds until it came)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        framing = ("Transfer-Encoding: chunked\r\n" if chunked
                   else f"Content-Length: {length}\r\n")
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ctype}\r\n"
                  f"{headers}{framing}\r\n".encode())
        t0 = time.monotonic()
        block = b"[" + b" " * 65535
        sent = 0
        while sent < send and not select.select([s], [], [], 0)[0]:  # stop at an answer
            try:
                s.sendall(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed; its answer is read below
            sent += len(block)
        data = b""
        while b"\r\n\r\n" not in data:
            part = s.recv(65536)
            if not part:
                break
            data += part
        took = time.monotonic() - t0
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        n = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                     if line.lower().startswith(b"content-length")))
        while len(rest) < n:
            part = s.recv(65536)
            if not part:
                break
            rest += part
        return status, rest[:n], took


def test_anonymous_huge_body_is_refused_unread_and_others_are_served(srv: ServerProc) -> None:
    proc = psutil.Process(srv.process.pid)
    before = proc.memory_info().rss
    for path in ("/api/jobs", "/api/tasks/1/progress", "/api/store/chunks", "/jobs/1/action"):
        status, body, took = _raw_post(srv.url, path, HUGE)
        assert status == 401, (path, status, body)
        assert took < 5, path  # answered without waiting for the 100 MB
    status, body, _ = _raw_post(srv.url, "/api/jobs", HUGE, "Authorization: Bearer vst_bogus\r\n")
    assert status == 401 and b"invalid token" in body
    # a client streaming a huge body does not hold up anyone else
    me = httpx.get(srv.url + "/api/me", headers={"Authorization": f"Bearer {srv.admin_token}"},
                   timeout=5)
    assert me.status_code == 200
    assert proc.memory_info().rss - before < 30 * 2**20


def test_oversized_bodies_get_413_before_they_are_read(srv: ServerProc) -> None:
    auth = f"Authorization: Bearer {srv.admin_token}\r\n"
    for path, key in [("/api/jobs", "max_body_mb"), ("/api/tasks/1/progress", "max_body_mb"),
                      ("/api/store/chunks", "max_upload_mb")]:
        length = HUGE if key == "max_body_mb" else 4 * HUGE
        status, body, took = _raw_post(srv.url, path, length, auth)
        assert status == 413, (path, status, body)
        assert key.encode() in body and took < 5
    # no Content-Length (chunked): cut off once the count passes the cap
    status, body, _ = _raw_post(srv.url, "/api/jobs", 0, auth, send=12 * 2**20, chunked=True)
    assert status == 413 and b"max_body_mb" in body
    status, body, _ = _raw_post(srv.url, "/login", 0, "", send=256 * 2**10, chunked=True,
                                ctype="application/x-www-form-urlencoded")
    assert status == 413
    with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {srv.admin_token}"},
                      timeout=10) as c:
        assert c.get("/api/me").status_code == 200  # the server is fine afterwards


def test_serve_binds_before_announcing(tmp_path: Path) -> None:
    """A busy port or a bad port in studio.toml: one line, exit 1, never "serving"."""
    from vstudio.studio import init_studio

    root = tmp_path / "studio"
    init_studio(root, store_url=None, db_url=None).close()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        p = cli("serve", "--studio", str(root), "--port", str(port), check=False, timeout=60)
    assert p.returncode == 1 and "serving" not in p.stderr, p.stderr
    assert p.stderr.strip() == (f"error: cannot listen on 127.0.0.1:{port}: Address already in "
                                "use; another program listens there: stop it or pick another "
                                "--port (or [server] port in studio.toml)")
    toml = root / "studio.toml"
    toml.write_text(toml.read_text().replace("port = 8642", "port = 99999"))
    for args in (("serve",), ("store", "stats"), ("project", "ls")):
        p = cli(*args, "--studio", str(root), check=False, timeout=60)
        assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert f"{toml}: [server] port must be a whole number from 1 to 65535" in p.stderr


def test_body_caps_come_from_studio_toml(tmp_path: Path) -> None:
    from vstudio.studio import init_studio

    root = tmp_path / "studio"
    init_studio(root, store_url=None, db_url=None).close()
    toml = root / "studio.toml"
    text = toml.read_text()
    toml.write_text(text.replace("[server]", "[server]\nmax_body_mb = \"lots\""))
    bad = cli("serve", "--studio", str(root), "--port", "1", check=False, timeout=60)
    assert bad.returncode == 1 and "max_body_mb" in bad.stderr
    assert "Traceback" not in bad.stderr
    toml.write_text(text.replace("[server]", "[server]\nmax_body_mb = 0.01"))
    server = start_server(root, tmp_path / "server.log")
    try:
        c = httpx.Client(base_url=server.url, timeout=10,
                         headers={"Authorization": f"Bearer {server.admin_token}"})
        spec = {"name": "x" * 150, "blocks": [{"type": "command", "params": {
            "argv": ["true"] + ["y" * 1000] * 20}, "frames": "1"}]}
        r = c.post("/api/jobs", json=spec)
        assert r.status_code == 413 and "max_body_mb" in r.json()["detail"]
        spec["blocks"][0]["params"]["argv"] = ["true"]
        assert c.post("/api/jobs", json=spec).status_code == 201
    finally:
        _stop(server)


def _login(c: httpx.Client, name: str, password: str) -> httpx.Response:
    page = c.get("/")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    return c.post("/login", data={"csrf": csrf, "name": name, "password": password})


def _page_csrf(c: httpx.Client) -> str:
    return c.get("/whoami").text.split('data-csrf="')[1].split('"')[0]


def test_cookie_calls_to_the_api_need_the_csrf_token(srv: ServerProc) -> None:
    admin = httpx.Client(base_url=srv.url, timeout=10,
                         headers={"Authorization": f"Bearer {srv.admin_token}"})
    spec = {"name": "target", "blocks": [{"type": "command", "params": {"argv": ["true"]},
                                          "frames": "1-4"}]}
    job = admin.post("/api/jobs", json=spec).json()["id"]
    other = admin.post("/api/jobs", json=spec).json()["id"]
    with httpx.Client(base_url=srv.url, cookies={"vstudio_session": srv.admin_token},
                      timeout=10) as c:
        for method, path in [("POST", f"/api/jobs/{job}/cancel"), ("DELETE", f"/api/jobs/{job}"),
                             ("POST", "/api/projects")]:
            r = c.request(method, path, json={"name": "p1"} if "projects" in path else None)
            assert r.status_code == 403 and "X-CSRF-Token" in r.json()["detail"], path
            r = c.request(method, path, headers={"X-CSRF-Token": "0" * 40})
            assert r.status_code == 403, path
        assert admin.get(f"/api/jobs/{job}").json()["status"] != "canceled"
        assert c.get(f"/api/jobs/{job}").status_code == 200  # reads need no token
        token = _page_csrf(c)
        r = c.post(f"/api/jobs/{job}/cancel", headers={"X-CSRF-Token": token})
        assert r.status_code == 200 and r.json()["status"] == "canceled"
    # Bearer calls are not affected
    assert admin.post(f"/api/jobs/{other}/cancel").status_code == 200


def test_password_guessing_meets_a_growing_wait(srv: ServerProc) -> None:
    srv_user(srv, "guessed", "right one")
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        codes = [_login(c, "guessed", f"wrong {i}").status_code for i in range(5)]
        assert codes == [401] * 5
        r = _login(c, "guessed", "wrong 6")
        assert r.status_code == 401  # the 6th is checked, and starts the wait
        r = _login(c, "guessed", "right one")  # even the right password waits
        assert r.status_code == 429 and "try again in" in r.text
        wait = int(r.headers["Retry-After"])
        assert 1 <= wait <= 2
        time.sleep(wait + 0.1)
        assert _login(c, "guessed", "wrong 7").status_code == 401
        r = _login(c, "guessed", "wrong 8")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 2  # doubled
        # an unknown name answers like a known one
        assert _login(c, "nobody-here", "x").status_code == 401


def test_many_user_names_from_one_address_meet_a_wait(tmp_path: Path) -> None:
    from vstudio.studio import init_studio

    root = tmp_path / "studio"
    init_studio(root, store_url=None, db_url=None).close()
    server = start_server(root, tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            codes = [_login(c, f"user{i}", "guess").status_code for i in range(21)]
            assert codes == [401] * 21
            r = _login(c, "user99", "guess")
            assert r.status_code == 429 and r.headers["Retry-After"]
    finally:
        _stop(server)


def srv_user(srv: ServerProc, name: str, password: str, role: str = "artist") -> None:
    from vstudio.catalog import accounts
    from vstudio.studio import Studio

    s = Studio.open(srv.studio)
    try:
        accounts.add_user(s.engine, name, role, password)
    finally:
        s.close()


def _sessions(srv: ServerProc, *args: str) -> list[dict[str, Any]]:
    out = cli("user", "sessions", *args, "--json", "--studio", str(srv.studio))
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_sessions_are_listed_and_revoked_by_cli_and_api(srv: ServerProc) -> None:
    srv_user(srv, "sally", "pw sally")
    with httpx.Client(base_url=srv.url, timeout=10) as web1, \
            httpx.Client(base_url=srv.url, timeout=10) as web2:
        assert _login(web1, "sally", "pw sally").status_code == 303
        assert _login(web2, "sally", "pw sally").status_code == 303
        rows = [r for r in _sessions(srv, "sally") if r["kind"] == "session"]
        assert len(rows) == 2
        assert all(r["expires"] > time.time() + 13 * 86400 for r in rows)
        assert all(r["label"] == "web login from 127.0.0.1" for r in rows)
        # the API: sally sees her own, marks the current one, ends the other
        mine = web1.get("/api/sessions").json()
        assert {r["id"] for r in mine} >= {r["id"] for r in rows}
        current = [r["id"] for r in mine if r["current"]]
        assert len(current) == 1
        other = next(r["id"] for r in rows if r["id"] != current[0])
        r = web1.delete(f"/api/sessions/{other}", headers={"X-CSRF-Token": _page_csrf(web1)})
        assert r.status_code == 200
        assert web2.get("/api/me").status_code == 401  # at once on this server
        # the CLI ends the current one; the server notices within its 5 s cache
        cli("user", "revoke-session", str(current[0]), "--studio", str(srv.studio))
        wait_for(lambda: web1.get("/api/me").status_code == 401, 10, "the revoked session")
    assert not [r for r in _sessions(srv, "sally") if r["kind"] == "session"]
    bad = cli("user", "revoke-session", str(current[0]), "--studio", str(srv.studio),
              check=False)
    assert bad.returncode == 1 and "no session" in bad.stderr
    bad = cli("user", "sessions", "ghost", "--studio", str(srv.studio), check=False)
    assert bad.returncode == 1 and "no user 'ghost'" in bad.stderr


def test_a_user_cannot_see_or_end_another_users_sessions(srv: ServerProc) -> None:
    artist = srv.add_user("artie")
    admin = httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {srv.admin_token}"})
    art = httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {artist}"})
    admin_ids = [r["id"] for r in admin.get("/api/sessions").json() if r["current"]]
    assert art.get("/api/sessions", params={"user": "someone-else"}).status_code == 403
    assert art.delete(f"/api/sessions/{admin_ids[0]}").status_code == 404
    assert admin.get("/api/me").status_code == 200
    everyone = admin.get("/api/sessions").json()
    assert {"artie"} <= {r["user"] for r in everyone}
    for bad in ("0", "x", str(2**40)):
        assert art.delete(f"/api/sessions/{bad}").status_code == 422


def test_password_sessions_expire(tmp_path: Path) -> None:
    from vstudio.studio import init_studio

    root = tmp_path / "studio"
    init_studio(root, store_url=None, db_url=None).close()
    toml = root / "studio.toml"
    toml.write_text(toml.read_text().replace("[server]", "[server]\nsession_hours = 0.001"))
    server = start_server(root, tmp_path / "server.log")
    try:
        srv_user(server, "brief", "pw")
        with httpx.Client(base_url=server.url, timeout=10) as c:
            assert _login(c, "brief", "pw").status_code == 303
            assert c.get("/api/me").status_code == 200
            t0 = time.monotonic()
            wait_for(lambda: c.get("/api/me").status_code == 401, 15, "the session to end")
            assert time.monotonic() - t0 < 5  # 3.6 s lifetime, not 3.6 s plus a cache period
    finally:
        _stop(server)
