"""Store format features for storage cost: chunks compressed together in frames, and
chunks stored as patches against the chunk at the same place in the previous version."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from vstudio.errors import CorruptObject
from vstudio.store import format as fmt
from vstudio.store import maintenance, open_store
from vstudio.store.objects import Store
from vstudio.store.sealing import MAX_DEPTH

WORDS = [b"mesh", b"vertex", b"uv", b"material", b"object", b"scene", b"light", b"camera",
         b"bone", b"pose", b"curve", b"modifier", b"texture", b"image", b"node", b"world"]


def wordy(n: int, seed: int) -> bytes:
    """Compressible but not repetitive bytes (distinct chunks that zstd shrinks)."""
    rnd = random.Random(seed)
    out = bytearray()
    while len(out) < n:
        out += rnd.choice(WORDS) + str(rnd.randint(0, 99999)).encode() + b" "
    return bytes(out[:n])


def entries(store: Store) -> list[fmt.IndexEntry]:
    store.index.refresh()
    return [e for _, e in store.index.blobs.values()]


@pytest.fixture(params=["local", "encrypted"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    opts = {"key_file": str(tmp_path / "key")} if request.param == "encrypted" else {}
    return open_store(f"file://{tmp_path / 'store'}", opts)  # type: ignore[return-value]


def test_frames_read_back_byte_exact_and_cost_less(store: Store, tmp_path: Path) -> None:
    data = wordy(3_000_000, 1)
    path = tmp_path / "f.txt"
    path.write_bytes(data)
    oid = store.put_file(path)
    framed = [e for e in entries(store) if e.in_frame]
    assert len(framed) > 50  # many chunks, sharing a few frames
    assert len({e.offset for e in framed}) < len(framed) // 10
    assert store.get_bytes(oid) == data
    rnd = random.Random(2)
    for _ in range(20):
        off = rnd.randrange(len(data))
        assert store.read_range(oid, off, 5000) == data[off:off + 5000]
    # One chunk alone (no neighbours read first) also comes back right.
    e = framed[len(framed) // 2]
    store.packs.frames = type(store.packs.frames)()
    assert len(store.blob(e.key)) == e.raw_length
    assert maintenance.check(store, read_data=True) == []
    stored = maintenance.stats(store)["stored_bytes"]
    import zstandard

    assert stored <= len(zstandard.ZstdCompressor(level=3).compress(data)) * 1.1


def test_a_damaged_frame_is_reported_not_returned(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path / 's'}")
    oid = store.put_bytes(wordy(500_000, 3))
    (pack,) = [p for p in (tmp_path / "s" / "packs").rglob("*") if p.is_file()]
    raw = bytearray(pack.read_bytes())
    raw[100] ^= 0xFF
    pack.chmod(0o644)
    pack.write_bytes(bytes(raw))
    fresh = open_store(f"file://{tmp_path / 's'}")
    with pytest.raises(CorruptObject, match="store check"):
        fresh.get_bytes(oid)
    assert any("corrupt" in p for p in maintenance.check(fresh, read_data=True))


def edit(data: bytes, at: int, seed: int) -> bytes:
    return data[:at] + random.Random(seed).randbytes(8) + data[at + 8:]


def two_versions(tmp_path: Path, seed: int, at: int) -> tuple[bytes, bytes]:
    """A file and a copy with 8 bytes changed at ``at``, written as v1 and v2. Under the
    whole-file delta's minimum size, so the per-chunk patch is what applies."""
    v1 = wordy(60_000, seed)
    v2 = edit(v1, at, seed + 1)
    (tmp_path / "v1").write_bytes(v1)
    (tmp_path / "v2").write_bytes(v2)
    return v1, v2


def test_small_edit_is_stored_as_a_patch(store: Store, tmp_path: Path) -> None:
    v1, v2 = two_versions(tmp_path, 4, 30_000)
    a = store.put_file(tmp_path / "v1")
    before = maintenance.stats(store)["stored_bytes"]
    b = store.put_file(tmp_path / "v2", previous=a)
    growth = maintenance.stats(store)["stored_bytes"] - before
    deltas = [e for e in entries(store) if e.is_delta]
    assert len(deltas) == 1 and deltas[0].depth == 1
    assert store.index.get(deltas[0].base) is not None
    assert store.get_bytes(b) == v2 and store.get_bytes(a) == v1
    assert store.read_range(b, 29_990, 100) == v2[29_990:30_090]
    assert maintenance.check(store, read_data=True) == []
    # The same edit without naming the previous version costs a whole compressed chunk.
    other = open_store(f"file://{tmp_path / 'other'}")
    other.put_file(tmp_path / "v1")
    b2 = maintenance.stats(other)["stored_bytes"]
    other.put_file(tmp_path / "v2")
    assert growth < (maintenance.stats(other)["stored_bytes"] - b2) - 2000


def test_delta_chains_are_bounded(store: Store, tmp_path: Path) -> None:
    data = wordy(60_000, 6)
    versions = []
    prev = None
    for i in range(12):
        data = edit(data, 30_000 + 16 * i, 100 + i)
        (tmp_path / "f").write_bytes(data)
        prev = store.put_file(tmp_path / "f", previous=prev)
        versions.append((prev, data))
    deltas = [e for e in entries(store) if e.is_delta]
    assert len(deltas) >= 8
    assert max(e.depth for e in deltas) == MAX_DEPTH
    for e in deltas:  # the recorded depth is the real one
        depth, key = 0, e.key
        while True:
            hit = store.index.get(key)
            assert hit is not None
            if not hit[1].is_delta:
                break
            depth, key = depth + 1, hit[1].base
        assert depth == e.depth
    fresh = open_store(f"file://{tmp_path / 'store'}", store_opts(tmp_path, store))
    for oid, want in versions:
        assert fresh.get_bytes(oid) == want


