"""Rendering without the render cache, when the studio server refuses it to this user.

The server answers 403 on the render cache to a user whose right on the project was
revoked after checkout, and to a worker token (``api.routes_refs``). Such a render still
renders: it takes nothing from the cache and records nothing in it. The engine stores
each finished chunk and assembles outputs through a store, so that store becomes an
empty one in a temporary folder, removed with the render (``throwaway``); the frames
never travel to a server that would not keep them.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref

from vstudio.errors import PermissionDenied, VStudioError
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
