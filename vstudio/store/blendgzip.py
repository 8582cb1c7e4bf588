"""gzip-compressed .blend files (Blender 2.80 to 2.93 "Compress"): decode, re-encode exactly.

Those versions wrote compressed saves with zlib's ``gzopen(path, "wb1")``: one gzip
member, a 10-byte header without a file name, a deflate stream at level 1, then CRC-32 and
size.  Deflating the same bytes with the same zlib parameters gives the same stream, so,
as for zstd saves, the store keeps the decompressed block stream and compresses again on
read; the put checks the result is byte-identical (else the file is stored as it is).
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from vstudio.errors import BadInput

log = logging.getLogger("vstudio.store")

GZIP_MAGIC = b"\x1f\x8b\x08"
MEM_LEVEL = 8  # zlib's default, what gzopen uses
MAX_SIZE = 2 << 30


class GzipFormatError(BadInput):
    """Not a gzip stream this module can rebuild exactly."""


@dataclass
class Decoded:
    stream: bytes
    level: int
    header: bytes

    def params(self) -> dict[str, object]:
        # "zlib": deflate output is the same only for the same zlib (checked on read).
        return {"level": self.level, "header": self.header.hex(), "zlib": zlib.ZLIB_VERSION}


def _levels(xfl: int) -> list[int]:
    """Levels to try, most likely first: the header's XFL byte hints at the level."""
    if xfl == 4:
        return [1]
    if xfl == 2:
        return [9]
    return [6, 5, 4, 3, 2, 7, 8]


def _deflate(data: bytes, level: int) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, MEM_LEVEL)
    return c.compress(data) + c.flush()


def decode(data: bytes) -> Decoded:
    """Split a gzip file into its decompressed bytes and how to compress them back."""
    if len(data) < 18 or not data.startswith(GZIP_MAGIC):
        raise GzipFormatError("not a gzip stream")
    if data[3] != 0:
        raise GzipFormatError("gzip header with optional fields: not a Blender save")
    d = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        plain = d.decompress(data[10:], MAX_SIZE)
    except zlib.error as e:
        raise GzipFormatError(f"gzip stream does not decompress: {e}") from None
    if not d.eof or d.unconsumed_tail:
        raise GzipFormatError("gzip stream is truncated or too large")
    trailer = d.unused_data
    if len(trailer) != 8 or struct.unpack("<II", trailer) != (zlib.crc32(plain),
                                                              len(plain) & 0xFFFFFFFF):
        raise GzipFormatError("gzip trailer does not match (or several members)")
    body = data[10:len(data) - 8]
    for level in _levels(data[8]):
        if _deflate(plain, level) == body:
            return Decoded(plain, level, data[:10])
    raise GzipFormatError("deflate stream not reproduced by this zlib")


def encode(params: dict[str, object], stream: Iterator[bytes]) -> Iterator[bytes]:
    """The gzip file again, from ``params`` and the decompressed stream's chunks."""
    if params.get("zlib") != zlib.ZLIB_VERSION:
        log.warning("re-encoding a gzip .blend stored with zlib %s using %s",
                    params.get("zlib"), zlib.ZLIB_VERSION)
    yield bytes.fromhex(str(params["header"]))
    c = zlib.compressobj(int(params["level"]),  # type: ignore[call-overload]
                         zlib.DEFLATED, -zlib.MAX_WBITS, MEM_LEVEL)
    crc = size = 0
    for chunk in stream:
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
        out = c.compress(chunk)
        if out:
            yield out
    yield c.flush() + struct.pack("<II", crc, size & 0xFFFFFFFF)
