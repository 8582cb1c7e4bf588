"""Cut Blender .blend files at their own block boundaries, so an edit costs kilobytes.

Blender writes each block's memory address of the saving session into its header and
into every pointer of the bodies that refer to it, so two saves of a nearly unchanged scene
in two sessions differ in bytes scattered over the whole file, which defeats
content-defined chunking.  The store keeps a .blend in the "blend" layout instead (below):
addresses gathered in one small piece, bodies with their pointers rewritten to
session-independent codes (``blendsdna``), each big body a chunk of its own; unchanged
bodies (vertex arrays, pixels, most of the file) dedupe across saves, and the transform
rebuilds the file byte for byte.  zstd-compressed saves are decoded first (``blendzstd``).

Any file the parser or the codecs cannot take exactly makes ``split`` raise, and the store
falls back to FastCDC: bytes in == bytes out, always (the store also checks the rebuild).
"""

from __future__ import annotations

import itertools
import os
import sys
import zlib
from array import array
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import zstandard

from vstudio.store import blendgzip, blendzstd
from vstudio.store.blendfile import (
    DATA,
    BlendFormatError,
    BlendHeader,
    Block,
    Buffer,
    ByteStream,
    FileView,
    decode_header,
    is_blend,
    pack_addresses,
    scan,
    unpack_addresses,
)
from vstudio.store.blendsdna import PointerCodec, SdnaError, parse_sdna
from vstudio.store.chunking import (
    Encoder,
    ObjectSource,
    Piece,
    Split,
    register_chunker,
    register_transform,
)

__all__ = ["BlendFormatError", "Layout", "decode_header", "decode_layout", "is_blend",
           "layout_pieces", "scan"]


# --------------------------------------------------------------------------------------
# The "blend" layout: the stream the store chunks instead of the file's own byte order.
#
#   file header | block headers, address zeroed | addresses | DNA1 body | bodies
#
# Per-session addresses are gathered in one small piece; headers without them dedupe as
# long as the file's structure is unchanged; bodies have their pointer fields rewritten to
# relative codes (blendsdna), so a body whose only change is the session's addresses
# dedupes.
# Small bodies are grouped per data-block (an ID block and the DATA blocks after it), so
# one edited object costs one group, and the store does not index thousands of 40-byte
# chunks.  Version 1 of the layout; ``LAYOUT_VERSION`` guards readers.

LAYOUT_VERSION = 1
ADDRESS_AT = 8  # byte offset of the old address in every BHead layout
SMALL_BODY = 4096
GROUP_LIMIT = 64 * 1024
HEAD_PIECE = 4096


@dataclass(frozen=True)
class Layout:
    """What the decoder needs besides the stream; stored as the transform's params."""

    blocks: int
    header_size: int
    dna_index: int  # index of the DNA1 block, -1 if none
    normalised: bool
    side: int  # values in the side list (escaped pointers, volatile fields)
    addr_bytes: int  # length of the packed address table

    def params(self) -> dict[str, object]:
        return {"v": LAYOUT_VERSION, "blocks": self.blocks, "header": self.header_size,
                "dna": self.dna_index, "norm": self.normalised, "side": self.side,
                "addr": self.addr_bytes}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Layout:
        if params.get("v") != LAYOUT_VERSION:
            raise BlendFormatError(f"unknown blend layout version {params.get('v')!r}: "
                                   "upgrade vstudio")
        return cls(int(params["blocks"]), int(params["header"]), int(params["dna"]),
                   bool(params["norm"]), int(params["side"]), int(params["addr"]))


def _codec(header: BlendHeader, blocks: list[Block], dna: bytes | None) -> PointerCodec | None:
    """The pointer codec, or None when pointers are left as they are."""
    if dna is None or not header.little_endian or sys.byteorder != "little":
        # Big-endian files are rare (PowerPC era): kept exact, not rewritten.  Pointer words
        # are read in the machine's byte order, so a big-endian machine rewrites nothing.
        return None
    try:
        sdna = parse_sdna(dna, header.pointer_size, header.little_endian)
        return PointerCodec(sdna, [b.old for b in blocks], [b.code != DATA for b in blocks],
                            header.pointer_size)
    except SdnaError:
        return None


