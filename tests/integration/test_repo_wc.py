"""Two working copies on one project, embedded (no server), through the real CLI.

The same scenario runs on SQLite + a local-folder store and on PostgreSQL + the loopback
S3 server.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import cli, cli_json


def _studio(tmp_path: Path, store: str | None, db: str | None) -> Path:
    root = tmp_path / "studio"
    args = ["init", str(root)]
    if store:
        args += ["--store", store]
    if db:
        args += ["--db", db]
    cli(*args)
    cli("project", "create", "film", "--studio", str(root))
    return root


class InProcess:
    """The CLI run in this process (same code path, no interpreter start-up per call)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
        self.mp, self.capsys = monkeypatch, capsys

    def cli(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        from vstudio.cli.app import run

        self.capsys.readouterr()
        with self.mp.context() as m:
            if cwd:
                m.chdir(cwd)
            for k, v in (env or {}).items():
                m.setenv(k, v)
            m.setenv("VSTUDIO_NO_FAST_PATH", "1")
            try:
                run(list(args))
                code = 0
            except SystemExit as e:
                code = int(e.code or 0)
        out, err = self.capsys.readouterr()
        if check and code:
            raise AssertionError(f"vstudio {' '.join(args)} exited {code}: {err}")
        return subprocess.CompletedProcess(list(args), code, out, err)

    def cli_json(self, *args: str, **kw: Any) -> Any:
        return json.loads(self.cli(*args, "--json", **kw).stdout)


@pytest.fixture
def vs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcess:
    return InProcess(monkeypatch, capsys)


def run_two_copies(tmp_path: Path, url: str, env_a: dict[str, str], env_b: dict[str, str],
                   extra: tuple[str, ...] = (), runner: Any = None) -> None:
    cli_ = runner.cli if runner else cli
    cli_json_ = runner.cli_json if runner else cli_json
    a, b = tmp_path / "a", tmp_path / "b"
    co = cli_json_("checkout", url, str(a), *extra, env=env_a)
    assert co["rev"] == 0 and co["files"] == 0
    (a / "shots" / "s01").mkdir(parents=True)
    (a / "shots" / "s01" / "s01.blend").write_bytes(os.urandom(70_000))
    (a / "notes.txt").write_text("line 1\nline 2\n")
    (a / "empty.txt").write_bytes(b"")
    st = cli_json_("status", cwd=a, env=env_a)
    assert {r["path"]: r["status"] for r in st} == {
        "shots/s01/s01.blend": "added", "notes.txt": "added", "empty.txt": "added"}
    assert cli_json_("commit", "-m", "first", cwd=a, env=env_a)["rev"] == 1
    assert cli_json_("status", cwd=a, env=env_a) == []

    co = cli_json_("checkout", url, str(b), env=env_b)
    assert co == {"path": str(b), "rev": 1, "files": 3}
    assert (b / "shots/s01/s01.blend").read_bytes() == (a / "shots/s01/s01.blend").read_bytes()
    assert (b / "empty.txt").read_bytes() == b""

    # b changes notes.txt; a, out of date, changes it too: refused, naming the path.
    (b / "notes.txt").write_text("line 1\nline 2 from b\n")
    (b / "new_b.txt").write_text("b's file\n")
    assert cli_json_("commit", "-m", "b edits", cwd=b, env=env_b)["rev"] == 2
    (a / "notes.txt").write_text("line 1\nline 2 from a\n")
    refused = cli_("commit", "-m", "a edits", cwd=a, env=env_a, check=False)
    assert refused.returncode == 1
    assert "out of date" in refused.stderr and "notes.txt" in refused.stderr
    # A change to another path commits fine from an out-of-date copy.
    (a / "other.txt").write_text("a's file\n")
    assert cli_json_("commit", "-m", "a other", "other.txt", cwd=a, env=env_a)["rev"] == 3

    # update: non-conflicting changes come in, the conflict keeps both versions.
    up = cli_json_("update", cwd=a, env=env_a)
    assert up["rev"] == 3 and "new_b.txt" in up["added"]
    assert up["conflicts"] == {"notes.txt": "notes.txt.r3"}
    assert (a / "notes.txt").read_text() == "line 1\nline 2 from a\n"
    assert (a / "notes.txt.r3").read_text() == "line 1\nline 2 from b\n"
    blocked = cli_("commit", "-m", "x", cwd=a, env=env_a, check=False)
    assert blocked.returncode == 1 and "conflict" in blocked.stderr
    (a / "notes.txt.r3").unlink()
    assert cli_json_("commit", "-m", "merged by hand", cwd=a, env=env_a)["rev"] == 4

    # Locks: b locks the .blend; a cannot commit it; status/log show the holder.
    cli_("update", cwd=b, env=env_b)
    cli_("lock", "shots/s01/s01.blend", "-m", "animating", cwd=b, env=env_b)
    cli_("update", cwd=a, env=env_a)
    (a / "shots/s01/s01.blend").write_bytes(os.urandom(1000))
    locked = cli_("commit", "-m", "mine", cwd=a, env=env_a, check=False)
    assert locked.returncode == 1 and "locked by" in locked.stderr
    st = cli_json_("status", "-u", cwd=a, env=env_a)
    row = next(r for r in st if r["path"] == "shots/s01/s01.blend")
    assert row["status"] == "modified" and row["lock_owner"] == env_b["VSTUDIO_USER"]
    assert "locked: shots/s01/s01.blend by " + env_b["VSTUDIO_USER"] in cli_(
        "log", cwd=a, env=env_a).stdout
    assert "K shots/s01/s01.blend" in cli_("status", cwd=b, env=env_b).stdout
    assert cli_("lock", "shots/s01/s01.blend", cwd=a, env=env_a, check=False).returncode == 1
    cli_("revert", "shots/s01/s01.blend", cwd=a, env=env_a)
    assert cli_json_("status", cwd=a, env=env_a) == []

    (b / "shots/s01/s01.blend").write_bytes(b"b's version")
    assert cli_json_("commit", "-m", "anim", cwd=b, env=env_b)["rev"] == 5  # releases the lock
    assert "locked:" not in cli_("log", cwd=b, env=env_b).stdout

    # needs-lock rules make matching files read-only until locked.
    cli_("lock", "--rule", "*.blend", cwd=b, env=env_b)
    cli_("update", cwd=a, env=env_a)
    blend = a / "shots/s01/s01.blend"
    assert blend.read_bytes() == b"b's version"
    assert not os.stat(blend).st_mode & stat.S_IWUSR
    cli_("lock", str(blend), cwd=a, env=env_a)
    assert os.stat(blend).st_mode & stat.S_IWUSR
    cli_("unlock", str(blend), cwd=a, env=env_a)
    assert not os.stat(blend).st_mode & stat.S_IWUSR

    # History, cat at a revision, tags, diff, info.
    log = cli_json_("log", "notes.txt", cwd=a, env=env_a)
    assert [r["rev"] for r in log] == [4, 2, 1]
    assert log[-1]["author"] == env_a["VSTUDIO_USER"]
    assert cli_("cat", "notes.txt@1", cwd=a, env=env_a).stdout == "line 1\nline 2\n"
    cli_("tag", "v1", "--rev", "2", cwd=a, env=env_a)
    assert cli_("cat", "notes.txt@v1", cwd=a, env=env_a).stdout == "line 1\nline 2 from b\n"
    assert cli_("cat", "notes.txt@99", cwd=a, env=env_a, check=False).returncode == 1
    (a / "notes.txt").write_text("line 1\nline 2 from a\nline 3\n")
    d = cli_json_("diff", cwd=a, env=env_a)
    assert d == [{"path": "notes.txt", "status": "modified", "added": 1, "removed": 0,
                  "old_size": 21, "new_size": 28}]
    info = cli_json_("info", cwd=a, env=env_a)
    assert info["head"] == 5 and info["needs_lock"] == ["*.blend"] and info["tags"] == {"v1": 2}

    # mv and rm are recorded by the next commit without uploading bytes again.
    cli_("mv", "other.txt", "moved/other.txt", cwd=a, env=env_a)
    cli_("rm", "empty.txt", cwd=a, env=env_a)
    done = cli_json_("commit", "-m", "tidy", cwd=a, env=env_a)
    assert done["changed"] == ["empty.txt", "moved/other.txt", "notes.txt", "other.txt"]
    up = cli_json_("update", cwd=b, env=env_b)
    assert not (b / "empty.txt").exists() and (b / "moved/other.txt").read_text() == \
        "a's file\n"
    assert sorted(up["removed"]) == ["empty.txt", "other.txt"]

    # An older revision, and back.
    cli_("update", "--rev", "1", cwd=b, env=env_b)
    assert (b / "notes.txt").read_text() == "line 1\nline 2\n" and not (b / "new_b.txt").exists()
    cli_("update", cwd=b, env=env_b)
    assert (b / "notes.txt").read_text() == "line 1\nline 2 from a\nline 3\n"


ENV_A = {"VSTUDIO_USER": "alice"}
ENV_B = {"VSTUDIO_USER": "bob"}


def test_two_working_copies_sqlite_local_store(tmp_path: Path, vs: InProcess) -> None:
    root = _studio(tmp_path, None, None)
    run_two_copies(tmp_path, f"{root}/film", ENV_A, ENV_B, runner=vs)


def test_two_working_copies_postgres_s3(tmp_path: Path, s3_url: str, pg_url: str,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    root = _studio(tmp_path, s3_url, pg_url)
    run_two_copies(tmp_path, f"{root}/film", ENV_A, ENV_B,
                   runner=InProcess(monkeypatch, capsys))


def test_catalog_rebuild_from_bucket(tmp_path: Path, vs: InProcess) -> None:
    root = _studio(tmp_path, None, None)
    wc = tmp_path / "wc"
    vs.cli("checkout", f"{root}/film", str(wc))
    for i in range(3):
        (wc / f"f{i}.txt").write_text(str(i))
        vs.cli("commit", "-m", f"c{i}", cwd=wc)
    vs.cli("tag", "done", cwd=wc)
    # Lock state travels through the bucket too: a kept lock, an unlocked one, and one
    # a commit released.
    vs.cli("lock", "f0.txt", "-m", "mine", cwd=wc, env={"VSTUDIO_USER": "ann"})
    vs.cli("lock", "f1.txt", cwd=wc, env={"VSTUDIO_USER": "ann"})
    vs.cli("unlock", "f1.txt", cwd=wc, env={"VSTUDIO_USER": "ann"})
    vs.cli("lock", "f2.txt", cwd=wc)
    (wc / "f2.txt").write_text("changed")
    vs.cli("commit", "-m", "c3", cwd=wc)
    before = vs.cli_json("log", cwd=wc)
    (root / "catalog.db").unlink()
    for extra in ("catalog.db-wal", "catalog.db-shm"):
        (root / extra).unlink(missing_ok=True)
    report = vs.cli_json("catalog", "rebuild", "--studio", str(root))
    assert report["projects"] == {"film": 4} and report["created"] == ["film"]
    assert report["locks"] == {"film": 1}
    # what the bucket cannot give back is said, not implied
    assert "users" in report["not_restored"] and report["users"] == 0
    assert any("rights" in x for x in report["not_restored"])
    text = vs.cli("catalog", "rebuild", "--studio", str(root)).stdout
    assert "not in the store, not restored: users; tokens and sessions" in text
    assert "users in the catalog: 0: add an admin with 'vstudio user add" in text
    assert vs.cli_json("log", cwd=wc) == before
    assert vs.cli_json("info", cwd=wc)["tags"] == {"done": 3}
    from vstudio.repo import open_reader
    from vstudio.studio import Studio

    s = Studio.open(root)
    try:
        locks = open_reader(s).locks("film")
    finally:
        s.close()
    assert list(locks) == ["f0.txt"]
    assert locks["f0.txt"].owner == "ann" and locks["f0.txt"].message == "mine"
    assert vs.cli("lock", "f0.txt", cwd=wc, check=False,
                  env={"VSTUDIO_USER": "bob"}).returncode == 1


def test_bad_paths_and_inputs(tmp_path: Path, vs: InProcess) -> None:
    root = _studio(tmp_path, None, None)
    wc = tmp_path / "wc"
    vs.cli("checkout", f"{root}/film", str(wc))
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (wc / "link").symlink_to(outside)
    r = vs.cli("commit", "-m", "link", cwd=wc, check=False)
    assert r.returncode == 1 and "symbolic link" in r.stderr and "Traceback" not in r.stderr
    (wc / "link").unlink()
    r = vs.cli("cat", "../../etc/passwd@1", cwd=wc, check=False)
    assert r.returncode == 1 and "outside" in r.stderr
    r = vs.cli("cat", "/etc/passwd@HEAD", "--url", f"{root}/film", cwd=wc, check=False)
    assert r.returncode == 1 and "absolute" in r.stderr
    (wc / "A.txt").write_text("1")
    (wc / "a.txt").write_text("2")
    r = vs.cli("commit", "-m", "case", cwd=wc, check=False)
    assert r.returncode == 1 and "only by case" in r.stderr
    (wc / "a.txt").unlink()
    assert vs.cli_json("commit", "-m", "ok", cwd=wc)["rev"] == 1
    r = vs.cli("update", "--rev", "7", cwd=wc, check=False)
    assert r.returncode == 1 and "no revision 7" in r.stderr
    r = vs.cli("checkout", f"{root}/nosuch", str(tmp_path / "x"), check=False)
    assert r.returncode == 1 and "no project" in r.stderr
    r = vs.cli("commit", "-m", "x", cwd=tmp_path, check=False)
    assert r.returncode == 1 and "not in a working copy" in r.stderr.lower()
    # A lock nobody released (a stale lock) is broken with --force.
    vs.cli("lock", "A.txt", cwd=wc, env={"VSTUDIO_USER": "gone"})
    r = vs.cli("unlock", "A.txt", cwd=wc, env={"VSTUDIO_USER": "me"}, check=False)
    assert r.returncode == 1 and "--force" in r.stderr
    assert "was held by gone" in vs.cli("unlock", "A.txt", "--force", cwd=wc,
                                     env={"VSTUDIO_USER": "me"}).stdout


def test_status_fast_path_rehashes_only_changed_stat(tmp_path: Path) -> None:
    root = _studio(tmp_path, None, None)
    wc = tmp_path / "wc"
    cli("checkout", f"{root}/film", str(wc))
    (wc / "d").mkdir()
    for i in range(50):
        (wc / "d" / f"{i}.txt").write_text(f"file {i}")
    cli("commit", "-m", "many", cwd=wc)
    os.utime(wc / "d" / "3.txt", (1, 1))  # same content, new stat: not modified
    (wc / "d" / "4.txt").write_text("file X")  # same size, new content: modified
    (wc / "d" / "5.txt").unlink()
    (wc / ".vstudioignore").write_text("*.tmp\n")
    (wc / "junk.tmp").write_text("ignored")
    out = cli("status", cwd=wc).stdout
    assert out == "A  .vstudioignore\nM  d/4.txt\nD  d/5.txt\n"
    slow = cli("status", cwd=wc, env={"VSTUDIO_NO_FAST_PATH": "1"}).stdout
    assert slow == out
    fast_json = json.loads(cli("status", "--json", "d", cwd=wc).stdout)
    assert fast_json == [
        {"path": "d/4.txt", "status": "modified", "locked": False, "lock_owner": None,
         "out_of_date": False},
        {"path": "d/5.txt", "status": "deleted", "locked": False, "lock_owner": None,
         "out_of_date": False}]
    assert json.loads(cli("status", "--json", "d", cwd=wc,
                          env={"VSTUDIO_NO_FAST_PATH": "1"}).stdout) == fast_json


@pytest.mark.parametrize("n", [3])
def test_concurrent_commits_get_distinct_revisions(tmp_path: Path, n: int) -> None:
    from tests.helpers import VSTUDIO

    root = _studio(tmp_path, None, None)
    wcs = []
    for i in range(n):
        wc = tmp_path / f"wc{i}"
        cli("checkout", f"{root}/film", str(wc))
        (wc / f"file{i}.txt").write_text(str(i))
        wcs.append(wc)
    procs = [subprocess.Popen([*VSTUDIO, "commit", "-m", "race", "--json"], cwd=wc,
                              stdout=subprocess.PIPE, text=True) for wc in wcs]
    revs = sorted(json.loads(p.communicate()[0])["rev"] for p in procs)
    assert revs == list(range(1, n + 1))
    assert cli_json("update", cwd=wcs[0])["rev"] == n
    assert sorted(x.name for x in wcs[0].iterdir() if x.name.startswith("file")) == [
        f"file{i}.txt" for i in range(n)]


def test_store_gc_keeps_every_revision(tmp_path: Path, vs: InProcess) -> None:
    from vstudio.repo import open_reader
    from vstudio.studio import Studio

    root = _studio(tmp_path, None, None)
    wc = tmp_path / "wc"
    vs.cli("checkout", f"{root}/film", str(wc))
    (wc / "d").mkdir()
    (wc / "d" / "a.bin").write_bytes(os.urandom(200_000))
    (wc / "b.txt").write_text("b")
    vs.cli("commit", "-m", "one", cwd=wc)
    (wc / "d" / "a.bin").write_bytes(os.urandom(100_000))
    vs.cli("commit", "-m", "two", cwd=wc)
    (wc / "b.txt").unlink()
    vs.cli("commit", "-m", "three", cwd=wc)
    s = Studio.open(root)
    try:
        s.store.put_bytes(b"garbage nobody references " * 100)
    finally:
        s.close()
    first = vs.cli_json("store", "gc", "--grace", "0", "--studio", str(root))
    assert first["packs_deleted"] + first["doomed_objects"] >= 1  # the garbage goes
    vs.cli_json("store", "gc", "--grace", "0", "--studio", str(root))
    assert vs.cli("store", "check", "--studio", str(root)).returncode == 0
    s = Studio.open(root)
    try:
        reader = open_reader(s)
        for rev in (1, 2, 3):
            for e in reader.tree("film", rev).values():
                assert len(reader.read(e.oid, 0, e.size + 1)) == e.size
    finally:
        s.close()


class _Sabotage:
    """A progress callback that deletes or edits the next file while a commit uploads."""

    def __init__(self, victim: Path, action: str) -> None:
        self.victim, self.action, self.fired = victim, action, False

    def start(self, total: int, label: str = "") -> None:
        pass

    def advance(self, amount: int) -> None:
        if not self.fired:
            self.fired = True
            if self.action == "delete":
                self.victim.unlink()
            else:
                self.victim.write_text("edited while committing, longer than before")

    def done(self) -> None:
        pass


@pytest.mark.parametrize("action,message", [("delete", "vanished"),
                                            ("edit", "changed during the commit")])
def test_file_vanishing_or_changing_during_commit(tmp_path: Path, vs: InProcess,
                                                  action: str, message: str) -> None:
    from vstudio.cli.repos import open_wc
    from vstudio.errors import VStudioError
    from vstudio.repo.wccommit import commit

    root = _studio(tmp_path, None, None)
    wc_dir = tmp_path / "wc"
    vs.cli("checkout", f"{root}/film", str(wc_dir))
    (wc_dir / "a.txt").write_text("a")
    (wc_dir / "b.txt").write_text("b")
    wc = open_wc(str(wc_dir))
    try:
        with pytest.raises(VStudioError, match=message):
            commit(wc, "racy", progress=_Sabotage(wc_dir / "b.txt", action))
        assert wc.backend.head() == 0  # no partial revision
    finally:
        wc.backend.close()


def test_update_edge_cases(tmp_path: Path, vs: InProcess) -> None:
    root = _studio(tmp_path, None, None)
    a, b = tmp_path / "a", tmp_path / "b"
    vs.cli("checkout", f"{root}/film", str(a))
    for name in ("gone.txt", "same.txt", "mine.txt"):
        (a / name).write_text(name)
    vs.cli("commit", "-m", "one", cwd=a)
    vs.cli("checkout", f"{root}/film", str(b))
    # upstream: remove gone.txt and mine.txt, change same.txt, add new.txt
    (a / "gone.txt").unlink()
    (a / "mine.txt").unlink()
    (a / "same.txt").write_text("both sides")
    (a / "new.txt").write_text("upstream new")
    vs.cli("commit", "-m", "two", cwd=a)
    # locally: edit mine.txt (removed upstream), make the same edit to same.txt, and create
    # an unversioned new.txt with other content
    (b / "mine.txt").write_text("my edit")
    (b / "same.txt").write_text("both sides")
    (b / "new.txt").write_text("my own new")
    up = vs.cli_json("update", cwd=b)
    assert up["removed"] == ["gone.txt"] and not (b / "gone.txt").exists()
    assert up["kept"] == ["mine.txt"] and (b / "mine.txt").read_text() == "my edit"
    assert up["conflicts"] == {"new.txt": "new.txt.r2"}
    assert (b / "new.txt").read_text() == "my own new"
    assert (b / "new.txt.r2").read_text() == "upstream new"
    st = {r["path"]: r["status"] for r in vs.cli_json("status", cwd=b)}
    assert st == {"mine.txt": "added", "new.txt": "conflicted"}  # same.txt merged cleanly
    (b / "new.txt.r2").unlink()
    assert vs.cli_json("commit", "-m", "resolved", cwd=b)["rev"] == 3
    assert vs.cli("cat", "new.txt@3", cwd=b).stdout == "my own new"
