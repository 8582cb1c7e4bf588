"""Fuzz the farm's HTTP API from its OpenAPI document: no input may give a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ServerProc, start_server
from vstudio.studio import init_studio

EXAMPLES = 10
# The event stream never ends by design; the rest is fuzzed.
SKIP = {("GET", "/api/events")}


@pytest.fixture(params=["sqlite", "postgresql"])
def any_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProc]:
    """The server on the default SQLite catalog, and on PostgreSQL (stricter about text)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("server")
        return
    root = tmp_path / "pg-studio"
    init_studio(root, store_url=None, db_url=request.getfixturevalue("pg_url")).close()
    srv = start_server(root, tmp_path / "pg-server.log")
    try:
        yield srv
    finally:
        srv.process.kill()
        srv.process.wait(10)


def test_text_a_database_cannot_store_is_refused(any_server: ServerProc) -> None:
    headers = {"Authorization": f"Bearer {any_server.admin_token}",
               "Content-Type": "application/json"}
    block = '{"type": "command", "params": {"argv": ["x"]}, "frames": "1"}'
    for name in ('"a\\u0000b"', '"\\ud800"'):
        body = '{"name": ' + name + ', "blocks": [' + block + "]}"  # JSON escapes, sent raw
        r = httpx.post(any_server.url + "/api/jobs", headers=headers, content=body)
        assert r.status_code == 422, (body, r.text)
    r = httpx.get(any_server.url + "/api/jobs", headers=headers, params={"owner": "a\x00"})
    assert r.status_code == 422


def test_fuzz_farm_api_no_server_errors(any_server: ServerProc) -> None:
    server = any_server
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as c:
        # some state for the fuzzer to hit: a job, a worker, a running task
        c.post("/api/jobs", json={"name": "seed", "blocks": [
            {"type": "command", "params": {"argv": ["true"]}, "frames": "1-20", "chunk": 2}]})
        wid = c.post("/api/workers", json={"name": "seed", "allow_commands": True}).json()["id"]
        c.post(f"/api/workers/{wid}/next", json={"timeout": 0})
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    failures: list[str] = []
    tried = 0
    calls = [0]
    for result in schema.get_all_operations():
        op = result.ok()
        if "farm" not in (op.definition.raw.get("tags") or []) or \
                (op.method.upper(), op.path) in SKIP:
            continue
        tried += 1

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(), auth=st.booleans())
        def fuzz(case: Any, auth: bool) -> None:
            # long polls are capped by the schema at 30 s; keep the fuzz fast
            if isinstance(case.body, dict) and case.path.endswith("next"):
                case.body["timeout"] = 0
            response = case.call(base_url=server.url, headers=headers if auth else {},
                                 timeout=60)
            calls[0] += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} body={case.body!r} -> "
                                f"{response.status_code} {response.text[:200]}")

        fuzz()
    print("operations", tried, "calls", calls)
    assert tried >= 20 and calls[0] >= tried * 5
    assert server.process.poll() is None, "the server died"
    assert not failures, "\n".join(failures[:10])
