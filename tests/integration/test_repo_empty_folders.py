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


def _project_and_copy(tmp_path: Path, vs: InProcess) -> tuple[Path, Path, Path]:  # noqa: F811
    """A studio with an empty project "film" checked out in ``a`` (``b``: for a second copy)."""
    root = _studio(tmp_path, None, None)
    vs.cli("checkout", f"{root}/film", str(tmp_path / "a"))
    return root, tmp_path / "a", tmp_path / "b"


def test_working_copy_commits_checks_out_and_updates_empty_folders(
        tmp_path: Path, vs: InProcess) -> None:  # noqa: F811
    root, a, b = _project_and_copy(tmp_path, vs)
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


def test_revert_brings_back_a_deleted_empty_folder(tmp_path: Path, vs: InProcess) -> None:  # noqa: F811
    _, a, _ = _project_and_copy(tmp_path, vs)
    (a / "empty").mkdir()
    (a / "keep/inner").mkdir(parents=True)
    (a / "keep/f.txt").write_text("f")
    vs.cli("commit", "-m", "folders", cwd=a)

    (a / "empty").rmdir()  # removed on disk
    assert vs.cli("status", cwd=a).stdout == "D  empty/\n"
    assert vs.cli("revert", "empty", cwd=a).stdout == "reverted empty/\n"
    assert (a / "empty").is_dir() and vs.cli_json("status", cwd=a) == []

    vs.cli("rm", "keep", cwd=a)  # the folder, its file and its empty subfolder
    assert not (a / "keep").exists()
    assert vs.cli("revert", "keep", cwd=a).stdout == (
        "reverted keep/f.txt\nreverted keep/inner/\n")
    assert (a / "keep/inner").is_dir() and (a / "keep/f.txt").read_text() == "f"
    assert vs.cli_json("status", cwd=a) == []

    (a / "empty").rmdir()
    (a / "keep/inner").rmdir()
    out = vs.cli("revert", ".", cwd=a / "keep").stdout  # from a subfolder: below it only
    assert out == "reverted keep/inner/\n" and not (a / "empty").exists()
    assert vs.cli("revert", ".", cwd=a).stdout == "reverted empty/\n"
    assert vs.cli_json("status", cwd=a) == []

    # An empty folder nobody committed is not versioned; a file where the folder was is
    # the user's: neither is touched, each gives one line.
    (a / "new").mkdir()
    r = vs.cli("revert", "new", cwd=a, check=False)
    assert r.returncode == 1 and "not versioned" in r.stderr and "Traceback" not in r.stderr
    (a / "empty").rmdir()
    (a / "empty").write_text("my file")
    r = vs.cli("revert", "empty", cwd=a, check=False)
    assert r.returncode == 1 and "empty" in r.stderr and len(r.stderr.splitlines()) == 1
    assert (a / "empty").read_text() == "my file"


def test_status_u_lists_folders_changed_upstream(tmp_path: Path, vs: InProcess) -> None:  # noqa: F811
    root, a, b = _project_and_copy(tmp_path, vs)
    (a / "old").mkdir()
    (a / "f.txt").write_text("f")
    vs.cli("commit", "-m", "one", cwd=a)
    vs.cli("checkout", f"{root}/film", str(b))

    (a / "new").mkdir()
    (a / "up/sub").mkdir(parents=True)  # only an empty folder in it
    (a / "full/sub").mkdir(parents=True)
    (a / "full/sub/x.txt").write_text("x")
    (a / "old").rmdir()
    vs.cli("commit", "-m", "two", cwd=a)

    rows = vs.cli_json("status", "-u", cwd=b)
    assert {r["path"]: (r["status"], r["out_of_date"]) for r in rows} == {
        "new/": ("normal", True), "full/": ("normal", True), "full/sub/": ("normal", True),
        "full/sub/x.txt": ("normal", True), "old/": ("normal", True),
        "up/": ("normal", True), "up/sub/": ("normal", True)}
    assert vs.cli("status", "-u", cwd=b).stdout == (
        "  * full/\n  * full/sub/\n  * full/sub/x.txt\n  * new/\n  * old/\n  * up/\n"
        "  * up/sub/\n")
    assert vs.cli("status", "-u", "full", cwd=b).stdout == (
        "  * full/\n  * full/sub/\n  * full/sub/x.txt\n")
    # The same folder made here too: added locally and incoming.
    (b / "new").mkdir()
    assert "A * new/\n" in vs.cli("status", "-u", cwd=b).stdout
    vs.cli("update", cwd=b)
    assert vs.cli_json("status", "-u", cwd=b) == []


