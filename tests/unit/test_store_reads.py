"""Range reads of transformed files rebuild once; ``read_many`` batches small files."""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest

from vstudio.store import chunking, open_store
from vstudio.store.chunking import Piece, Split


class Deflated:
    """A toy format-aware chunker: a zlib file kept as its decoded bytes, re-deflated."""

    name = "deflated"

    def detect(self, head: bytes) -> bool:
        return head[:1] == b"\x78"

    def split(self, path: Path) -> Split:
        plain = zlib.decompress(path.read_bytes())
        return Split([Piece(plain[i:i + 50_000]) for i in range(0, len(plain), 50_000)],
                     transform="test-zlib", params={"level": 6})


@pytest.fixture
def deflated(monkeypatch: pytest.MonkeyPatch) -> None:
    chunking._load_plugins()
    monkeypatch.setattr(chunking, "_CHUNKERS", [])
    monkeypatch.setattr(chunking, "_TRANSFORMS", dict(chunking._TRANSFORMS))

    def factory(params: dict[str, Any], source: Any) -> Any:
        def encode(chunks: Iterator[bytes]) -> Iterator[bytes]:
            yield zlib.compress(b"".join(chunks), params["level"])

        return encode

    chunking.register_transform("test-zlib")(factory)
    chunking.register_chunker(Deflated)


def _zfile(tmp_path: Path, name: str = "z") -> tuple[Path, bytes]:
    rnd = random.Random(3)
    text = b"".join(b"line %d %d\n" % (i, rnd.randrange(1000)) for i in range(200_000))
    data = zlib.compress(text, 6)
    p = tmp_path / name
    p.write_bytes(data)
    return p, data


@pytest.mark.parametrize("cached", [True, False])
def test_range_reads_of_a_transformed_file_rebuild_it_once(
        deflated: None, tmp_path: Path, cached: bool) -> None:
    p, data = _zfile(tmp_path)
    store: Any = open_store(f"file://{tmp_path / 'store'}",
                            cache_dir=tmp_path / "cache" if cached else None)
    oid = store.put_file(p)
    assert store.recipe(oid).transform == "test-zlib"
    block = 64 * 1024
    for off in range(0, len(data), block):  # the mount's block reads, front to back
        assert store.read_range(oid, off, block) == data[off:off + block]
    assert store.read_range(oid, len(data) - 10, 100) == data[-10:]
    assert store.read_range(oid, len(data) + 5, 10) == b""
    assert store.rebuilt.builds == 1
    if cached:
        # A new process reuses the folder; a damaged cached copy (wrong size) is rebuilt.
        again: Any = open_store(f"file://{tmp_path / 'store'}", cache_dir=tmp_path / "cache")
        assert again.read_range(oid, 1000, 50) == data[1000:1050]
        assert again.rebuilt.builds == 0
        (f,) = (tmp_path / "cache" / "store-rebuilt").rglob(oid)
        f.write_bytes(b"short")
        assert again.read_range(oid, 1000, 50) == data[1000:1050]
        assert again.rebuilt.builds == 1


def test_rebuilt_folder_stays_bounded(deflated: None, tmp_path: Path) -> None:
    store: Any = open_store(f"file://{tmp_path / 'store'}", cache_dir=tmp_path / "cache")
    ids = []
    for i in range(3):
        p, _ = _zfile(tmp_path, f"z{i}")
        p.write_bytes(zlib.compress(zlib.decompress(p.read_bytes()) + b"%d" % i, 6))
        ids.append(store.put_file(p))
    size = store.size(ids[0])
    store.rebuilt.disk_limit = int(size * 2.5)
    for oid in ids:
        store.read_range(oid, 0, 10)
    kept = [f for f in (tmp_path / "cache" / "store-rebuilt").rglob("*") if f.is_file()]
    assert len(kept) == 2 and ids[0] not in {f.name for f in kept}


