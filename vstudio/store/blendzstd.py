"""Blender's zstd "Compress" saves: decode to the block stream, re-encode byte for byte.

Blender 3.0+ writes a compressed .blend as independent zstd frames, each made by
``ZSTD_compress(level 3)`` over the bytes of one flush of its write buffer, followed by a
skippable frame holding the zstd *seekable format* seek table (per frame: compressed size,
decompressed size; then the frame count, a flags byte and a magic).  Re-running the same
library call with the same level over the same bytes reproduces a frame exactly, so the
store can keep the decompressed block stream (cut by ``blend.split_buffer``, which dedupes
across saves) and rebuild the file at read time.

Reproduction depends on the zstd library version: python-zstandard bundles its own zstd
(1.5.7 here), which matched only 3 of 47 frames of a Blender 3.4 save; the system's
libzstd (1.5.4, the one Debian's Blender links) is called through ``ctypes``.  Every frame
is checked at put time; frames that do not reproduce are kept verbatim ("literal" frames).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import struct
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import blake3
import zstandard

from vstudio.errors import BadInput, StoreError

log = logging.getLogger("vstudio.store")

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
SKIPPABLE_SEEK_MAGIC = 0x184D2A5E
SEEKABLE_FOOTER_MAGIC = 0x8F92EAB1
BLENDER_LEVEL = 3  # ZSTD_COMPRESSION_LEVEL in Blender's writefile.cc (3.0 to 4.x)


class ZstdFormatError(BadInput):
    """Not a seekable zstd stream this module can rebuild exactly."""


class ReencodeError(StoreError):
    """This machine's zstd library cannot rebuild a stored compressed .blend exactly."""


