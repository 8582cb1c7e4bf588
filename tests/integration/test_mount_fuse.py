"""The FUSE layer on a real kernel mount, over the in-memory fake reader.

The fake is pickled to a file and mounted by a child process, so the tests can kill it.
Tests with the real repository and stores are in ``test_mount_repo.py``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import pickle
import random
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import ROOT, VSTUDIO, need, wait_for
from vstudio.errors import CorruptObject
from vstudio.mount.fake import FakeReader
from vstudio.mount.runner import is_stale, mounted_at

SCRIPT = """
import pickle, sys, threading, time
from pathlib import Path
sys.path.insert(0, {root!r})
from vstudio.mount.runner import Source, run_foreground
state, mnt, cache = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
reader = pickle.loads(state.read_bytes())
def follow():  # a commit made by the test arrives as next.pickle
    nxt = state.with_name("next.pickle")
    while True:
        if nxt.exists():
            reader.commit("p", pickle.loads(nxt.read_bytes()), author="late")
            nxt.unlink()
        time.sleep(0.05)
threading.Thread(target=follow, daemon=True).start()
run_foreground(Source(reader, "p", "fake", lambda: None), mnt, cache_dir=cache, poll_seconds=0.5)
"""


@dataclass
class FakeMount:
    reader: FakeReader
    mnt: Path
    proc: subprocess.Popen[bytes]
    state: Path


def make_history() -> FakeReader:
    rng = random.Random(9)
    r = FakeReader()
    big = rng.randbytes(9 * 1024 * 1024 + 123)
    r.commit("p", {"a.txt": b"one\n", "shots/s1/scene.blend": big, "tex/wood.png": b"w" * 5000,
                   "tools/run.sh": b"#!/bin/sh\necho hi\n", "sp ace/x y.txt": b"spaces"},
             modes={"tools/run.sh": 0o755}, when=1_600_000_000.0, author="ann")
    r.commit("p", {"a.txt": b"two\n", "tex/wood.png": None, "tex/stone.png": rng.randbytes(70_000)},
             when=1_600_000_100.0, author="bob")
    r.commit("p", {"shots/s1/scene.blend": big[:5_000_000] + b"EDIT" + big[5_000_004:],
                   "bad.bin": b"corrupt me" * 100}, when=1_600_000_200.0, author="cid")
    r.commit("p", {f"many/frame{i:04d}.png": b"%d" % i for i in range(700)},
             when=1_600_000_300.0, author="dee")
    r.tag_map["p"] = {"v1": 1}
    bad_oid = r.tree("p", 3)["bad.bin"].oid
    r.fail_oids[bad_oid] = CorruptObject(f"object {bad_oid} is corrupt")
    return r


def start(tmp_path: Path, reader: FakeReader) -> FakeMount:
    need("fusermount3", "apt-get install fuse3")
    state = tmp_path / "state.pickle"
    state.write_bytes(pickle.dumps(reader))
    script = tmp_path / "fakemount.py"
    script.write_text(SCRIPT.format(root=str(ROOT)))
    mnt = tmp_path / "mnt"
    mnt.mkdir(exist_ok=True)
    log = open(tmp_path / "mount.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen([sys.executable, str(script), str(state), str(mnt),
                             str(tmp_path / "cache")], stdout=log, stderr=log)
    try:
        wait_for(lambda: mounted_at(mnt) and not is_stale(mnt), 20, "the fake mount")
    except AssertionError:
        proc.kill()
        raise AssertionError((tmp_path / "mount.log").read_text()[-2000:]) from None
    return FakeMount(reader, mnt, proc, state)


def stop(m: FakeMount) -> None:
    subprocess.run(["fusermount3", "-uz", str(m.mnt)], capture_output=True)
    if m.proc.poll() is None:
        m.proc.kill()
    m.proc.wait(10)


@pytest.fixture
def fake_mount(tmp_path: Path) -> Iterator[FakeMount]:
    m = start(tmp_path, make_history())
    try:
        yield m
    finally:
        stop(m)


def expected_files(reader: FakeReader, rev: int) -> dict[str, bytes]:
    return {p: reader.blobs[e.oid] for p, e in reader.tree("p", rev).items()}


def walk_files(root: Path) -> dict[str, bytes]:
    out = {}
    for folder, _, names in os.walk(root):
        for n in names:
            full = Path(folder) / n
            out[full.relative_to(root).as_posix()] = full.read_bytes()
    return out


def test_every_revision_matches_byte_for_byte(fake_mount: FakeMount) -> None:
    r, mnt = fake_mount.reader, fake_mount.mnt
    assert sorted(os.listdir(mnt)) == ["latest", "r", "tags"]
    assert sorted(os.listdir(mnt / "r")) == ["1", "2", "3", "4"]
    for rev in (1, 2):
        assert walk_files(mnt / "r" / str(rev)) == expected_files(r, rev)
    assert walk_files(mnt / "tags" / "v1") == expected_files(r, 1)
    st = (mnt / "r/1/tools/run.sh").stat()
    assert st.st_mode & 0o777 == 0o755 and st.st_mtime == 1_600_000_000.0
    assert (mnt / "r/1/shots/s1/scene.blend").stat().st_size == 9 * 1024 * 1024 + 123


def test_random_range_reads_match(fake_mount: FakeMount) -> None:
    r, mnt = fake_mount.reader, fake_mount.mnt
    want = expected_files(r, 3)["shots/s1/scene.blend"]
    rng = random.Random(1)
    with open(mnt / "r/3/shots/s1/scene.blend", "rb") as f:
        for _ in range(60):
            off = rng.randrange(0, len(want) + 10)
            n = rng.choice([1, 17, 4096, 131072, 3_000_000])
            assert os.pread(f.fileno(), n, off) == want[off:off + n]


def test_unix_tools_work(fake_mount: FakeMount, tmp_path: Path) -> None:
    mnt = fake_mount.mnt
    ls = subprocess.run(["ls", "-lR", str(mnt)], capture_output=True, text=True, check=True)
    assert "scene.blend" in ls.stdout and "stone.png" in ls.stdout
    found = subprocess.run(["find", str(mnt / "r/2"), "-type", "f"], capture_output=True,
                           text=True, check=True).stdout.split("\n")
    assert sorted(Path(p).relative_to(mnt / "r/2").as_posix() for p in found if p) == sorted(
        expected_files(fake_mount.reader, 2))
    subprocess.run(["cp", "-r", str(mnt / "r/2"), str(tmp_path / "cp")], check=True)
    assert walk_files(tmp_path / "cp") == expected_files(fake_mount.reader, 2)
    need("rsync", "apt-get install rsync")
    subprocess.run(["rsync", "-a", str(mnt / "r/1") + "/", str(tmp_path / "rs")], check=True)
    assert walk_files(tmp_path / "rs") == expected_files(fake_mount.reader, 1)
    assert (tmp_path / "rs/tools/run.sh").stat().st_mtime == 1_600_000_000.0
    tar = tmp_path / "r1.tar"
    subprocess.run(["tar", "-cf", str(tar), "-C", str(mnt / "r/1"), "."], check=True)
    with tarfile.open(tar) as t:
        names = {m.name.removeprefix("./") for m in t.getmembers() if m.isfile()}
    assert names == set(expected_files(fake_mount.reader, 1))
    dots = subprocess.run(["ls", "-a", str(mnt / "r/1")], capture_output=True, text=True,
                          check=True).stdout.split()
    assert dots[:2] == [".", ".."]
    # a folder bigger than one kernel buffer is listed in pieces, with attributes
    many = subprocess.run(["ls", "-l", str(mnt / "r/4/many")], capture_output=True, text=True,
                          check=True).stdout.splitlines()[1:]
    assert len(many) == 700 and all(" frame" in line for line in many)
    assert sorted(os.listdir(mnt / "r/4/many")) == [f"frame{i:04d}.png" for i in range(700)]
    assert (mnt / "r/4/many/frame0699.png").read_bytes() == b"699"
    cat = subprocess.run(["cat", str(mnt / "latest/a.txt")], capture_output=True, check=True)
    assert cat.stdout == b"two\n"


def test_changes_fail_with_erofs(fake_mount: FakeMount) -> None:
    mnt = fake_mount.mnt
    attempts = [
        lambda: (mnt / "latest/a.txt").write_bytes(b"x"),
        lambda: (mnt / "latest/new.txt").touch(),
        lambda: os.open(mnt / "r/1/a.txt", os.O_WRONLY | os.O_APPEND),
        lambda: os.unlink(mnt / "r/1/a.txt"),
        lambda: os.rename(mnt / "r/1/a.txt", mnt / "r/1/b.txt"),
        lambda: os.mkdir(mnt / "latest/d"),
        lambda: os.rmdir(mnt / "r/1/tex"),
        lambda: os.chmod(mnt / "r/1/a.txt", 0o600),
        lambda: os.truncate(mnt / "r/1/a.txt", 0),
        lambda: os.setxattr(mnt / "r/1/a.txt", "user.x", b"1"),
        lambda: os.symlink("a.txt", mnt / "latest/link"),
    ]
    for attempt in attempts:
        with pytest.raises(OSError) as e:
            attempt()
        assert e.value.errno == errno.EROFS, e.value
    assert (mnt / "r/1/a.txt").read_bytes() == b"one\n"


def test_store_failure_is_eio_never_wrong_bytes(fake_mount: FakeMount) -> None:
    with pytest.raises(OSError) as e:
        (fake_mount.mnt / "r/3/bad.bin").read_bytes()
    assert e.value.errno == errno.EIO
    assert (fake_mount.mnt / "r/3/a.txt").read_bytes() == b"two\n"  # the mount stays up


def test_extended_attributes(fake_mount: FakeMount) -> None:
    p = str(fake_mount.mnt / "r/3/a.txt")
    assert set(os.listxattr(p)) >= {"user.vstudio.id", "user.vstudio.rev", "user.vstudio.author"}
    assert os.getxattr(p, "user.vstudio.rev") == b"2"
    assert os.getxattr(p, "user.vstudio.author") == b"bob"
    assert os.getxattr(p, "user.vstudio.id").decode() == fake_mount.reader.tree("p", 3)[
        "a.txt"].oid


def test_latest_follows_a_new_commit(fake_mount: FakeMount) -> None:
    mnt = fake_mount.mnt
    assert not (mnt / "latest/new.txt").exists()
    (fake_mount.state.with_name("next.pickle")).write_bytes(
        pickle.dumps({"new.txt": b"fresh", "a.txt": b"three\n"}))
    wait_for(lambda: (mnt / "latest/new.txt").exists(), 10, "latest/new.txt")
    assert (mnt / "latest/new.txt").read_bytes() == b"fresh"
    assert (mnt / "latest/a.txt").read_bytes() == b"three\n"
    assert (mnt / "r/5/a.txt").read_bytes() == b"three\n"
    assert (mnt / "r/3/a.txt").read_bytes() == b"two\n"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_unmount_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    m = start(tmp_path, make_history())
    try:
        assert (m.mnt / "r/1/a.txt").read_bytes() == b"one\n"
        m.proc.send_signal(sig)
        assert m.proc.wait(15) == 0
        assert not mounted_at(m.mnt)
    finally:
        stop(m)


def test_sigkill_leaves_a_stale_mount_that_umount_clears(tmp_path: Path) -> None:
    m = start(tmp_path, make_history())
    try:
        holder = open(m.mnt / "r/1/a.txt", "rb")  # noqa: SIM115 - kept open on purpose (busy)
        m.proc.kill()
        m.proc.wait(10)
        assert mounted_at(m.mnt) and is_stale(m.mnt)
        out = subprocess.run([*VSTUDIO, "umount", str(m.mnt)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert not mounted_at(m.mnt)
        with contextlib.suppress(OSError):  # its server is gone: closing may say ENOTCONN
            holder.close()
        again = subprocess.run([*VSTUDIO, "umount", str(m.mnt)], capture_output=True, text=True)
        assert again.returncode == 1 and "nothing is mounted" in again.stderr
        # and the folder can be mounted again
        m2 = start(tmp_path, make_history())
        assert (m2.mnt / "r/2/a.txt").read_bytes() == b"two\n"
        stop(m2)
    finally:
        stop(m)


def test_hashes_of_big_file_across_revisions(fake_mount: FakeMount) -> None:
    r, mnt = fake_mount.reader, fake_mount.mnt
    t0 = time.monotonic()
    for rev in (1, 3):
        got = hashlib.sha256((mnt / f"r/{rev}/shots/s1/scene.blend").read_bytes()).hexdigest()
        want = hashlib.sha256(expected_files(r, rev)["shots/s1/scene.blend"]).hexdigest()
        assert got == want
    assert time.monotonic() - t0 < 10
