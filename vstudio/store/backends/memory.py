"""A backend in process memory: for tests and throw-away stores."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from vstudio.errors import ObjectMissing
from vstudio.store.api import NO_FEATURES, Features, ObjectInfo


class MemoryBackend:
    atomic_create = True
    features: Features = NO_FEATURES
    _named: ClassVar[dict[str, MemoryBackend]] = {}

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._objects: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def named(cls, name: str) -> MemoryBackend:
        """The same backend for the same name within a process (``memory://NAME``)."""
        with threading.Lock():
            if name not in cls._named:
                cls._named[name] = cls(name)
            return cls._named[name]

    def put(self, name: str, data: bytes) -> None:
        with self._lock:
            self._objects[name] = (bytes(data), time.time())

    def put_path(self, name: str, path: Path) -> None:
        self.put(name, path.read_bytes())

    def create(self, name: str, data: bytes) -> bool:
        with self._lock:
            if name in self._objects:
                return False
            self._objects[name] = (bytes(data), time.time())
            return True

    def _get(self, name: str) -> tuple[bytes, float]:
        try:
            return self._objects[name]
        except KeyError:
            raise ObjectMissing(f"{name} is missing from the store's backend") from None

    def get(self, name: str) -> bytes:
        return self._get(name)[0]

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        return self._get(name)[0][offset:offset + length]

    def stat(self, name: str) -> ObjectInfo:
        data, mtime = self._get(name)
        return ObjectInfo(name, len(data), mtime)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self._lock:
            items = [(k, v) for k, v in self._objects.items() if k.startswith(prefix)]
        for k, (data, mtime) in items:
            yield ObjectInfo(k, len(data), mtime)

    def delete(self, name: str) -> None:
        with self._lock:
            self._objects.pop(name, None)

    def describe(self) -> str:
        return f"memory://{self.name}"
