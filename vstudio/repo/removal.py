"""``vstudio project rm``: a project leaves the catalog and the bucket's refs.

The catalog row goes first (its revisions, locks, tags and rights cascade), then the
refs ``projects/<name>/...`` that would let ``catalog rebuild`` bring it back, and its
render cache (``render/p.<name>/...``). File and tree objects are not deleted here: with
no ref naming them any more, the next ``vstudio store gc`` frees them (objects another
project shares stay). A removal killed between the two steps is finished by running it
again.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from vstudio.catalog import accounts
from vstudio.errors import NotFound
from vstudio.render import cachescope
from vstudio.repo.service import RepoService

if TYPE_CHECKING:
    from vstudio.studio import Studio


def describe(studio: Studio, name: str) -> dict[str, Any]:
    """What removing ``name`` drops: its head revision and how many refs it has."""
    refs = studio.store.list_refs(f"projects/{name}/")
    try:
        head = RepoService(studio).head(name)
    except NotFound:
        if not refs:
            raise
        head = 0  # a removal interrupted after the catalog step
    return {"project": name, "head": head, "refs": len(refs)}


def remove_project(studio: Studio, name: str) -> dict[str, Any]:
    info = describe(studio, name)
    with contextlib.suppress(NotFound):
        accounts.remove_project(studio.engine, name)
    # its render cache too: a later project of the same name must not inherit its renders
    scope = cachescope.project(name)
    cache = [r for p in (cachescope.REF_PREFIX, cachescope.CHUNK_PREFIX)
             for r in studio.store.list_refs(f"{p}{scope}/")]
    for ref in studio.store.list_refs(f"projects/{name}/") + cache:
        with contextlib.suppress(NotFound):
            studio.store.delete_ref(ref)
    return info