def test_read_many_batches_small_files_and_skips_damage(deflated: None,
                                                        tmp_path: Path) -> None:
    store: Any = open_store(f"file://{tmp_path / 'store'}")
    rnd = random.Random(5)
    files: dict[str, bytes] = {}
    with store.writer() as w:
        for i in range(60):  # small files, some of several chunks
            data = rnd.randbytes(rnd.choice([10, 3000, 40_000, 150_000]))
            p = tmp_path / f"f{i}"
            p.write_bytes(data)
            files[w.put_file(p)] = data
    zp, zdata = _zfile(tmp_path)
    small_z = zlib.compress(zlib.decompress(zdata)[:100_000], 6)
    zp.write_bytes(small_z)
    zid = store.put_file(zp)  # a transformed file: read the usual way, still included
    calls: list[str] = []
    real = store.backend.get_range
    store.backend.get_range = lambda name, o, n: calls.append(name) or real(name, o, n)
    got = dict(store.read_many([*files, zid, "ab" * 32]))
    assert got == {**files, zid: small_z}
    assert len(calls) <= 8, len(calls)
    # Damage the middle of the only data pack: what is read is right, the rest left out.
    (pack,) = [f for f in (tmp_path / "store" / "packs").rglob("*") if f.is_file()
               and f.stat().st_size > 1_000_000]
    raw = bytearray(pack.read_bytes())
    for i in range(len(raw) // 2, len(raw) // 2 + 64):
        raw[i] ^= 0xFF
    pack.write_bytes(bytes(raw))
    got = dict(store.read_many(list(files)))
    assert got and len(got) < len(files)
    assert all(blake3.blake3(d).hexdigest() == oid for oid, d in got.items())


def test_range_pieces_are_checked_by_the_client(deflated: None, tmp_path: Path) -> None:
    from vstudio.errors import CorruptObject
    from vstudio.store.reads import parse_pieces, range_pieces

    store: Any = open_store(f"file://{tmp_path / 'store'}")
    data = random.Random(9).randbytes(3_000_000)  # ~190 chunks: a recipe with segments
    big = store.put_bytes(data)
    small = store.put_bytes(b"tiny file")
    rnd = random.Random(2)
    for oid, content in ((big, data), (small, b"tiny file")):
        for _ in range(30):
            off = rnd.randrange(len(content) + 10)
            n = rnd.choice([0, 1, 100, 70_000, 4 << 20])
            body = range_pieces(store, oid, off, n)
            assert body is not None
            assert parse_pieces(body, oid, off, n) == content[off:off + n]
    body = bytearray(range_pieces(store, big, 1_000_000, 50_000) or b"")
    body[len(body) // 2] ^= 1  # a server (or proxy) that changed a byte
    with pytest.raises(CorruptObject):
        parse_pieces(bytes(body), big, 1_000_000, 50_000)
    with pytest.raises(CorruptObject):
        parse_pieces(bytes(body[:-7]), big, 1_000_000, 50_000)
    p, _ = _zfile(tmp_path)
    assert range_pieces(store, store.put_file(p), 0, 10) is None  # transformed


def test_server_checks_a_recipe_from_the_chunks_it_just_received(tmp_path: Path) -> None:
    from vstudio.errors import BadInput
    from vstudio.store import format as fmt

    store: Any = open_store(f"file://{tmp_path / 'store'}")
    data = random.Random(6).randbytes(400_000)
    pieces = [data[i:i + 20_000] for i in range(0, len(data), 20_000)]
    keys = [blake3.blake3(p).digest() for p in pieces]
    with store.writer() as w:  # as the chunk upload route does: a batch of its own
        assert w.put_chunks(zip(keys, pieces, strict=True)) == len(pieces)
    opened: list[str] = []
    real = store.packs.open_blob
    store.packs.open_blob = lambda pack, e, stored: opened.append(pack) or real(pack, e, stored)
    entries = [fmt.Entry(fmt.E_CHUNK, len(p), id=k) for p, k in zip(pieces, keys, strict=True)]
    oid = blake3.blake3(data).hexdigest()
    with store.writer() as w:
        with pytest.raises(BadInput):
            w.put_recipe("ab" * 32, entries)
        assert w.put_recipe(oid, entries) == oid
    assert opened == [] and store.recent.hits >= 2 * len(pieces)
    assert store.get_bytes(oid) == data
