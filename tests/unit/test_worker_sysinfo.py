"""What a render node says about itself at registration, and registering with a manager
that is older than the node (it refuses the description; the node registers anyway)."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from vstudio import __version__
from vstudio.client.manager import ManagerApi
from vstudio.errors import BadInput
from vstudio.worker.sysinfo import system_info


def test_system_info_describes_this_machine() -> None:
    info = system_info()
    assert info["version"] == __version__ and info["cores"] == os.cpu_count()
    assert info["memory"] > 2**20 and info["os"] and info["cpu"]
    assert all(len(info[k]) <= 200 for k in ("os", "cpu"))


def _manager(refuse: str | None) -> tuple[ManagerApi, list[dict[str, object]]]:
    """A stand-in for a manager of an older release, which forbids unknown fields."""
    seen: list[dict[str, object]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        if refuse and refuse in body:
            return httpx.Response(422, json={"detail": f"body.{refuse}: Extra inputs are "
                                                       "not permitted"})
        return httpx.Response(200, json={"id": 7, "lease_seconds": 60})

    api = ManagerApi("http://manager", "t")
    api.http = httpx.Client(base_url="http://manager", transport=httpx.MockTransport(answer))
    return api, seen


def test_an_older_manager_gets_the_registration_without_the_description() -> None:
    api, seen = _manager("system")
    assert api.register({"name": "n", "system": system_info()})["id"] == 7
    assert "system" in seen[0] and "system" not in seen[1] and seen[1]["name"] == "n"
    # Any other refusal still stops the node, with the manager's words.
    api, seen = _manager("name")
    with pytest.raises(BadInput, match=r"body\.name"):
        api.register({"name": "n", "system": system_info()})
    assert len(seen) == 1
