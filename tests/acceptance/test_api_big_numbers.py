"""Numbers too big for the catalog (a 64-bit SQLite integer, a 32-bit PostgreSQL id) are
refused with a 4xx and a message by every route, never a 500 and a reset connection."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProc, start_server
from tests.helpers import cli

BIG = (2**31, 2**63, 99999999999999999999)
OPENAPI = Path(__file__).parents[2] / "vstudio" / "api" / "openapi.json"


@pytest.fixture(params=["sqlite", "postgresql"])
def any_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProc]:
    root = tmp_path / "studio"
    args = ["init", str(root)]
    if request.param == "postgresql":
        args += ["--db", request.getfixturevalue("pg_url")]
    cli(*args)
    srv = start_server(root, tmp_path / "server.log")
    try:
        yield srv
    finally:
        srv.stop()


def _int_params(op: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for p in op.get("parameters", []):
        s = p.get("schema", {})
        if "integer" in [s.get("type"), *(x.get("type") for x in s.get("anyOf", []))]:
            out.append((p["name"], p["in"]))
    return out


def _film_with_a_file(srv: ServerProc, h: dict[str, str]) -> None:
    assert httpx.post(f"{srv.url}/api/projects", json={"name": "film"},
                      headers=h).status_code == 201
    r = httpx.post(f"{srv.url}/api/repo/film/blobs/put", headers=h,
                   content=struct.pack("<Q", 1) + b"a")
    oid = r.json()["ids"][0]
    r = httpx.post(f"{srv.url}/api/repo/film/commits", headers=h, json={
        "message": "one", "changes": [{"path": "a.txt", "new": {"oid": oid, "size": 1}}]})
    assert r.status_code == 201, r.text


def test_big_numbers_are_4xx_everywhere(any_server: ServerProc) -> None:
    srv = any_server
    h = {"Authorization": f"Bearer {srv.admin_token}"}
    _film_with_a_file(srv, h)
    doc = json.loads(OPENAPI.read_text())
    tried = 0
    with httpx.Client(base_url=srv.url, headers=h, timeout=30) as c:
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                for name, where in _int_params(op):
                    for big in BIG:
                        url = path.replace("{project}", "film").replace("{oid}", "0" * 64)
                        url = url.replace("{action}", "drain")
                        params = {}
                        if where == "path":
                            url = url.replace("{" + name + "}", str(big))
                        else:
                            params[name] = str(big)
                        r = c.request(method.upper(), url, params=params, json={})
                        tried += 1
                        assert 400 <= r.status_code < 500, (method, url, params, r.text)
                        assert r.json()["detail"], (method, url, r.text)
        # numbers inside strings and bodies the server turns into catalog queries
        for ref in (f"film@{BIG[0]}:a.txt", f"film@r{BIG[1]}:a.txt", f"film@{BIG[2]}:a.txt"):
            r = c.post("/api/jobs", json={
                "name": "j", "inputs": [{"path": "a.txt", "ref": ref}],
                "blocks": [{"type": "blender", "frames": "1", "params": {"file": "a.txt"}}]})
            assert r.status_code == 400 and "bad revision" in r.json()["detail"], (ref, r.text)
        for body in ({"after": [BIG[0]]}, {"after": [2**62]}):
            r = c.post("/api/jobs", json={
                "name": "j", **body,
                "blocks": [{"type": "blender", "frames": "1", "params": {"file": "a.txt"}}]})
            assert 400 <= r.status_code < 500 and r.json()["detail"], (body, r.text)
    assert tried >= 60
    r = httpx.get(f"{srv.url}/api/repo/film", headers=h)
    assert r.status_code == 200 and r.json()["head"] == 1  # the server is still serving
