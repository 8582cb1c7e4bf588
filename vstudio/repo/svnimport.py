"""``vstudio svn-import``: a Subversion dump stream into an empty project, numbers kept.

Streams: headers are read line by line, file texts and deltas in 1 MiB pieces through
temporary files, so a 15 GB dump needs little memory. Each Subversion revision becomes
one commit with the same number, author, date and message (empty revisions too). What
cannot be carried (properties other than ``svn:needs-lock``/``svn:executable``, empty
folders, unknown revision properties) is listed in the report, not dropped silently.
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, BinaryIO

from vstudio.errors import BadInput, Conflict
from vstudio.repo import paths as P
from vstudio.repo import svndiff
from vstudio.repo.api import Entry
from vstudio.repo.backend import WcBackend
from vstudio.repo.service import ANY, Change
from vstudio.store.api import NO_PROGRESS, Progress, Writer

PIECE = 1 << 20
CARRIED = {"svn:needs-lock", "svn:executable"}
REV_PROPS = {"svn:log", "svn:author", "svn:date"}


class BadDump(BadInput):
    """The Subversion dump is corrupt or truncated."""


class _Limited:
    """At most ``n`` bytes of a stream (one record's content)."""

    def __init__(self, f: BinaryIO, n: int) -> None:
        self.f, self.left = f, n

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n) if n else b""
        if len(data) < n:
            raise BadDump("the dump is truncated")
        self.left -= len(data)
        return data

    def drain(self) -> None:
        while self.left:
            self.read(min(self.left, PIECE))


def _headers(f: BinaryIO) -> dict[str, str] | None:
    """The next record's headers; None at the end of the stream."""
    line = f.readline()
    while line in (b"\n", b"\r\n"):
        line = f.readline()
    if not line:
        return None
    out: dict[str, str] = {}
    while line != b"\n":
        if not line.endswith(b"\n"):
            raise BadDump("the dump is truncated")  # EOF inside a header block
        key, sep, value = line.decode("utf-8", "replace").rstrip("\n").partition(": ")
        if not sep:
            raise BadDump(f"the dump has a bad header line {line[:60]!r}")
        out[key] = value
        line = f.readline()
    return out


def _props(data: bytes) -> tuple[dict[str, bytes], set[str]]:
    """Parse a property block: (set properties, deleted ones)."""
    props: dict[str, bytes] = {}
    deleted: set[str] = set()
    pos = 0
    try:
        while True:
            end = data.index(b"\n", pos)
            line = data[pos:end]
            pos = end + 1
            if line == b"PROPS-END":
                return props, deleted
            kind, n = line[:1], int(line[2:])
            key = data[pos:pos + n].decode("utf-8", "replace")
            pos += n + 1
            if kind == b"D":
                deleted.add(key)
                continue
            vline_end = data.index(b"\n", pos)
            vn = int(data[pos + 2:vline_end])
            pos = vline_end + 1
            props[key] = data[pos:pos + vn]
            pos += vn + 1
    except (ValueError, IndexError):
        raise BadDump("the dump has a corrupt property block") from None


def _svn_time(s: bytes | None) -> float:
    if not s:
        return time.time()
    text = s.decode().rstrip("Z")
    main, _, frac = text.partition(".")
    try:
        t = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        raise BadDump(f"bad svn:date {s!r}") from None
    return t + (float("0." + frac) if frac else 0.0)


