"""Retries with exponential backoff around any backend (restic's retry backend, in small)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from vstudio.errors import BackendUnavailable
from vstudio.store.api import (
    Backend,
    Features,
    ObjectInfo,
    PartsWriting,
    Presigning,
    TempFiles,
)

log = logging.getLogger("vstudio.store")
T = TypeVar("T")


class RetryBackend:
    def __init__(self, inner: Backend, attempts: int = 5, base_delay: float = 0.2,
                 max_delay: float = 5.0) -> None:
        self.inner = inner
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.atomic_create = inner.atomic_create
        # The same optional interfaces as the inner backend, each call retried too.
        f = inner.features
        self.features = Features(
            presign=_RetryPresigning(self, f.presign) if f.presign else None,
            temp=_RetryTempFiles(self, f.temp) if f.temp else None,
            parts=_RetryPartsWriting(self, f.parts) if f.parts else None)

    def _retry(self, what: str, fn: Callable[[], T]) -> T:
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except BackendUnavailable as e:
                if not e.context.get("retry") or attempt == self.attempts:
                    raise
                delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
                delay *= 0.5 + random.random() / 2
                log.info("%s failed (%s); retry %d in %.1fs", what, e.message, attempt, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def put(self, name: str, data: bytes) -> None:
        self._retry(f"put {name}", lambda: self.inner.put(name, data))

    def put_path(self, name: str, path: Path) -> None:
        self._retry(f"put {name}", lambda: self.inner.put_path(name, path))

    def create(self, name: str, data: bytes) -> bool:
        # A retried create whose first try landed would report False: acceptable, since
        # callers of create treat "exists" as "someone else won" and re-read.
        return self._retry(f"create {name}", lambda: self.inner.create(name, data))

    def get(self, name: str) -> bytes:
        return self._retry(f"get {name}", lambda: self.inner.get(name))

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        return self._retry(f"get {name}", lambda: self.inner.get_range(name, offset, length))

    def stat(self, name: str) -> ObjectInfo:
        return self._retry(f"stat {name}", lambda: self.inner.stat(name))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        # Listing is retried as a whole, before anything is handed to the caller.
        return iter(self._retry(f"list {prefix}", lambda: list(self.inner.list(prefix))))

    def delete(self, name: str) -> None:
        self._retry(f"delete {name}", lambda: self.inner.delete(name))

    def describe(self) -> str:
        return self.inner.describe()


class _RetryPresigning:
    def __init__(self, retry: RetryBackend, inner: Presigning) -> None:
        self.retry, self.inner = retry, inner

    def presign_range(self, name: str, offset: int, length: int, expires: int = 3600) -> str:
        return self.retry._retry(f"presign {name}",
                                 lambda: self.inner.presign_range(name, offset, length, expires))


class _RetryTempFiles:
    def __init__(self, retry: RetryBackend, inner: TempFiles) -> None:
        self.retry, self.inner = retry, inner

    def temp_bytes(self) -> int:
        return self.retry._retry("temp bytes", self.inner.temp_bytes)

    def clean_temp(self, older_than: float) -> int:
        return self.retry._retry("clean temp", lambda: self.inner.clean_temp(older_than))


class _RetryPartsWriting:
    def __init__(self, retry: RetryBackend, inner: PartsWriting) -> None:
        self.retry, self.inner = retry, inner

    def put_parts(self, name: str, parts: list[bytes]) -> None:
        self.retry._retry(f"put {name}", lambda: self.inner.put_parts(name, parts))
