"""The outermost layer of ``vstudio serve``: who asks, and how much they may send.

It runs before any route reads a byte of a request body (FastAPI parses bodies before
it resolves dependencies, so an anonymous client could otherwise make the server read
and parse any amount of JSON). In order:

1. every ``/api/`` request, and every other request that carries a body (but the login
   form), must name a valid token or session cookie, else 401;
2. an ``/api/`` call that changes state on the strength of the session cookie alone must
   carry the page's CSRF token in ``X-CSRF-Token``, else 403 (Bearer calls need none:
   another site cannot make a browser send that header);
3. a body larger than its route class allows is refused with 413: at once when
   ``Content-Length`` says so, else as soon as the running count passes the cap.

The user found in step 1 is left in the scope for ``deps.current_user``.
"""

from __future__ import annotations

import hmac
import json
import math
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vstudio.api import deps
from vstudio.errors import BadInput, NotAuthenticated, VStudioError
from vstudio.studio import Studio

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_FORMS = frozenset({"/login"})  # no session yet: capped, not authenticated
MB = 1 << 20


class BodyTooLarge(VStudioError):
    """The request body is too large."""

    http_status = 413


@dataclass(frozen=True)
class BodyLimits:
    """Largest request body per route class, in bytes."""

    api: int = 8 * MB  # JSON calls: jobs, tasks, users, projects
    upload: int = 96 * MB  # the store's and the repository's data (chunk uploads, commits)
    form: int = 64 << 10  # the web page's forms

    @classmethod
    def from_config(cls, server: dict[str, Any]) -> BodyLimits:
        return cls(api=_megabytes(server, "max_body_mb", cls.api),
                   upload=_megabytes(server, "max_upload_mb", cls.upload))

    def of(self, path: str) -> tuple[int, str]:
        """(cap, the studio.toml key that sets it) for a request path."""
        if path.startswith(("/api/store/", "/api/repo/")):
            return self.upload, "max_upload_mb"
        if path.startswith("/api/"):
            return self.api, "max_body_mb"
        return self.form, ""


def _megabytes(server: dict[str, Any], key: str, default: int) -> int:
    value = server.get(key, default / MB)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0.001 <= value <= 4096:
        raise BadInput(f"[server] {key} must be a number of megabytes from 0.001 to 4096, "
                       f"not {value!r}")
    return int(value * MB)


@dataclass
class _Asked:
    """What the guard needs from the request's headers, read in one pass."""

    bearer: str | None = None
    cookie: str | None = None
    csrf: str | None = None
    length: int | None = None
    chunked: bool = False
    bad_length: bool = False


def _read_headers(scope: Scope) -> _Asked:
    asked = _Asked()
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, cred = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and cred.strip():
                asked.bearer = cred.strip()
        elif name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == deps.SESSION_COOKIE and v:
                    asked.cookie = v
        elif name == b"content-length":
            try:
                asked.length = int(value)
            except ValueError:
                asked.bad_length = True
        elif name == b"transfer-encoding":
            asked.chunked = True
        elif name == b"x-csrf-token":
            asked.csrf = value.decode("latin-1")
    return asked


class Guard:
    def __init__(self, app: ASGIApp, studio: Studio, limits: BodyLimits) -> None:
        self.app = app
        self.studio = studio
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path: str = scope["path"]
        asked = _read_headers(scope)
        api = path.startswith("/api/")
        has_body = asked.chunked or bool(asked.length) or asked.bad_length
        if api or (has_body and path not in PUBLIC_FORMS):
            refusal = await self._authenticate(scope, asked, api)
            if refusal is not None:
                return await _answer(send, *refusal, html=not api)
        if not has_body:
            return await self.app(scope, receive, send)
        limit, key = self.limits.of(path)
        if asked.bad_length or (asked.length or 0) > limit:
            status = 400 if asked.bad_length else 413
            return await _answer(send, status, _too_large(limit, key) if status == 413
                                 else "bad Content-Length header", html=not api)
        await self._capped(scope, receive, send, limit, key, api)

    async def _authenticate(self, scope: Scope, asked: _Asked,
                            api: bool) -> tuple[int, str] | None:
        token = asked.bearer or asked.cookie
        if token is None:
            return 401, ("missing credentials: send 'Authorization: Bearer TOKEN'" if api
                         else "Your session ended: log in again.")
        try:
            user = await deps.user_for_token_async(self.studio, token)
        except NotAuthenticated as e:
            return 401, e.message if api else "Your session ended: log in again."
        if api and asked.bearer is None and scope["method"] not in SAFE_METHODS:
            want = deps.csrf_for(token)
            if not asked.csrf or not hmac.compare_digest(asked.csrf.encode(), want.encode()):
                return 403, ("a call authenticated by the session cookie must send the page's "
                             "CSRF token in the X-CSRF-Token header (or use a Bearer token)")
        scope.setdefault("state", {})[deps.SCOPE_USER] = user
        return None

    async def _capped(self, scope: Scope, receive: Receive, send: Send, limit: int, key: str,
                      api: bool) -> None:
        """Run the app with a receive that stops at ``limit`` bytes; answer 413 then."""
        seen = 0
        over = False
        started = False

        async def counted() -> Message:
            nonlocal seen, over
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                over = True
                raise BodyTooLarge(_too_large(limit, key))
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if over:
                return  # the app's own answer to the cut-off body is replaced by the 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except Exception:
            if not over:
                raise
        if over and not started:
            await _answer(send, 413, _too_large(limit, key), html=not api)


def _too_large(limit: int, key: str) -> str:
    where = f" (set by [server] {key} in studio.toml)" if key else ""
    return f"request body too large: at most {limit} bytes here{where}"


async def _answer(send: Send, status: int, message: str, *, html: bool) -> None:
    if html:
        from html import escape

        body = (f"<!doctype html><title>{status}</title><p>{escape(message)}</p>"
                "<p><a href=\"/\">Log in</a></p>").encode()
        ctype = b"text/html; charset=utf-8"
    else:
        body = json.dumps({"detail": message}).encode()
        ctype = b"application/json"
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
