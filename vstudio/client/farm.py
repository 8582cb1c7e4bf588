"""The farm calls project rendering needs (``render --farm URL``), over the studio's API."""

from __future__ import annotations

from urllib.parse import urlsplit

from vstudio.client.http import ApiClient
from vstudio.errors import BadInput, ServerError, VStudioError


class FarmClient(ApiClient):
    """The few farm calls project rendering needs; HTTP errors become vstudio errors."""

    def __init__(self, url: str, token: str | None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise BadInput(f"--farm {url}: give the server's http(s)://host:port")
        super().__init__(f"{parts.scheme}://{parts.netloc}", token)

    def unreachable(self, exc: Exception) -> VStudioError:
        return ServerError(f"cannot reach the farm at {self.server}: {exc}")
