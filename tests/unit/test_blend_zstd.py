"""zstd .blend frames: decode, check re-encoding with the system libzstd, rebuild exactly."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vstudio.store import blendzstd as z
from vstudio.store.blendzstd import ZstdFormatError


def seekable(frames: list[bytes], levels: list[int] | None = None) -> bytes:
    """A zstd file written the way Blender writes one: frames, then the seek table."""
    lib = z.libzstd()
    levels = levels or [3] * len(frames)
    comp = [lib.compress(f, lvl) for f, lvl in zip(frames, levels, strict=True)]
    table = b"".join(struct.pack("<II", len(c), len(f)) for c, f in zip(comp, frames,
                                                                            strict=True))
    table += struct.pack("<IBI", len(frames), 0, z.SEEKABLE_FOOTER_MAGIC)
    return b"".join(comp) + struct.pack("<II", z.SKIPPABLE_SEEK_MAGIC, len(table)) + table


def rebuild(dec: z.Decoded, chunk: int = 1000) -> bytes:
    stream = (dec.stream[i:i + chunk] for i in range(0, len(dec.stream), chunk))
    literal = [dec.literal[i] for i in sorted(dec.literal)]
    return b"".join(z.encode(dec.params(), literal, stream))


def _words(seed: int, n: int) -> bytes:
    # Text-like bytes: compressible, and different zstd levels give different frames.
    rnd = random.Random(seed)
    vocab = [bytes(rnd.choices(b"abcdefghijklmnop", k=rnd.randint(2, 9))) for _ in range(300)]
    return b" ".join(rnd.choice(vocab) for _ in range(n))


FRAMES = [b"BLENDER-v304" + _words(1, 4000), _words(2, 6000), bytes(5000), _words(3, 3000)]


def test_system_libzstd_is_the_one_blender_links() -> None:
    assert z.libzstd().version >= 10400


def test_frames_made_like_blender_reproduce() -> None:
    data = seekable(FRAMES)
    dec = z.decode(data)
    assert dec.literal == {}
    assert dec.sizes == [len(f) for f in FRAMES]
    assert dec.stream == b"".join(FRAMES)
    assert rebuild(dec) == data


def test_frames_that_do_not_reproduce_are_kept_verbatim() -> None:
    data = seekable(FRAMES, levels=[3, 19, 3, 3])
    dec = z.decode(data)
    assert sorted(dec.literal) == [1]
    assert rebuild(dec, chunk=333) == data


def test_mostly_foreign_frames_fall_back() -> None:
    with pytest.raises(ZstdFormatError):
        z.decode(seekable(FRAMES, levels=[19, 19, 3, 19]))


@pytest.mark.parametrize("bad", [
    b"",
    b"not zstd at all",
    z.ZSTD_MAGIC + bytes(40),  # no seek table
    seekable(FRAMES)[:-1],  # truncated footer
    seekable(FRAMES)[1:],  # no magic
    seekable(FRAMES)[:10] + b"\xff" * 20 + seekable(FRAMES)[30:],  # garbage in frame 0
])
def test_bad_streams_raise(bad: bytes) -> None:
    with pytest.raises(ZstdFormatError):
        z.decode(bad)


def test_table_that_lies_about_sizes_raises() -> None:
    data = bytearray(seekable(FRAMES))
    # First entry's decompressed size, one byte too many.
    at = len(data) - 9 - 8 * len(FRAMES)
    csize, usize = struct.unpack_from("<II", data, at)
    struct.pack_into("<II", data, at, csize, usize + 1)
    with pytest.raises(ZstdFormatError):
        z.decode(bytes(data))


def test_encode_refuses_short_or_long_streams() -> None:
    dec = z.decode(seekable(FRAMES))
    with pytest.raises(ZstdFormatError):
        b"".join(z.encode(dec.params(), [], iter([dec.stream[:-1]])))
    with pytest.raises(ZstdFormatError):
        b"".join(z.encode(dec.params(), [], iter([dec.stream + b"x"])))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=3000), min_size=1, max_size=6),
       st.data())
def test_any_frames_round_trip(frames: list[bytes], data: st.DataObject) -> None:
    levels = data.draw(st.lists(st.sampled_from([3, 3, 3, 1]), min_size=len(frames),
                                max_size=len(frames)))
    raw = seekable(frames, levels)
    try:
        dec = z.decode(raw, max_literal_share=1.0)
    except ZstdFormatError:
        pytest.fail("a well-formed seekable stream must decode")
    assert rebuild(dec, chunk=data.draw(st.integers(1, 5000))) == raw


def test_seek_table_not_written_like_blender_is_refused() -> None:
    """Per-frame checksums (flag 0x80) are valid seekable zstd, but not Blender's layout."""
    lib = z.libzstd()
    comp = [lib.compress(f, 3) for f in FRAMES]
    table = b"".join(struct.pack("<III", len(c), len(f), 0) for c, f in zip(comp, FRAMES,
                                                                              strict=True))
    table += struct.pack("<IBI", len(FRAMES), 0x80, z.SEEKABLE_FOOTER_MAGIC)
    data = b"".join(comp) + struct.pack("<II", z.SKIPPABLE_SEEK_MAGIC, len(table)) + table
    with pytest.raises(ZstdFormatError):
        z.decode(data)


def test_params_name_the_library_version() -> None:
    params = z.decode(seekable(FRAMES)).params()
    assert params["lib"] == z.libzstd().version
    assert "trailer" not in params  # rebuilt, not stored


def test_other_zstd_output_is_named_not_silently_wrong() -> None:
    """A reader whose libzstd compresses a frame differently gets a clear error."""
    dec = z.decode(seekable(FRAMES))
    params = dec.params()
    marks = list(params["marks"])  # type: ignore[call-overload]
    marks[2] = "000000000000"
    with pytest.raises(z.ReencodeError, match="frame 2"):
        b"".join(z.encode({**params, "marks": marks}, [], iter([dec.stream])))