class _Lib:
    """The system libzstd, loaded once; one compression context per thread."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("zstd") or "libzstd.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError as e:
            raise ZstdFormatError(f"the system zstd library is missing ({e}): "
                                  "install it with 'apt-get install libzstd1'") from None
        lib.ZSTD_versionNumber.restype = ctypes.c_uint
        lib.ZSTD_compressBound.restype = ctypes.c_size_t
        lib.ZSTD_compressBound.argtypes = [ctypes.c_size_t]
        lib.ZSTD_createCCtx.restype = ctypes.c_void_p
        lib.ZSTD_compressCCtx.restype = ctypes.c_size_t
        lib.ZSTD_compressCCtx.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                          ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
        lib.ZSTD_isError.restype = ctypes.c_uint
        lib.ZSTD_isError.argtypes = [ctypes.c_size_t]
        self.lib = lib
        self.version = int(lib.ZSTD_versionNumber())
        self._local = threading.local()

    def compress(self, data: bytes, level: int) -> bytes:
        """``ZSTD_compress(data, level)`` as Blender calls it (a context gives equal output)."""
        cctx = getattr(self._local, "cctx", None)
        if cctx is None:
            cctx = self._local.cctx = self.lib.ZSTD_createCCtx()
        bound = self.lib.ZSTD_compressBound(len(data))
        out = ctypes.create_string_buffer(bound)
        n = self.lib.ZSTD_compressCCtx(cctx, out, bound, data, len(data), level)
        if self.lib.ZSTD_isError(n):
            raise ZstdFormatError("zstd compression failed")
        return out.raw[:n]


@cache
def libzstd() -> _Lib:
    return _Lib()


class _Reproduced:
    """Frames this process has just seen compress to their own bytes (``decode`` checks
    each one), by the BLAKE3 of their plain bytes and the level: the store's rebuild check
    right after a put re-encodes the same frames, and zstd at one level in one library
    gives one output, so it takes them from here instead of compressing them a second time
    (a quarter of a compressed save's put). Each is used once; at most ``LIMIT`` bytes."""

    LIMIT = 32 << 20

    def __init__(self) -> None:
        self._frames: dict[tuple[bytes, int], bytes] = {}  # oldest first
        self._bytes = 0
        self._lock = threading.Lock()

    def add(self, plain: bytes, level: int, comp: bytes) -> None:
        key = (blake3.blake3(plain).digest(), level)
        with self._lock:
            if key in self._frames or len(comp) > self.LIMIT:
                return
            self._frames[key] = comp
            self._bytes += len(comp)
            while self._bytes > self.LIMIT:
                self._bytes -= len(self._frames.pop(next(iter(self._frames))))

    def compress(self, lib: _Lib, plain: bytes, level: int) -> bytes:
        """``lib.compress(plain, level)``, from a frame seen reproducing when there is one."""
        if self._frames:  # (a read of a stored file hashes nothing)
            key = (blake3.blake3(plain).digest(), level)
            with self._lock:
                comp = self._frames.pop(key, None)
                if comp is not None:
                    self._bytes -= len(comp)
                    return comp
        return lib.compress(plain, level)


REPRODUCED = _Reproduced()


@dataclass(frozen=True)
class Frame:
    offset: int  # in the compressed file
    csize: int
    usize: int


def seek_table(buf: bytes | memoryview) -> tuple[list[Frame], int]:
    """The frames a seek table lists, and where the seek-table frame starts.

    Raises ``ZstdFormatError`` unless the file is exactly those frames then the table.
    """
    n = len(buf)
    if n < 17 or bytes(buf[:4]) != ZSTD_MAGIC:
        raise ZstdFormatError("not a zstd stream")
    count, flags, magic = struct.unpack_from("<IBI", buf, n - 9)
    if magic != SEEKABLE_FOOTER_MAGIC:
        raise ZstdFormatError("zstd stream without a seek table")
    entry = 12 if flags & 0x80 else 8
    table_len = count * entry + 9
    start = n - table_len - 8
    if start < 4 or flags & 0x7C:
        raise ZstdFormatError("bad zstd seek table")
    skip_magic, frame_size = struct.unpack_from("<II", buf, start)
    if skip_magic != SKIPPABLE_SEEK_MAGIC or frame_size != table_len:
        raise ZstdFormatError("bad zstd seek table frame")
    frames: list[Frame] = []
    pos = 0
    for i in range(count):
        csize, usize = struct.unpack_from("<II", buf, start + 8 + i * entry)
        frames.append(Frame(pos, csize, usize))
        pos += csize
    if pos != start:
        raise ZstdFormatError("zstd seek table does not match the frames")
    return frames, start


@dataclass
class Decoded:
    """A compressed .blend taken apart: the block stream and how to rebuild the file."""

    stream: bytes | bytearray  # the decompressed bytes (an uncompressed .blend)
    level: int
    sizes: list[int]  # decompressed size of every frame, in order
    literal: dict[int, bytes]  # frame index -> verbatim compressed bytes (did not reproduce)
    trailer: bytes  # the seek-table frame, verbatim
    marks: list[str]  # a short fingerprint of every compressed frame

    def params(self) -> dict[str, object]:
        # No trailer: it is rebuilt from the frames (decode checked that it can be).
        # "lib" and "marks": zstd promises the same output only for the same library
        # version; a reader with another one says which frame differs and why.
        return {"level": self.level, "sizes": self.sizes, "lib": libzstd().version,
                "marks": self.marks,
                "literal": {str(i): len(b) for i, b in sorted(self.literal.items())}}


def _mark(frame: bytes) -> str:
    return blake3.blake3(frame).hexdigest(length=6)


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _check_frame(lib: _Lib, comp: bytes, usize: int, level: int, i: int) -> tuple[bytes, bool]:
    """Decompress one frame; say whether re-compressing it gives the same bytes."""
    try:
        plain = zstandard.ZstdDecompressor().decompress(comp, max_output_size=usize)
    except zstandard.ZstdError as e:
        raise ZstdFormatError(f"zstd frame {i} does not decompress: {e}") from None
    if len(plain) != usize:
        raise ZstdFormatError(f"zstd frame {i} has {len(plain)} bytes, table says {usize}")
    return plain, lib.compress(plain, level) == comp


def decode(buf: bytes | memoryview, level: int = BLENDER_LEVEL,
           max_literal_share: float = 0.5) -> Decoded:
    """Decompress every frame and check that re-compressing it gives the same bytes.

    Raises ``ZstdFormatError`` if the stream is not seekable zstd or if more than
    ``max_literal_share`` of the compressed bytes would have to be kept verbatim (then the
    plain fallback chunker stores the file more cheaply).  Frames are checked in parallel
    (zstd releases the GIL).
    """
    frames, table_at = seek_table(buf)
    view = memoryview(buf)
    lib = libzstd()
    comps = [bytes(view[fr.offset:fr.offset + fr.csize]) for fr in frames]
    with ThreadPoolExecutor(_workers()) as pool:
        results = list(pool.map(lambda a: _check_frame(lib, a[1], frames[a[0]].usize, level,
                                                       a[0]), enumerate(comps)))
    literal = {i: comps[i] for i, (_, same) in enumerate(results) if not same}
    for i, (plain, same) in enumerate(results):
        if same:
            REPRODUCED.add(plain, level, comps[i])
    trailer = bytes(view[table_at:])
    if trailer != seek_trailer([(f.csize, f.usize) for f in frames]):
        raise ZstdFormatError("zstd seek table not written the way Blender writes it")
    if sum(len(b) for b in literal.values()) > max_literal_share * table_at:
        raise ZstdFormatError(f"{len(literal)} of {len(frames)} zstd frames do not reproduce")
    marks = [_mark(c) for c in comps]
    del comps
    # Copy frames into one zeroed (lazily mapped) buffer, dropping each as it is copied,
    # so memory peaks near one decoded copy, not two.
    stream = bytearray(sum(f.usize for f in frames))
    pos = 0
    for i, (plain, _) in enumerate(results):
        stream[pos:pos + len(plain)] = plain
        pos += len(plain)
        results[i] = (b"", True)
    return Decoded(stream, level, [f.usize for f in frames], literal, trailer, marks)


def seek_trailer(frames: list[tuple[int, int]]) -> bytes:
    """The seek-table frame Blender appends: per frame (compressed, decompressed) sizes."""
    entries = b"".join(struct.pack("<II", c, u) for c, u in frames)
    footer = struct.pack("<IBI", len(frames), 0, SEEKABLE_FOOTER_MAGIC)
    return struct.pack("<II", SKIPPABLE_SEEK_MAGIC, len(entries) + len(footer)) + entries + footer


def encode(params: dict[str, object], literal_frames: Iterable[bytes],
           stream: Iterator[bytes]) -> Iterator[bytes]:
    """Rebuild the compressed file from ``params``, the literal frames (in frame order)
    and the decompressed stream's chunks.  Frames are compressed a few at a time in
    parallel, and yielded in order."""
    level = int(params["level"])  # type: ignore[call-overload]
    sizes = [int(s) for s in params["sizes"]]  # type: ignore[attr-defined]
    literal_idx = sorted(int(k) for k in params["literal"])  # type: ignore[attr-defined]
    literal = dict(zip(literal_idx, literal_frames, strict=True))
    lib = libzstd()
    if params.get("lib", lib.version) != lib.version:
        # Output may still match (the store checks the hash and says so if it does not).
        log.warning("re-encoding a compressed .blend stored with libzstd %s using %s",
                    params.get("lib"), lib.version)
    source = iter(stream)
    buf = bytearray()
    workers = _workers()
    csizes: list[int] = []
    marks = params.get("marks")

    def checked(frame: bytes) -> bytes:
        i = len(csizes)
        if isinstance(marks, list) and i < len(marks) and _mark(frame) != marks[i]:
            raise ReencodeError(f"libzstd {lib.version} compresses frame {i} of this .blend "
                                f"differently from libzstd {params.get('lib')}, which stored "
                                "it: install that libzstd version to read the file")
        csizes.append(len(frame))
        return frame

    with ThreadPoolExecutor(workers) as pool:
        pending: deque[Future[bytes] | bytes] = deque()
        for i, size in enumerate(sizes):
            while len(buf) < size:
                try:
                    buf += next(source)
                except StopIteration:
                    raise ZstdFormatError("decoded stream is shorter than its frames") from None
            frame = bytes(buf[:size])
            del buf[:size]
            pending.append(literal[i] if i in literal else pool.submit(
                REPRODUCED.compress, lib, frame, level))
            while len(pending) > workers:
                yield checked(_result(pending.popleft()))
        if buf or next(source, b""):
            raise ZstdFormatError("decoded stream is longer than its frames")
        while pending:
            yield checked(_result(pending.popleft()))
    yield seek_trailer(list(zip(csizes, sizes, strict=True)))


def _result(item: Future[bytes] | bytes) -> bytes:
    return item if isinstance(item, bytes) else item.result()
