"""``vstudio mount --write`` on a real kernel mount of a real (embedded) project.

Real programs write through the mount (cp, mv, rm -r, mkdir, tar, rsync, shell redirections);
what they leave must be exactly what the repository then holds, in grouped commits.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import ROOT, cli, need, wait_for
from tests.integration.test_mount_repo import walk as tree_of
from vstudio.mount.runner import is_stale, mounted_at


@dataclass
class WMount:
    studio: Path
    mnt: Path
    cache: Path
    pid: int
    user: str

    @property
    def latest(self) -> Path:
        return self.mnt / "latest"


def new_studio(tmp: Path) -> Path:
    from vstudio.studio import init_studio

    studio = tmp / "studio"
    init_studio(studio, store_url=None, db_url=None).close()
    cli("project", "create", "p", "--studio", str(studio))
    return studio


def mount_w(studio: Path, mnt: Path, cache: Path, user: str, *extra: str) -> WMount:
    need("fusermount3", "apt-get install fuse3")
    mnt.mkdir(exist_ok=True)
    out = cli("mount", f"{studio}/p", str(mnt), "--write", "--cache", str(cache),
              "--poll", "0.3", *extra, env={"VSTUDIO_USER": user}).stdout
    assert mounted_at(mnt) and not is_stale(mnt)
    pid = int(re.search(r"pid (\d+)", out).group(1))  # type: ignore[union-attr]
    return WMount(studio, mnt, cache, pid, user)


def unmount(m: WMount, kill: bool = False) -> None:
    if kill:
        with contextlib.suppress(ProcessLookupError):
            os.kill(m.pid, signal.SIGKILL)
    subprocess.run(["fusermount3", "-u" if not kill else "-uz", str(m.mnt)],
                   capture_output=True)
    wait_for(lambda: not _alive(m.pid), 60, "the mount process to end")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def repo(studio: Path) -> tuple[int, dict[str, bytes], list[tuple[str, str]]]:
    """(head, files of head, [(author, message)] newest first) as the repository says."""
    from vstudio.repo import open_reader
    from vstudio.studio import Studio

    s = Studio.open(studio)
    try:
        r = open_reader(s)
        head = r.head("p")
        files = {p: s.store.get_bytes(e.oid) for p, e in r.tree("p", head).items()
                 if not e.is_dir} if head else {}
        return head, files, [(c.author, c.message) for c in r.log("p")]
    finally:
        s.close()


def folders(studio: Path) -> list[str]:
    """The empty folders of the head revision."""
    from vstudio.repo import open_reader
    from vstudio.studio import Studio

    s = Studio.open(studio)
    try:
        r = open_reader(s)
        return sorted(p for p, e in r.tree("p", r.head("p")).items() if e.is_dir)
    finally:
        s.close()


def wait_head(studio: Path, rev: int, timeout: float = 30) -> None:
    wait_for(lambda: repo(studio)[0] >= rev, timeout, f"revision {rev}")


@pytest.fixture
def wm(tmp_path: Path) -> Iterator[WMount]:
    m = mount_w(new_studio(tmp_path), tmp_path / "mnt", tmp_path / "cache", "alice",
                "--settle", "1")
    try:
        yield m
    finally:
        unmount(m, kill=True)


def test_programs_saving_through_the_mount_make_grouped_commits(wm: WMount,
                                                                tmp_path: Path) -> None:
    need("rsync", "apt-get install rsync")
    lt = wm.latest
    src = tmp_path / "src"
    (src / "tex").mkdir(parents=True)
    for i in range(40):
        (src / "tex" / f"t{i:02d}.png").write_bytes(os.urandom(300 + i))
    (lt / "a.txt").write_text("one\n")
    subprocess.run(["cp", "-r", str(src / "tex"), str(lt / "tex")], check=True)
    subprocess.run(["mkdir", "-p", str(lt / "shots/s1")], check=True)
    (lt / "shots/s1/old.txt").write_text("old")
    wait_head(wm.studio, 1)
    head, files, log = repo(wm.studio)
    assert head == 1, "one settled burst of changes is one revision"
    assert log[0] == ("alice", "mount: 42 files saved by alice")
    assert files == tree_of(lt)

    # Second burst: every pattern at once.
    subprocess.run(["mv", str(lt / "a.txt"), str(lt / "b.txt")], check=True)
    subprocess.run(["rm", "-r", str(lt / "shots")], check=True)
    with tarfile.open(tmp_path / "t.tar", "w") as tar:
        tar.add(ROOT / "vstudio" / "mount", arcname="code")
    subprocess.run(["tar", "-xf", str(tmp_path / "t.tar"), "-C", str(lt)], check=True)
    subprocess.run(["rsync", "-a", f"{src}/tex/", f"{lt}/synced/"], check=True)
    (lt / "doc.txt.tmp").write_text("new content")  # temp file + rename over
    os.rename(lt / "doc.txt.tmp", lt / "doc.txt")
    with open(lt / "tex/t00.png", "r+b") as f:  # truncate and rewrite in place
        f.truncate(0)
        f.write(b"rewritten")
    (lt / "scene.blend1").write_bytes(b"backup")  # ignored by default
    (lt / "notes.txt~").write_bytes(b"editor backup")
    (lt / ".vstudioignore").write_text("*.tmp\nrender-cache/\n")  # and by the project's
    (lt / "x.tmp").write_bytes(b"temp")
    (lt / "render-cache/deep").mkdir(parents=True)
    (lt / "render-cache/deep/f.exr").write_bytes(b"exr")
    (lt / "empty").mkdir()
    wait_head(wm.studio, 2)
    head, files, log = repo(wm.studio)
    assert head == 2
    want = tree_of(lt)
    for local in ("scene.blend1", "notes.txt~", "x.tmp", "render-cache/deep/f.exr"):
        assert want.pop(local), f"{local} stays in the mount"
    assert files == want
    assert files["tex/t00.png"] == b"rewritten" and "a.txt" not in files
    assert not any(p.startswith("shots/") for p in files)
    assert log[0][0] == "alice" and re.fullmatch(
        r"mount: \d+ files saved, 2 files removed, 1 folder made by alice", log[0][1]), log[0]
    assert (lt / "empty").is_dir(), "an empty folder stays in the mount"
    assert folders(wm.studio) == ["empty"], "and is committed (ignored ones are not)"
    # Older revisions stay read-only.
    with pytest.raises(OSError) as e:
        (wm.mnt / "r/1/new.txt").write_text("x")
    assert e.value.errno == errno.EROFS
    assert (wm.mnt / "r/1/a.txt").read_text() == "one\n"


def test_kill9_then_remount_commits_what_was_acknowledged(tmp_path: Path) -> None:
    studio = new_studio(tmp_path)
    m = mount_w(studio, tmp_path / "mnt", tmp_path / "cache", "alice", "--settle", "600")
    big = os.urandom(5 * 1024 * 1024 + 17)
    try:
        (m.latest / "big.bin").write_bytes(big)
        (m.latest / "d").mkdir()
        for i in range(20):
            (m.latest / "d" / f"f{i}.txt").write_text(f"file {i}")
        fd = os.open(m.latest / "open.txt", os.O_WRONLY | os.O_CREAT)  # never closed
        os.write(fd, b"not acknowledged")
        assert repo(studio)[0] == 0, "nothing is committed before the changes settle"
        assert os.getxattr(m.latest, "user.vstudio.pending") == b"22"  # with open.txt
    finally:
        unmount(m, kill=True)
    with contextlib.suppress(OSError):
        os.close(fd)
    m = mount_w(studio, tmp_path / "mnt", tmp_path / "cache", "alice", "--settle", "0.5")
    try:
        wait_head(studio, 1)
        _, files, log = repo(studio)
        assert files["big.bin"] == big
        assert {p: files[p] for p in files if p.startswith("d/")} == {
            f"d/f{i}.txt": f"file {i}".encode() for i in range(20)}
        assert "open.txt" not in files
        assert log[0] == ("alice", "mount: 21 files saved by alice")
        wait_for(lambda: os.getxattr(m.latest, "user.vstudio.pending") == b"0", 10,
                 "the mount to say everything is committed")
    finally:
        unmount(m)
    check = cli("store", "check", "--studio", str(studio), check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_full_write_cache_gives_enospc(tmp_path: Path) -> None:
    studio = new_studio(tmp_path)
    m = mount_w(studio, tmp_path / "mnt", tmp_path / "cache", "alice",
                "--settle", "600", "--write-cache", "0.002")  # about 2 MiB
    try:
        (m.latest / "fits.bin").write_bytes(b"x" * 1_000_000)
        data = os.urandom(3_000_000)
        with pytest.raises(OSError) as e, open(m.latest / "too-big.bin", "wb") as f:
            f.write(data)
            f.flush()
        assert e.value.errno == errno.ENOSPC
        assert (m.latest / "fits.bin").read_bytes() == b"x" * 1_000_000
        assert os.statvfs(m.latest).f_bavail * 4096 < 2 * 1024 * 1024
    finally:
        unmount(m)
    # The clean unmount committed what had been acknowledged; never a cut file.
    _, files, _ = repo(studio)
    assert files.get("fits.bin") == b"x" * 1_000_000
    assert data.startswith(files.get("too-big.bin", b"")), "what was written, or less"


def test_full_disk_under_the_write_cache_gives_enospc(tmp_path: Path) -> None:
    studio = new_studio(tmp_path)
    disk = tmp_path / "small-disk"
    disk.mkdir()
    need("mount", "apt-get install mount")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)],
                          capture_output=True, text=True)
    assert made.returncode == 0, f"mounting a small tmpfs needs root: {made.stderr}"
    try:
        m = mount_w(studio, tmp_path / "mnt", disk, "alice", "--settle", "600")
        data = os.urandom(4 * 1024 * 1024)
        try:
            (m.latest / "ok.bin").write_bytes(b"k" * 500_000)
            with pytest.raises(OSError) as e, open(m.latest / "big.bin", "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            assert e.value.errno == errno.ENOSPC
            assert (m.latest / "ok.bin").read_bytes() == b"k" * 500_000
        finally:
            unmount(m)
        _, files, _ = repo(studio)
        assert files["ok.bin"] == b"k" * 500_000
        assert data.startswith(files.get("big.bin", b"")), "what was written, or less"
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_status_file_shows_what_mount_status_prints(wm: WMount) -> None:
    """``latest/.vstudio-status``: mount-status's text, read-only, unlisted, never committed."""
    status = wm.latest / ".vstudio-status"
    (wm.latest / "a.txt").write_text("one")
    first = status.read_text()
    assert "pending changes: 1" in first and "server: reachable" in first, first
    assert re.search(r"write cache: [\d.]+ MiB of [\d.]+ MiB used", first), first
    wait_head(wm.studio, 1)
    wait_for(lambda: "last commit: r1" in status.read_text(), 10, "the status to follow")
    assert status.read_text() == cli("mount-status", str(wm.mnt)).stdout
    assert ".vstudio-status" not in os.listdir(wm.latest)
    assert not os.stat(status).st_mode & 0o222
    for change in (lambda: status.write_text("x"), lambda: status.unlink(),
                   lambda: os.rename(wm.latest / "a.txt", status),
                   lambda: os.truncate(status, 0)):
        with pytest.raises(PermissionError):
            change()
    (wm.latest / "b.txt").write_text("two")
    wait_head(wm.studio, 2)
    assert sorted(repo(wm.studio)[1]) == ["a.txt", "b.txt"]


