"""Fuzz the repository's HTTP API from its OpenAPI document: no input may give a 5xx."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import start_server
from vstudio.studio import init_studio

EXAMPLES = 12


def test_fuzz_repo_api_no_server_errors(tmp_path: Path, pg_url: str) -> None:
    root = tmp_path / "pg-studio"
    init_studio(root, store_url=None, db_url=pg_url).close()
    server = start_server(root, tmp_path / "server.log")
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    try:
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as c:
            assert c.post("/api/projects", json={"name": "film"}).status_code == 201
            c.post("/api/repo/film/locks", json={"path": "a.blend"})
        schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
        failures: list[str] = []
        tried = 0
        for result in schema.get_all_operations():
            op = result.ok()
            if "repository" not in (op.definition.raw.get("tags") or []):
                continue
            tried += 1

            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(), auth=st.booleans(), real=st.booleans())
            def fuzz(case: Any, auth: bool, real: bool) -> None:
                if real and case.path_parameters and "project" in case.path_parameters:
                    case.path_parameters["project"] = "film"  # reach past the 404
                response = case.call(base_url=server.url, headers=headers if auth else {},
                                     timeout=60)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} body={case.body!r}"
                                    f" -> {response.status_code} {response.text[:200]}")

            fuzz()
        assert tried >= 10
        assert server.process.poll() is None, "the server died"
        assert not failures, "\n".join(failures[:10])
    finally:
        server.process.kill()
        server.process.wait(10)