class _Importer:
    def __init__(self, backend: WcBackend, tmp: Path) -> None:
        self.b = backend
        self.batch = contextlib.ExitStack()
        self.w: Writer | None = None
        self.tmp = tmp
        self.files: dict[str, Entry] = {}
        self.props: dict[str, dict[str, bytes]] = {}
        self.trees: dict[int, dict[str, Entry]] = {}
        self.dirs_added: set[str] = set()
        self.not_carried: Counter[str] = Counter()
        self.examples: dict[str, str] = {}
        self.versions = 0

    def note(self, what: str, example: str) -> None:
        self.not_carried[what] += 1
        self.examples.setdefault(what, example)

    def tree_at(self, rev: int) -> dict[str, Entry]:
        if rev not in self.trees:
            if len(self.trees) > 4:
                self.trees.pop(next(iter(self.trees)))
            self.trees[rev] = self.b.tree(rev)
        return self.trees[rev]

    def base_file(self, entry: Entry | None) -> Path:
        base = self.tmp / "base"
        if entry is None:
            base.write_bytes(b"")
        else:
            self.b.store.get_file(entry.oid, base)
        return base

    def text(self, content: _Limited, delta: bool, base: Entry | None,
             md5: str | None, where: str) -> tuple[str, int]:
        out_path = self.tmp / "text"
        h = hashlib.md5(usedforsecurity=False)
        size = 0
        with open(out_path, "wb") as out:
            def write(b: bytes) -> None:
                nonlocal size
                out.write(b)
                h.update(b)
                size += len(b)

            if delta:
                with open(self.base_file(base), "rb") as src:
                    def read_source(off: int, n: int) -> bytes:
                        src.seek(off)
                        return src.read(n)

                    svndiff.apply(content, read_source, write)  # type: ignore[arg-type]
            else:
                while content.left:
                    write(content.read(min(PIECE, content.left)))
        content.drain()
        if md5 and h.hexdigest() != md5:
            raise BadDump(f"the dump is corrupt: {where} does not match its MD5")
        self.versions += 1
        if self.w is None:
            # One write batch per revision: its objects are durable when it closes,
            # before the revision that names them is committed.
            self.w = self.batch.enter_context(self.b.store.writer())
        return self.w.put_file(out_path), size

    def end_batch(self) -> None:
        self.batch.close()
        self.w = None

    def node(self, f: BinaryIO, h: dict[str, str], rev: int,
             changes: dict[str, Entry | None]) -> None:
        raw_path = h.get("Node-path", "")
        action = h.get("Node-action", "")
        kind = h.get("Node-kind", "")
        where = f"{raw_path}@r{rev}"
        plen = int(h.get("Prop-content-length", 0) or 0)
        tlen = int(h.get("Text-content-length", 0) or 0)
        clen = int(h.get("Content-length", plen + tlen) or 0)
        body = _Limited(f, clen)
        prop_data = body.read(plen) if plen else b""
        path = P.normalise(raw_path) if raw_path.strip("/") else ""
        if not path:
            body.drain()
            if prop_data:
                for k in _props(prop_data)[0]:
                    self.note(f"property {k} on the repository root", where)
            return
        if action in ("delete", "replace"):
            self._remove(path, changes)
        if action == "delete":
            body.drain()
            return
        if action not in ("add", "change", "replace"):
            raise BadDump(f"unknown Node-action {action!r} at {where}")
        src_entry: Entry | None = None
        if "Node-copyfrom-path" in h:
            crev = int(h.get("Node-copyfrom-rev", "0"))
            cpath = P.normalise(h["Node-copyfrom-path"]) if h["Node-copyfrom-path"].strip(
                "/") else ""
            if crev >= rev:
                raise BadDump(f"{where} copies from a later revision r{crev}")
            old = self.tree_at(crev)
            if kind == "dir":
                pre = cpath + "/" if cpath else ""
                for p, e in old.items():
                    if p.startswith(pre):
                        new = f"{path}/{p[len(pre):]}"
                        self._set(Entry(new, e.oid, e.size, e.mode, e.mtime), changes)
                        if p in self.props:
                            self.props[new] = dict(self.props[p])
            else:
                src_entry = old.get(cpath)
                if src_entry is None:
                    raise BadDump(f"{where} copies {cpath}@r{crev}, which does not exist")
                if cpath in self.props:
                    self.props[path] = dict(self.props[cpath])
        if kind == "dir" or (kind == "" and path not in self.files and src_entry is None
                             and tlen == 0):
            self.dirs_added.add(path)
            if prop_data:
                for k in _props(prop_data)[0]:
                    self.note(f"folder property {k}", where)
            body.drain()
            return
        current = src_entry or (self.files.get(path) if action == "change" else None)
        props = self.props.setdefault(path, {})
        if prop_data:
            new_props, deleted = _props(prop_data)
            if h.get("Prop-delta") != "true":
                props.clear()
            for k in deleted:
                props.pop(k, None)
            props.update(new_props)
            for k in new_props:
                if k not in CARRIED:
                    self.note(f"file property {k}", where)
        mode = 0o755 if "svn:executable" in props else 0o644
        if "Text-content-length" in h:
            delta = h.get("Text-delta") == "true"
            oid, size = self.text(body, delta, current if delta else None,
                                  h.get("Text-content-md5"), where)
        elif current is not None:
            oid, size = current.oid, current.size
        elif action == "add":
            oid, size = self.text(body, False, None, None, where)  # an empty file
        else:
            raise BadDump(f"{where} changes a file that does not exist")
        body.drain()
        self._set(Entry(path, oid, size, mode, 0.0), changes)

    def _set(self, e: Entry, changes: dict[str, Entry | None]) -> None:
        self.files[e.path] = e
        changes[e.path] = e

    def _remove(self, path: str, changes: dict[str, Entry | None]) -> None:
        pre = path + "/"
        for p in [p for p in self.files if p == path or p.startswith(pre)]:
            del self.files[p]
            self.props.pop(p, None)
            changes[p] = None


