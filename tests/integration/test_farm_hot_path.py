"""The render nodes' five hot calls answer the same through the fast path (``FastPath``,
what a server serves) and through the documented FastAPI routes (what the OpenAPI
contract describes): same status, same body, for work, for nothing to do and for errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from vstudio.api.app import create_app
from vstudio.api.routes_farm_fast import FastPath
from vstudio.catalog import accounts
from vstudio.farm.spec import JobSpec
from vstudio.studio import Studio, init_studio

Client = httpx.AsyncClient
SPEC = {"name": "job", "blocks": [{"name": "c", "type": "command", "frames": "1-2",
                                   "chunk": 1, "params": {"argv": ["true"]}}]}


@pytest.fixture
def studio(tmp_path: Path) -> Studio:
    return init_studio(tmp_path / "studio", store_url=None, db_url=None)


def _documented(stack: Any) -> Any:
    """The application inside ``FastPath``: the framework's routes and error handlers."""
    while not isinstance(stack, FastPath):
        stack = stack.app
    return stack.app


def run(studio: Studio, body: Callable[[Client, Client, Any], Awaitable[None]]) -> None:
    app = create_app(studio)

    async def main() -> None:
        async with app.router.lifespan_context(app):
            full = app.build_middleware_stack()

            def entry(stack: Any) -> Any:
                async def call(scope: Any, receive: Any, send: Any) -> None:
                    scope["app"] = app  # as Starlette's own entry does
                    await stack(scope, receive, send)
                return call

            base = "http://farm"
            async with (Client(transport=httpx.ASGITransport(entry(full)), base_url=base) as fast,
                        Client(transport=httpx.ASGITransport(entry(_documented(full))),
                               base_url=base) as docs):
                await body(fast, docs, app.state.farm)

    try:
        asyncio.run(main())
    finally:
        studio.close()


def _answer(r: httpx.Response) -> tuple[int, Any]:
    return r.status_code, (r.json() if r.content else None)


async def same(fast: Client, docs: Client, path: str, body: Any,
               token: str | None) -> tuple[int, Any]:
    """POST to both; assert the same answer; return it."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    a = _answer(await fast.post(path, content=raw, headers=headers))
    b = _answer(await docs.post(path, content=raw, headers=headers))
    assert a == b, (path, body)
    return a


def test_fast_and_documented_hot_calls_answer_alike(studio: Studio) -> None:
    admin = accounts.add_user(studio.engine, "boss", "admin")
    node = accounts.add_user(studio.engine, "node", "worker")[1]
    viewer = accounts.add_user(studio.engine, "vic", "viewer")[1]

    async def body(fast: Client, docs: Client, farm: Any) -> None:
        reg = await fast.post("/api/workers", headers={"Authorization": f"Bearer {node}"},
                              json={"name": "w", "allow_commands": True, "slots": 2})
        w = reg.json()["id"]
        # nothing to do, a heartbeat, errors: the same answer both ways
        assert await same(fast, docs, f"/api/workers/{w}/next", {"timeout": 0}, node) == (
            204, None)
        status, out = await same(fast, docs, f"/api/workers/{w}/heartbeat", {}, node)
        assert status == 200 and out["lease_seconds"] > 0
        assert (await same(fast, docs, f"/api/workers/{w}/next", {"timeout": "x"}, node))[0] == 422
        # bytes that are not JSON: both refuse with 422 (FastPath words it as pydantic does,
        # the framework as "JSON decode error"), so only the status is compared here
        for client in (fast, docs):
            r = await client.post(f"/api/workers/{w}/next", content=b"{", headers={
                "Authorization": f"Bearer {node}", "Content-Type": "application/json"})
            assert r.status_code == 422 and r.json()["detail"].startswith("invalid input at body")
        assert (await same(fast, docs, f"/api/workers/{w}/next", {}, None))[0] == 401
        assert (await same(fast, docs, f"/api/workers/{w}/next", {}, viewer))[0] == 403
        assert (await same(fast, docs, "/api/tasks/999/done", {"attempt": 1}, node))[0] == 404
        # work: one task through each path, reported the same way
        await farm.submit(admin[0], JobSpec.model_validate(SPEC))
        got = [await same_task(fast, w, node), await same_task(docs, w, node)]
        assert sorted(t["frames"][0] for t in got) == [1, 2]
        assert set(got[0]) == set(got[1])  # the same payload, field for field
        for client, task in zip((fast, docs), got, strict=True):
            path = f"/api/tasks/{task['id']}"
            r = await client.post(f"{path}/progress", json={"attempt": 1, "progress": 50},
                                  headers={"Authorization": f"Bearer {node}"})
            assert _answer(r) == (200, {"cancel": False})
        first, second = got
        for action, extra in (("done", {}), ("fail", {"error": "boom"})):
            task = first if action == "done" else second
            path = f"/api/tasks/{task['id']}/{action}"
            a = _answer(await fast.post(path, json={"attempt": 1, **extra},
                                        headers={"Authorization": f"Bearer {node}"}))
            assert a == (200, {"ok": True})
            # the same report again is a stale one, refused alike by both
            status, out = await same(fast, docs, path, {"attempt": 1, **extra}, node)
            assert status == 409 and out["detail"]

    run(studio, body)


async def same_task(client: Client, worker_id: int, token: str) -> dict[str, Any]:
    r = await client.post(f"/api/workers/{worker_id}/next", json={"timeout": 0},
                          headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    task: dict[str, Any] = r.json()["task"]
    assert set(task) >= {"id", "attempt", "frames", "type"}
    return task


def test_fast_and_documented_submit_answer_alike(studio: Studio) -> None:
    """``POST /api/jobs`` through both paths: the same status and body for a job (but its
    new id), for invalid specs, for a worker token, for no token, and for a project the
    submitter may not read."""
    accounts.add_user(studio.engine, "boss", "admin")
    ann = accounts.add_user(studio.engine, "ann", "artist")[1]
    node = accounts.add_user(studio.engine, "node", "worker")[1]
    accounts.add_user(studio.engine, "kim", "artist")
    accounts.create_project(studio.engine, "secret")
    accounts.set_right(studio.engine, "secret", "kim", "read", True)

    async def body(fast: Client, docs: Client, farm: Any) -> None:
        headers = {"Authorization": f"Bearer {ann}"}
        a = await fast.post("/api/jobs", json=SPEC, headers=headers)
        b = await docs.post("/api/jobs", json=SPEC, headers=headers)
        assert (a.status_code, b.status_code) == (201, 201)
        assert set(a.json()) == set(b.json()) == {"id"} and a.json() != b.json()
        bad_frames = {**SPEC, "blocks": [{**SPEC["blocks"][0], "frames": "9-1"}]}
        for spec in ({"name": "x"}, {**SPEC, "priority": "high"}, bad_frames,
                     {**SPEC, "inputs": [{"path": "../x", "oid": "ab" * 32}]}):
            status, out = await same(fast, docs, "/api/jobs", spec, ann)
            assert status in (400, 403, 422) and out["detail"], (spec, out)
        assert (await same(fast, docs, "/api/jobs", SPEC, node))[0] == 403
        assert (await same(fast, docs, "/api/jobs", {"x": 1}, node))[0] == 403  # role first
        assert (await same(fast, docs, "/api/jobs", SPEC, None))[0] == 401
        status, out = await same(fast, docs, "/api/jobs", {**SPEC, "project": "secret"}, ann)
        assert status == 403 and "secret" in out["detail"]
        jobs = await farm.read(lambda r: r.jobs(None, None, 100, 0))
        assert len(jobs) == 2  # only the two good submits made jobs

    run(studio, body)
