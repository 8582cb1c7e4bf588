"""Apply Subversion's svndiff deltas (versions 0, 1 = zlib, 2 = lz4), window by window.

Format (Subversion's ``notes/svndiff``): ``SVN`` + a version byte, then windows of
source-view offset, source-view length, target-view length, instruction length and
new-data length (7-bit big-endian varints), the instructions and the new data. Version 1
and 2 sections start with their decoded length and are zlib / lz4-block compressed when
that made them smaller. Instructions copy from the source view, from the target view so
far (overlapping copies repeat a pattern), or from new data.
"""

from __future__ import annotations

import contextlib
import io
import zlib
from collections.abc import Callable
from typing import BinaryIO

from vstudio.errors import BadInput


class BadDelta(BadInput):
    """The dump holds a corrupt svndiff delta."""


def _varint(buf: bytes | BinaryIO, pos: int | None = None) -> tuple[int, int]:
    """Read a varint from bytes at ``pos`` (returns value, new pos) or from a stream."""
    n = 0
    for _ in range(10):
        if pos is None:
            b = buf.read(1)  # type: ignore[union-attr]
            if not b:
                raise BadDelta("truncated svndiff varint")
            c = b[0]
        else:
            if pos >= len(buf):  # type: ignore[arg-type]
                raise BadDelta("truncated svndiff varint")
            c = buf[pos]  # type: ignore[index]
            pos += 1
        n = (n << 7) | (c & 0x7F)
        if not c & 0x80:
            return n, (pos if pos is not None else -1)
    raise BadDelta("svndiff varint too long")


def lz4_block(src: bytes, size: int) -> bytes:
    """Decompress one LZ4 block (no frame) of known decoded ``size``."""
    dst = bytearray()
    i, n = 0, len(src)
    try:
        while i < n:
            token = src[i]
            i += 1
            lit = token >> 4
            if lit == 15:
                while True:
                    b = src[i]
                    i += 1
                    lit += b
                    if b != 255:
                        break
            dst += src[i:i + lit]
            i += lit
            if i >= n:
                break
            off = src[i] | (src[i + 1] << 8)
            i += 2
            ml = token & 15
            if ml == 15:
                while True:
                    b = src[i]
                    i += 1
                    ml += b
                    if b != 255:
                        break
            ml += 4
            start = len(dst) - off
            if off <= 0 or start < 0:
                raise BadDelta("bad lz4 offset in svndiff2 data")
            if off >= ml:
                dst += dst[start:start + ml]
            else:
                for k in range(ml):
                    dst.append(dst[start + k])
    except IndexError:
        raise BadDelta("truncated lz4 data in svndiff2") from None
    if len(dst) != size:
        raise BadDelta("lz4 data decodes to the wrong size")
    return bytes(dst)


def _section(data: bytes, version: int) -> bytes:
    if version == 0:
        return data
    size, pos = _varint(data, 0)
    body = data[pos:]
    if len(body) == size:
        return body  # stored raw: compressing did not help
    if version == 1:
        try:
            out = zlib.decompress(body)
        except zlib.error as e:
            raise BadDelta(f"bad zlib data in svndiff1: {e}") from None
    else:
        out = lz4_block(body, size)
    if len(out) != size:
        raise BadDelta("svndiff section decodes to the wrong size")
    return out


def apply(delta: BinaryIO, read_source: Callable[[int, int], bytes],
          write: Callable[[bytes], None]) -> None:
    """Read a whole svndiff from ``delta``; ``read_source(offset, length)`` reads the base."""
    head = delta.read(4)
    if len(head) < 4 or head[:3] != b"SVN" or head[3] > 2:
        raise BadDelta("not an svndiff delta (or an unknown version)")
    version = head[3]
    while True:
        first = delta.read(1)
        if not first:
            return
        rest = _read_window_header(delta, first)
        s_off, s_len, t_len, i_len, n_len = rest
        ins = _section(_exact(delta, i_len), version)
        new = _section(_exact(delta, n_len), version)
        src = read_source(s_off, s_len) if s_len else b""
        if len(src) != s_len:
            raise BadDelta("delta source view is outside the base text")
        write(_window(src, ins, new, t_len))


def _exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise BadDelta("truncated svndiff window")
    return data


def _read_window_header(f: BinaryIO, first: bytes) -> tuple[int, int, int, int, int]:
    class _Prefixed:
        def __init__(self) -> None:
            self.pending = first

        def read(self, n: int) -> bytes:
            if self.pending:
                b, self.pending = self.pending, b""
                return b
            return f.read(n)

    src = _Prefixed()
    vals = [_varint(src)[0] for _ in range(5)]  # type: ignore[arg-type]
    return vals[0], vals[1], vals[2], vals[3], vals[4]


def _window(src: bytes, ins: bytes, new: bytes, t_len: int) -> bytes:
    out = bytearray()
    pos = new_pos = 0
    while pos < len(ins):
        c = ins[pos]
        pos += 1
        action, length = c >> 6, c & 0x3F
        if length == 0:
            length, pos = _varint(ins, pos)
        if action == 0:
            off, pos = _varint(ins, pos)
            if off + length > len(src):
                raise BadDelta("delta copies past its source view")
            out += src[off:off + length]
        elif action == 1:
            off, pos = _varint(ins, pos)
            if off >= len(out):
                raise BadDelta("delta copies from target bytes not written yet")
            if off + length <= len(out):
                out += out[off:off + length]
            else:
                for k in range(length):
                    out.append(out[off + k])
        elif action == 2:
            if new_pos + length > len(new):
                raise BadDelta("delta uses more new data than it carries")
            out += new[new_pos:new_pos + length]
            new_pos += length
        else:
            raise BadDelta("bad svndiff instruction")
    if len(out) != t_len:
        raise BadDelta("delta window has the wrong length")
    return bytes(out)


class _Enough(Exception):
    """Raised to stop ``apply`` once ``head`` has its bytes."""


def head(prefix: bytes, n: int) -> bytes:
    """The first bytes (up to ``n``) of the text a delta against an empty base makes,
    from the delta's first bytes ``prefix`` (its first window, if whole, is enough)."""
    out = bytearray()

    def write(data: bytes) -> None:
        out.extend(data)
        if len(out) >= n:
            raise _Enough

    # stopped when it has enough, or where the prefix ends inside a window
    with contextlib.suppress(_Enough, BadDelta):
        apply(io.BytesIO(prefix), lambda _off, _n: b"", write)
    return bytes(out[:n])