def test_mkdir_and_rmdir_are_committed(wm: WMount) -> None:
    """An empty folder made in the mount is part of a revision; rmdir removes it."""
    lt = wm.latest
    (lt / "empty").mkdir()
    (lt / "a/b").mkdir(parents=True)
    wait_head(wm.studio, 1)
    assert folders(wm.studio) == ["a/b", "empty"]
    assert repo(wm.studio)[2][0] == ("alice", "mount: 2 folders made by alice")
    (lt / "a/b/f.txt").write_text("f")  # a/b holds a file now: an ordinary folder
    (lt / "empty").rmdir()
    wait_head(wm.studio, 2)
    assert folders(wm.studio) == []
    assert repo(wm.studio)[1] == {"a/b/f.txt": b"f"}
    assert repo(wm.studio)[2][0] == ("alice", "mount: 1 file saved, 1 folder removed by alice")
    assert (wm.mnt / "r/1/empty").is_dir() and not (lt / "empty").exists()
    assert sorted(os.listdir(wm.mnt / "r/1/a")) == ["b"]


def _stored(studio: Path) -> int:
    from vstudio.store import maintenance
    from vstudio.studio import Studio

    s = Studio.open(studio)
    try:
        return int(maintenance.stats(s.store)["stored_bytes"])
    finally:
        s.close()


