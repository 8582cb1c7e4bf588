"""The shared API client turns HTTP failures into the studio's one-line errors."""

from __future__ import annotations

import pytest

from tests.conftest import ServerProc
from tests.helpers import free_port
from vstudio.client.http import ApiClient
from vstudio.errors import NotAuthenticated, NotFound, PermissionDenied, ServerError


def test_answers_and_errors(server: ServerProc) -> None:
    admin = ApiClient(server.url, server.admin_token)
    assert admin.call("GET", "/api/me")["role"] == "admin"
    with pytest.raises(NotAuthenticated, match="invalid token"):
        ApiClient(server.url, "vst_wrong").call("GET", "/api/me")
    with pytest.raises(NotFound):
        admin.call("GET", "/api/jobs/424242")
    viewer = ApiClient(server.url, server.add_user("vera", "viewer"))
    with pytest.raises(PermissionDenied):
        viewer.call("POST", "/api/users", {"name": "x", "role": "artist"})
    with pytest.raises(ServerError, match="cannot reach"):
        ApiClient(f"http://127.0.0.1:{free_port()}", None, timeout=2).call("GET", "/api/me")