def store_opts(tmp_path: Path, store: Store) -> dict[str, str]:
    return {"key_file": str(tmp_path / "key")} if store.codec.encrypted else {}


def test_gc_keeps_the_bases_of_live_deltas(store: Store, tmp_path: Path) -> None:
    _, v2 = two_versions(tmp_path, 7, 20_000)
    a = store.put_file(tmp_path / "v1")
    b = store.put_file(tmp_path / "v2", previous=a)
    (delta,) = [e for e in entries(store) if e.is_delta]
    store.put_ref("keep", b.encode())  # only v2 is referenced
    maintenance.gc(store, [], grace_seconds=3600)
    assert not store.is_doomed(delta.base)  # marked? no: v2's patch needs it
    maintenance.gc(store, [], grace_seconds=0)
    assert store.is_doomed(bytes.fromhex(a))  # v1 itself is garbage, its chunks are not
    assert store.index.get(delta.base) is not None
    fresh = open_store(f"file://{tmp_path / 'store'}", store_opts(tmp_path, store))
    assert fresh.get_bytes(b) == v2
    assert maintenance.check(fresh, read_data=True) == []
    # Once nothing needs the patch, its base goes too.
    store.delete_ref("keep")
    maintenance.gc(store, [], grace_seconds=0)
    assert store.index.get(delta.base) is None and store.index.get(delta.key) is None


def test_repacking_keeps_frames_and_deltas_readable(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path / 's'}")
    keep = [store.put_bytes(wordy(200_000, 20 + i)) for i in range(9)]
    v1 = wordy(60_000, 40)
    (tmp_path / "v1").write_bytes(v1)
    a = store.put_file(tmp_path / "v1")
    (tmp_path / "v2").write_bytes(edit(v1, 10_000, 41))
    b = store.put_file(tmp_path / "v2", previous=a)
    store.put_ref("keep", " ".join([*keep, b]).encode())
    res = maintenance.gc(store, [], grace_seconds=0)
    assert res["packs_repacked"] >= 8  # small packs merged, frames copied whole
    fresh = open_store(f"file://{tmp_path / 's'}")
    assert [fresh.get_bytes(k) for k in keep] == [wordy(200_000, 20 + i) for i in range(9)]
    assert fresh.get_bytes(b) == (tmp_path / "v2").read_bytes()
    assert maintenance.check(fresh, read_data=True) == []


def test_the_old_format_store_takes_new_writes(tmp_path: Path) -> None:
    fixture = Path(__file__).parent.parent / "data" / "store-format-1"
    shutil.copytree(fixture, tmp_path / "store")
    store = open_store(f"file://{tmp_path / 'store'}", {}, create=False)
    data = wordy(2_000_000, 9)
    oid = store.put_bytes(data)
    fresh = open_store(f"file://{tmp_path / 'store'}", {}, create=False)
    assert fresh.get_bytes(oid) == data
    assert maintenance.check(fresh, read_data=True) == []
    assert len(fresh.get_bytes(
        "c00291755914ca64974b685812c3eafd8c0fe510c6eb5bc44003b0dfcc677f97")) == 835916


def test_chunks_sent_by_clients_are_framed_too(tmp_path: Path) -> None:
    """The HTTP API's path: a client chunks locally and sends chunks, then the recipe."""
    import blake3

    from vstudio.store.chunking import FASTCDC

    store = open_store(f"file://{tmp_path / 's'}")
    data = wordy(1_000_000, 50)
    pieces = [p.data for p in FASTCDC.split_bytes(data)]
    chunks = [(blake3.blake3(p).digest(), p) for p in pieces]
    oid = blake3.blake3(data).hexdigest()
    with store.writer() as w:
        assert w.put_chunks([*chunks, chunks[0]]) == len(set(chunks))
        w.put_recipe(oid, [fmt.Entry(fmt.E_CHUNK, len(p), id=k) for k, p in chunks])
    assert sum(e.in_frame for e in entries(store)) == len(set(chunks))
    assert open_store(f"file://{tmp_path / 's'}").get_bytes(oid) == data


def test_a_file_in_big_frames_is_read_once_not_once_per_chunk(tmp_path: Path) -> None:
    """Incompressible chunks make frames a little over the ranged-read size; reading the
    file must still fetch each frame once (it fetched the whole frame for every chunk in
    it: 16.9 GB of requests to read an 80 MB file)."""
    store = open_store(f"file://{tmp_path / 's'}")
    data = random.Random(7).randbytes(12_000_000)
    path = tmp_path / "noise.bin"
    path.write_bytes(data)
    oid = store.put_file(path)
    assert any(e.in_frame and e.length > 4 << 20 for e in entries(store))
    fetched: list[int] = []
    fetch = store.packs.fetch

    def counting(pack: str, offset: int, length: int) -> bytes:
        fetched.append(length)
        return fetch(pack, offset, length)

    store.packs.fetch = counting  # type: ignore[method-assign]
    assert store.get_bytes(oid) == data
    assert sum(fetched) < len(data) * 1.1, (len(fetched), sum(fetched))
