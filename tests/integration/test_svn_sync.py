"""svn-sync from a live repository while artists still commit there: file:// through
svnadmin, svn:// (svnserve) through svnrdump, into a local studio or a vstudio server."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import ServerProc
from tests.helpers import VSTUDIO, cli, cli_json, free_port, need, wait_for
from tests.svnkit import commit, compare, head, new_repo, svn


def _work(wc: Path, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        (wc / "shots").mkdir(exist_ok=True)
        (wc / "shots" / f"s{i % 3}.blend").write_bytes(os.urandom(2000) + bytes([i]))
        (wc / f"notes{i}.txt").write_text(f"note {i}\n")
        commit(wc, f"work {i}", "ann" if i % 2 else "bob")


def test_sync_repeatedly_then_final_locks_file_repo(tmp_path: Path, studio_dir: Path) -> None:
    repo, url, wc = new_repo(tmp_path / "svn")
    _work(wc, 2)
    cli("project", "create", "live", "--studio", str(studio_dir))
    dest = f"{studio_dir}/live"
    first = cli_json("svn-sync", url, dest)
    assert (first["revisions"], first["first"], first["last"], first["youngest"]) == (2, 1, 2, 2)
    _work(wc, 2, start=2)  # artists keep committing to Subversion
    svn("mv", "-q", "notes0.txt", "Notes0.txt", cwd=wc)
    commit(wc, "case-only rename")
    second = cli_json("svn-sync", url, dest)
    assert (second["revisions"], second["first"], second["last"]) == (3, 3, 5)
    assert cli_json("svn-sync", url, dest)["revisions"] == 0
    assert "nothing new: the project is at r5" in cli("svn-sync", url, dest).stdout
    compare(studio_dir, "live", url, {r: r for r in range(1, 6)})
    # --watch keeps pulling until interrupted.
    watch = subprocess.Popen([*VSTUDIO, "svn-sync", "--watch", "1", url, dest, "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _work(wc, 1, start=4)
        wait_for(lambda: head(studio_dir, "live") == 6, 60, "the watching sync to pull r6")
    finally:
        watch.send_signal(signal.SIGINT)
        _out, err = watch.communicate(timeout=30)
    assert watch.returncode == 130 and b"Traceback" not in err
    # The switch-over: the hook goes in first, then the last revisions come.
    old_hook = repo / "hooks" / "pre-commit"
    old_hook.write_text("#!/bin/sh\nexit 0\n")
    old_hook.chmod(0o755)
    _work(wc, 1, start=5)
    final = cli_json("svn-sync", "--final", url, dest)
    assert final["locked"] is True and final["last"] == 7
    assert (repo / "hooks" / "pre-commit.before-vstudio").read_text() == "#!/bin/sh\nexit 0\n"
    (wc / "late.txt").write_text("too late\n")
    svn("add", "-q", "late.txt", cwd=wc)
    late = subprocess.run(["svn", "commit", "-m", "late", "--non-interactive"], cwd=wc,
                          capture_output=True, text=True)
    assert late.returncode != 0 and "moved to vstudio" in late.stderr
    compare(studio_dir, "live", url, {r: r for r in range(1, 8)})


def test_sync_over_svnserve_with_svnrdump(tmp_path: Path, server: ServerProc) -> None:
    need("svnserve", "apt-get install subversion")
    need("svnrdump", "apt-get install subversion")
    repo, file_url, wc = new_repo(tmp_path / "svn")
    _work(wc, 3)
    port = free_port()
    serve = subprocess.Popen(["svnserve", "-d", "--foreground", "-r", str(repo),
                              "--listen-host", "127.0.0.1", "--listen-port", str(port)])
    try:
        url = f"svn://127.0.0.1:{port}"
        wait_for(lambda: svn("info", url), 20, "svnserve")
        cli("project", "create", "net", "--studio", str(server.studio))
        dest = f"{server.url}/net"
        artist = server.add_user("art")
        r = cli("svn-sync", url, dest, "--token", artist, check=False)
        assert r.returncode == 1 and "admin" in r.stderr
        got = cli_json("svn-sync", url, dest, "--token", server.admin_token)
        assert (got["revisions"], got["last"]) == (3, 3)
        _work(wc, 2, start=3)
        got = cli_json("svn-sync", url, dest, "--token", server.admin_token)
        assert (got["revisions"], got["first"], got["last"]) == (2, 4, 5)
        final = cli_json("svn-sync", "--final", url, dest, "--token", server.admin_token)
        assert final["locked"] is False and "pre-commit" in final["how_to_lock"]
        compare(server.studio, "net", file_url, {r: r for r in range(1, 6)})
    finally:
        serve.terminate()
        serve.wait(10)
    # The server is gone: one line, the project keeps its revisions.
    r = cli("svn-sync", url, dest, "--token", server.admin_token, check=False)
    assert r.returncode == 1 and "cannot read" in r.stderr and "Traceback" not in r.stderr
    assert head(server.studio, "net") == 5


APACHE_CONF = """\
ServerRoot {root}
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {root}/httpd.pid
ErrorLog {root}/error.log
LogLevel warn
User nobody
Group nogroup
LoadModule mpm_event_module {mods}/mod_mpm_event.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule dav_module {mods}/mod_dav.so
LoadModule dav_svn_module {mods}/mod_dav_svn.so
<Location /svn/repo>
  DAV svn
  SVNPath {repo}
  Require all granted