def test_big_file_is_stored_while_written_in_order(wm: WMount) -> None:
    """A big file still being written after ``STREAM_AFTER`` is chunked and stored while
    it grows (the upload runs beside the writer); one patched behind its end is stored at
    commit, and both commit exactly what was written."""
    lt = wm.latest
    assert os.stat(lt).st_blksize and (lt / "x").write_bytes(b"x") == 1
    assert os.stat(lt / "x").st_blksize == 1 << 20, "1 MiB writes from cp and friends"
    base = _stored(wm.studio)
    big = os.urandom(40 << 20)  # more than a pack (16 MiB): packs go up as they fill
    with open(lt / "big.bin", "wb") as f:
        for i in range(0, len(big), 1 << 20):
            f.write(big[i:i + (1 << 20)])
            f.flush()
        wait_for(lambda: _stored(wm.studio) - base >= 16 << 20, 10,
                 "the open file's bytes to be stored")
    patched = bytearray(os.urandom(4 << 20))
    with open(lt / "patched.bin", "wb") as f:
        f.write(patched)
        f.flush()
        f.seek(10)
        f.write(b"HEADER")  # behind what was written: the early copy is dropped
    patched[10:16] = b"HEADER"
    # x may be committed apart while big.bin is still open: wait for the revision with both
    def both() -> dict[str, bytes] | None:
        files = repo(wm.studio)[1]
        return files if {"big.bin", "patched.bin"} <= set(files) else None

    files = wait_for(both, 20, "both files committed")
    assert files["big.bin"] == big and files["patched.bin"] == bytes(patched)
    check = cli("store", "check", "--studio", str(wm.studio), check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_pending_counts_folders_made_and_not_committed(tmp_path: Path) -> None:
    """``user.vstudio.pending`` counts an uncommitted mkdir of a folder that stays empty;
    a folder holding a file is no change of its own, an ignored one is never committed."""
    studio = new_studio(tmp_path)
    m = mount_w(studio, tmp_path / "mnt", tmp_path / "cache", "alice", "--settle", "600")
    try:
        lt = m.latest
        (lt / "empty").mkdir()
        (lt / "a/b").mkdir(parents=True)  # a holds b: only a/b is an empty folder
        (lt / "c").mkdir()
        (lt / "c/f.txt").write_text("f")
        (lt / "render-cache").mkdir()
        (lt / ".vstudioignore").write_text("render-cache/\n")
        assert os.getxattr(lt, "user.vstudio.pending") == b"4"  # empty, a/b, c/f.txt, ignore
        assert "pending changes: 4" in (lt / ".vstudio-status").read_text()
        (lt / "empty").rmdir()
        assert os.getxattr(lt, "user.vstudio.pending") == b"3"
    finally:
        unmount(m)  # a clean unmount commits what is pending
    assert folders(studio) == ["a/b"]
    assert sorted(repo(studio)[1]) == [".vstudioignore", "c/f.txt"]


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def test_a_file_much_bigger_than_memory_use_is_written_and_committed(tmp_path: Path) -> None:
    """1 GiB through the mount: the mount process's peak memory stays a small fraction of
    it (bytes stream from the write cache through the chunker, never held whole)."""
    import blake3

    studio = new_studio(tmp_path)
    m = mount_w(studio, tmp_path / "mnt", tmp_path / "cache", "alice", "--settle", "0.5")
    size = 1 << 30
    try:
        before = _peak_rss(m.pid)
        h = blake3.blake3()
        with open(m.latest / "huge.bin", "wb") as f:
            for _ in range(size >> 20):
                block = os.urandom(1 << 20)
                h.update(block)
                f.write(block)
        wait_head(studio, 1, timeout=300)
        peak = _peak_rss(m.pid)
    finally:
        unmount(m)
    from vstudio.repo import open_reader
    from vstudio.studio import Studio

    s = Studio.open(studio)
    try:
        entry = open_reader(s).tree("p", 1)["huge.bin"]
    finally:
        s.close()
    assert (entry.size, entry.oid) == (size, h.hexdigest()), "committed exactly"
    assert peak < 256 << 20, f"peak RSS {peak >> 20} MiB (at start {before >> 20} MiB)"
    assert peak - before < 160 << 20, f"grew {(peak - before) >> 20} MiB writing 1 GiB"