def test_folder_becoming_empty_and_filled_again_commits_and_updates(
        tmp_path: Path, vs: InProcess) -> None:  # noqa: F811
    root, a, b = _project_and_copy(tmp_path, vs)
    (a / "d").mkdir()
    (a / "d/f.txt").write_text("f")
    (a / "e").mkdir()
    vs.cli("commit", "-m", "one", cwd=a)
    vs.cli("checkout", f"{root}/film", str(b))

    # d's only file goes, d stays: the folder is committed as an empty folder.
    (a / "d/f.txt").unlink()
    assert vs.cli("status", cwd=a).stdout == "A  d/\nD  d/f.txt\n"
    assert vs.cli_json("commit", "-m", "two", cwd=a)["changed"] == ["d", "d/f.txt"]
    assert _folders(root, 2) == ["d", "e"]
    assert vs.cli_json("status", cwd=a) == []
    up = vs.cli_json("update", cwd=b)
    assert (up["added"], up["removed"]) == ([], ["d/f.txt"])  # d was there all along
    assert (b / "d").is_dir() and not (b / "d/f.txt").exists()
    assert vs.cli_json("status", cwd=b) == []

    # Both stop being empty.
    (a / "d/g.txt").write_text("g")
    (a / "e/x.txt").write_text("x")
    assert vs.cli_json("commit", "-m", "three", cwd=a)["rev"] == 3
    assert _folders(root, 3) == []
    assert vs.cli_json("status", cwd=a) == []
    up = vs.cli_json("update", cwd=b)
    assert (sorted(up["added"]), up["removed"]) == (["d/g.txt", "e/x.txt"], [])
    assert vs.cli_json("status", cwd=b) == []

    # Emptied again from the other copy, committing only that folder.
    (b / "e/x.txt").unlink()
    (b / "d/g.txt").write_text("not committed yet")
    assert vs.cli_json("commit", "-m", "four", "e", cwd=b)["changed"] == ["e", "e/x.txt"]
    assert _folders(root, 4) == ["e"]
    assert vs.cli("status", cwd=b).stdout == "M  d/g.txt\n"
    up = vs.cli_json("update", cwd=a)
    assert (up["added"], up["removed"]) == ([], ["e/x.txt"])
    assert (a / "e").is_dir() and vs.cli_json("status", cwd=a) == []

    # An empty folder replaced by a file, and a file replaced by an empty folder.
    (a / "e").rmdir()
    (a / "e").write_text("now a file")
    (a / "d/g.txt").unlink()
    (a / "d/g.txt").mkdir()
    assert vs.cli("status", cwd=a).stdout == "D  d/g.txt\nA  d/g.txt/\nA  e\nD  e/\n"
    assert vs.cli_json("commit", "-m", "five", cwd=a)["rev"] == 5
    assert _folders(root, 5) == ["d/g.txt"]
    assert vs.cli_json("status", cwd=a) == []
    vs.cli("revert", "d", cwd=b)
    up = vs.cli_json("update", cwd=b)
    assert (b / "e").read_text() == "now a file" and (b / "d/g.txt").is_dir()
    assert vs.cli_json("status", cwd=b) == []
    # A folder holding something here where a file comes in: refused, nothing changed.
    (a / "d/g.txt").rmdir()
    (a / "d/g.txt").write_text("a file again")
    assert vs.cli_json("commit", "-m", "six", cwd=a)["rev"] == 6
    (b / "d/g.txt/mine.txt").write_text("mine")
    r = vs.cli("update", cwd=b, check=False)
    assert r.returncode == 1 and "folder here but a file in r6" in r.stderr
    assert len(r.stderr.splitlines()) == 1
    assert (b / "d/g.txt/mine.txt").read_text() == "mine"
    assert vs.cli_json("info", cwd=b)["rev"] == 5


