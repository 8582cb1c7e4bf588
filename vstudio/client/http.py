"""One HTTP client for the studio server's API: the CLI, the repository's remote backend,
project rendering and the render node all speak through it.

HTTP failures become the studio's own errors (``errors.py``) carrying the server's
message, so every caller prints the same one-line explanation.
"""

from __future__ import annotations

from typing import Any

import httpx

from vstudio.errors import (
    BadInput,
    Conflict,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    ServerError,
    VStudioError,
)

BY_STATUS: dict[int, type[VStudioError]] = {
    400: BadInput, 401: NotAuthenticated, 403: PermissionDenied, 404: NotFound, 409: Conflict,
    413: BadInput, 422: BadInput}


def detail(resp: httpx.Response) -> str:
    """The server's message: ``detail`` of a JSON error body, else the body's text."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip() or resp.reason_phrase
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return resp.text.strip()


def error_for(resp: httpx.Response) -> VStudioError:
    if resp.status_code >= 500:
        return ServerError(f"server error {resp.status_code}: {detail(resp)}")
    return BY_STATUS.get(resp.status_code, ServerError)(detail(resp))


class ApiClient:
    """Authenticated requests to ``server``; raises a ``VStudioError`` for any failure."""

    def __init__(self, server: str, token: str | None, timeout: float = 60.0) -> None:
        self.server = server.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout)

    def unreachable(self, exc: httpx.HTTPError) -> VStudioError:
        return ServerError(f"cannot reach {self.server}: {exc}")

    def check(self, resp: httpx.Response) -> httpx.Response:
        if resp.status_code >= 400:
            raise error_for(resp)
        return resp

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            resp = self.http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise self.unreachable(e) from None
        return self.check(resp)

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """A JSON request; the decoded answer, or None for an empty one."""
        resp = self.request(method, path, json=body,
                            params={k: v for k, v in params.items() if v is not None})
        return resp.json() if resp.status_code != 204 and resp.content else None

    def close(self) -> None:
        self.http.close()
