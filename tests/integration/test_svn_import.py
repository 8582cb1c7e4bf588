"""svn-import of dumps made here by the real svnadmin/svn, compared file by file."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ServerProc
from tests.helpers import cli, cli_json, need
from tests.svnkit import commit, compare, dump, new_repo, svn
from vstudio.store import maintenance


@pytest.fixture(scope="module")
def svn_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, int]:
    need("svnadmin", "apt-get install subversion")
    need("svn", "apt-get install subversion")
    base = tmp_path_factory.mktemp("svn")
    repo = base / "repo"
    subprocess.run(["svnadmin", "create", str(repo)], check=True)
    url = f"file://{repo}"
    wc = base / "wc"
    svn("checkout", "-q", url, str(wc))
    t = wc / "trunk"
    (t / "sub").mkdir(parents=True)
    (t / "a.txt").write_text("alpha\n" * 100)
    (t / "img.png").write_bytes(os.urandom(150_000))
    (t / "sub" / "deep.txt").write_text("deep\n")
    (t / "tool.sh").write_text("#!/bin/sh\necho hi\n")
    (t / "shot.blend").write_bytes(b"BLENDER-v304" + os.urandom(5000))
    (wc / "empty_dir").mkdir()
    svn("add", "-q", "trunk", "empty_dir", cwd=wc)
    svn("propset", "-q", "svn:executable", "*", "trunk/tool.sh", cwd=wc)
    svn("propset", "-q", "svn:needs-lock", "*", "trunk/shot.blend", cwd=wc)
    svn("propset", "-q", "svn:mime-type", "image/png", "trunk/img.png", cwd=wc)
    svn("propset", "-q", "my:colour", "blue", "trunk/a.txt", cwd=wc)
    svn("commit", "-q", "-m", "r1: first files", "--username", "ann", cwd=wc)
    # r2: edits (a byte run inside the binary) and a file copy
    data = bytearray((t / "img.png").read_bytes())
    data[70_000:70_100] = os.urandom(100)
    (t / "img.png").write_bytes(bytes(data))
    (t / "a.txt").write_text("alpha\n" * 50 + "beta\n" + "alpha\n" * 50)
    svn("copy", "-q", "trunk/a.txt", "trunk/a_copy.txt", cwd=wc)
    svn("commit", "-q", "-m", "r2: edit and copy", "--username", "bob", cwd=wc)
    # r3: a folder copy (a branch), server side
    svn("copy", "-q", "--parents", f"{url}/trunk", f"{url}/branches/b1", "-m", "r3: branch",
        "--username", "ann")
    svn("update", "-q", cwd=wc)
    # r4: deletes (a file and a folder)
    svn("rm", "-q", "trunk/img.png", "branches/b1/sub", cwd=wc)
    svn("commit", "-q", "-m", "r4: deletes", "--username", "bob", cwd=wc)
    # r5: a replace (delete + add in one revision)
    svn("rm", "-q", "trunk/a_copy.txt", cwd=wc)
    (t / "a_copy.txt").write_text("replaced\n")
    svn("add", "-q", "trunk/a_copy.txt", cwd=wc)
    svn("commit", "-q", "-m", "r5: replace", "--username", "ann", cwd=wc)
    # r6: a revision that changes only a property of the root (no files)
    svn("update", "-q", cwd=wc)
    svn("propset", "-q", "svn:ignore", "*.tmp", ".", cwd=wc)
    svn("commit", "-q", "-m", "r6: ignore", "--username", "ann", cwd=wc)
    # r7: the copied branch edited
    (wc / "branches/b1/a.txt").write_text("branch edit\n")
    svn("commit", "-q", "-m", "r7: on the branch", "--username", "bob", cwd=wc)
    return repo, url, 7


def _dump(repo: Path, dest: Path, *extra: str) -> Path:
    with open(dest, "wb") as f:
        subprocess.run(["svnadmin", "dump", "-q", *extra, str(repo)], stdout=f, check=True)
    return dest


def _compare(studio: Path, project: str, url: str, head: int) -> None:
    compare(studio, project, url, {r: r for r in range(1, head + 1)})
    from vstudio.repo import open_reader
    from vstudio.studio import Studio

    s = Studio.open(studio)
    try:
        tree = open_reader(s).tree(project, head)
        assert tree["trunk/tool.sh"].mode == 0o755
        assert tree["trunk/a.txt"].mode == 0o644
        assert tree["empty_dir"].is_dir
    finally:
        s.close()


@pytest.mark.parametrize("deltas", [False, True], ids=["format2", "deltas"])
def test_svn_import_matches_svn_cat(tmp_path: Path, svn_repo: tuple[Path, str, int],
                                    studio_dir: Path, deltas: bool) -> None:
    repo, url, head = svn_repo
    dump = _dump(repo, tmp_path / "repo.dump", *(["--deltas"] if deltas else []))
    assert (b"SVN-fs-dump-format-version: 3" in dump.read_bytes()[:100]) == deltas
    cli("project", "create", "imp", "--studio", str(studio_dir))
    report = cli_json("svn-import", str(dump), f"{studio_dir}/imp")
    assert report["revisions"] == head and report["first"] == 1 and report["last"] == head
    assert report["lock_rules"] == ["branches/b1/shot.blend", "trunk/shot.blend"]
    joined = "\n".join(report["not_carried"])
    for what in ("svn:mime-type", "my:colour", "svn:ignore"):
        assert what in joined
    assert "empty folder" not in joined  # carried: _compare checks them revision by revision
    _compare(studio_dir, "imp", url, head)
    # r2's edit of img.png (100 bytes in 150 KB) is stored as a delta against r1's, as a
    # working copy's commit stores it, though the text fits in memory.
    from vstudio.studio import Studio

    s = Studio.open(studio_dir)
    try:
        assert maintenance.stats(s.store)["chunkers"].get("delta") == 1
    finally:
        s.close()
    # The same dump again: every revision is there already (checked) and skipped.
    again = cli_json("svn-import", str(dump), f"{studio_dir}/imp")
    assert again["revisions"] == 0 and again["skipped"] == head and again["head"] == head


def test_svn_import_bad_dumps(tmp_path: Path, svn_repo: tuple[Path, str, int],
                              studio_dir: Path) -> None:
    repo, _url, _head = svn_repo
    dump = _dump(repo, tmp_path / "repo.dump", "--deltas").read_bytes()
    cut = dump.rfind(b"Revision-number: 7")
    truncated = tmp_path / "cut.dump"
    truncated.write_bytes(dump[:cut + 400])
    cli("project", "create", "cut", "--studio", str(studio_dir))
    r = cli("svn-import", str(truncated), f"{studio_dir}/cut", check=False)
    assert r.returncode == 1 and "truncated" in r.stderr and "Traceback" not in r.stderr
    from vstudio.repo import open_reader
    from vstudio.studio import Studio

    s = Studio.open(studio_dir)
    try:
        assert open_reader(s).head("cut") == 6  # whole revisions only
    finally:
        s.close()
    garbage = tmp_path / "garbage.dump"
    garbage.write_bytes(b"hello\nworld\n")
    cli("project", "create", "junk", "--studio", str(studio_dir))
    r = cli("svn-import", str(garbage), f"{studio_dir}/junk", check=False)
    assert r.returncode == 1 and "not a Subversion dump" in r.stderr
    # Flip bytes inside a file text: the digest check (SHA-1) refuses that revision.
    plain = _dump(repo, tmp_path / "plain.dump").read_bytes()
    at = plain.index(b"alpha\nalpha")
    bad = tmp_path / "bad.dump"
    bad.write_bytes(plain[:at] + b"ALPHA" + plain[at + 5:])
    cli("project", "create", "bad", "--studio", str(studio_dir))
    r = cli("svn-import", str(bad), f"{studio_dir}/bad", check=False)
    assert r.returncode == 1 and "does not match its SHA-1" in r.stderr


def test_svn_import_through_server(tmp_path: Path, svn_repo: tuple[Path, str, int],
                                   server: ServerProc) -> None:
    repo, url, head = svn_repo
    dump = _dump(repo, tmp_path / "repo.dump", "--deltas")
    cli("project", "create", "imp", "--studio", str(server.studio))
    artist = server.add_user("art")
    r = cli("svn-import", str(dump), f"{server.url}/imp", "--token", artist, check=False)
    assert r.returncode == 1 and "admin" in r.stderr  # keeping authors and dates is an admin's
    report = cli_json("svn-import", str(dump), f"{server.url}/imp", "--token",
                      server.admin_token)
    assert report["revisions"] == head
    _compare(server.studio, "imp", url, head)


def test_rerun_of_an_imported_dump_starts_no_helpers(tmp_path: Path, studio_dir: Path) -> None:
    """A rerun whose revisions are all in the project stores no text: it starts no helper
    process (each costs a Python start-up and the store's imports, at every cron rerun),
    while the first import had helpers store its .blend texts."""
    repo, _url, wc = new_repo(tmp_path / "h")
    for i in range(1, 3):
        (wc / "s.blend").write_bytes(b"BLENDER-v304" + os.urandom(4000) + bytes([i]))
        commit(wc, f"r{i}: save")
    d = dump(repo, tmp_path / "h.dump")
    cli("project", "create", "rr", "--studio", str(studio_dir))
    first = cli_json("svn-import", str(d), f"{studio_dir}/rr")
    assert first["revisions"] == 2 and first["helpers"] >= 1
    again = cli_json("svn-import", str(d), f"{studio_dir}/rr")
    assert (again["revisions"], again["skipped"], again["helpers"]) == (0, 2, 0)
