"""The render cache in the object store, and assembling outputs beside the sources.

A cached render is a ref ``render/<key>`` holding a JSON manifest: the file, profile,
format, fps and the object ids of its frames (and of its video for ``mp4``). Refs live in
the studio's store, so every machine of the studio sees every render, and every object id
a ref names stays alive through ``store gc``. While a file renders, each finished chunk
is recorded under ``render-chunks/<key>/<first>-<last>``; those records let an
interrupted render resume and are dropped once the manifest is written.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from vstudio.errors import NotFound, StoreError
from vstudio.render.runner import RenderFailed
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
    """Record stored frames under ``key`` (encoding the video first for ``mp4``)."""
    video = None
    if fmt == "mp4":
        with tempfile.TemporaryDirectory(prefix="vstudio-encode-") as tmp:
            files = {}
            for f, oid in ids.items():
                files[f] = Path(tmp) / f"in{f:08d}.png"
                store.get_file(oid, files[f])
            (Path(tmp) / "enc").mkdir()
            video = store.put_file(encode(files, fps, Path(tmp) / "enc"))
    manifest = record(store, key, info, ids, video, fmt, fps)
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


def encode(frames: dict[int, Path], fps: float, tmp: Path) -> Path:
    """Frames in order -> an H.264 MP4 (even size, yuv420p) through ffmpeg."""
    ffmpeg = shutil.which("ffmpeg")
    if not ffmpeg:
        raise RenderFailed("ffmpeg is not installed (apt-get install ffmpeg): needed for mp4")
    for i, f in enumerate(sorted(frames)):
        os.symlink(os.path.abspath(frames[f]), tmp / f"{i:06d}.png")
    out = tmp / "video.mp4"
    proc = subprocess.run(
        [ffmpeg, "-y", "-loglevel", "error", "-framerate", str(fps), "-i",
         str(tmp / "%06d.png"), "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2",
         "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(out)],
        capture_output=True, text=True)
    if proc.returncode != 0 or not out.is_file():
        raise RenderFailed(f"ffmpeg failed to encode the video: {proc.stderr.strip()[-500:]}")
    return out


def assemble(store: ObjectStore, manifest: dict[str, Any], dest: Path) -> None:
    """Write a cached render to ``dest``: a folder of frames, or one video file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if manifest.get("format") == "mp4" and manifest.get("video"):
        if dest.is_dir():
            shutil.rmtree(dest)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        store.get_file(str(manifest["video"]), tmp)
        os.replace(tmp, dest)
        return
    if dest.exists() and not dest.is_dir():
        dest.unlink()
    dest.mkdir(exist_ok=True)
    wanted = {FRAME_NAME.format(int(f)): str(oid) for f, oid in manifest["frames"]}
    for name, oid in wanted.items():
        tmp = dest / f".{name}.{os.getpid()}.tmp"
        store.get_file(oid, tmp)
        os.replace(tmp, dest / name)
    for old in dest.iterdir():  # frames of an earlier, longer render would mislead an edit
        if old.is_file() and old.name not in wanted and old.suffix == ".png":
            old.unlink()
