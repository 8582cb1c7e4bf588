"""Property tests: chunk/reassemble round trips and the pack/index/recipe encodings."""

from __future__ import annotations

import io
import uuid

import blake3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vstudio.errors import CorruptObject
from vstudio.store import format as fmt
from vstudio.store import open_store
from vstudio.store.chunking import FASTCDC
from vstudio.store.codec import Codec

ids = st.binary(min_size=32, max_size=32)
entries = st.one_of(
    st.builds(lambda i, n: fmt.Entry(fmt.E_CHUNK, n, id=i), ids, st.integers(0, 2**32 - 1)),
    st.builds(lambda d: fmt.Entry(fmt.E_INLINE, len(d), data=d), st.binary(max_size=300)),
)


@given(st.binary(max_size=300_000))
@settings(max_examples=40, deadline=None)
def test_fastcdc_pieces_concatenate_to_the_input(data: bytes) -> None:
    pieces = [p.data for p in FASTCDC.split_stream(io.BytesIO(data))]
    assert b"".join(pieces) == data
    assert [p.data for p in FASTCDC.split_bytes(data)] == pieces
    assert all(len(p) <= 64 * 1024 for p in pieces)


index_entries = st.builds(
    lambda k, kind, ch, off, ln, raw, chk, fs, inner, depth: fmt.IndexEntry(
        k, kind, ch, off, ln, raw, chk if kind & fmt.KIND_MASK == fmt.RECIPE else b"",
        fs if kind & fmt.KIND_MASK == fmt.RECIPE else 0,
        inner if kind & fmt.IN_FRAME else 0,
        chk if kind & fmt.DELTA else b"", depth if kind & fmt.DELTA else 0),
    ids, st.sampled_from([0, 1, 2, 0x80, fmt.IN_FRAME, fmt.DELTA, fmt.DELTA | 0x80,
                          fmt.IN_FRAME | 0x80]),
    st.sampled_from(["fastcdc", "blend", "d"]),
    st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), ids,
    st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1), st.integers(0, 255))


@given(st.lists(index_entries, max_size=50))
def test_index_round_trip(es: list[fmt.IndexEntry]) -> None:
    raw = fmt.encode_index(es)
    assert fmt.decode_index(raw, "x") == es
    # Stores without frames or deltas keep writing version 1 (older builds read them).
    plain = not any(e.kind & (fmt.IN_FRAME | fmt.DELTA) for e in es)
    assert raw[:4] == (fmt.INDEX_MAGIC if plain else fmt.INDEX_MAGIC_2)


@given(st.lists(index_entries, min_size=1, max_size=5), st.integers(0, 400))
def test_truncated_index_is_corrupt_not_wrong(es: list[fmt.IndexEntry], cut: int) -> None:
    raw = fmt.encode_index(es)
    cut = min(cut, len(raw) - 1)
    with pytest.raises(CorruptObject):
        fmt.decode_index(raw[:cut], "x")


@given(st.lists(entries, max_size=40), st.integers(0, 2**63),
       st.sampled_from(["", "zstd-blend"]),
       st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
def test_recipe_round_trip(es: list[fmt.Entry], size: int, transform: str,
                           params: dict[str, int]) -> None:
    r = fmt.Recipe(es, size, transform, params)
    assert fmt.decode_recipe(fmt.encode_recipe(r), "x") == r


@given(st.lists(entries, max_size=40))
def test_segment_round_trip(es: list[fmt.Entry]) -> None:
    assert fmt.decode_segment(fmt.encode_segment(es), "x") == es


@given(st.binary(max_size=5000), st.booleans(), st.binary(min_size=1, max_size=40))
def test_codec_round_trip_and_tamper(data: bytes, encrypted: bool, aad: bytes) -> None:
    codec = Codec(b"k" * 32 if encrypted else None)
    sealed = codec.seal(aad, data)
    assert codec.open(aad, sealed, "x") == data
    if encrypted:
        bad = bytearray(sealed)
        bad[-1] ^= 1
        with pytest.raises(CorruptObject):
            codec.open(aad, bytes(bad), "x")
        with pytest.raises(CorruptObject):
            codec.open(aad + b"!", sealed, "x")


@given(st.lists(st.binary(max_size=150_000), min_size=1, max_size=4))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_store_round_trip_in_memory(blobs: list[bytes]) -> None:
    store = open_store(f"memory://{uuid.uuid4().hex}")
    with store.writer() as w:
        oids = [w.put_bytes(b) for b in blobs]
    for b, oid in zip(blobs, oids, strict=True):
        assert oid == blake3.blake3(b).hexdigest()
        assert store.get_bytes(oid) == b
        assert store.read_range(oid, len(b) // 3, 70_000) == b[len(b) // 3:len(b) // 3 + 70_000]


class _Trickle:
    """A pipe-like stream: short reads of a few KB."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.pos, self.step = data, 0, step

    def read(self, n: int = -1) -> bytes:
        out = self.data[self.pos:self.pos + min(n, self.step)]
        self.pos += len(out)
        return out


@given(st.binary(min_size=0, max_size=200_000), st.integers(1, 20_000))
@settings(max_examples=25, deadline=None)
def test_short_reads_cut_like_one_buffer(data: bytes, step: int) -> None:
    seen: list[bytes] = []
    pieces = [p.data for p in FASTCDC.split_stream(_Trickle(data, step),
                                                   lambda b: seen.append(bytes(b)))]
    assert pieces == [p.data for p in FASTCDC.split_bytes(data)]
    assert b"".join(seen) == data


def test_read_ahead_cuts_like_one_buffer() -> None:
    """Blocks read (and hashed) ahead in a thread: the same pieces, every byte seen once
    in order, across block boundaries and a short last block."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    from vstudio.store.chunking import BLOCK

    data = random.Random(7).randbytes(2 * BLOCK + 12345)
    seen: list[bytes] = []
    with ThreadPoolExecutor(1) as pool:
        pieces = [p.data for p in FASTCDC.split_stream(io.BytesIO(data),
                                                       lambda b: seen.append(bytes(b)),
                                                       len(data), pool.submit)]
        trickled = [p.data for p in FASTCDC.split_stream(_Trickle(data, BLOCK // 3),
                                                         None, None, pool.submit)]
    assert pieces == trickled == [p.data for p in FASTCDC.split_bytes(data)]
    assert b"".join(seen) == data
