"""Rendering without the render cache, when the studio server refuses it to this user.

The server answers 403 on the render cache to a user whose right on the project was
revoked after checkout, and to a worker token (``api.routes_refs``). Such a render still
renders: it takes nothing from the cache and records nothing in it. The engine stores
each finished chunk and assembles outputs through a store, so for a render on this
machine that store becomes an empty one in a temporary folder, removed with the render
(``throwaway``); the frames never travel to a server that would not keep them. A farm
render cannot leave the server's store (its render nodes read the inputs from it and put
their frames into it): it keeps the store for objects, and its cache refs are kept in
memory only (``RefsInMemory``), so the render finds no entry and leaves none.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from typing import Any

from vstudio.errors import NotFound, PermissionDenied, VStudioError
from vstudio.render.cachescope import REF_PREFIX
from vstudio.store import open_store
from vstudio.store.api import ObjectStore, ServedStore


def refusal(store: ObjectStore, refused: PermissionDenied) -> str | None:
    """The warning for a server's refused cache; None when ``store`` is no server's (a
    local store checks no rights, so its refusal is a real error)."""
    if not isinstance(store, ServedStore):
        return None
    why = refused.message
    # A worker token is refused every ref, but the refusal of one entry names only the
    # token's user and the scope; the refusal of a listing says it is a worker's.
    try:
        store.list_refs(REF_PREFIX)
    except PermissionDenied as e:
        why = e.message
    except VStudioError:
        pass
    return (f"rendering without the render cache: the server at {store.server_url} "
            f"refused it ({why})")


def throwaway(owner: object) -> ObjectStore:
    """An empty store in a temporary folder, removed when ``owner`` is (or at exit)."""
    folder = tempfile.mkdtemp(prefix="vstudio-nocache-")
    store = open_store(f"file://{folder}", create=True)
    weakref.finalize(owner, shutil.rmtree, folder, True)
    return store


class RefsInMemory:
    """``store`` for objects, with refs (the render cache's manifests and chunk records)
    kept in this object only: read and written by this render, never by the server."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._refs: dict[str, bytes] = {}

    def __getattr__(self, name: str) -> Any:  # objects, grants, the server's address
        return getattr(self._store, name)

    def put_ref(self, name: str, data: bytes) -> None:
        self._refs[name] = data

    def create_ref(self, name: str, data: bytes) -> bool:
        return self._refs.setdefault(name, data) is data

    def get_ref(self, name: str) -> bytes:
        try:
            return self._refs[name]
        except KeyError:
            raise NotFound(f"no ref {name!r}") from None

    def list_refs(self, prefix: str = "") -> list[str]:
        return sorted(n for n in self._refs if n.startswith(prefix))

    def delete_ref(self, name: str) -> None:
        self._refs.pop(name, None)
