"""Wiring of ``vstudio mount --write``: write cache, overlay, committer and FUSE operations.

The write cache of a mount lives in ``CACHE/write/<id>`` where the id is derived from the
project's location and the user, so remounting the same project as the same user finds
(and commits) what an earlier mount process left there, even after a crash.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vstudio.mount.autocommit import AutoCommitter
from vstudio.mount.blocks import BlockReader
from vstudio.mount.overlay import Overlay
from vstudio.mount.statusfile import StatusFileOps
from vstudio.mount.view import RepoView
from vstudio.mount.writecache import Pending, WriteCache, WriteOptions
from vstudio.repo.api import Entry
from vstudio.repo.backend import WcBackend

log = logging.getLogger("vstudio.mount")


@dataclass
class Writable:
    ops: StatusFileOps
    committer: AutoCommitter
    cache: WriteCache
    backend: WcBackend

    def close(self) -> None:
        """Commit what is settled (unmount), then let go of the cache."""
        try:
            self.committer.stop(flush=True)
        finally:
            self.cache.close()


def write_cache_dir(root: Path, describe: str, user: str) -> Path:
    digest = hashlib.sha256(f"{describe}\0{user}".encode()).hexdigest()[:16]
    return root / "write" / digest


def open_writable(describe: str, backend: WcBackend, view: RepoView, blocks: BlockReader,
                  opts: WriteOptions, on_ready: Callable[[], None] | None) -> Writable:
    folder = write_cache_dir(opts.cache_root, describe, backend.user)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "about.json").write_text(json.dumps({"project": describe, "user": backend.user}))
    cache = WriteCache(folder, opts.max_bytes)
    overlay = Overlay(cache, lambda rev: view.index(rev).files, view.head)
    if overlay.pending:
        log.warning("committing %d change(s) left in the write cache %s",
                    len(overlay.pending), folder)

    def read_bytes(node: Entry | Pending) -> bytes:
        if isinstance(node, Pending) and node.data:
            with open(cache.path_of(node.data), "rb") as f:
                return f.read(node.size)
        return view.reader.read(str(node.oid), 0, node.size)

    committer = AutoCommitter(overlay, backend, read_bytes, settle=opts.settle,
                              max_retry_wait=opts.max_retry_wait)
    def report() -> dict[str, object]:
        return {**committer.report(), **view.server_state(), "cache_used": cache.used,
                "cache_max": cache.max_bytes}

    ops = StatusFileOps(view, blocks, on_ready=on_ready, overlay=overlay, backend=backend)
    ops.on_closed = committer.stage
    ops.on_growing = committer.stream
    ops.status = committer.status
    ops.report = report
    ops.about = {"project": describe, "user": backend.user, "write_cache": str(folder)}
    overlay.refresh()
    committer.start()
    return Writable(ops, committer, cache, backend)
