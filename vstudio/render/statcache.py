"""The stat cache: (size, mtime_ns, inode) -> content id, and content id -> scan.

An unchanged project is decided from ``stat`` calls alone. Scans are cached by content id
and stored with references relative to the scanned file's folder, so a copy of a project
elsewhere re-hashes its files (new inodes) but never re-parses them.

A file changed within ``RACY_NS`` of being recorded may have been changed again in the
same timestamp tick (git's "racy clean" problem): such entries are re-hashed next time.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import blake3

from vstudio.render.model import ScanResult, SceneInfo, Use, spans_of
from vstudio.render.scanners import scan_file, suffix_of

CACHE_VERSION = 2  # 2: uses keep the sequencer spans of image strips
RACY_NS = 2_000_000_000
_MMAP_FROM = 4 << 20


def content_id(path: Path) -> str:
    """BLAKE3-256 of the file's bytes: the id the object store gives the same bytes."""
    if path.stat().st_size >= _MMAP_FROM:
        h = blake3.blake3(max_threads=blake3.blake3.AUTO)
        h.update_mmap(path)
        return h.hexdigest()
    return blake3.blake3(path.read_bytes()).hexdigest()


class FileCache:
    """Per-project cache file; ``save`` writes it atomically (last writer wins)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.files: dict[str, list[Any]] = {}
        self.scans: dict[str, dict[str, Any]] = {}
        self.assembled: dict[str, str] = {}
        # "profile:file" -> what its last render here was made from (to say why it changed)
        self.last: dict[str, dict[str, str]] = {}
        # files vstudio wrote beside the sources: absolute path -> [size, mtime_ns]; what
        # is not here (or changed since) is someone else's and is never deleted or replaced
        self.written: dict[str, list[Any]] = {}  # [size, mtime_ns, content id if known]
        self.dirty = False
        self.hashed = 0  # files read for their content this run
        self.scanned = 0  # files parsed this run
        if path is not None:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if data.get("version") == CACHE_VERSION:
                    self.files = data.get("files", {})
                    self.scans = data.get("scans", {})
                    self.assembled = data.get("assembled", {})
                    self.last = data.get("last", {})
                    self.written = data.get("written", {})
            except (OSError, ValueError):
                pass  # a missing or damaged cache only costs time

    def stat_id(self, path: Path, st: os.stat_result | None = None) -> str:
        """Content id of ``path``, from the stat cache when size, mtime and inode match."""
        key = str(path)
        st = st or path.stat()
        entry = self.files.get(key)
        if (entry and entry[0] == st.st_size and entry[1] == st.st_mtime_ns
                and entry[2] == st.st_ino and entry[1] < entry[4] - RACY_NS):
            return str(entry[3])
        cid = content_id(path)
        self.hashed += 1
        self.files[key] = [st.st_size, st.st_mtime_ns, st.st_ino, cid, time.time_ns()]
        self.dirty = True
        return cid

    def scan(self, path: Path, cid: str) -> ScanResult:
        """What ``path`` (whose content id is ``cid``) uses, from the cache when possible."""
        skey = cid + suffix_of(path)
        cached = self.scans.get(skey)
        base = path.parent
        if cached is not None:
            uses = [Use(os.path.normpath(os.path.join(base, u["ref"])), u["kind"], False,
                        u.get("detail", ""), spans_of(u.get("spans")))
                    for u in cached["uses"]]
            scene = cached.get("scene")
            return ScanResult(uses, SceneInfo.from_json(scene) if scene else None)
        result = scan_file(path)
        self.scanned += 1
        self.scans[skey] = {
            "uses": [{"ref": os.path.relpath(u.path, base) if not _outside(u.path, base)
                      else u.path, "kind": u.kind, "detail": u.detail,
                      **({"spans": u.spans} if u.spans is not None else {})}
                     for u in result.uses],
            "scene": result.scene.to_json() if result.scene else None}
        self.dirty = True
        return result

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": CACHE_VERSION, "files": self.files,
                                   "scans": self.scans, "assembled": self.assembled,
                                   "last": self.last, "written": self.written}),
                       encoding="utf-8")
        os.replace(tmp, self.path)
        self.dirty = False


def _outside(target: str, base: Path) -> bool:
    """Absolute references outside the file's drive stay absolute."""
    try:
        os.path.relpath(target, base)
    except ValueError:
        return True
    return False
