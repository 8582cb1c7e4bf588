"""The writable mount's namespace (``Overlay``) and its journal, without FUSE."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from vstudio.mount.overlay import Overlay
from vstudio.mount.writecache import Pending, WriteCache
from vstudio.repo.api import Entry

BASE = {"a.txt": Entry("a.txt", "oa", 3), "shots/s1/x.blend": Entry("shots/s1/x.blend", "ox", 9),
        "shots/s1/y.png": Entry("shots/s1/y.png", "oy", 4)}


def overlay(tmp_path: Path, base: dict[str, Entry] | None = None) -> Overlay:
    files = dict(BASE if base is None else base)
    o = Overlay(WriteCache(tmp_path / "wc", 10**9), lambda rev: files, lambda: 1)
    o.refresh()
    return o


def write(o: Overlay, path: str, data: bytes) -> Pending:
    d = o.cache.new_data()
    Path(o.cache.path_of(d)).write_bytes(data)
    p = Pending(path, o.base_for(path), data=d, size=len(data))
    o.put(p)
    return p


def test_folder_rename_moves_every_file_and_keeps_bases(tmp_path: Path) -> None:
    o = overlay(tmp_path)
    o.rename("shots", "seq")
    assert [n for n, _ in o.listdir("")] == ["a.txt", "seq"]
    assert [n for n, _ in o.listdir("seq/s1")] == ["x.blend", "y.png"]
    moved = o.pending["seq/s1/x.blend"]
    assert (moved.oid, moved.base) == ("ox", None)  # no bytes copied; a new path
    assert o.pending["shots/s1/x.blend"].gone and o.pending["shots/s1/x.blend"].base == "ox"
    with pytest.raises(FileNotFoundError):
        o.lookup("shots")


def test_rm_r_leaves_folders_until_rmdir(tmp_path: Path) -> None:
    o = overlay(tmp_path)
    o.remove("shots/s1/x.blend")
    o.remove("shots/s1/y.png")
    assert o.listdir("shots/s1") == []
    with pytest.raises(OSError) as e:
        o.rmdir("shots")
    assert e.value.errno == errno.ENOTEMPTY
    o.rmdir("shots/s1")
    o.rmdir("shots")
    assert [n for n, _ in o.listdir("")] == ["a.txt"]


def test_rename_errors_are_posix(tmp_path: Path) -> None:
    o = overlay(tmp_path)
    o.mkdir("empty")
    cases = [(("a.txt", "shots"), errno.EISDIR), (("shots", "a.txt"), errno.ENOTDIR),
             (("shots", "shots/s1/in"), errno.EINVAL), (("nope", "b"), errno.ENOENT)]
    for (src, dst), code in cases:
        with pytest.raises(OSError) as e:
            o.rename(src, dst)
        assert e.value.errno == code, (src, dst)
    with pytest.raises(OSError) as e:
        o.rename("a.txt", "shots/s1/y.png", no_replace=True)
    assert e.value.errno == errno.EEXIST
    o.rename("shots/s1", "empty")  # over an empty folder
    assert [n for n, _ in o.listdir("empty")] == ["x.blend", "y.png"]


def test_journal_replays_after_a_crash(tmp_path: Path) -> None:
    o = overlay(tmp_path)
    write(o, "new.txt", b"hello")
    o.rename("a.txt", "b.txt")
    o.mkdir("local")
    unacked = o.new_file("open.txt", o.cache.new_data(), 0o644, 0.0)  # never closed
    Path(o.cache.path_of(str(unacked.data))).write_bytes(b"half")
    o.cache.close()  # the process dies here
    again = overlay(tmp_path)
    assert sorted(again.pending) == ["a.txt", "b.txt", "new.txt"]
    assert again.pending["a.txt"].gone and again.pending["b.txt"].oid == "oa"
    assert [n for n, _ in again.listdir("")] == ["b.txt", "local", "new.txt", "shots"]
    assert sorted(p.name for p in (tmp_path / "wc/data").iterdir()) == [
        str(again.pending["new.txt"].data)], "the unacknowledged file's bytes are swept"


def test_committed_drops_what_was_committed_only(tmp_path: Path) -> None:
    o = overlay(tmp_path)
    p = write(o, "a.txt", b"v2")
    q = write(o, "c.txt", b"c")
    snap = o.snapshot(lambda path: False)
    q.mode = 0o755  # chmod during the upload: still pending afterwards
    new_base = {**BASE, "a.txt": Entry("a.txt", "oa2", 2), "c.txt": Entry("c.txt", "oc", 1)}
    o.committed(2, new_base, snap)
    assert list(o.pending) == ["c.txt"] and o.pending["c.txt"].base == "oc"
    assert not Path(o.cache.path_of(str(p.data))).exists()
    assert o.lookup("a.txt") == new_base["a.txt"]


def test_full_cache_refuses_bytes(tmp_path: Path) -> None:
    cache = WriteCache(tmp_path / "wc", 100)
    cache.reserve(60)
    with pytest.raises(OSError) as e:
        cache.reserve(41)
    assert e.value.errno == errno.ENOSPC and cache.used == 60
