"""Scanner for GIMP images (.xcf): the header gives the size; an .xcf links no files.

An XCF file starts ``gimp xcf `` + a 4-byte version (``file``, ``v001`` ...) + NUL, then
the canvas width and height as big-endian 32-bit numbers. GIMP 2.10 has no linked layers,
so RenderChan lists no dependencies for it either. An image is a still: one frame (1).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

from vstudio.render.model import SceneInfo
from vstudio.render.scanners import Record, ScanError, scanner

MAGIC = b"gimp xcf "


def xcf_size(path: Path) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(22)
    if not head.startswith(MAGIC) or len(head) < 22 or head[13:14] != b"\0":
        raise ScanError(f"{path} is not a GIMP image (no XCF header)")
    width, height = struct.unpack(">II", head[14:22])
    if not (1 <= width <= 524288 and 1 <= height <= 524288):
        raise ScanError(f"{path} is a damaged GIMP image (canvas {width}x{height})")
    return width, height


@scanner(".xcf", renderer="gimp")
def scan_xcf(path: Path) -> Iterator[Record]:
    width, height = xcf_size(path)
    yield SceneInfo(renderer="gimp", start=1, end=1, fps=24.0, width=width, height=height)