def layout_pieces(buf: Buffer) -> tuple[Layout, Generator[tuple[bytes, bool], None, None]]:
    """Parse ``buf`` (whole, so a bad file fails here) and return the layout's params and
    its ``(data, inline)`` pieces; ``decode_layout`` turns the pieces back into ``buf``.
    Bodies are read from ``buf`` as the pieces are consumed."""
    header, blocks = scan(buf)
    dna_index = next((i for i, b in enumerate(blocks) if b.code == b"DNA1"), -1)
    dna = bytes(buf[blocks[dna_index].body_offset:blocks[dna_index].end]) \
        if dna_index >= 0 else None
    codec = _codec(header, blocks, dna)
    # Rewrite the pointer-bearing bodies first (mostly small structs; kept in memory): the
    # side list they fill goes before the bodies in the stream.
    side: list[int] = []
    rewritten: dict[int, bytes] = {}
    if codec is not None:
        try:
            for i, b in enumerate(blocks):
                if i != dna_index and codec.rewrites(b.sdna, b.nr, b.length):
                    body = bytes(buf[b.body_offset:b.end])
                    rewritten[i] = codec.encode(i, b.sdna, b.nr, body, side)
        except (SdnaError, ValueError, IndexError, OverflowError, TypeError):
            # An SDNA that does not describe these bodies: keep the pointers as they are.
            codec, side, rewritten = None, [], {}
    addrs = pack_addresses([b.old for b in blocks])
    lay = Layout(len(blocks), header.size, dna_index, codec is not None, len(side), len(addrs))
    return lay, _pieces(buf, header, blocks, dna, addrs + array("Q", side).tobytes(),
                        rewritten, dna_index)


def _pieces(buf: Buffer, header: BlendHeader, blocks: list[Block], dna: bytes | None,
            session: bytes, rewritten: dict[int, bytes], dna_index: int
            ) -> Generator[tuple[bytes, bool], None, None]:
    yield bytes(buf[:header.size]), True
    psize = header.pointer_size
    heads = bytearray()
    zero = bytes(psize)
    for b in blocks:
        h = b.head
        heads += h[:ADDRESS_AT]
        heads += zero
        heads += h[ADDRESS_AT + psize:]
    # Headers change only where blocks are added, removed or resized.  Cut the table
    # before data-block (ID) headers once a piece has HEAD_PIECE bytes, so an insertion
    # shifts no boundary elsewhere (the table is too regular for content-defined cuts).
    start = 0
    for i, b in enumerate(blocks):
        at = i * header.bhead_size
        if b.code != DATA and at - start >= HEAD_PIECE:
            yield bytes(heads[start:at]), False
            start = at
    yield bytes(heads[start:]), False
    # The per-session values (addresses, side list): one piece that changes every save.
    yield session, False
    if dna:
        yield dna, False
    group: list[bytes] = []
    size = 0
    for i, b in enumerate(blocks):
        if i == dna_index or not b.length:
            continue
        body = rewritten.get(i)
        if body is None:
            body = bytes(buf[b.body_offset:b.end])
        if group and (b.code != DATA or size + b.length > GROUP_LIMIT or b.length >= SMALL_BODY):
            yield b"".join(group), False
            group, size = [], 0
        if b.length >= SMALL_BODY:
            yield body, False
        else:
            group.append(body)
            size += b.length
    if group:
        yield b"".join(group), False


