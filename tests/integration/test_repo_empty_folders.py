"""Empty folders are part of revisions: a working copy commits, checks out and updates
them, ``rmdir`` removes them, and a file saved in one makes it an ordinary folder.
(The mount's side is in ``test_mount_write.py``, svn-import's in ``tests/svnkit.compare``.)
"""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_repo_wc import InProcess, _studio, vs  # noqa: F401 (fixture)


def _folders(root: Path, rev: int) -> list[str]:
    from vstudio.repo import open_reader
    from vstudio.studio import Studio

    s = Studio.open(root)
    try:
        return sorted(p for p, e in open_reader(s).tree("film", rev).items() if e.is_dir)
    finally:
        s.close()


def test_working_copy_commits_checks_out_and_updates_empty_folders(
        tmp_path: Path, vs: InProcess) -> None:  # noqa: F811
    root = _studio(tmp_path, None, None)
    a, b = tmp_path / "a", tmp_path / "b"
    vs.cli("checkout", f"{root}/film", str(a))
    (a / "empty").mkdir()
    (a / "deep/er").mkdir(parents=True)
    (a / "f.txt").write_text("f")
    st = {r["path"]: r["status"] for r in vs.cli_json("status", cwd=a)}
    assert st == {"deep/er/": "added", "empty/": "added", "f.txt": "added"}
    assert vs.cli("status", cwd=a).stdout == "A  deep/er/\nA  empty/\nA  f.txt\n"
    assert vs.cli_json("commit", "-m", "folders", cwd=a)["rev"] == 1
    assert _folders(root, 1) == ["deep/er", "empty"]
    assert vs.cli_json("status", cwd=a) == []

    vs.cli("checkout", f"{root}/film", str(b))
    assert (b / "empty").is_dir() and (b / "deep/er").is_dir()
    assert vs.cli_json("status", cwd=b) == []

    (a / "empty").rmdir()
    (a / "deep/er/x.txt").write_text("x")  # no longer empty: an ordinary folder
    (a / "later").mkdir()
    assert vs.cli_json("commit", "-m", "change", cwd=a)["rev"] == 2
    assert _folders(root, 2) == ["later"]
    up = vs.cli_json("update", cwd=b)
    assert "empty/" in up["removed"] and "later/" in up["added"]
    assert not (b / "empty").exists() and (b / "later").is_dir()
    assert (b / "deep/er/x.txt").read_text() == "x"
    assert vs.cli_json("status", cwd=b) == []
    # A folder whose files are removed upstream goes from the other copy too (it would
    # otherwise show as a new empty folder there).
    (a / "deep/er/x.txt").unlink()
    (a / "deep/er").rmdir()
    (a / "deep").rmdir()
    assert vs.cli_json("commit", "-m", "rm -r deep", cwd=a)["rev"] == 3
    vs.cli("update", cwd=b)
    assert not (b / "deep").exists() and vs.cli_json("status", cwd=b) == []
    # Older revisions keep theirs.
    assert _folders(root, 1) == ["deep/er", "empty"]
