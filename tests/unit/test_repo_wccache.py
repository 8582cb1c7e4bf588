"""The folder cache of ``vstudio status``: folders unchanged since the last scan are not
listed again, yet every change (new, edited, deleted, chmod-ed file, new folder, new
ignore rule) is still found."""

from __future__ import annotations

import os
import time
from pathlib import Path

from vstudio.repo import wcindex as W
from vstudio.repo import wcscan
from vstudio.repo import wcstatus as S

OLD = time.time() - 3600  # folder mtimes older than the racy window


def _make(root: Path) -> W.Index:
    (root / W.META).mkdir()
    entries: dict[str, W.Entry] = {}
    for d in ("", "a", "a/b", "c"):
        for k in range(3):
            rel = f"{d}/f{k}.txt" if d else f"f{k}.txt"
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(rel.encode())
            s = p.stat()
            entries[rel] = (S.hash_file(str(p)), s.st_size, s.st_mtime_ns, 0o644)
    (root / "a" / "x.blend1").write_bytes(b"ignored")
    _age(root)
    idx = W.Index(rev=1, entries=entries)
    idx.save(str(root))
    return W.Index.load(str(root))


def _age(root: Path) -> None:
    for d in ("", "a", "a/b", "c"):
        os.utime(root / d if d else root, (OLD, OLD))


def _status(root: Path) -> tuple[S.Status, W.Index]:
    idx = W.Index.load(str(root))
    res = S.status(str(root), idx)
    if res.refreshed:
        idx.save(str(root))
    return res, idx


def test_clean_copy_is_answered_from_the_cache(tmp_path: Path) -> None:
    _make(tmp_path)
    res, idx = _status(tmp_path)  # makes the cache
    assert not (res.added or res.modified or res.deleted) and res.refreshed
    assert idx.dcache is not None and set(idx.dcache["dirs"]) == {"", "a", "a/b", "c"}
    idx = W.Index.load(str(tmp_path))
    scan = wcscan.walk(str(tmp_path), idx)
    assert sorted(scan.hits) == ["", "a", "a/b", "c"] and not scan.listed
    assert not scan.changed and 0 not in scan.seen
    res, _ = _status(tmp_path)
    assert not (res.added or res.modified or res.deleted) and not res.refreshed


def test_changes_are_found_through_the_cache(tmp_path: Path) -> None:
    _make(tmp_path)
    _status(tmp_path)
    (tmp_path / "a/b/new.txt").write_bytes(b"new")  # the folder's mtime moves
    (tmp_path / "c/f1.txt").write_bytes(b"edited!")
    (tmp_path / "a/f2.txt").unlink()
    os.chmod(tmp_path / "f0.txt", 0o755)  # no folder mtime change: caught by st_mode
    res, _ = _status(tmp_path)
    assert res.added == ["a/b/new.txt"]
    assert res.modified == ["c/f1.txt", "f0.txt"] and res.deleted == ["a/f2.txt"]


def test_new_folder_and_new_ignore_rule(tmp_path: Path) -> None:
    _make(tmp_path)
    _status(tmp_path)
    (tmp_path / "c" / "d").mkdir()
    (tmp_path / "c" / "d" / "deep.txt").write_bytes(b"deep")
    res, _ = _status(tmp_path)
    assert res.added == ["c/d/deep.txt"]
    # A new ignore rule invalidates the cache: the ignored file is no longer reported.
    (tmp_path / W.IGNORE_FILE).write_text("c/d/*.txt\n")
    res, _ = _status(tmp_path)
    assert res.added == [W.IGNORE_FILE]


def test_recent_folders_are_not_cached(tmp_path: Path) -> None:
    _make(tmp_path)
    os.utime(tmp_path / "c")  # changed just now: inside the racy window
    _, idx = _status(tmp_path)
    assert idx.dcache is not None and "c" not in idx.dcache["dirs"]
    assert "a" in idx.dcache["dirs"]


def test_changing_entries_drops_the_cache(tmp_path: Path) -> None:
    _make(tmp_path)
    _, idx = _status(tmp_path)
    assert idx.dcache is not None
    idx.entries.pop("c/f0.txt")
    assert idx.dcache is None
    idx.save(str(tmp_path))
    res, _ = _status(tmp_path)
    assert res.added == ["c/f0.txt"]
