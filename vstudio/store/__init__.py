"""The object store: content-addressed bytes on a local folder or any S3 bucket.

Terms, used the same way in every module here:

- **object id**: BLAKE3-256 of an object's plain bytes, 64 lowercase hex digits.
- **chunk**: a piece of a file cut by a chunker (FastCDC by default); its id is the
  BLAKE3 of its bytes. A file of one chunk has the chunk's id.
- **recipe**: the list that rebuilds a file of several chunks, stored under the file's id;
  big files list **segments** (lists of chunks cut where a chunk id hits a boundary),
  so an edit rewrites a chunk, a segment and the short top list, not the whole list.
- **blob**: a chunk, segment or recipe, sealed (zstd, then optional encryption).
- **pack**: one backend object holding many blobs (~16 MiB), named by the BLAKE3 of its
  bytes, ending with a copy of its index; ``index/NAME`` lists where each blob sits.
- **ref**: a small named mutable record (``refs/NAME``); the roots of garbage collection.

Backend layout: ``config``, ``packs/XX/PACK``, ``index/PACK``, ``refs/NAME``,
``writers/ID`` (open write batches), ``gc/doomed-N`` (blobs the last gc found unreached;
``gc/doomed`` in stores written before generations).

Layers, each using only the public names of those below it:
backends (``api.Backend``; optional interfaces in ``api.Features``) → packs and index
(``packs.Packs``, ``index.Index``, ``gcstate``) → files and refs (``objects.Store``, with
``writer``, ``reads`` and ``direct``) → maintenance (``maintenance``: stats, check, gc,
which the CLI and the API call with the store; nothing below imports it).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from vstudio.errors import BadInput, ObjectMissing, StoreError
from vstudio.store.api import ObjectStore

CONFIG = "config"
FORMAT = 1


def open_store(url: str, options: dict[str, Any] | None = None, *,
               cache_dir: str | os.PathLike[str] | None = None,
               create: bool = True) -> ObjectStore:
    """Open the store at ``url``; with ``create``, make it first if there is none.

    Only ``vstudio init`` (``studio.init_studio``) passes ``create=True`` among the
    commands: a mistyped folder or prefix must never start a second, empty store."""
    from vstudio.store.backends import open_backend
    from vstudio.store.codec import Codec, dump_config, new_encryption, open_encryption
    from vstudio.store.objects import Store

    options = dict(options or {})
    backend = open_backend(url, options)
    try:
        raw = backend.get(CONFIG)
    except ObjectMissing:
        if not create:
            raise StoreError(f"no vstudio store at {backend.describe()} (a missing folder "
                             "or an empty bucket/prefix): check the store URL; only "
                             "'vstudio init' creates a store") from None
        if any(True for _ in backend.list("index/")):
            # Data without its config: making a new one would mismatch keys or formats.
            raise StoreError(f"{backend.describe()} holds store data but no 'config' object: "
                             "restore it from a backup of the bucket") from None
        enc = new_encryption(options)
        cfg: dict[str, Any] = {"format": FORMAT, "id": os.urandom(16).hex(),
                               "created": time.time(), "encryption": enc[0] if enc else None}
        if not backend.create(CONFIG, dump_config(cfg)):
            raw = backend.get(CONFIG)  # another process created it first
        else:
            raw = dump_config(cfg)
    try:
        cfg = json.loads(raw)
        fmt_version = int(cfg["format"])
    except (ValueError, KeyError, TypeError):
        raise StoreError(f"{backend.describe()}/config is not a vstudio store config") from None
    if fmt_version > FORMAT:
        raise StoreError(f"the store has format {fmt_version}; this vstudio reads up to "
                         f"{FORMAT}: upgrade vstudio")
    key = open_encryption(cfg["encryption"], options) if cfg.get("encryption") else None
    if key is None and options.get("key_file"):
        raise BadInput("the store is not encrypted, but a key_file is set: remove key_file "
                       "from studio.toml or use a new store")
    cache = rebuilt = None
    if cache_dir is not None:
        tag = hashlib.sha256(f"{backend.describe()}|{cfg['id']}".encode()).hexdigest()[:16]
        cache = Path(cache_dir) / "store-index" / tag
        # Rebuilt transformed files (compressed .blend) for range reads: plain bytes, so an
        # encrypted store keeps them only in memory, never in a folder on disk.
        rebuilt = None if key is not None else Path(cache_dir) / "store-rebuilt" / tag
    threads = int(options.get("upload_threads", 4 if url.startswith("s3://") else 2))
    store = Store(backend, Codec(key), cache, upload_threads=threads, rebuilt_dir=rebuilt)
    try:  # [store] rebuilt_cache_mb in studio.toml: the folder of rebuilt compressed files
        store.rebuilt.disk_limit = int(options.get("rebuilt_cache_mb", 4096)) << 20
    except (TypeError, ValueError):
        raise BadInput("store option rebuilt_cache_mb must be a whole number of MiB") from None
    return store


__all__ = ["ObjectStore", "open_store"]
