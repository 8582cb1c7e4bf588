"""gzip .blend saves (Blender 2.80-2.93): decode and re-deflate exactly, or refuse."""

from __future__ import annotations

import gzip
import struct
import zlib

import pytest

from vstudio.store import blendgzip as g
from vstudio.store.blendgzip import GzipFormatError

DATA = b"BLENDER-v293" + b"".join(struct.pack("<I", i * 2654435761 % 2**32) for i in range(30_000))


def gzopen(data: bytes, level: int) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


@pytest.mark.parametrize("level", [1, 6, 9])
def test_round_trip_at_blender_and_other_levels(level: int) -> None:
    raw = gzopen(DATA, level)
    dec = g.decode(raw)
    assert dec.stream == DATA and dec.level == level
    chunks = iter([DATA[i:i + 777] for i in range(0, len(DATA), 777)])
    assert b"".join(g.encode(dec.params(), chunks)) == raw


@pytest.mark.parametrize("bad", [
    b"",
    gzopen(DATA, 1)[:-3],  # truncated trailer
    gzopen(DATA, 1)[:-8] + b"\0" * 8,  # wrong CRC
    gzopen(DATA, 1) + gzopen(b"second member", 1),  # two members
    gzip.compress(DATA, mtime=0)[:3] + b"\x08" + gzip.compress(DATA, mtime=0)[4:],  # FNAME flag
    gzopen(DATA, 1)[:100],  # cut inside the deflate stream
])
def test_bad_streams_are_refused(bad: bytes) -> None:
    with pytest.raises(GzipFormatError):
        g.decode(bad)
