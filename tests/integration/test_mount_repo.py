"""``vstudio mount`` of a real project: embedded (local folder and S3 stores) and via a server.

Every project has three revisions made with the real CLI; every file of every revision
is compared by hash with the repository itself, and a few with ``vstudio cat``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import random
import re
import signal
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import cli, need, wait_for
from vstudio.mount.runner import is_stale, mounted_at

BIG = 3 * 1024 * 1024 + 77


@dataclass
class Mounted:
    url: str
    mnt: Path
    pid: int
    wc: Path
    env: dict[str, str]
    studio: Path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_three_revisions(url: str, wc: Path, env: dict[str, str]) -> None:
    rng = random.Random(4)
    cli("checkout", url, str(wc), env=env)
    (wc / "shots/s1").mkdir(parents=True)
    (wc / "tex").mkdir()
    (wc / "tools").mkdir()
    (wc / "sp ace").mkdir()
    (wc / "a.txt").write_bytes(b"one\n")
    (wc / "shots/s1/plate.bin").write_bytes(rng.randbytes(BIG))
    (wc / "tex/wood.png").write_bytes(rng.randbytes(5000))
    (wc / "tools/run.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    (wc / "tools/run.sh").chmod(0o755)
    (wc / "sp ace/x y.txt").write_bytes(b"spaces")
    cli("add", "a.txt", "shots", "tex", "tools", "sp ace", cwd=wc, env=env)
    cli("commit", "-m", "one", cwd=wc, env=env)
    (wc / "a.txt").write_bytes(b"two\n")
    cli("rm", "tex/wood.png", cwd=wc, env=env)
    (wc / "tex/stone.png").write_bytes(rng.randbytes(70_000))
    cli("add", "tex/stone.png", cwd=wc, env=env)
    cli("commit", "-m", "two", cwd=wc, env=env)
    plate = bytearray((wc / "shots/s1/plate.bin").read_bytes())
    plate[2_000_000:2_000_004] = b"EDIT"
    (wc / "shots/s1/plate.bin").write_bytes(bytes(plate))
    (wc / "victim.bin").write_bytes(rng.randbytes(600_000))
    cli("add", "victim.bin", cwd=wc, env=env)
    cli("commit", "-m", "three", cwd=wc, env=env)
    cli("tag", "v1", "--rev", "1", cwd=wc, env=env)


def mount(url: str, mnt: Path, cache: Path, env: dict[str, str]) -> int:
    need("fusermount3", "apt-get install fuse3")
    mnt.mkdir(exist_ok=True)
    out = cli("mount", url, str(mnt), "--cache", str(cache), env=env).stdout
    assert mounted_at(mnt) and not is_stale(mnt)
    return int(re.search(r"pid (\d+)", out).group(1))  # type: ignore[union-attr]


def cleanup(mnt: Path, pid: int) -> None:
    subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def revision_files(studio: Path, project: str, rev: int) -> dict[str, bytes]:
    """What the repository itself says revision ``rev`` holds."""
    from vstudio.repo import open_reader
    from vstudio.studio import Studio

    s = Studio.open(studio)
    try:
        reader = open_reader(s)
        return {p: s.store.get_bytes(e.oid) for p, e in reader.tree(project, rev).items()}
    finally:
        s.close()


def walk(root: Path) -> dict[str, bytes]:
    out = {}
    for folder, _, names in os.walk(root):
        for n in names:
            full = Path(folder) / n
            out[full.relative_to(root).as_posix()] = full.read_bytes()
    return out


def check_every_revision(m: Mounted) -> None:
    for rev in (1, 2, 3):
        want = revision_files(m.studio, "p", rev)
        got = walk(m.mnt / "r" / str(rev))
        assert sorted(got) == sorted(want)
        assert {p: sha(b) for p, b in got.items()} == {p: sha(b) for p, b in want.items()}
    assert {p: sha(b) for p, b in walk(m.mnt / "tags/v1").items()} == {
        p: sha(b) for p, b in revision_files(m.studio, "p", 1).items()}
    assert walk(m.mnt / "latest").keys() == revision_files(m.studio, "p", 3).keys()
    for spec, path in (("a.txt@1", "r/1/a.txt"),
                       ("shots/s1/plate.bin@3", "r/3/shots/s1/plate.bin")):
        cat = subprocess.run([*cli_argv(), "cat", spec], cwd=m.wc, capture_output=True,
                             env={**os.environ, **m.env})
        assert cat.returncode == 0, cat.stderr
        assert sha(cat.stdout) == sha((m.mnt / path).read_bytes())


def cli_argv() -> list[str]:
    from tests.helpers import VSTUDIO

    return list(VSTUDIO)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mounted]:
    from vstudio.studio import init_studio

    tmp = tmp_path_factory.mktemp("mount-embedded")
    studio = tmp / "studio"
    init_studio(studio, store_url=None, db_url=None).close()
    cli("project", "create", "p", "--studio", str(studio))
    url = f"{studio}/p"
    make_three_revisions(url, tmp / "wc", {})
    pid = mount(url, tmp / "mnt", tmp / "cache", {})
    try:
        yield Mounted(url, tmp / "mnt", pid, tmp / "wc", {}, studio)
    finally:
        cleanup(tmp / "mnt", pid)


def test_embedded_every_revision_matches(embedded: Mounted) -> None:
    check_every_revision(embedded)
    st = (embedded.mnt / "r/1/tools/run.sh").stat()
    assert st.st_mode & 0o111, "the executable bit is kept"
    assert (embedded.mnt / "r/1/shots/s1/plate.bin").stat().st_size == BIG


def test_embedded_unix_tools(embedded: Mounted, tmp_path: Path) -> None:
    mnt = embedded.mnt
    want = revision_files(embedded.studio, "p", 2)
    ls = subprocess.run(["ls", "-lR", str(mnt / "r")], capture_output=True, text=True, check=True)
    assert "stone.png" in ls.stdout and "x y.txt" in ls.stdout
    found = subprocess.run(["find", str(mnt / "r/2"), "-type", "f"], capture_output=True,
                           text=True, check=True).stdout.splitlines()
    assert sorted(Path(p).relative_to(mnt / "r/2").as_posix() for p in found) == sorted(want)
    subprocess.run(["cp", "-r", str(mnt / "r/2"), str(tmp_path / "cp")], check=True)
    assert walk(tmp_path / "cp") == want
    need("rsync", "apt-get install rsync")
    subprocess.run(["rsync", "-a", str(mnt / "r/2") + "/", str(tmp_path / "rs")], check=True)
    assert walk(tmp_path / "rs") == want
    assert (tmp_path / "rs/a.txt").stat().st_mtime == (mnt / "r/2/a.txt").stat().st_mtime
    tar = tmp_path / "r2.tar"
    subprocess.run(["tar", "-cf", str(tar), "-C", str(mnt / "r/2"), "."], check=True)
    with tarfile.open(tar) as t:
        got = {m.name.removeprefix("./"): t.extractfile(m).read()  # type: ignore[union-attr]
               for m in t.getmembers() if m.isfile()}
    assert got == want
    assert subprocess.run(["cat", str(mnt / "latest/a.txt")], capture_output=True,
                          check=True).stdout == b"two\n"


def test_embedded_random_range_reads(embedded: Mounted) -> None:
    want = revision_files(embedded.studio, "p", 3)["shots/s1/plate.bin"]
    rng = random.Random(2)
    with open(embedded.mnt / "r/3/shots/s1/plate.bin", "rb") as f:
        for _ in range(50):
            off = rng.randrange(0, len(want) + 5)
            n = rng.choice([1, 100, 65536, 1_000_000])
            assert os.pread(f.fileno(), n, off) == want[off:off + n]


def test_embedded_writes_fail_with_erofs(embedded: Mounted) -> None:
    mnt = embedded.mnt
    for attempt in (lambda: (mnt / "latest/a.txt").write_bytes(b"x"),
                    lambda: (mnt / "latest/new").touch(),
                    lambda: os.unlink(mnt / "r/1/a.txt"),
                    lambda: os.rename(mnt / "r/1/a.txt", mnt / "r/1/z"),
                    lambda: os.mkdir(mnt / "r/1/d")):
        with pytest.raises(OSError) as e:
            attempt()
        assert e.value.errno == errno.EROFS


def test_embedded_xattrs(embedded: Mounted) -> None:
    p = str(embedded.mnt / "r/3/a.txt")  # last changed in r2
    assert os.getxattr(p, "user.vstudio.rev") == b"2"
    assert os.getxattr(p, "user.vstudio.author")
    oid = os.getxattr(p, "user.vstudio.id").decode()
    from vstudio.repo import open_reader
    from vstudio.studio import Studio

    s = Studio.open(embedded.studio)
    try:
        assert open_reader(s).tree("p", 3)["a.txt"].oid == oid
    finally:
        s.close()
    cli("lock", "a.txt", cwd=embedded.wc)
    wait_for(lambda: os.getxattr(p, "user.vstudio.lock"), 10, "the lock attribute")
    cli("unlock", "a.txt", cwd=embedded.wc)


def test_embedded_latest_follows_new_commit(embedded: Mounted) -> None:
    # Runs last in this module: it adds r4.
    (embedded.wc / "late.txt").write_bytes(b"late\n")
    cli("add", "late.txt", cwd=embedded.wc)
    cli("commit", "-m", "four", cwd=embedded.wc)
    wait_for(lambda: (embedded.mnt / "latest/late.txt").exists(), 10, "latest/late.txt")
    assert (embedded.mnt / "latest/late.txt").read_bytes() == b"late\n"
    assert (embedded.mnt / "r/4/late.txt").read_bytes() == b"late\n"
    assert not (embedded.mnt / "r/3/late.txt").exists()


def test_corrupt_chunk_is_eio_and_sigkill_leaves_nothing_umount_cannot_clear(
        tmp_path: Path) -> None:
    from vstudio.studio import init_studio

    studio = tmp_path / "studio"
    init_studio(studio, store_url=None, db_url=None).close()
    cli("project", "create", "p", "--studio", str(studio))
    wc = tmp_path / "wc"
    cli("checkout", f"{studio}/p", str(wc))
    (wc / "ok.txt").write_bytes(b"fine\n")
    cli("add", "ok.txt", cwd=wc)
    cli("commit", "-m", "one", cwd=wc)
    before = set((studio / "store").rglob("*"))
    (wc / "victim.bin").write_bytes(random.Random(1).randbytes(800_000))
    cli("add", "victim.bin", cwd=wc)
    cli("commit", "-m", "two", cwd=wc)
    # The largest object the commit added holds the victim's chunks: damage its middle.
    new = [p for p in set((studio / "store").rglob("*")) - before if p.is_file()]
    pack = max(new, key=lambda p: p.stat().st_size)
    raw = bytearray(pack.read_bytes())
    for i in range(len(raw) // 3, len(raw) // 3 + 64):
        raw[i] ^= 0x5A
    pack.write_bytes(bytes(raw))
    mnt = tmp_path / "mnt"
    pid = mount(f"{studio}/p", mnt, tmp_path / "cache", {})
    try:
        with pytest.raises(OSError) as e:
            (mnt / "r/2/victim.bin").read_bytes()
        assert e.value.errno == errno.EIO
        assert (mnt / "r/2/ok.txt").read_bytes() == b"fine\n"  # the mount stays up
        holder = open(mnt / "r/2/ok.txt", "rb")  # noqa: SIM115 - kept open: a busy mount
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: is_stale(mnt), 10, "the mount to go stale")
        out = cli("umount", str(mnt))
        assert "unmounted" in out.stdout
        assert not mounted_at(mnt)
        with contextlib.suppress(OSError):  # its server is gone
            holder.close()
        again = cli("umount", str(mnt), check=False)
        assert again.returncode == 1 and "nothing is mounted" in again.stderr
    finally:
        cleanup(mnt, pid)


@pytest.fixture(params=["local", "s3"])
def any_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """``vstudio serve`` on a studio whose store is a local folder or the S3 server."""
    from tests.conftest import start_server
    from vstudio.studio import init_studio

    store_url = None
    if request.param == "s3":
        s3 = request.getfixturevalue("s3_server")
        store_url = s3.url(s3.new_bucket())
    studio = tmp_path / "served"
    init_studio(studio, store_url=store_url, db_url=None).close()
    srv = start_server(studio, tmp_path / "server.log")
    try:
        yield srv
    finally:
        srv.process.terminate()
        try:
            srv.process.wait(10)
        except subprocess.TimeoutExpired:
            srv.process.kill()


def test_through_server(any_server: Any, tmp_path: Path) -> None:
    from vstudio.mounttab import mount_source
    from vstudio.render import cachescope
    from vstudio.store.remote import RemoteStore

    server = any_server
    cli("project", "create", "p", "--studio", str(server.studio))
    env = {"VSTUDIO_TOKEN": server.admin_token}
    url = f"{server.url}/p"
    make_three_revisions(url, tmp_path / "wc", env)
    mnt = tmp_path / "mnt"
    pid = mount(url, mnt, tmp_path / "cache", env)
    try:
        check_every_revision(Mounted(url, mnt, pid, tmp_path / "wc", env, server.studio))
        # the mount table names the server, so a render cache on this server takes the
        # project's scope, and one on another server would not (test_render_cachescope)
        assert mount_source(mnt / "latest" / "shots") == ("p", server.url)
        assert cachescope.scope_for(mnt / "latest", RemoteStore(server.url,
                                                                server.admin_token)) == "p.p"
        (tmp_path / "wc/late.txt").write_bytes(b"late\n")
        cli("add", "late.txt", cwd=tmp_path / "wc", env=env)
        cli("commit", "-m", "four", cwd=tmp_path / "wc", env=env)
        wait_for(lambda: (mnt / "latest/late.txt").exists(), 10, "latest/late.txt")
        with pytest.raises(OSError) as e:
            (mnt / "latest/a.txt").write_bytes(b"x")
        assert e.value.errno == errno.EROFS
    finally:
        cleanup(mnt, pid)
    bad = cli("mount", url, str(mnt), "--token", "wrong-token", check=False,
              env={"VSTUDIO_TOKEN": ""})
    assert bad.returncode == 1 and bad.stderr.startswith("error: ") and not mounted_at(mnt)


def test_embedded_s3_store(s3_url: str, tmp_path: Path) -> None:
    from vstudio.studio import init_studio

    studio = tmp_path / "studio"
    init_studio(studio, store_url=s3_url, db_url=None).close()
    cli("project", "create", "p", "--studio", str(studio))
    url = f"{studio}/p"
    make_three_revisions(url, tmp_path / "wc", {})
    mnt = tmp_path / "mnt"
    pid = mount(url, mnt, tmp_path / "cache", {})
    try:
        check_every_revision(Mounted(url, mnt, pid, tmp_path / "wc", {}, studio))
        assert list((tmp_path / "cache/blocks").rglob("*.0")), "blocks are cached on disk"
        want = revision_files(studio, "p", 3)["shots/s1/plate.bin"]
        with open(mnt / "r/3/shots/s1/plate.bin", "rb") as f:
            for off in (0, 1, 4 * 1024 * 1024 - 3, BIG - 10, 2_000_000):
                assert os.pread(f.fileno(), 5000, off) == want[off:off + 5000]
    finally:
        cleanup(mnt, pid)


def test_bad_inputs(tmp_path: Path, studio_dir: Path) -> None:
    cli("project", "create", "p", "--studio", str(studio_dir))
    (tmp_path / "mnt").mkdir()
    cases = [
        (["mount", f"{studio_dir}/nope", str(tmp_path / "mnt")], "no project"),
        (["mount", str(tmp_path / "nostudio/p"), str(tmp_path / "mnt")], "not a studio"),
        (["mount", f"{studio_dir}/p", str(tmp_path / "missing")], "not a folder"),
        (["mount", "http://127.0.0.1:1/p", str(tmp_path / "mnt"), "--token", "t"], "reach"),
        (["umount", str(tmp_path / "mnt")], "nothing is mounted"),
    ]
    for args, text in cases:
        out = cli(*args, check=False)
        assert out.returncode == 1, (args, out.stderr)
        assert out.stderr.startswith("error: ") and text in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr
    assert not mounted_at(tmp_path / "mnt")
    for args in (["mount", "http://host-only", str(tmp_path / "mnt")],
                 ["mount", f"{studio_dir}/p", str(tmp_path / "mnt"), "--max-cache", "0"],
                 ["mount", f"{studio_dir}/p"]):
        usage = cli(*args, check=False)
        assert usage.returncode == 2, (args, usage.stderr)
        assert "Traceback" not in usage.stderr
