"""The render cache in the object store.

A cached render is a ref ``render/<key>`` holding a JSON manifest: the file, profile,
format, fps and the object ids of its frames (and of its video for ``mp4``). Refs live in
the studio's store, so every machine of the studio sees every render, and every object id
a ref names stays alive through ``store gc``. While a file renders, each finished chunk
is recorded under ``render-chunks/<key>/<first>-<last>``; those records let an
interrupted render resume and are dropped once the manifest is written.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from vstudio.errors import NotFound, StoreError
from vstudio.store.api import ObjectStore

REF_PREFIX = "render/"
CHUNK_PREFIX = "render-chunks/"
FRAME_NAME = "{:04d}.png"


def lookup(store: ObjectStore, key: str) -> dict[str, Any] | None:
    """The manifest cached under ``key``, or None."""
    try:
        data = store.get_ref(REF_PREFIX + key)
    except (NotFound, StoreError):
        return None
    try:
        manifest = json.loads(data)
    except ValueError:
        return None  # a damaged entry is as good as none: render again
    return manifest if isinstance(manifest, dict) and manifest.get("key") == key else None


def publish(store: ObjectStore, key: str, info: dict[str, Any], ids: dict[int, str],
            fmt: str, fps: float) -> dict[str, Any]:
    """Record stored frames under ``key``; videos are made from them when first needed
    (``writer.video_of``) and added to the manifest."""
    manifest = record(store, key, info, ids, None, fmt, fps)
    drop_chunks(store, key)
    return manifest


def save_chunk(store: ObjectStore, key: str, frames: dict[int, Path]) -> dict[int, str]:
    """Store one rendered chunk at once, so an interrupted run resumes after it."""
    with store.writer() as w:
        ids = {f: w.put_file(frames[f]) for f in sorted(frames)}
    if ids:
        name = f"{CHUNK_PREFIX}{key}/{min(ids)}-{max(ids)}"
        store.put_ref(name, json.dumps(sorted(ids.items())).encode())
    return ids


def saved_chunks(store: ObjectStore, key: str) -> dict[int, str]:
    """Frames of ``key`` that earlier, unfinished runs stored: frame -> object id."""
    out: dict[int, str] = {}
    try:
        for name in store.list_refs(f"{CHUNK_PREFIX}{key}/"):
            for frame, oid in json.loads(store.get_ref(name)):
                out[int(frame)] = str(oid)
    except (NotFound, StoreError, ValueError, TypeError):
        return out  # a damaged record only costs a re-render
    return out


def drop_chunks(store: ObjectStore, key: str) -> None:
    try:
        for name in store.list_refs(f"{CHUNK_PREFIX}{key}/"):
            store.delete_ref(name)
    except (NotFound, StoreError):
        pass  # leftovers are harmless: the manifest is what counts


def record(store: ObjectStore, key: str, info: dict[str, Any], ids: dict[int, str],
           video: str | None, fmt: str, fps: float) -> dict[str, Any]:
    """Write the manifest of objects already in the store (a farm job's outputs)."""
    manifest = {**info, "key": key, "format": fmt, "fps": fps,
                "frames": [[f, ids[f]] for f in sorted(ids)], "video": video,
                "created": time.time()}
    store.put_ref(REF_PREFIX + key, json.dumps(manifest, sort_keys=True).encode())
    return manifest


def save_manifest(store: ObjectStore, key: str, manifest: dict[str, Any]) -> None:
    """Write back a manifest that gained an encode (a video, a sound mixdown)."""
    store.put_ref(REF_PREFIX + key, json.dumps(manifest, sort_keys=True).encode())
