"""Delta fallback: scattered edits to other binary files, stored against the previous version."""

from __future__ import annotations

import random
from pathlib import Path

from vstudio.store import maintenance, open_store


def stored(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def versions(tmp: Path, count: int, size: int = 1 << 20, edits: int = 200) -> list[Path]:
    """A binary file and ``count - 1`` successors, each with ``edits`` scattered 8-byte edits."""
    rnd = random.Random(5)
    data = bytearray(rnd.randbytes(size))
    out = []
    for i in range(count):
        if i:
            for _ in range(edits):
                p = rnd.randrange(size - 8)
                data[p:p + 8] = rnd.randbytes(8)
        path = tmp / f"cache-v{i}.bin"
        path.write_bytes(bytes(data))
        out.append(path)
    return out


def test_scattered_edits_cost_a_delta(tmp_path: Path) -> None:
    v1, v2 = versions(tmp_path, 2)
    root = tmp_path / "store"
    store = open_store(f"file://{root}")
    one = store.put_file(v1)
    before = stored(root)
    two = store.put_file(v2, previous=one)
    growth = stored(root) - before
    # 200 edits all over 1 MiB: every 16 KiB FastCDC chunk changes; the delta is ~ 3 KB.
    assert growth < 20_000, growth
    assert maintenance.stats(store)["chunkers"] == {"fastcdc": 1, "delta": 1}
    assert store.get_bytes(two) == v2.read_bytes()
    assert store.read_range(two, 1000, 50) == v2.read_bytes()[1000:1050]


def test_chains_are_skip_deltas(tmp_path: Path) -> None:
    paths = versions(tmp_path, 10, size=256 * 1024, edits=30)
    store = open_store(f"file://{tmp_path / 'store'}")
    ids = [store.put_file(paths[0])]
    for p in paths[1:]:
        ids.append(store.put_file(p, previous=ids[-1]))
    for oid, p in zip(ids, paths, strict=True):
        assert store.get_bytes(oid) == p.read_bytes()
    params = [store.recipe(oid).params for oid in ids[1:]]  # type: ignore[attr-defined]
    assert [p["index"] for p in params] == list(range(1, 10))
    # Version n is a delta against version n with its lowest set bit cleared.
    expect = {1: 0, 2: 0, 3: 2, 4: 0, 5: 4, 6: 4, 7: 6, 8: 0, 9: 8}
    assert {p["index"]: ids.index(p["base"]) for p in params} == expect


def test_unrelated_content_is_not_stored_as_delta(tmp_path: Path) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(random.Random(1).randbytes(300_000))
    b.write_bytes(random.Random(2).randbytes(300_000))
    store = open_store(f"file://{tmp_path / 'store'}")
    two = store.put_file(b, previous=store.put_file(a))
    assert maintenance.stats(store)["chunkers"] == {"fastcdc": 2}
    assert store.get_bytes(two) == b.read_bytes()


def test_missing_previous_and_small_files_fall_back(tmp_path: Path) -> None:
    small = tmp_path / "small.txt"
    small.write_bytes(b"hello " * 100)
    (big,) = versions(tmp_path, 1, size=200_000)
    store = open_store(f"file://{tmp_path / 'store'}")
    one = store.put_file(small, previous=store.put_file(small))
    two = store.put_file(big, previous="0" * 64)
    assert store.get_bytes(one) == small.read_bytes()
    assert store.get_bytes(two) == big.read_bytes()
    assert "delta" not in maintenance.stats(store)["chunkers"]
