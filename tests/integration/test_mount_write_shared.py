"""``vstudio mount --write`` among other writers: locks, conflicts, others' commits."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import cli, need, wait_for
from tests.integration.test_mount_write import (
    WMount,
    folders,
    mount_w,
    new_studio,
    repo,
    unmount,
    wait_head,
)


def test_needs_lock_files_are_read_only_without_the_lock(tmp_path: Path) -> None:
    studio = new_studio(tmp_path)
    wc = tmp_path / "wc"
    env = {"VSTUDIO_USER": "alice"}
    cli("checkout", f"{studio}/p", str(wc), env=env)
    (wc / "s.blend").write_bytes(b"BLENDER-v300 scene")
    (wc / "other.blend").write_bytes(b"BLENDER-v300 other")
    (wc / "a.txt").write_text("free")
    cli("commit", "-m", "one", cwd=wc, env=env)
    cli("lock", "--rule", "*.blend", cwd=wc, env=env)
    cli("lock", "other.blend", cwd=wc, env={"VSTUDIO_USER": "bob"})
    m = mount_w(studio, tmp_path / "mnt", tmp_path / "cache", "alice", "--settle", "0.5")
    try:
        blend = m.latest / "s.blend"
        assert blend.stat().st_mode & 0o222 == 0
        assert (m.latest / "a.txt").stat().st_mode & 0o200
        for attempt in (lambda: open(blend, "r+b"),  # noqa: SIM115 - it must fail
                        lambda: os.rename(m.latest / "a.txt", blend),
                        lambda: os.unlink(blend)):
            with pytest.raises(PermissionError):
                attempt()
        assert not os.access(blend, os.W_OK)
        (m.latest / "a.txt").write_text("still free")
        # Someone else's lock cannot be taken through the mount.
        with pytest.raises(OSError) as e:
            os.setxattr(m.latest / "other.blend", "user.vstudio.lock", b"mine")
        assert e.value.errno == errno.EBUSY
        os.setxattr(blend, "user.vstudio.lock", b"lighting")
        assert os.getxattr(blend, "user.vstudio.lock") == b"alice"
        blend.write_bytes(b"BLENDER-v300 scene, lit")
        wait_head(studio, 2)
        _, files, log = repo(studio)
        assert files["s.blend"] == b"BLENDER-v300 scene, lit"
        assert files["a.txt"] == b"still free"
        assert log[0] == ("alice", "mount: 2 files saved by alice")
        out = cli("log", cwd=wc, env=env).stdout
        assert "s.blend" in out and "alice" in out  # the lock is kept after the commit
        os.removexattr(blend, "user.vstudio.lock")
        wait_for(lambda: blend.stat().st_mode & 0o222 == 0, 10, "s.blend to be read-only")
    finally:
        unmount(m)


def test_two_users_saving_one_file_keep_both_versions(tmp_path: Path) -> None:
    studio = new_studio(tmp_path)
    ann = mount_w(studio, tmp_path / "m1", tmp_path / "cache", "ann", "--settle", "0.5")
    bob = mount_w(studio, tmp_path / "m2", tmp_path / "cache", "bob", "--settle", "4")
    try:
        (ann.latest / "a.txt").write_text("base")
        wait_head(studio, 1)
        wait_for(lambda: (bob.latest / "a.txt").read_text() == "base", 10,
                 "ann's commit to reach bob's mount")
        (bob.latest / "a.txt").write_text("bob's version")
        (ann.latest / "a.txt").write_text("ann's version")
        wait_head(studio, 3)
        head, files, log = repo(studio)
        assert head == 3
        assert files["a.txt"] == b"ann's version"
        assert files["a.txt.conflict-bob-r2"] == b"bob's version"
        assert log[0][0] == "bob"
        assert "a.txt changed in r2: saved as a.txt.conflict-bob-r2" in log[0][1]
        wait_for(lambda: (bob.latest / "a.txt").read_text() == "ann's version", 10,
                 "bob's mount to show ann's version")
        assert (bob.latest / "a.txt.conflict-bob-r2").read_text() == "bob's version"
    finally:
        unmount(ann)
        unmount(bob)


def test_a_commit_from_a_working_copy_appears_in_the_mount(tmp_path: Path) -> None:
    studio = new_studio(tmp_path)
    m = mount_w(studio, tmp_path / "mnt", tmp_path / "cache", "alice", "--settle", "0.5")
    try:
        (m.latest / "mine.txt").write_text("from the mount")
        (m.latest / "d").mkdir()
        (m.latest / "d/a.txt").write_text("a")
        wait_head(studio, 1)
        wc = tmp_path / "wc"
        cli("checkout", f"{studio}/p", str(wc), env={"VSTUDIO_USER": "carl"})
        assert (wc / "mine.txt").read_text() == "from the mount"
        # carl removes the folder the mount made: the mount follows, never remakes it
        (wc / "d/a.txt").unlink()
        (wc / "d").rmdir()
        cli("commit", "-m", "rm d", cwd=wc, env={"VSTUDIO_USER": "carl"})
        wait_for(lambda: not (m.latest / "d").exists(), 10, "d/ to go from latest/")
        (m.latest / "mine2.txt").write_text("again")
        wait_head(studio, 3)
        assert repo(studio)[2][0] == ("alice", "mount: 1 file saved by alice")
        assert folders(studio) == []
        (wc / "shots").mkdir()
        (wc / "shots/new.txt").write_text("from a working copy")
        cli("commit", "-m", "carl's", cwd=wc, env={"VSTUDIO_USER": "carl"})
        wait_for(lambda: (m.latest / "shots/new.txt").read_text() == "from a working copy",
                 10, "the working copy's commit in latest/")
        assert (m.latest / "mine.txt").read_text() == "from the mount"
    finally:
        unmount(m)


def test_write_through_the_server(server: Any, tmp_path: Path) -> None:
    need("fusermount3", "apt-get install fuse3")
    cli("project", "create", "p", "--studio", str(server.studio))
    token = server.add_user("dana")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    out = cli("mount", f"{server.url}/p", str(mnt), "--write", "--settle", "0.5",
              "--cache", str(tmp_path / "cache"), env={"VSTUDIO_TOKEN": token}).stdout
    pid = int(re.search(r"pid (\d+)", out).group(1))  # type: ignore[union-attr]
    m = WMount(server.studio, mnt, tmp_path / "cache", pid, "dana")
    big = os.urandom(3 * 1024 * 1024 + 5)
    try:
        (m.latest / "shots").mkdir()
        (m.latest / "shots/plate.bin").write_bytes(big)
        for i in range(30):
            (m.latest / f"f{i}.txt").write_text(f"small {i}")
        wait_head(server.studio, 1)
        os.rename(m.latest / "shots/plate.bin", m.latest / "plate.bin")  # no bytes again
        (m.latest / "f0.txt").unlink()
        wait_head(server.studio, 2)
        _, files, log = repo(server.studio)
        assert files["plate.bin"] == big and "shots/plate.bin" not in files
        assert {p for p in files if p.startswith("f")} == {f"f{i}.txt" for i in range(1, 30)}
        # shots/ is left empty in the mount, so it stays in the revision (through HTTP)
        assert log[0] == ("dana", "mount: 1 file saved, 2 files removed, 1 folder made by dana")
        assert folders(server.studio) == ["shots"]
        assert log[1] == ("dana", "mount: 31 files saved by dana")
    finally:
        unmount(m)


def test_vstudio_lock_and_unlock_work_on_mount_paths(tmp_path: Path) -> None:
    studio = new_studio(tmp_path)
    wc = tmp_path / "wc"
    cli("checkout", f"{studio}/p", str(wc), env={"VSTUDIO_USER": "alice"})
    (wc / "shots").mkdir()
    (wc / "shots/s.blend").write_bytes(b"BLENDER-v300 scene")
    (wc / "other.blend").write_bytes(b"BLENDER-v300 other")
    cli("commit", "-m", "one", cwd=wc, env={"VSTUDIO_USER": "alice"})
    cli("lock", "--rule", "*.blend", cwd=wc, env={"VSTUDIO_USER": "alice"})
    cli("lock", "other.blend", cwd=wc, env={"VSTUDIO_USER": "bob"})
    m = mount_w(studio, tmp_path / "mnt", tmp_path / "cache", "alice", "--settle", "0.5")
    outside = {"VSTUDIO_USER": "nobody"}  # the mount's user counts, not the caller's
    try:
        blend = m.latest / "shots/s.blend"
        assert blend.stat().st_mode & 0o222 == 0
        # From inside the mount, with a relative path, as a user in a shell would.
        out = cli("lock", "s.blend", "-m", "lighting", cwd=m.latest / "shots", env=outside)
        assert out.stdout.strip() == "locked shots/s.blend (alice)"
        assert blend.stat().st_mode & 0o200  # writable when the command returns
        assert os.getxattr(blend, "user.vstudio.lock") == b"alice"
        blend.write_bytes(b"BLENDER-v300 scene, lit")
        wait_head(studio, 2)
        assert repo(studio)[1]["shots/s.blend"] == b"BLENDER-v300 scene, lit"
        # Bad inputs: one line, exit 1, nothing changed.
        for args, want in (
                (("lock", str(m.latest / "other.blend")), "other.blend is locked by bob"),
                (("lock", str(m.mnt / "r/1/other.blend")), "only files under"),
                (("lock", str(m.latest / "nope.blend")), "no such file"),
                (("lock", str(m.latest / "shots")), "is a folder"),
                (("unlock", str(m.latest / "other.blend")), "locked by bob, not alice"),
                (("lock", str(m.latest / "shots/s.blend"), "--rule", "*.kra"), "--rule")):
            r = cli(*args, check=False, env=outside)
            assert r.returncode in (1, 2), (args, r.stdout, r.stderr)
            assert want in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        out = cli("unlock", str(blend), env=outside).stdout
        assert out.strip() == "unlocked shots/s.blend"
        wait_for(lambda: blend.stat().st_mode & 0o222 == 0, 10, "s.blend to be read-only")
        with pytest.raises(PermissionError):
            blend.write_bytes(b"no lock, no save")
        r = cli("unlock", str(blend), check=False, env=outside)
        assert r.returncode == 1 and "not locked" in r.stderr
        out = cli("unlock", "--force", str(m.latest / "other.blend"), env=outside).stdout
        assert out.strip() == "unlocked other.blend (was held by bob)"
        locks = cli("log", cwd=wc, env={"VSTUDIO_USER": "alice"}).stdout
        assert "mount: 1 file saved by alice" in locks
    finally:
        unmount(m)
    # A read-only mount says so.
    ro = tmp_path / "ro"
    ro.mkdir()
    cli("mount", f"{studio}/p", str(ro), "--cache", str(tmp_path / "cache2"))
    try:
        r = cli("lock", str(ro / "latest/shots/s.blend"), check=False)
        assert r.returncode == 1 and "read-only mount" in r.stderr, r.stderr
        r = cli("mount-status", str(ro), check=False)
        assert r.returncode == 1 and "read-only mount" in r.stderr, r.stderr
    finally:
        cli("umount", str(ro))


def test_a_failing_commit_is_retried_shown_and_nothing_is_lost(server: Any,
                                                               tmp_path: Path) -> None:
    """The server refuses the mount's commits, then is down: the saves wait in the write
    cache, 'vstudio mount-status' and the mount's log say why; once the server takes
    them again they are committed, without a new change to push them."""
    import subprocess
    import sys

    need("fusermount3", "apt-get install fuse3")
    studio = ["--studio", str(server.studio)]
    cli("project", "create", "p", *studio)
    token = server.add_user("dana")
    cli("project", "grant", "p", "dana", "write", *studio)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    out = cli("mount", f"{server.url}/p", str(mnt), "--write", "--settle", "0.3",
              "--retry-max", "1", "--cache", str(tmp_path / "cache"),
              env={"VSTUDIO_TOKEN": token}).stdout
    pid = int(re.search(r"pid (\d+)", out).group(1))  # type: ignore[union-attr]
    log_path = Path(re.search(r"log (\S+)\)", out).group(1))  # type: ignore[union-attr]
    m = WMount(server.studio, mnt, tmp_path / "cache", pid, "dana")

    def status() -> subprocess.CompletedProcess[str]:
        return cli("mount-status", str(mnt), check=False)

    try:
        (m.latest / "a.txt").write_text("first")
        wait_head(server.studio, 1)
        wait_for(lambda: status().returncode == 0 and "pending changes: 0" in status().stdout,
                 10, "a clean status")
        assert "last commit: r1" in status().stdout
        # 1. The server refuses: dana may read the project but no longer write it.
        cli("project", "revoke", "p", "dana", "write", *studio)
        cli("project", "grant", "p", "dana", "read", *studio)
        (m.latest / "b.txt").write_text("kept while refused")  # the save itself works
        wait_for(lambda: status().returncode == 1, 15, "mount-status to report the failure")
        st = status()
        assert "pending changes: 1" in st.stdout and "COMMIT FAILING" in st.stdout, st.stdout
        assert "write" in st.stdout.split("COMMIT FAILING")[1], st.stdout  # the server's why
        assert os.getxattr(m.latest, "user.vstudio.error")
        assert os.getxattr(m.latest, "user.vstudio.pending") == b"1"
        wait_for(lambda: "commit failed" in log_path.read_text(), 10, "the log line")
        line = next(ln for ln in log_path.read_text().splitlines() if "commit failed" in ln)
        assert "1 change kept in the write cache" in line
        # 2. The server is down.
        port = server.url.rsplit(":", 1)[1]
        server.stop()
        try:
            wait_for(lambda: "cannot reach" in status().stdout, 15, "'cannot reach' in the status")
        except AssertionError:
            st = status()
            raise AssertionError(st.stdout + st.stderr + log_path.read_text()[-3000:]) from None
        assert (m.latest / "b.txt").read_text() == "kept while refused"
        assert "server: UNREACHABLE" in (m.latest / ".vstudio-status").read_text()
        cli("project", "grant", "p", "dana", "write", *studio)
        with open(tmp_path / "server2.log", "ab") as logf:
            server.process = subprocess.Popen(
                [sys.executable, "-m", "vstudio", "serve", *studio, "--port", port],
                stdout=logf, stderr=logf)
        # 3. Back: the waiting change is committed by the retries alone.
        wait_head(server.studio, 2)
        _, files, log = repo(server.studio)
        assert files == {"a.txt": b"first", "b.txt": b"kept while refused"}
        assert log[0] == ("dana", "mount: 1 file saved by dana")
        wait_for(lambda: status().returncode == 0, 10, "a clean status again")
        assert "last commit: r2" in status().stdout
        assert "commit succeeded after" in log_path.read_text()
    finally:
        unmount(m)
