"""The mount's path logic and block reader over the in-memory fake reader (no FUSE)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vstudio.errors import CorruptObject, NotFound
from vstudio.mount.blocks import BlockCache, BlockReader
from vstudio.mount.fake import FakeReader
from vstudio.mount.view import RepoView
from vstudio.repo.api import LockInfo


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def repo() -> FakeReader:
    r = FakeReader()
    r.commit("p", {"a.txt": b"one", "art/x/y.png": b"png", "run.sh": b"#!/bin/sh\n"},
             when=1000.0, modes={"run.sh": 0o755}, author="ann")
    r.commit("p", {"a.txt": b"two"}, when=2000.0, author="bob")
    r.commit("p", {"art/x/y.png": None, "b.txt": b"bee"}, when=3000.0, author="cid")
    r.tag_map["p"] = {"v1": 1, "release": 3}
    r.lock_map["p"] = {"b.txt": LockInfo("b.txt", "cid", 3000.0)}
    return r


def test_top_level_and_revision_listing(repo: FakeReader) -> None:
    view = RepoView(repo, "p")
    assert [n for n, _ in view.listdir("/")] == ["latest", "r", "tags"]
    assert [n for n, _ in view.listdir("/r")] == ["1", "2", "3"]
    assert [n for n, _ in view.listdir("/tags")] == ["release", "v1"]
    assert [n for n, _ in view.listdir("/r/1")] == ["a.txt", "art", "run.sh"]
    assert [n for n, _ in view.listdir("/r/1/art/x")] == ["y.png"]
    assert [n for n, _ in view.listdir("/latest")] == ["a.txt", "b.txt", "run.sh"]
    assert [n for n, _ in view.listdir("/tags/v1")] == ["a.txt", "art", "run.sh"]
    assert repo.reads == []  # listings never read file content


def test_nodes_carry_committed_attributes(repo: FakeReader) -> None:
    view = RepoView(repo, "p")
    a1 = view.lookup("/r/1/a.txt")
    assert (a1.is_dir, a1.size, a1.mtime, a1.immutable) == (False, 3, 1000.0, True)
    assert view.lookup("/r/1/run.sh").mode == 0o755
    assert view.lookup("/latest/a.txt").entry.oid == view.lookup("/r/2/a.txt").entry.oid
    assert view.lookup("/latest/a.txt").immutable is False
    folder = view.lookup("/r/1/art")
    assert folder.is_dir and folder.mtime == 1000.0 and folder.mode == 0o555


@pytest.mark.parametrize("path", ["/nope", "/r/0", "/r/4", "/r/01", "/r/x", "/tags/none",
                                  "/r/3/art", "/r/1/a.txt/more", "/latest/zzz"])
def test_missing_paths_are_not_found(repo: FakeReader, path: str) -> None:
    view = RepoView(repo, "p")
    with pytest.raises(NotFound):
        view.lookup(path)


def test_unknown_project_fails_early() -> None:
    with pytest.raises(NotFound):
        RepoView(FakeReader(), "ghost")


def test_empty_project_has_empty_latest() -> None:
    r = FakeReader()
    r.revs["empty"] = []
    view = RepoView(r, "empty")
    assert view.listdir("/latest") == [] and view.listdir("/r") == []
    with pytest.raises(NotFound):
        view.lookup("/latest/a")


def test_latest_follows_new_commits_after_the_poll_interval(repo: FakeReader) -> None:
    clock = Clock()
    view = RepoView(repo, "p", poll_seconds=1.0, clock=clock)
    assert view.lookup("/latest/b.txt").size == 3
    repo.commit("p", {"c.txt": b"sea"}, when=4000.0)
    clock.now = 0.5
    with pytest.raises(NotFound):
        view.lookup("/latest/c.txt")  # still within the poll interval
    clock.now = 1.5
    assert view.lookup("/latest/c.txt").size == 3
    assert "4" in [n for n, _ in view.listdir("/r")]


def xattrs(view: RepoView, path: str) -> dict[str, bytes]:
    """What ``getfattr -d`` shows: the names FUSE's listxattr gets, with getxattr's values."""
    values = {name: view.xattr(path, name) for name in view.xattr_names(path)}
    return {name: value for name, value in values.items() if value is not None}


def test_xattrs_give_id_last_changed_rev_author_and_lock(repo: FakeReader) -> None:
    view = RepoView(repo, "p")
    x = xattrs(view, "/r/3/a.txt")  # changed in r2, viewed in r3
    assert x["user.vstudio.rev"] == b"2" and x["user.vstudio.author"] == b"bob"
    assert x["user.vstudio.id"] == view.lookup("/r/2/a.txt").entry.oid.encode()
    assert "user.vstudio.lock" not in x
    assert xattrs(view, "/latest/b.txt")["user.vstudio.lock"] == b"cid"
    assert xattrs(view, "/r/2")["user.vstudio.rev"] == b"2"


def test_siblings_after_lists_following_files(repo: FakeReader) -> None:
    view = RepoView(repo, "p")
    assert [e.path for e in view.siblings_after("/r/3/a.txt", 5)] == ["b.txt", "run.sh"]
    assert view.siblings_after("/r/3", 5) == []


def test_block_reader_reads_only_the_blocks_a_range_touches(tmp_path: Path) -> None:
    r = FakeReader()
    data = os.urandom(10 * 1000 + 7)
    r.commit("p", {"big": data})
    oid = RepoView(r, "p").lookup("/r/1/big").entry.oid
    blocks = BlockReader(r.read, BlockCache(tmp_path, 1 << 30), block_size=1000,
                         readahead_blocks=0)
    try:
        assert blocks.read(oid, len(data), 2500, 100) == data[2500:2600]
        assert r.reads == [(oid, 2000, 1000)]
        assert blocks.read(oid, len(data), 1990, 30) == data[1990:2020]
        assert sorted(r.reads) == [(oid, 1000, 1000), (oid, 2000, 1000)]
        assert blocks.read(oid, len(data), 9990, 5000) == data[9990:]
        assert blocks.read(oid, len(data), len(data), 10) == b""
    finally:
        blocks.close()


def test_disk_cache_serves_a_second_reader_and_drops_damaged_blocks(tmp_path: Path) -> None:
    r = FakeReader()
    data = os.urandom(3000)
    r.commit("p", {"f": data})
    oid = RepoView(r, "p").lookup("/r/1/f").entry.oid
    cache = BlockCache(tmp_path, 1 << 30)
    first = BlockReader(r.read, cache, block_size=1000, readahead_blocks=0)
    assert first.read(oid, 3000, 0, 3000) == data
    first.close()
    r.reads.clear()
    second = BlockReader(r.read, BlockCache(tmp_path, 1 << 30), block_size=1000)
    assert second.read(oid, 3000, 0, 3000) == data and r.reads == []
    second.close()
    # Flip a byte of one cached block: it is refetched, never served.
    victim = next(p for p in tmp_path.rglob(f"{oid}.1000.1"))
    raw = bytearray(victim.read_bytes())
    raw[-1] ^= 0xFF
    victim.write_bytes(bytes(raw))
    third = BlockReader(r.read, BlockCache(tmp_path, 1 << 30), block_size=1000)
    assert third.read(oid, 3000, 0, 3000) == data and r.reads == [(oid, 1000, 1000)]
    third.close()


def test_cache_stays_within_its_bound(tmp_path: Path) -> None:
    cache = BlockCache(tmp_path, 10_000)
    for i in range(40):
        cache.put(f"{i:02d}" + "0" * 62, os.urandom(1000))
    assert 0 < sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file()) <= 10_000


def test_store_errors_reach_the_reader_and_are_not_cached(tmp_path: Path) -> None:
    r = FakeReader()
    r.commit("p", {"f": b"x" * 100})
    oid = RepoView(r, "p").lookup("/r/1/f").entry.oid
    r.fail_oids[oid] = CorruptObject("bad chunk")
    blocks = BlockReader(r.read, BlockCache(tmp_path, 1 << 30), block_size=1000)
    try:
        with pytest.raises(CorruptObject):
            blocks.read(oid, 100, 0, 100)
        del r.fail_oids[oid]
        assert blocks.read(oid, 100, 0, 100) == b"x" * 100
    finally:
        blocks.close()


def test_short_store_read_is_an_error_not_short_data(tmp_path: Path) -> None:
    r = FakeReader()
    r.commit("p", {"f": b"x" * 100})
    oid = RepoView(r, "p").lookup("/r/1/f").entry.oid
    blocks = BlockReader(r.read, None, block_size=1000)
    try:
        with pytest.raises(CorruptObject):
            blocks.read(oid, 200, 0, 200)  # the tree claims 200 bytes, the store has 100
    finally:
        blocks.close()


def test_batched_read_ahead_checks_what_the_batch_returns(tmp_path: Path) -> None:
    r = FakeReader()
    files = {f"f{i:02d}": os.urandom(100 + i) for i in range(20)}
    r.commit("p", files)
    tree = r.tree("p", 1)
    ents = [tree[k] for k in sorted(tree)]
    asked: list[list[str]] = []

    def read_many(oids: list[str]):  # type: ignore[no-untyped-def]
        asked.append(list(oids))
        for i, oid in enumerate(oids):
            if i == 3:
                yield oid, b"wrong bytes of the right length"[: len(r.blobs[oid])]
            elif i == 5:
                continue  # not delivered at all
            elif i == 7:
                raise CorruptObject("the batch broke")
            else:
                yield oid, r.blobs[oid]

    blocks = BlockReader(r.read, BlockCache(tmp_path, 1 << 30), read_many=read_many,
                         block_size=1000)
    try:
        blocks.warm_many([(e.oid, e.size) for e in ents[:10]], min_batch=4)
        for e in ents[:10]:
            assert blocks.read(e.oid, e.size, 0, e.size) == files[e.path]
        assert len(asked) == 1 and len(asked[0]) == 10
        # the ones the batch got wrong or left out were read one by one
        single = {oid for oid, _, _ in r.reads}
        assert {ents[3].oid, ents[5].oid, ents[7].oid} <= single
        assert ents[0].oid not in single
        # nothing new is asked for until enough files are missing
        blocks.warm_many([(e.oid, e.size) for e in ents[1:12]], min_batch=4)
        assert len(asked) == 1
    finally:
        blocks.close()
