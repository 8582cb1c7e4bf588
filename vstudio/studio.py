"""Wiring: one place that builds the catalog engine and the object store of a studio."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

from vstudio import config as cfg
from vstudio.errors import AlreadyExists, BadInput

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from vstudio.store.api import ObjectStore


T = TypeVar("T")


@dataclass
class Studio:
    config: cfg.StudioConfig
    _closed: bool = field(default=False, repr=False)
    create_store: bool = field(default=False, repr=False)  # only 'vstudio init' makes one
    _shared: dict[str, object] = field(default_factory=dict, repr=False)
    _shared_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, studio_dir: str | os.PathLike[str] | None = None) -> Studio:
        return cls(cfg.load(cfg.find_studio(studio_dir)))

    @property
    def root(self) -> Path:
        return self.config.root

    @cached_property
    def engine(self) -> Engine:
        from vstudio.catalog.db import open_catalog

        return open_catalog(self.config.db_url)

    @cached_property
    def store(self) -> ObjectStore:
        from vstudio.store import open_store

        return open_store(self.config.store_url, self.config.store_options,
                          cache_dir=self.root / "cache", create=self.create_store)

    def shared(self, name: str, make: Callable[[], T]) -> T:
        """The studio's one ``name`` (its grant signer, its reach index), made by ``make``
        on first use; many request threads ask at once, so it is made once, under a lock."""
        got = self._shared.get(name)
        if got is None:
            with self._shared_lock:
                got = self._shared.get(name)
                if got is None:
                    got = self._shared[name] = make()
        return cast(T, got)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()


def init_studio(root: Path, *, store_url: str | None, db_url: str | None,
                store_options: dict[str, object] | None = None) -> Studio:
    """Create a studio folder: ``studio.toml``, the catalog schema and the store."""
    root = root.expanduser().resolve()
    if (root / cfg.STUDIO_FILE).exists():
        raise AlreadyExists(f"{root} is a studio already ({cfg.STUDIO_FILE} exists)")
    if root.exists() and not root.is_dir():
        raise BadInput(f"{root} exists and is not a folder")
    root.mkdir(parents=True, exist_ok=True)
    cfg.write_config(root, name=root.name,
                     db_url=db_url or "sqlite:///catalog.db",
                     store_url=store_url or "file://store",
                     store_options=dict(store_options or {}))
    try:
        studio = Studio(cfg.load(root), create_store=True)
        _ = studio.engine  # creates and migrates the schema
        studio.store.put_ref("studio", b"vstudio studio\n")  # proves the store is writable
    except Exception:
        (root / cfg.STUDIO_FILE).unlink(missing_ok=True)
        raise
    return studio
