"""The store over every backend: round trips, dedup, refs, corruption, encryption, gc."""

from __future__ import annotations

import os
import random
import uuid
from pathlib import Path

import blake3
import pytest

from vstudio.errors import BadInput, CorruptObject, DecryptionError, ObjectMissing
from vstudio.store import maintenance, open_store
from vstudio.store.api import ObjectStore


@pytest.fixture(params=["memory", "local", "s3"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return f"memory://{uuid.uuid4().hex}"
    if request.param == "local":
        return f"file://{tmp_path / 'store'}"
    return str(request.getfixturevalue("s3_url"))


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> ObjectStore:
    return open_store(store_url, {}, cache_dir=tmp_path / "cache")


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_round_trip_files_of_all_sizes(store: ObjectStore, tmp_path: Path) -> None:
    rnd = random.Random(1)
    for size in (0, 1, 100, 5000, 70_000, 3_000_000):
        data = rnd.randbytes(size)
        oid = store.put_file(_file(tmp_path / f"f{size}", data))
        assert oid == blake3.blake3(data).hexdigest()
        assert store.has(oid) and store.size(oid) == size
        assert store.get_bytes(oid) == data
        store.get_file(oid, tmp_path / f"out{size}")
        assert (tmp_path / f"out{size}").read_bytes() == data
        for off, ln in ((0, 10), (size // 2, 70_000), (max(0, size - 5), 100)):
            assert store.read_range(oid, off, ln) == data[off:off + ln]


def test_big_file_has_two_level_recipe_and_ranges(store: ObjectStore, tmp_path: Path) -> None:
    data = random.Random(2).randbytes(6 << 20)  # > 128 chunks: segments
    oid = store.put_file(_file(tmp_path / "big", data))
    r = store.recipe(oid)  # type: ignore[attr-defined]
    assert r is not None and all(e.type == 1 for e in r.entries)
    for off in (0, 1 << 20, (6 << 20) - 1000):
        assert store.read_range(oid, off, 300_000) == data[off:off + 300_000]


def test_dedup_and_writer_batch(store: ObjectStore, tmp_path: Path) -> None:
    data = random.Random(3).randbytes(2 << 20)
    with store.writer() as w:
        a = w.put_file(_file(tmp_path / "a", data))
        b = w.put_bytes(data)
        small = [w.put_bytes(f"small {i}".encode()) for i in range(200)]
    assert a == b
    before = maintenance.stats(store)
    assert before["packs"] == 1  # 200 small objects and a 2 MiB file: one pack
    store.put_file(tmp_path / "a")
    after = maintenance.stats(store)
    assert after["stored_bytes"] - before["stored_bytes"] < 2000
    assert store.get_bytes(small[7]) == b"small 7"


def test_refs(store: ObjectStore) -> None:
    store.put_ref("repo/p/head", b"1")
    store.put_ref("repo/p/head", b"2")
    assert store.get_ref("repo/p/head") == b"2"
    assert store.create_ref("x", b"a") and not store.create_ref("x", b"b")
    assert store.list_refs("repo/") == ["repo/p/head"]
    store.delete_ref("x")
    with pytest.raises(ObjectMissing):
        store.get_ref("x")
    for bad in ("../x", "/abs", "a//b", ""):
        with pytest.raises(BadInput):
            store.put_ref(bad, b"")


def test_unknown_and_malformed_ids(store: ObjectStore) -> None:
    with pytest.raises(ObjectMissing, match="no object"):
        store.get_bytes("ab" * 32)
    with pytest.raises(BadInput):
        store.size("xyz")
    assert not store.has("cd" * 32)


def test_other_process_writes_are_seen(store_url: str, tmp_path: Path) -> None:
    one = open_store(store_url, {}, cache_dir=tmp_path / "c1")
    two = open_store(store_url, {}, cache_dir=tmp_path / "c2")
    oid = one.put_bytes(b"written by one")
    assert two.get_bytes(oid) == b"written by one"


def _corrupt_a_pack(root: Path) -> None:
    packs = [p for p in (root / "packs").rglob("*") if p.is_file()]
    raw = bytearray(packs[0].read_bytes())
    raw[10] ^= 0xFF
    packs[0].write_bytes(bytes(raw))


def test_corrupt_pack_is_detected(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path / 's'}", {})
    data = random.Random(4).randbytes(300_000)
    oid = store.put_bytes(data)
    _corrupt_a_pack(tmp_path / "s")
    fresh = open_store(f"file://{tmp_path / 's'}", {})
    with pytest.raises(CorruptObject, match="pack"):
        fresh.get_bytes(oid)
    problems = maintenance.check(fresh, read_data=True)
    assert any("corrupt" in p for p in problems)
    assert maintenance.check(fresh, read_data=False) == []


def test_encryption_hides_plain_ids_and_needs_the_key(tmp_path: Path) -> None:
    key = tmp_path / "key"
    url = f"file://{tmp_path / 'enc'}"
    store = open_store(url, {"key_file": str(key)})
    assert key.stat().st_size == 32
    data = b"secret frame " * 1000
    oid = store.put_bytes(data)
    store.put_ref("r", oid.encode())
    everything = b"".join(p.read_bytes() for p in (tmp_path / "enc").rglob("*") if p.is_file())
    assert oid.encode() not in everything and bytes.fromhex(oid) not in everything
    assert b"secret frame" not in everything
    assert open_store(url, {"key_file": str(key)}).get_bytes(oid) == data
    other = tmp_path / "other"
    other.write_bytes(os.urandom(32))
    with pytest.raises(DecryptionError, match="wrong"):
        open_store(url, {"key_file": str(other)})
    with pytest.raises(DecryptionError, match="encrypted"):
        open_store(url, {})


def test_passphrase_encryption(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"file://{tmp_path / 'pp'}"
    monkeypatch.setenv("VSTUDIO_STORE_PASSPHRASE", "correct horse")
    oid = open_store(url, {"encryption": "passphrase"}).put_bytes(b"x" * 100)
    assert open_store(url, {}).get_bytes(oid) == b"x" * 100
    monkeypatch.setenv("VSTUDIO_STORE_PASSPHRASE", "wrong horse")
    with pytest.raises(DecryptionError):
        open_store(url, {})


def test_gc_keeps_referenced_and_removes_the_rest(store: ObjectStore, tmp_path: Path) -> None:
    rnd = random.Random(5)
    keep = store.put_bytes(rnd.randbytes(200_000))
    drop = store.put_bytes(rnd.randbytes(200_000))
    live_only = store.put_bytes(rnd.randbytes(1000))
    store.put_ref("keep", f"tree {keep}\n".encode())
    # With a grace period nothing young is deleted, only marked.
    res = maintenance.gc(store, [live_only], grace_seconds=3600)
    assert res["packs_deleted"] == 0 and store.get_bytes(drop)
    assert not store.has(drop)  # doomed: a client that asks uploads it again
    res = maintenance.gc(store, [live_only], grace_seconds=0)
    assert res["packs_deleted"] == 1
    assert not store.has(drop)
    assert store.get_bytes(keep) and store.get_bytes(live_only)
    assert maintenance.check(store) == []


def test_doomed_blobs_are_stored_afresh(store: ObjectStore) -> None:
    data = random.Random(6).randbytes(100_000)
    oid = store.put_bytes(data)
    maintenance.gc(store, [], grace_seconds=3600)  # marks it: nothing references it
    again = store.put_bytes(data)  # a writer must not lean on a doomed copy
    store.put_ref("now-kept", again.encode())
    maintenance.gc(store, [], grace_seconds=0)
    assert store.get_bytes(oid) == data


def test_gc_repacks_mostly_dead_packs(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url, {}, cache_dir=tmp_path / "c1")
    rnd = random.Random(8)
    with store.writer() as w:  # one pack holding both
        big = w.put_bytes(rnd.randbytes(1_000_000))
        small = w.put_bytes(rnd.randbytes(50_000))
    reader = open_store(store_url, {}, cache_dir=tmp_path / "c2")  # knows the old pack
    assert reader.size(small) == 50_000
    store.put_ref("keep", small.encode())
    before = maintenance.stats(store)["stored_bytes"]
    res = maintenance.gc(store, [], grace_seconds=0)
    assert res["packs_repacked"] == 1 and res["packs_deleted"] == 0
    assert maintenance.stats(store)["stored_bytes"] < before - 900_000
    assert not store.has(big)
    assert reader.get_bytes(small) == store.get_bytes(small)  # follows the move
    assert maintenance.check(store, read_data=True) == []


def test_gc_merges_many_small_packs(store: ObjectStore) -> None:
    oids = [store.put_bytes(f"object {i}".encode() * 100) for i in range(10)]
    store.put_ref("all", " ".join(oids).encode())
    assert maintenance.stats(store)["packs"] == 10
    res = maintenance.gc(store, [], grace_seconds=0)
    assert res["packs_repacked"] == 10
    assert maintenance.stats(store)["packs"] == 1
    assert [store.get_bytes(o) for o in oids] == [f"object {i}".encode() * 100
                                                   for i in range(10)]


def test_data_without_config_is_not_silently_reinitialised(tmp_path: Path) -> None:
    from vstudio.errors import StoreError

    url = f"file://{tmp_path / 's'}"
    open_store(url, {}).put_bytes(b"precious")
    (tmp_path / "s" / "config").unlink()
    with pytest.raises(StoreError, match="no 'config'"):
        open_store(url, {})
