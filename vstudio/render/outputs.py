"""The render cache in the object store.

A cached render is a ref ``render/<scope>/<key>`` holding a JSON manifest: the file,
profile, format, fps and the object ids of its frames (and of its video for ``mp4``).
The scope (``cachescope``) is the project the file was rendered in, or the user for plain
files, and says who may read and write the entry. Refs live in the studio's store, so
every machine of the studio sees every render its user may read, and every object id a
ref names stays alive through ``store gc``. While a file renders, each finished chunk is
recorded under ``render-chunks/<scope>/<key>/<first>-<last>``; those records let an
interrupted render resume and are dropped once the manifest is written.

A user who may read a project but not write it takes its cached renders and renders the
rest without recording them: the project's cache is written only by its writers.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from vstudio.errors import NotFound, PermissionDenied, StoreError
from vstudio.render.cachescope import chunk_prefix, manifest_ref
from vstudio.store.api import ObjectStore

FRAME_NAME = "{:04d}.png"
log = logging.getLogger("vstudio.render")


def lookup(store: ObjectStore, scope: str, key: str) -> dict[str, Any] | None:
    """The manifest cached under ``key`` in ``scope``, or None."""
    try:
        data = store.get_ref(manifest_ref(scope, key))
    except (NotFound, StoreError):
        return None
    try:
        manifest = json.loads(data)
    except ValueError:
        return None  # a damaged entry is as good as none: render again
    return manifest if isinstance(manifest, dict) and manifest.get("key") == key else None


def publish(store: ObjectStore, scope: str, key: str, info: dict[str, Any],
            ids: dict[int, str], fmt: str, fps: float) -> dict[str, Any]:
    """Record stored frames under ``key``; videos are made from them when first needed
    (``writer.video_of``) and added to the manifest."""
    manifest = record(store, scope, key, info, ids, None, fmt, fps)
    drop_chunks(store, scope, key)
    return manifest


def save_chunk(store: ObjectStore, scope: str, key: str,
               frames: dict[int, Path]) -> dict[int, str]:
    """Store one rendered chunk at once, so an interrupted run resumes after it."""
    with store.writer() as w:
        ids = {f: w.put_file(frames[f]) for f in sorted(frames)}
    if ids:
        name = f"{chunk_prefix(scope, key)}{min(ids)}-{max(ids)}"
        _put(store, name, json.dumps(sorted(ids.items())).encode())
    return ids


def saved_chunks(store: ObjectStore, scope: str, key: str) -> dict[int, str]:
    """Frames of ``key`` that earlier, unfinished runs stored: frame -> object id."""
    out: dict[int, str] = {}
    try:
        for name in store.list_refs(chunk_prefix(scope, key)):
            for frame, oid in json.loads(store.get_ref(name)):
                out[int(frame)] = str(oid)
    except (NotFound, StoreError, ValueError, TypeError):
        return out  # a damaged record only costs a re-render
    return out


def drop_chunks(store: ObjectStore, scope: str, key: str) -> None:
    try:
        for name in store.list_refs(chunk_prefix(scope, key)):
            store.delete_ref(name)
    except (NotFound, StoreError, PermissionDenied):
        pass  # leftovers are harmless: the manifest is what counts


def record(store: ObjectStore, scope: str, key: str, info: dict[str, Any],
           ids: dict[int, str], video: str | None, fmt: str, fps: float) -> dict[str, Any]:
    """Write the manifest of objects already in the store (a farm job's outputs)."""
    manifest = {**info, "key": key, "format": fmt, "fps": fps,
                "frames": [[f, ids[f]] for f in sorted(ids)], "video": video,
                "created": time.time()}
    _put(store, manifest_ref(scope, key), json.dumps(manifest, sort_keys=True).encode())
    return manifest


def save_manifest(store: ObjectStore, scope: str, key: str, manifest: dict[str, Any]) -> None:
    """Write back a manifest that gained an encode (a video, a sound mixdown)."""
    _put(store, manifest_ref(scope, key), json.dumps(manifest, sort_keys=True).encode())


_refused: set[str] = set()  # scopes already warned about, once per process


def _put(store: ObjectStore, name: str, data: bytes) -> None:
    """Write a cache ref; a scope the user may read but not write is left as it is."""
    try:
        store.put_ref(name, data)
    except PermissionDenied as e:
        scope = name.split("/")[1]
        if scope not in _refused:
            _refused.add(scope)
            log.warning("not recorded in the render cache (%s): %s", scope, e.message)