def import_dump(f: BinaryIO, backend: WcBackend,
                progress: Progress = NO_PROGRESS) -> dict[str, Any]:
    if backend.head() != 0:
        raise Conflict(f"project {backend.project!r} is not empty: svn-import fills an empty "
                       "project created beforehand")
    try:
        first = _headers(f)
    except BadDump:
        first = None
    if not first or "SVN-fs-dump-format-version" not in first:
        raise BadDump("not a Subversion dump (no SVN-fs-dump-format-version header)")
    if first["SVN-fs-dump-format-version"] not in ("2", "3"):
        raise BadDump(f"dump format {first['SVN-fs-dump-format-version']} is not supported "
                      "(2 and 3 are)")
    revs = 0
    first_rev = last_rev = 0
    with tempfile.TemporaryDirectory(prefix="vstudio-svn-") as tmp:
        imp = _Importer(backend, Path(tmp))
        pending: tuple[int, dict[str, bytes]] | None = None
        changes: dict[str, Entry | None] = {}

        def flush() -> None:
            nonlocal revs, first_rev, last_rev
            if pending is None or pending[0] == 0:
                return
            rev, rprops = pending
            for k in rprops:
                if k not in REV_PROPS:
                    imp.note(f"revision property {k}", f"r{rev}")
            ch = [Change(p, ANY, e) for p, e in changes.items()]
            imp.end_batch()
            backend.import_commit(
                rev, rprops.get("svn:author", b"").decode("utf-8", "replace") or "(no author)",
                _svn_time(rprops.get("svn:date")),
                rprops.get("svn:log", b"").decode("utf-8", "replace"), ch)
            revs += 1
            first_rev = first_rev or rev
            last_rev = rev
            changes.clear()
            progress.advance(1)

        progress.start(0, "import")
        while True:
            h = _headers(f)
            if h is None:
                break
            if "Revision-number" in h:
                flush()
                rev = int(h["Revision-number"])
                plen = int(h.get("Prop-content-length", 0) or 0)
                body = _Limited(f, int(h.get("Content-length", plen) or 0))
                rprops = _props(body.read(plen))[0] if plen else {}
                body.drain()
                pending = (rev, rprops)
            elif "Node-path" in h:
                if pending is None:
                    raise BadDump("the dump has a node before any revision")
                imp.node(f, h, pending[0], changes)
            elif "UUID" in h:
                continue
            else:
                raise BadDump(f"the dump has an unknown record {sorted(h)[:3]}")
        flush()
        progress.done()
    rules = sorted(_escape(p) for p, pr in imp.props.items()
                   if "svn:needs-lock" in pr and p in imp.files)
    if rules:
        backend.add_lock_rules(rules)
    have_dirs = {a for p in imp.files for a in P.ancestors(p)}
    empty = sorted(imp.dirs_added - have_dirs)
    if empty:
        imp.note("empty folder", empty[0])
    not_carried = [f"{what}: {n} time(s), e.g. {imp.examples[what]}"
                   for what, n in sorted(imp.not_carried.items())]
    return {"revisions": revs, "first": first_rev, "last": last_rev, "files": imp.versions,
            "lock_rules": rules, "not_carried": not_carried}


def _escape(path: str) -> str:
    """A glob that matches exactly ``path``."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in path)

