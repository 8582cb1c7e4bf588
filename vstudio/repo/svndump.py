"""Reading a Subversion dump stream record by record, the way ``svnadmin load`` does.

A record is a header block (``Key: value`` lines up to a blank line) and a content block
of ``Content-length`` bytes: a property block, then a text. Like svnadmin, a property
block is read line by line up to ``PROPS-END`` (its declared length only bounds the
search), the text follows it, and ``Content-length`` minus the declared lengths is
skipped after the text: a dump whose property lengths are wrong in both headers alike
(hand-edited properties) loads as svnadmin loads it. Any record kind may
come in any order: a second ``SVN-fs-dump-format-version`` (concatenated dumps) or a
``UUID`` after revisions are accepted. Every error names the byte offset of its record.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from vstudio.errors import BadInput

PIECE = 1 << 20


class BadDump(BadInput):
    """The Subversion dump is corrupt or truncated."""


class TextCheck:
    """A text against its digest in the dump: the SHA-1 when the dump gives one, else
    the MD5. One digest finds a corrupt text (SHA-1 the more surely); hashing the text
    once is half the work of a .blend's import that is not the store's."""

    def __init__(self, md5: str, sha1: str) -> None:
        self.name, self.want = ("SHA-1", sha1) if sha1 else ("MD5", md5)
        self.h: Any = (hashlib.sha1(usedforsecurity=False) if sha1 else
                       hashlib.md5(usedforsecurity=False) if md5 else None)

    def update(self, data: bytes | memoryview) -> None:
        if self.h is not None:
            self.h.update(data)

    def check(self) -> None:
        if self.h is not None and self.h.hexdigest() != self.want:
            raise BadDump(f"the text does not match its {self.name} (the dump is corrupt)")


class Reader:
    """A dump stream that counts the bytes read (a pipe cannot ``tell()``).

    From a regular file, texts need not pass through: ``skip`` seeks over them and
    ``start`` (the file offset of ``pos`` 0) places them in the file, for whoever reads
    them from there (the import's helper processes)."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.pos = f, 0
        self.size = -1  # of the file from ``start`` on; -1: a stream, read through
        self.start = 0
        try:
            st = os.fstat(f.fileno())
            if stat.S_ISREG(st.st_mode):
                self.start = f.tell()
                self.size = st.st_size - self.start
        except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is an OSError
            pass

    def readline(self) -> bytes:
        line = self.f.readline()
        self.pos += len(line)
        return line

    def exact(self, n: int) -> bytes:
        data = self.f.read(n) if n else b""
        while len(data) < n:  # pipes may return less than asked
            more = self.f.read(n - len(data))
            if not more:
                raise BadDump("the dump is truncated")
            data += more
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        if self.size < 0:
            while n:
                n -= len(self.exact(min(n, PIECE)))
            return
        if self.pos + n > self.size:
            raise BadDump("the dump is truncated")
        self.f.seek(n, os.SEEK_CUR)
        self.pos += n

    def pread(self, n: int, pos: int) -> bytes:
        """``n`` bytes at ``pos`` of a regular file, wherever the reading stands."""
        return os.pread(self.f.fileno(), n, self.start + pos)


class Text:
    """The text of a node record: at most ``left`` bytes, read in pieces."""

    def __init__(self, r: Reader, n: int) -> None:
        self.r, self.left = r, n
        self.offset = r.pos  # of its first byte in the stream

    def in_file(self) -> tuple[int, int] | None:
        """(file offset, length) of the whole text when it is unread in a regular file
        (None when the file ends before the text does: reading it says so)."""
        if self.r.size < 0 or self.r.pos != self.offset or self.offset + self.left > self.r.size:
            return None
        return self.r.start + self.offset, self.left

    def head(self, n: int) -> bytes:
        """The first ``n`` bytes of an unread text in a regular file, leaving it unread."""
        return self.r.pread(min(n, self.left), self.offset)

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.r.exact(n)
        self.left -= n
        return data

    def drain(self) -> None:
        self.r.skip(self.left)
        self.left = 0


@dataclass
class Record:
    headers: dict[str, str]
    offset: int  # of the record's first header line
    props: dict[str, bytes] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    has_props: bool = False
    text: Text | None = None
    rest: int = 0  # bytes of the content block after the text

    def get(self, key: str, default: str = "") -> str:
        return self.headers.get(key, default)

    def finish(self, r: Reader) -> None:
        """Skip what the caller did not read of the record."""
        if self.text is not None:
            self.text.drain()
        if self.rest:
            r.skip(self.rest)
            self.rest = 0


def is_file(f: BinaryIO) -> bool:
    """A dump file is read at once: its revisions may wait in a batch. A pipe (svn-sync,
    stdin) may stall between revisions: each one is committed as soon as it is complete."""
    try:
        return stat.S_ISREG(os.fstat(f.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is an OSError
        return False


def file_name(f: BinaryIO) -> str | None:
    """A name by which other processes open the dump file ``f`` (None: none known)."""
    name = getattr(f, "name", None)
    try:
        st = os.fstat(f.fileno())
        if isinstance(name, str) and os.path.samestat(os.stat(name), st):
            return name
        fd = f"/proc/{os.getpid()}/fd/{f.fileno()}"  # stdin redirected from a file
        return fd if os.path.samestat(os.stat(fd), st) else None
    except (OSError, ValueError, AttributeError):
        return None


def number(h: dict[str, str], key: str, default: int = 0) -> int:
    value = h.get(key)
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise BadDump(f"bad {key} header {value[:40]!r}") from None
    if n < 0:
        raise BadDump(f"bad {key} header {value[:40]!r}")
    return n


def _headers(r: Reader) -> tuple[dict[str, str], int] | None:
    line = r.readline()
    while line in (b"\n", b"\r\n"):
        line = r.readline()
    if not line:
        return None
    start = r.pos - len(line)
    out: dict[str, str] = {}
    while line != b"\n":
        if not line.endswith(b"\n"):
            raise BadDump("the dump is truncated")  # EOF inside a header block
        key, sep, value = line.decode("utf-8", "replace").rstrip("\n").partition(": ")
        if not sep:
            raise BadDump(f"bad header line {line[:60].decode('utf-8', 'replace')!r}")
        out[key] = value
        line = r.readline()
    return out, start


def _key_or_value(r: Reader, line: bytes) -> bytes:
    try:
        n = int(line[2:])
    except ValueError:
        raise BadDump("corrupt property block (bad length line "
                      f"{line[:40].decode('utf-8', 'replace')!r})") from None
    data = r.exact(n + 1)
    if data[-1:] != b"\n":
        raise BadDump("corrupt property block (a key or value does not end with a newline)")
    return data[:-1]


def read_props(r: Reader, declared: int, rec: Record) -> int:
    """Read a property block into ``rec``; return the bytes it really took."""
    start = r.pos
    while r.pos - start != declared:
        line = r.readline()
        if not line.endswith(b"\n"):
            raise BadDump("incomplete or unterminated property block")
        line = line[:-1]
        if line == b"PROPS-END":
            break
        if line[:2] == b"K ":
            key = _key_or_value(r, line).decode("utf-8", "replace")
            vline = r.readline()
            if vline[:2] != b"V " or not vline.endswith(b"\n"):
                raise BadDump(f"corrupt property block (no value for {key!r})")
            rec.props[key] = _key_or_value(r, vline[:-1])
            rec.deleted.discard(key)
        elif line[:2] == b"D ":
            key = _key_or_value(r, line).decode("utf-8", "replace")
            rec.deleted.add(key)
            rec.props.pop(key, None)
        else:
            raise BadDump("corrupt property block (a line is neither K, V, D nor PROPS-END)")
    return r.pos - start


def next_record(r: Reader) -> Record | None:
    """The next record with its properties read; its text is left to the caller."""
    got = _headers(r)
    if got is None:
        return None
    h, offset = got
    rec = Record(h, offset)
    try:
        used = 0
        if "Prop-content-length" in h:
            rec.has_props = True
            # Like svnadmin: the block ends at PROPS-END, but the rest of the record is
            # measured with the declared length (both headers may be off alike).
            used = number(h, "Prop-content-length")
            read_props(r, used, rec)
        if "Text-content-length" in h:
            tlen = number(h, "Text-content-length")
            rec.text = Text(r, tlen)
            used += tlen
        if "Content-length" in h:
            rec.rest = number(h, "Content-length") - used
            if rec.rest < 0:
                raise BadDump("the property and text blocks are longer than the record's "
                              "Content-length")
    except BadDump as e:  # where it happened, for the caller's message
        e.context.update(offset=offset, path=h.get("Node-path"),
                         rev=h.get("Revision-number", "").strip() or None)
        raise
    return rec