def decode_layout(params: dict[str, Any], chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The file's bytes, in order, from the layout's params and stream."""
    lay = Layout.from_params(params)
    src = ByteStream(chunks)
    head = src.read(lay.header_size)
    header = decode_header(head + bytes(17 - len(head)))
    yield head
    psize, hsize = header.pointer_size, header.bhead_size
    heads = src.read(lay.blocks * hsize)
    olds = unpack_addresses(src.read(lay.addr_bytes), lay.blocks)
    side_values = array("Q")
    side_values.frombytes(src.read(lay.side * 8))
    unpack = header.bhead_struct.unpack_from
    large = header.format_version >= 1
    order: Literal["little", "big"] = "little" if header.little_endian else "big"
    blocks: list[Block] = []
    for i in range(lay.blocks):
        f = unpack(heads, i * hsize)
        code, sdna_nr, count, length = ((f[0], f[1], f[4], f[3]) if large
                                        else (f[0], f[3], f[4], f[1]))
        if length < 0:
            raise BlendFormatError(f"blend layout: block {i} has a negative length")
        blocks.append(Block(0, bytes(code), length, olds[i], sdna_nr, count, hsize))
    dna = src.read(blocks[lay.dna_index].length) if lay.dna_index >= 0 else None
    codec = _codec(header, blocks, dna) if lay.normalised else None
    if lay.normalised and sys.byteorder != "little":
        raise BlendFormatError("this .blend was stored on a little-endian machine and is "
                               "rebuilt only on one")
    if lay.normalised and codec is None:
        raise BlendFormatError("blend layout: the SDNA needed to restore pointers is unreadable")
    side = iter(side_values.tolist())

    def restored() -> Iterator[bytes]:
        for i, b in enumerate(blocks):
            h = heads[i * hsize:(i + 1) * hsize]
            yield h[:ADDRESS_AT] + b.old.to_bytes(psize, order) + h[ADDRESS_AT + psize:]
            if i == lay.dna_index:
                assert dna is not None
                yield dna
            elif b.length:
                body = src.read(b.length)
                if codec is not None:
                    body = codec.decode(i, b.sdna, b.nr, body, side)
                yield body

    yield from _joined(restored())
    if not src.at_end() or next(side, None) is not None:
        raise BlendFormatError("blend layout stream is longer than its blocks")


def _joined(parts: Iterator[bytes]) -> Iterator[bytes]:
    """``parts`` in fewer, bigger pieces: what a reader pays per piece (a hash update, a
    zstd frame's buffer) is paid per ~``GROUP_LIMIT`` bytes, not twice per block."""
    group: list[bytes] = []
    size = 0
    for part in parts:
        if len(part) >= GROUP_LIMIT:
            if group:
                yield b"".join(group)
                group, size = [], 0
            yield part
            continue
        group.append(part)
        size += len(part)
        if size >= GROUP_LIMIT:
            yield b"".join(group)
            group, size = [], 0
    if group:
        yield b"".join(group)


# --------------------------------------------------------------------------------------
# Store plug-ins: chunkers picked by magic bytes, and the transforms that rebuild files.

LAYOUT_TRANSFORM = "blend"
ZSTD_TRANSFORM = "blend-zstd"
GZIP_TRANSFORM = "blend-gzip"
# Compressed saves are decoded in memory; past this the plain chunker is the safer choice.
MAX_DECODED = 2 << 30
READ_WHOLE = 64 << 20  # uncompressed saves up to this size are read at once


def _as_pieces(pieces: Iterator[tuple[bytes, bool]]) -> Iterator[Piece]:
    for data, inline in pieces:
        yield Piece(data, inline)


def _file_pieces(pieces: Generator[tuple[bytes, bool], None, None], f: BinaryIO
                 ) -> Iterator[Piece]:
    try:
        yield from _as_pieces(pieces)
    finally:
        pieces.close()
        f.close()


@register_chunker
class BlendChunker:
    """Uncompressed .blend files, cut at block boundaries with pointers normalised."""

    name = "blend"

    def detect(self, head: bytes) -> bool:
        return is_blend(head)

    def split(self, path: Path) -> Split:
        # A big file's bodies are read as the store consumes the pieces, so it is never
        # all in memory; a smaller one is read at once (a slice of bytes costs a tenth of
        # a FileView's). The file is closed when the pieces are consumed (or dropped).
        f = open(path, "rb")  # noqa: SIM115 - closed by _file_pieces
        try:
            small = os.fstat(f.fileno()).st_size <= READ_WHOLE
            lay, pieces = layout_pieces(f.read() if small else FileView(f))
        except BaseException:
            f.close()
            raise
        return Split(_file_pieces(pieces, f), LAYOUT_TRANSFORM, lay.params())


@register_chunker
class BlendZstdChunker:
    """Blender's zstd-compressed saves: the block stream is stored, the file re-encoded."""

    name = "blend-zstd"

    def detect(self, head: bytes) -> bool:
        # Any zstd stream: split() checks for the seek table and the BLENDER magic inside,
        # and raises (so the store falls back) for other zstd files.
        return head.startswith(blendzstd.ZSTD_MAGIC)

    def split(self, path: Path) -> Split:
        with open(path, "rb") as f:
            # Cheap refusals first: any zstd file lands here (a 10 GB .tar.zst too).
            size = f.seek(0, 2)
            if size < 17 or size > MAX_DECODED:
                raise BlendFormatError("not a compressed .blend of a size this can decode")
            f.seek(size - 4)
            if int.from_bytes(f.read(4), "little") != blendzstd.SEEKABLE_FOOTER_MAGIC:
                raise BlendFormatError("zstd file without a seek table: not a Blender save")
            f.seek(0)
            data = f.read()
        frames, _ = blendzstd.seek_table(data)
        if sum(f.usize for f in frames) > MAX_DECODED:
            raise BlendFormatError("compressed .blend too large to decode in memory")
        if frames:
            first = zstandard.ZstdDecompressor().decompressobj().decompress(
                data[frames[0].offset:frames[0].offset + frames[0].csize])
            if not is_blend(first[:17]):
                raise BlendFormatError("zstd stream that is not a .blend file")
        dec = blendzstd.decode(data)
        del data
        lay, pieces = layout_pieces(dec.stream)
        literal = [Piece(dec.literal[i]) for i in sorted(dec.literal)]
        params = {"zstd": dec.params(), "layout": lay.params()}
        return Split(itertools.chain(literal, _as_pieces(pieces)), ZSTD_TRANSFORM, params)


@register_chunker
class BlendGzipChunker:
    """gzip-compressed saves of Blender 2.80-2.93: the block stream stored, re-deflated."""

    name = "blend-gzip"

    def detect(self, head: bytes) -> bool:
        if not head.startswith(blendgzip.GZIP_MAGIC) or len(head) < 11:
            return False
        try:  # only .blend inside: other .gz files go to the fallback straight away
            start = zlib.decompressobj(-zlib.MAX_WBITS).decompress(head[10:], 64)
        except zlib.error:
            return False
        return is_blend(start[:17])

    def split(self, path: Path) -> Split:
        if Path(path).stat().st_size > MAX_DECODED:
            raise BlendFormatError("compressed .blend too large to decode in memory")
        dec = blendgzip.decode(Path(path).read_bytes())
        lay, pieces = layout_pieces(dec.stream)
        params = {"gzip": dec.params(), "layout": lay.params()}
        return Split(_as_pieces(pieces), GZIP_TRANSFORM, params)


@register_transform(GZIP_TRANSFORM)
def _gzip_transform(params: dict[str, Any], source: ObjectSource) -> Encoder:
    def encode(chunks: Iterator[bytes]) -> Iterator[bytes]:
        return blendgzip.encode(params["gzip"], decode_layout(params["layout"], chunks))

    return encode


@register_transform(LAYOUT_TRANSFORM)
def _layout_transform(params: dict[str, Any], source: ObjectSource) -> Encoder:
    def encode(chunks: Iterator[bytes]) -> Iterator[bytes]:
        return decode_layout(params, chunks)

    return encode


@register_transform(ZSTD_TRANSFORM)
def _zstd_transform(params: dict[str, Any], source: ObjectSource) -> Encoder:
    zparams = params["zstd"]
    lengths = [int(v) for _, v in sorted(zparams["literal"].items(), key=lambda kv: int(kv[0]))]

    def encode(chunks: Iterator[bytes]) -> Iterator[bytes]:
        src = ByteStream(chunks)
        literal = [src.read(n) for n in lengths]
        return blendzstd.encode(zparams, literal, decode_layout(params["layout"], src.rest()))

    return encode