def test_update_lists_each_new_nested_empty_folder(tmp_path: Path, vs: InProcess) -> None:  # noqa: F811
    root, a, b = _project_and_copy(tmp_path, vs)
    vs.cli("checkout", f"{root}/film", str(b))
    (a / "a/b/c").mkdir(parents=True)
    (a / "n/m").mkdir(parents=True)
    (a / "n/f.txt").write_text("f")
    vs.cli("commit", "-m", "nested", cwd=a)
    up = vs.cli_json("update", cwd=b)
    # As svn does: every folder the update makes, outermost first, beside the files.
    assert up["added"] == ["a/", "a/b/", "a/b/c/", "n/", "n/f.txt", "n/m/"]
    assert (b / "a/b/c").is_dir() and vs.cli_json("status", cwd=b) == []
    (a / "a/b/c/d/e").mkdir(parents=True)
    vs.cli("commit", "-m", "deeper", cwd=a)
    out = vs.cli("update", cwd=b).stdout
    assert out == "A a/b/c/d/\nA a/b/c/d/e/\nat revision 2\n"  # a/b/c was there already


def test_update_keeps_a_modified_file_that_became_a_folder_upstream(
        tmp_path: Path, vs: InProcess) -> None:  # noqa: F811
    root, a, b = _project_and_copy(tmp_path, vs)
    (a / "shot").write_text("v1")
    (a / "notes").write_text("n1")
    (a / "other.txt").write_text("o1")
    vs.cli("commit", "-m", "one", cwd=a)
    vs.cli("checkout", f"{root}/film", str(b))
    # Upstream: both files become folders (one holding a file, one empty); another
    # file changes.
    for name in ("shot", "notes"):
        (a / name).unlink()
        (a / name).mkdir()
    (a / "shot/take1.txt").write_text("take")
    (a / "other.txt").write_text("o2")
    vs.cli("commit", "-m", "folders now", cwd=a)
    # Here: both files edited, and the name the first would be put aside as is taken.
    mine = {"shot": "my edit", "notes": "my notes", "shot.mine": "someone's file"}
    for name, text in mine.items():
        (b / name).write_text(text)
    r = vs.cli("update", cwd=b)
    up = vs.cli_json("info", cwd=b)
    assert up["rev"] == 2, "the update finished"
    assert (b / "shot/take1.txt").read_text() == "take" and (b / "notes").is_dir()
    assert (b / "other.txt").read_text() == "o2"
    assert (b / "shot.mine.2").read_text() == "my edit"  # never lost
    assert (b / "shot.mine").read_text() == "someone's file"
    assert (b / "notes.mine").read_text() == "my notes"
    assert "C notes  (a folder in r2; your file kept as notes.mine)\n" in r.stdout
    assert "C shot  (a folder in r2; your file kept as shot.mine.2)\n" in r.stdout
    st = {x["path"]: x["status"] for x in vs.cli_json("status", cwd=b)}
    assert st == {"notes.mine": "added", "shot.mine": "added", "shot.mine.2": "added"}


def test_update_json_names_files_set_aside(tmp_path: Path, vs: InProcess) -> None:  # noqa: F811
    root, a, b = _project_and_copy(tmp_path, vs)
    (a / "f").write_text("v1")
    vs.cli("commit", "-m", "one", cwd=a)
    vs.cli("checkout", f"{root}/film", str(b))
    (a / "f").unlink()
    (a / "f/g").mkdir(parents=True)
    vs.cli("commit", "-m", "two", cwd=a)
    (b / "f").write_text("mine")
    up = vs.cli_json("update", cwd=b)
    assert up["tree_conflicts"] == {"f": "f.mine"} and up["kept"] == []
    assert up["added"] == ["f/", "f/g/"]
    assert (b / "f.mine").read_text() == "mine" and (b / "f/g").is_dir()