</Location>
"""


def _apache(root: Path, repo: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Debian's apache2 + mod_dav_svn serving ``repo`` at http://127.0.0.1:PORT/svn/repo,
    from a throwaway configuration in ``root``."""
    apache = need("apache2", "apt-get install apache2 libapache2-mod-svn")
    mods = Path("/usr/lib/apache2/modules")
    if not (mods / "mod_dav_svn.so").is_file():
        pytest.fail("mod_dav_svn is missing: install it with 'apt-get install "
                    "libapache2-mod-svn' (make test does)")
    # The server's workers run as nobody: they must read (and lock) the repository.
    root.chmod(0o711)
    subprocess.run(["chmod", "-R", "a+rwX", str(repo)], check=True)
    port = free_port()
    conf = root / "httpd.conf"
    conf.write_text(APACHE_CONF.format(root=root, port=port, mods=mods, repo=repo))
    proc = subprocess.Popen([apache, "-f", str(conf), "-DFOREGROUND"])
    url = f"http://127.0.0.1:{port}/svn/repo"
    try:
        wait_for(lambda: svn("info", url), 20, "apache2 serving the repository")
    except BaseException:
        proc.terminate()
        proc.wait(10)
        log = root / "error.log"
        print(log.read_text() if log.exists() else "(no apache error log)")
        raise
    return proc, url


def test_sync_over_http_from_apache(studio_dir: Path) -> None:
    need("svnrdump", "apt-get install subversion")
    # Outside pytest's private temporary folder: the server's user must reach it.
    web = Path(tempfile.mkdtemp(prefix="vstudio-apache-"))
    try:
        _sync_over_http(web, studio_dir)
    finally:
        shutil.rmtree(web, ignore_errors=True)


def _sync_over_http(web: Path, studio_dir: Path) -> None:
    repo, file_url, wc = new_repo(web / "svn")
    _work(wc, 3)
    svn("mv", "-q", "notes0.txt", "Notes0.txt", cwd=wc)
    commit(wc, "case-only rename")
    proc, url = _apache(web, repo)
    dest = f"{studio_dir}/web"
    try:
        cli("project", "create", "web", "--studio", str(studio_dir))
        got = cli_json("svn-sync", url, dest)
        assert (got["revisions"], got["first"], got["last"], got["youngest"]) == (4, 1, 4, 4)
        _work(wc, 2, start=3)  # artists keep committing while the studio syncs
        got = cli_json("svn-sync", url, dest)
        assert (got["revisions"], got["first"], got["last"]) == (2, 5, 6)
        assert cli_json("svn-sync", url, dest)["revisions"] == 0
        final = cli_json("svn-sync", "--final", url, dest)
        assert final["locked"] is False and "pre-commit" in final["how_to_lock"]
        compare(studio_dir, "web", file_url, {r: r for r in range(1, 7)})
    finally:
        proc.terminate()
        proc.wait(10)
    r = cli("svn-sync", url, dest, check=False)  # the server is gone: one line
    assert r.returncode == 1 and "cannot read" in r.stderr and "Traceback" not in r.stderr
    assert head(studio_dir, "web") == 6


def test_sync_bad_sources(tmp_path: Path, studio_dir: Path) -> None:
    cli("project", "create", "p", "--studio", str(studio_dir))
    (tmp_path / "plain").mkdir()
    r = cli("svn-sync", f"file://{tmp_path}/plain", f"{studio_dir}/p", check=False)
    assert r.returncode == 1 and "not a Subversion repository" in r.stderr
    r = cli("svn-sync", "--watch", "5", "--final", f"file://{tmp_path}/plain",
            f"{studio_dir}/p", check=False)
    assert r.returncode == 2
    # A project ahead of the repository (another repository) is refused.
    _repo, url, wc = new_repo(tmp_path / "svn")
    _work(wc, 2)
    cli_json("svn-sync", url, f"{studio_dir}/p")
    _other, ourl, owc = new_repo(tmp_path / "other")
    _work(owc, 1)
    r = cli("svn-sync", ourl, f"{studio_dir}/p", check=False)
    assert r.returncode == 1 and "is at r1 but the project is at r2" in r.stderr
    for i in range(2):  # as many revisions, other messages: not the project's history
        (owc / f"o{i}.txt").write_text("o\n")
        commit(owc, f"other {i}")
    r = cli("svn-sync", ourl, f"{studio_dir}/p", check=False)
    assert r.returncode == 1 and "is not the project's r2" in r.stderr
    assert head(studio_dir, "p") == 2
