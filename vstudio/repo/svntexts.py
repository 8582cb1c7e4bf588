"""The file texts of ``svn-import``: stored as a working copy's commit stores them.

A small text is stored from memory unless the store does better with a file: one a
format-aware chunker knows (a .blend, even compressed), or a new version of a file big
enough for the store's delta against its previous version. With helper processes
(``svnworkers``), .blend texts are stored there, in parallel; their ids are placeholders
until ``resolve``. While a write batch is open its texts stay at hand (a later revision's
svndiff may apply to one of them), and texts seen before (same SHA-1, as svnadmin's
rep-sharing finds them) are not stored again.

From a dump file (``dump`` set), a format-aware text goes to a helper as where it lies in
the file: the helper reads it there and checks its digests; only its first bytes (to
recognise the format) are read here. So does an svndiff delta (``--deltas`` dumps) whose
base is a helper's text, or that makes a format-aware text from nothing: the helper
applies it on the base file it wrote itself (jobs of one helper run in order) and the
result's size is known when it is resolved. A helper's files stay until its job is done.
A digest that does not match (or a corrupt delta) fails the helper's job; ``resolve``
then raises it with the text's node and record offset.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from vstudio.repo import svndiff
from vstudio.repo.api import Entry
from vstudio.repo.svndump import PIECE, BadDump, Record, Text, TextCheck
from vstudio.repo.svnworkers import BlendWorkers
from vstudio.store.api import ObjectStore, Writer
from vstudio.store.chunking import HEAD_BYTES, Chunker, chunkers
from vstudio.store.delta import MIN_SIZE as DELTA_MIN

# A batch's texts in the helpers: placeholder -> job, and the helpers' syncs after them
Batch = tuple[dict[str, Future[Any]], list[Future[None]]]  # (str or (str, size))
PLACEHOLDER = "(being stored)#"  # the id of a text a helper process is storing
SMALL_TEXT = 1 << 20  # texts up to this size are stored from memory
HEAD_DELTA = 256 << 10  # of a delta, read to find how its text starts (its first window)


class Texts:
    def __init__(self, store: ObjectStore, tmp: Path) -> None:
        self.store = store
        self.tmp = tmp
        self.batch = contextlib.ExitStack()
        self.w: Writer | None = None
        self.in_writer: set[str] = set()  # ids stored in the open write batch
        # of the open batch: delta bases (in tmp, in memory, or where they lie in the dump)
        self.kept_texts: dict[str, Path | bytes | tuple[int, int]] = {}
        self.kept = 0  # texts kept in tmp, numbered
        self.bytes = 0  # of the texts in the open batch
        self.versions = 0
        self.seen: dict[str, tuple[str, int]] = {}  # SHA-1 of a text -> (id, size)
        self.workers: BlendWorkers | None = None
        self.futures: dict[str, Future[Any]] = {}
        self.resolved: dict[str, str] = {}
        self.dump: str | None = None  # a name of the dump file helpers can open
        self.origin: dict[str, tuple[int, str]] = {}  # placeholder -> (record offset, path)
        self.sizes: dict[str, int] = {}  # placeholder of a delta's result -> its size
        # placeholder -> the files its helper job reads or writes: kept until it is done
        self.inputs: dict[str, list[Path]] = {}

    def text(self, rec: Record, base: Entry | None,
             previous: Entry | None) -> tuple[str, int]:
        """Store a node's text (``base``: what a delta applies to); (id, size).

        Texts seen before in this import (same SHA-1, as svnadmin's rep-sharing finds
        them) are not stored again. A small text stays in memory unless the store does
        better with a file: one a format-aware chunker knows (a .blend, even compressed),
        or a new version of a file big enough for the store's delta against ``previous``.
        """
        content = rec.text or _EMPTY
        sha1 = rec.get("Text-content-sha1") or None
        if sha1 in self.seen:
            content.drain()
            return self.seen[sha1]
        delta = rec.get("Text-delta") == "true"
        helper = self._delta_to_helper(rec, content, base) if delta else \
            self._to_helper(rec, content)
        if helper is not None:
            got = helper
        elif not delta and content.left <= SMALL_TEXT:
            data = content.read()
            check = _check(rec)
            check.update(data)
            check.check()
            if _as_file(data, previous):
                out_path = self.tmp / "text"
                out_path.write_bytes(data)
                got = self._put_file(out_path, previous, rec.get("Node-path")), len(data)
            else:
                got = self.writer().put_bytes(data), len(data)
                self.in_writer.add(got[0])
            self.kept_texts.setdefault(got[0], data)
        else:
            got = self._text_file(rec, content, base if delta else None, previous)
        self.versions += 1
        self.bytes += got[1]
        if sha1:
            self.seen[sha1] = got
        return got

    def _to_helper(self, rec: Record, content: Text | _Empty) -> tuple[str, int] | None:
        """A format-aware text of a dump file to a helper, as its place in the file; None
        when it is not one (or there are no helpers)."""
        if self.workers is None or self.dump is None or not isinstance(content, Text):
            return None
        where = content.in_file()
        if where is None or not where[1] or not _known_format(content.head(HEAD_BYTES)):
            return None
        self.kept += 1
        oid = f"{PLACEHOLDER}{self.kept}"
        key = rec.get("Node-path")
        self.futures[oid] = self.workers.submit_range(
            self.dump, *where, rec.get("Text-content-md5"), rec.get("Text-content-sha1"), key,
            self.tmp / f"t{self.kept}")
        self.origin[oid] = (rec.offset, key)
        self.kept_texts[oid] = where
        content.drain()
        return oid, where[1]

    def _delta_to_helper(self, rec: Record, content: Text | _Empty, base: Entry | None
                         ) -> tuple[str, int] | None:
        """A delta of a dump file to a helper, which applies it and stores the result,
        when the result is format-aware (its base was, or a delta against nothing starts
        like such a file); None: applied here."""
        if self.workers is None or self.dump is None or not isinstance(content, Text):
            return None
        where = content.in_file()
        if where is None or not where[1]:
            return None
        base = self.real(base)
        base_file: Path | None = None
        base_key = None
        if base is not None and base.oid.startswith(PLACEHOLDER):
            kept = self.kept_texts[base.oid]
            if isinstance(kept, Path):  # written by (or for) that helper, in its order
                base_file, base_key = kept, self.origin[base.oid][1]
            else:
                base_file = self._own_base(base)
        elif base is None or not base.size:
            if not _known_format(svndiff.head(content.head(HEAD_DELTA), HEAD_BYTES)):
                return None
        else:  # a text stored before, or kept here: the helper's if it is format-aware
            base_file = self._own_base(base)
            if not _format_aware(base_file):
                return None
        self.kept += 1
        oid = f"{PLACEHOLDER}{self.kept}"
        key = rec.get("Node-path")
        out = self.tmp / f"t{self.kept}"
        self.futures[oid] = self.workers.submit_delta(
            self.dump, *where, base_file, rec.get("Text-content-md5"),
            rec.get("Text-content-sha1"), key, out, base_key)
        self.origin[oid] = (rec.offset, key)
        self.kept_texts[oid] = out
        self.inputs[oid] = [out] + ([base_file] if base_file is not None else [])
        content.drain()
        self.bytes += where[1]  # (the text's size is known when the helper is done)
        return oid, 0

    def _own_base(self, base: Entry) -> Path:
        """``base`` in a file of its own (a helper job reads it later): a kept text's
        file (it stays while the job needs it), else a new copy."""
        path = self._base_file(base)
        return path if path != self.tmp / "base" else path.rename(self.tmp / f"b{self.kept}")

    def _text_file(self, rec: Record, content: Text | _Empty, base: Entry | None,
                   previous: Entry | None) -> tuple[str, int]:
        out_path = self.tmp / "text"
        check = _check(rec)
        size = 0
        with open(out_path, "wb") as out:
            def write(b: bytes) -> None:
                nonlocal size
                out.write(b)
                check.update(b)
                size += len(b)

            if rec.get("Text-delta") == "true":
                with open(self._base_file(base), "rb") as src:
                    def read_source(off: int, n: int) -> bytes:
                        src.seek(off)
                        return src.read(n)

                    svndiff.apply(content, read_source, write)  # type: ignore[arg-type]
            else:
                while content.left:
                    write(content.read(PIECE))
        content.drain()
        check.check()
        return self._put_file(out_path, previous, rec.get("Node-path")), size

    def _put_file(self, path: Path, previous: Entry | None, key: str) -> str:
        """As a working copy's commit does: the store may delta it against its base.

        The store reads that base from the store, not from the open write batch: a base
        in it is made durable first (a new write batch goes on). A
        .blend goes to a helper process when there are some: its id is a placeholder
        until the batch is committed."""
        if self.workers is not None and _format_aware(path):
            self.kept += 1
            kept = self.tmp / f"t{self.kept}"
            path.rename(kept)
            oid = f"{PLACEHOLDER}{self.kept}"
            self.futures[oid] = self.workers.submit(kept, key)
            self.kept_texts[oid] = kept
            self.inputs[oid] = [kept]
            return oid
        if previous is not None and previous.oid in self.in_writer:
            self.batch.close()  # durable now; its revisions are committed with the batch
            self.w = None
        w: Any = self.writer()
        oid = str(w.put_file(path, previous=previous.oid) if previous is not None
                  else w.put_file(path))
        self.in_writer.add(oid)
        if oid not in self.kept_texts:  # kept while the batch is open: a delta's base
            self.kept += 1
            kept = self.tmp / f"t{self.kept}"
            path.rename(kept)
            self.kept_texts[oid] = kept
        return oid

    def seal(self) -> Batch:
        """The helpers' jobs of the batch so far, each helper told to make them durable."""
        futures, self.futures = self.futures, {}
        syncs = self.workers.sync_later() if self.workers is not None and futures else []
        self.bytes = 0
        return futures, syncs

    def resolve(self, batch: Batch | None = None) -> dict[str, str]:
        """Wait for the helpers' texts of ``batch`` (default: all so far) to be durable;
        placeholder -> id, of all so far (``real``)."""
        futures, syncs = batch if batch is not None else self.seal()
        failed: list[tuple[int, str, BadDump]] = []
        for ph, f in futures.items():
            try:
                got = f.result()
            except BadDump as e:  # a helper's digest check
                failed.append((*self.origin[ph], e))
                continue
            if isinstance(got, tuple):  # a delta's result: its size is known now
                got, self.sizes[ph] = got
            self.resolved[ph] = got
        for sync in syncs:  # durable before the revisions naming them commit
            sync.result()
        if futures:
            self.seen = {k: (self.resolved.get(o, o), self.sizes.get(o, n))
                         for k, (o, n) in self.seen.items()}
        if failed:  # the first in the dump; the texts before it are stored
            offset, path, first = min(failed, key=lambda x: x[0])
            first.context.update(offset=offset, path=path)
            raise first
        return self.resolved

    def real(self, e: Entry | None) -> Entry | None:
        """``e`` with its id in place of a placeholder resolved by now."""
        if e is None or e.oid not in self.resolved:
            return e
        return Entry(e.path, self.resolved[e.oid], self.sizes.get(e.oid, e.size), e.mode,
                     e.mtime)

    def writer(self) -> Writer:
        if self.w is None:
            self.in_writer = set()
            # Its objects are durable when it closes, before the revisions naming them
            # are committed.
            self.w = self.batch.enter_context(self.store.writer())
        return self.w

    def _base_file(self, entry: Entry | None) -> Path:
        base = self.tmp / "base"
        kept = self.kept_texts.get(entry.oid) if entry is not None else None
        if isinstance(kept, Path):
            return kept
        if isinstance(kept, tuple):  # a helper's text: read where it lies in the dump
            with open(str(self.dump), "rb") as f:
                base.write_bytes(os.pread(f.fileno(), kept[1], kept[0]))
        elif isinstance(kept, bytes) or entry is None:
            base.write_bytes(kept or b"")
        else:
            self.store.get_file(entry.oid, base)
        return base

    def end_batch(self) -> None:
        """Close the write batch (its texts are durable) and forget the kept texts, but
        the helpers' not stored yet (a batch read since: their files and delta bases)."""
        self.batch.close()
        self.w = None
        busy = {f for ph, files in self.inputs.items() if ph not in self.resolved
                for f in files}
        for ph in [ph for ph in self.inputs if ph in self.resolved]:
            self.inputs[ph] = [f for f in self.inputs[ph] if f in busy]
            if not self.inputs[ph]:
                del self.inputs[ph]
        for oid, t in list(self.kept_texts.items()):
            if oid.startswith(PLACEHOLDER) and oid not in self.resolved:
                continue  # its job has not run yet, or is a later batch's delta base
            if isinstance(t, Path) and t not in busy:
                t.unlink(missing_ok=True)
            del self.kept_texts[oid]


class _Empty:
    left = 0

    def read(self, n: int = -1) -> bytes:
        return b""

    def drain(self) -> None:
        return None


_EMPTY: Any = _Empty()


def _check(rec: Record) -> TextCheck:
    return TextCheck(rec.get("Text-content-md5"), rec.get("Text-content-sha1"))


def _format_aware(path: Path) -> bool:
    with open(path, "rb") as f:
        return _known_format(f.read(HEAD_BYTES))


def _known_format(head: bytes) -> bool:
    return any(_detects(c, head) for c in chunkers())


def _as_file(data: bytes, previous: Entry | None) -> bool:
    """Whether the store stores ``data`` better from a file than from memory."""
    if previous is not None and len(data) >= DELTA_MIN:
        return True
    return _known_format(data[:HEAD_BYTES])


def _detects(chunker: Chunker, head: bytes) -> bool:
    try:
        return bool(chunker.detect(head))
    except Exception:  # a plug-in's bug: the store's own fallback applies
        return False
