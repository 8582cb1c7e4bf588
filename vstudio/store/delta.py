"""Delta fallback: store a new version of a file as zstd against an earlier version.

For files no format-aware chunker understands, with small edits scattered all over (so
content-defined chunks all change), ``put_file(path, previous=ID)`` asks this hook first:
it compresses the new bytes with an earlier version as zstd's *prefix* (what ``zstd
--patch-from`` does, with long-distance matching and a window covering both), and keeps
the result only when it is less than half of what compressing the file alone costs.

Chains are bounded the way Subversion's skip-deltas are: the ``n``-th version in a chain
is a delta against version ``n - lowbit(n)`` (``n`` with its lowest set bit cleared), so
reading any version applies at most ``log2(n) + 1`` deltas.  Each delta's parameters keep
the ids of the versions a later one may need as its base (``skip``).
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path
from typing import Any

from vstudio.errors import StoreError
from vstudio.store.blendzstd import libzstd
from vstudio.store.chunking import (
    FASTCDC,
    Encoder,
    ObjectSource,
    Piece,
    RecipeSource,
    Split,
    pick_chunker,
    register_delta,
    register_transform,
)

log = logging.getLogger("vstudio.store")

TRANSFORM = "zstd-delta"
MIN_SIZE = 64 * 1024  # smaller files: FastCDC plus compression is as good
MAX_SIZE = 1 << 30  # the base is held in memory, and zstd's window tops out at 2 GiB
LEVEL = 3
KEEP_IF_UNDER = 0.5  # of the file compressed alone
PIECE = 4 << 20

# zstd parameter numbers (zstd.h, stable API)
_C_LEVEL, _C_WINDOWLOG, _C_LDM = 100, 101, 160
_D_WINDOWLOG_MAX = 100


class DeltaError(StoreError):
    """A delta could not be applied."""


_declared = False


def _lib() -> Any:
    global _declared
    lib = libzstd().lib
    if not _declared:
        lib.ZSTD_CCtx_setParameter.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        lib.ZSTD_CCtx_setParameter.restype = ctypes.c_size_t
        lib.ZSTD_CCtx_refPrefix.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.ZSTD_CCtx_refPrefix.restype = ctypes.c_size_t
        lib.ZSTD_compress2.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                       ctypes.c_char_p, ctypes.c_size_t]
        lib.ZSTD_compress2.restype = ctypes.c_size_t
        lib.ZSTD_freeCCtx.argtypes = [ctypes.c_void_p]
        lib.ZSTD_createDCtx.restype = ctypes.c_void_p
        lib.ZSTD_freeDCtx.argtypes = [ctypes.c_void_p]
        lib.ZSTD_DCtx_setParameter.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        lib.ZSTD_DCtx_setParameter.restype = ctypes.c_size_t
        lib.ZSTD_DCtx_refPrefix.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.ZSTD_DCtx_refPrefix.restype = ctypes.c_size_t
        lib.ZSTD_decompressDCtx.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                            ctypes.c_char_p, ctypes.c_size_t]
        lib.ZSTD_decompressDCtx.restype = ctypes.c_size_t
        _declared = True
    return lib


def _window_log(total: int) -> int:
    return max(10, min(31, (max(total, 1) - 1).bit_length()))


def _check(lib: Any, code: int, what: str) -> int:
    if lib.ZSTD_isError(code):
        raise DeltaError(f"zstd {what} failed")
    return code


def compress(data: bytes, base: bytes | None, level: int = LEVEL) -> bytes:
    """zstd of ``data`` with ``base`` as prefix (``zstd --patch-from``), or alone."""
    lib = _lib()
    cctx = lib.ZSTD_createCCtx()
    try:
        _check(lib, lib.ZSTD_CCtx_setParameter(cctx, _C_LEVEL, level), "level")
        if base is not None:
            wlog = _window_log(len(base) + len(data))
            _check(lib, lib.ZSTD_CCtx_setParameter(cctx, _C_WINDOWLOG, wlog), "window")
            _check(lib, lib.ZSTD_CCtx_setParameter(cctx, _C_LDM, 1), "long mode")
            _check(lib, lib.ZSTD_CCtx_refPrefix(cctx, base, len(base)), "prefix")
        bound = lib.ZSTD_compressBound(len(data))
        out = ctypes.create_string_buffer(bound)
        n = _check(lib, lib.ZSTD_compress2(cctx, out, bound, data, len(data)), "compression")
        return out.raw[:n]
    finally:
        lib.ZSTD_freeCCtx(cctx)


def decompress(delta: bytes, base: bytes, size: int) -> bytes:
    """Undo ``compress(data, base)``; ``size`` is the length of ``data``."""
    lib = _lib()
    dctx = lib.ZSTD_createDCtx()
    try:
        wlog = _window_log(len(base) + size)
        _check(lib, lib.ZSTD_DCtx_setParameter(dctx, _D_WINDOWLOG_MAX, wlog), "window")
        _check(lib, lib.ZSTD_DCtx_refPrefix(dctx, base, len(base)), "prefix")
        out = ctypes.create_string_buffer(max(size, 1))
        n = _check(lib, lib.ZSTD_decompressDCtx(dctx, out, size, delta, len(delta)),
                   "delta decompression")
        if n != size:
            raise DeltaError(f"delta gave {n} bytes, expected {size}")
        return out.raw[:n]
    finally:
        lib.ZSTD_freeDCtx(dctx)


def _prefixes(n: int) -> list[int]:
    """``n`` with its low set bits cleared one by one, down to 0 (skip-delta bases)."""
    out = []
    while n:
        n &= n - 1
        out.append(n)
    return out


def chain_of(source: RecipeSource, previous: str) -> tuple[int, dict[int, str]]:
    """Index of ``previous`` in its delta chain and the ids of its skip bases."""
    recipe = source.recipe(previous)
    if recipe is None or recipe.transform != TRANSFORM:
        return 0, {}
    params = recipe.params
    return int(params["index"]), {int(k): str(v) for k, v in params["skip"].items()}


def _delta_hook(path: Path, previous: str, source: RecipeSource) -> Split | None:
    """A delta Split for ``path`` against an earlier version, or None to chunk it whole."""
    path = Path(path)
    size = path.stat().st_size
    if not MIN_SIZE <= size <= MAX_SIZE or pick_chunker(path) is not FASTCDC:
        return None  # small, huge, or a format-aware chunker does better
    if source.size(previous) > MAX_SIZE:
        return None
    prev_index, prev_skip = chain_of(source, previous)
    n = prev_index + 1
    known = {**prev_skip, prev_index: previous}
    base_index = n & (n - 1)
    base_id = known.get(base_index)
    if base_id is None:
        return None  # a base of the chain is gone: start a new chain from a full copy
    data = path.read_bytes()
    base = source.get_bytes(base_id)
    delta = compress(data, base)
    alone = compress(data, None)
    if len(delta) >= KEEP_IF_UNDER * len(alone):
        log.debug("delta of %s is %d bytes, alone %d: not worth a chain", path, len(delta),
                  len(alone))
        return None
    params = {"base": base_id, "size": size, "index": n,
              "skip": {str(i): known[i] for i in _prefixes(n) if i in known}}
    pieces = [Piece(delta[i:i + PIECE]) for i in range(0, len(delta), PIECE)]
    return Split(pieces, TRANSFORM, params)


register_delta(_delta_hook, chunker_name="delta")


@register_transform(TRANSFORM)
def _delta_transform(params: dict[str, Any], source: ObjectSource) -> Encoder:
    def encode(chunks: Any) -> Any:
        delta = b"".join(chunks)
        base = source.get_bytes(str(params["base"]))
        yield decompress(delta, base, int(params["size"]))

    return encode
