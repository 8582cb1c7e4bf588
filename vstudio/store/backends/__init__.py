"""Backends: where the store's objects live (a local folder, S3, memory).

``open_backend(url)`` picks one from a store URL and wraps it in retries where the
service can fail transiently.
"""

from __future__ import annotations

from typing import Any

from vstudio.errors import BadInput
from vstudio.store.api import Backend


def open_backend(url: str, options: dict[str, Any] | None = None) -> Backend:
    """A backend for ``file://DIR``, ``memory://NAME`` or ``s3://BUCKET/PREFIX?endpoint=...``."""
    options = options or {}
    if url.startswith("file://"):
        from vstudio.store.backends.local import LocalBackend

        return LocalBackend(url[len("file://"):])
    if url.startswith("memory://"):
        from vstudio.store.backends.memory import MemoryBackend

        return MemoryBackend.named(url[len("memory://"):])
    if url.startswith("s3://"):
        from vstudio.store.backends.retry import RetryBackend
        from vstudio.store.backends.s3 import S3Backend

        return RetryBackend(S3Backend.from_url(url, options))
    raise BadInput(f"unknown store URL {url!r}: use a folder, file://DIR or "
                   "s3://BUCKET/PREFIX?endpoint=http://HOST:PORT")
