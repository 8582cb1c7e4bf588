"""The render nodes' hot path (next, progress, done, fail, heartbeat) as plain ASGI.

A busy farm's requests are almost all these five. Served through the framework, each
pays for routing over every route, dependency resolution and response-model handling,
which on a 2-core manager caps the farm well below what the database side sustains.
This middleware answers exactly those five routes through the same calls (``farm_hot``)
and with the same error bodies as the documented FastAPI routes in ``routes_farm``
(which stay the contract and serve anything this does not match).

The people's three common reads (``/api/me``, the job list, one job) and their submit
(``POST /api/jobs``) are answered here too, through the same ``FarmReads`` and
``farm_hot.submit`` as their routes: on a busy studio, matching each request against
every route and resolving its dependencies cost more than the answer.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from vstudio.api import deps
from vstudio.api.farm_hot import HOT, Call, submit
from vstudio.catalog.accounts import Role, User
from vstudio.errors import NotAuthenticated, PermissionDenied, VStudioError
from vstudio.farm.spec import JobSpec
from vstudio.farm.wire import MAX_ID

HOT_PATH = re.compile(r"^/api/(workers|tasks)/([0-9]{1,10})/([a-z]+)$")
MAX_BODY = 64 * 2**20
_JSON = [(b"content-type", b"application/json")]


class FastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            read = _common_read(scope)
            if read is None:
                return await self.app(scope, receive, send)  # the documented route answers
            status, body = await _answer_read(scope, *read)
            return await _send(send, status, body)
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        if scope["path"] == "/api/jobs" and not scope["query_string"]:
            status, payload = await self._handle(scope, receive, JobSpec, submit, 0,
                                                 people=True)
            return await _send(send, status, json.dumps(payload).encode())
        m = HOT_PATH.match(scope["path"])
        hot = HOT.get((m.group(1), m.group(3))) if m else None
        if m is None or hot is None or not 1 <= int(m.group(2)) <= MAX_ID:
            return await self.app(scope, receive, send)  # the documented route answers
        status, payload = await self._handle(scope, receive, *hot, int(m.group(2)))
        await _send(send, status, b"" if payload is None else json.dumps(payload).encode())

    async def _handle(self, scope: Scope, receive: Receive, model: type[BaseModel],
                      call: Call, ident: int, people: bool = False) -> tuple[int, Any]:
        try:
            user = await _user(scope)
            if people:  # as the documented route's dependency, before the body is read
                deps.require_person(user)
            raw = await _body(receive)
            try:
                body: Any = model.model_validate_json(raw or b"{}")
            except ValidationError as e:
                return 422, _invalid(e)
            return await call(scope["app"].state.farm, user, ident, body)
        except VStudioError as e:
            return e.http_status, {"detail": e.message}


async def _user(scope: Scope) -> User:
    known = scope.get("state", {}).get(deps.SCOPE_USER)
    if isinstance(known, User):  # authenticated by api.guard already
        return known
    token = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, cred = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and cred.strip():
                token = cred.strip()
        elif name == b"cookie" and token is None:
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == deps.SESSION_COOKIE and v:
                    token = v
    if token is None:
        raise NotAuthenticated("missing credentials: send 'Authorization: Bearer TOKEN'")
    return await deps.user_for_token_async(scope["app"].state.studio, token)


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise VStudioError("the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise VStudioError("request body too large")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _invalid(e: ValidationError) -> dict[str, Any]:
    errors = e.errors()
    first: dict[str, Any] = dict(errors[0]) if errors else {}
    where = ".".join(str(p) for p in ("body", *first.get("loc", ())))
    return {"detail": f"invalid input at {where}: {first.get('msg', 'invalid')}",
            "errors": [{"loc": ["body", *e.get("loc", ())], "msg": e.get("msg")}
                       for e in errors[:20]]}


async def _send(send: Send, status: int, body: bytes) -> None:
    headers = [*_JSON, (b"content-length", str(len(body)).encode())] if body else []
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# The people's common reads, answered here when their query is one of the plain forms the
# web page and the CLI send; anything else (filters, bad values) goes to the documented
# route, which validates it and words the errors.
JOB = re.compile(r"^/api/jobs/([0-9]{1,10})$")
_TASKS = {b"": True, b"tasks=true": True, b"tasks=false": False}


def _common_read(scope: Scope) -> tuple[str, int, int, bool] | None:
    """("me"|"jobs"|"job", limit or job id, offset, with tasks), or None: not handled here."""
    path, query = scope["path"], scope["query_string"]
    if path == "/api/me":
        return ("me", 0, 0, False) if not query else None
    if path == "/api/jobs":
        limit, offset = 100, 0
        for part in query.split(b"&") if query else []:
            name, _, value = part.partition(b"=")
            if not value.isdigit() or len(value) > 10 or name not in (b"limit", b"offset"):
                return None
            if name == b"limit":
                limit = int(value)
            else:
                offset = int(value)
        return ("jobs", limit, offset, False) if 1 <= limit <= 1000 and offset <= 10**9 else None
    m = JOB.match(path)
    if m and query in _TASKS and 1 <= int(m.group(1)) <= MAX_ID:
        return "job", int(m.group(1)), 0, _TASKS[query]
    return None


async def _answer_read(scope: Scope, kind: str, number: int, offset: int,
                       tasks: bool) -> tuple[int, bytes]:
    try:
        user = await _user(scope)
        if kind == "me":
            return 200, json.dumps({"name": user.name, "role": user.role.value}).encode()
        if user.role is Role.WORKER:
            raise PermissionDenied("a worker token can only take and report work")
        reads = scope["app"].state.farm_reads
        if kind == "jobs":
            return 200, await reads.jobs(user, None, None, number, offset)
        return 200, await reads.job(user, number, tasks)
    except VStudioError as e:
        return e.http_status, json.dumps({"detail": e.message}).encode()
