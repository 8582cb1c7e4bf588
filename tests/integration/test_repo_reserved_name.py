"""A committed ``.vstudio`` folder below the root would make that folder of every checkout
a working copy of a server the committer chose (``vstudio update`` run there sends the
artist's token to it). Every entry point refuses the name, at every depth and in any case:
a working copy commit, svn-import, the server's commit route, and checkout/update of a
tree an older vstudio let in."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProc
from tests.helpers import cli, need
from tests.integration.test_repo_wc import InProcess, _studio

WC_JSON = json.dumps({"kind": "remote", "server": "http://attacker.example:8642",
                      "project": "film"})


@pytest.fixture
def vs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcess:
    return InProcess(monkeypatch, capsys)


@pytest.mark.parametrize("folder", ["sub/.vstudio", "sub/deep/.VSTUDIO"])
def test_working_copy_commit_refuses(tmp_path: Path, vs: InProcess, folder: str) -> None:
    root = _studio(tmp_path, None, None)
    wc = tmp_path / "wc"
    vs.cli("checkout", f"{root}/film", str(wc))
    (wc / "ok.txt").write_text("fine")
    (wc / folder).mkdir(parents=True)
    (wc / folder / "wc.json").write_text(WC_JSON)
    r = vs.cli("commit", "-m", "plant", cwd=wc, check=False)
    assert r.returncode == 1, r.stdout
    assert "reserved at every depth" in r.stderr and "Traceback" not in r.stderr
    assert vs.cli_json("info", cwd=wc)["head"] == 0  # nothing was committed


def test_svn_import_refuses(tmp_path: Path, studio_dir: Path) -> None:
    need("svnadmin", "apt-get install subversion")
    need("svn", "apt-get install subversion")
    repo = tmp_path / "svnrepo"
    subprocess.run(["svnadmin", "create", str(repo)], check=True)
    src = tmp_path / "src"
    (src / "sub" / ".VStudio").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / ".VStudio" / "wc.json").write_text(WC_JSON)
    subprocess.run(["svn", "import", "-q", "-m", "plant", str(src), f"file://{repo}"],
                   check=True, capture_output=True)
    dump = tmp_path / "repo.dump"
    with open(dump, "wb") as f:
        subprocess.run(["svnadmin", "dump", "-q", str(repo)], stdout=f, check=True)
    cli("project", "create", "imp", "--studio", str(studio_dir))
    r = cli("svn-import", str(dump), f"{studio_dir}/imp", check=False)
    assert r.returncode == 1 and "reserved at every depth" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    from vstudio.repo import open_reader
    from vstudio.studio import Studio

    s = Studio.open(studio_dir)
    try:
        assert open_reader(s).head("imp") == 0  # nothing was imported
    finally:
        s.close()


def test_server_commit_route_refuses(server: ServerProc) -> None:
    h = {"Authorization": f"Bearer {server.admin_token}"}
    assert httpx.post(f"{server.url}/api/projects", json={"name": "film"},
                      headers=h).status_code == 201
    data = WC_JSON.encode()
    r = httpx.post(f"{server.url}/api/repo/film/blobs/put", headers=h,
                   content=struct.pack("<Q", len(data)) + data)
    assert r.status_code == 200, r.text
    oid = r.json()["ids"][0]
    for path in ("sub/.vstudio/wc.json", "x/.VSTUDIO/wc.json", "x/.vstudio./wc.json"):
        r = httpx.post(f"{server.url}/api/repo/film/commits", headers=h, json={
            "message": "plant", "changes": [
                {"path": path, "new": {"oid": oid, "size": len(data)}}]})
        assert r.status_code == 400 and "reserved at every depth" in r.json()["detail"], r.text
    assert httpx.get(f"{server.url}/api/repo/film", headers=h).json()["head"] == 0


def _commit_unchecked(root: Path, monkeypatch: pytest.MonkeyPatch,
                      files: dict[str, bytes]) -> int:
    """Commit as a vstudio that did not reserve the name yet would have."""
    from vstudio.repo import paths as P
    from vstudio.repo.api import Entry
    from vstudio.repo.service import Change, RepoService
    from vstudio.studio import Studio

    s = Studio.open(root)
    try:
        svc = RepoService(s)
        changes = []
        for path, data in files.items():
            oid = s.store.put_bytes(data)
            changes.append(Change(path, None, Entry(path, oid, len(data))))
        with monkeypatch.context() as m:
            m.setattr(P, "_reserved", lambda name: False, raising=False)
            return svc.commit("film", "mallory", "plant", changes)
    finally:
        s.close()


def test_checkout_and_update_refuse_such_trees(tmp_path: Path, vs: InProcess,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = _studio(tmp_path, None, None)
    assert _commit_unchecked(root, monkeypatch, {"a.txt": b"a"}) == 1
    wc = tmp_path / "wc"
    vs.cli("checkout", f"{root}/film", str(wc))
    assert _commit_unchecked(root, monkeypatch, {"sub/.VSTUDIO/wc.json": WC_JSON.encode(),
                                                 "sub/b.txt": b"b"}) == 2
    r = vs.cli("update", cwd=wc, check=False)
    assert r.returncode == 1 and "reserved at every depth" in r.stderr, r.stderr
    assert not (wc / "sub").exists()
    assert vs.cli_json("info", cwd=wc)["rev"] == 1
    fresh = tmp_path / "fresh"
    r = vs.cli("checkout", f"{root}/film", str(fresh), check=False)
    assert r.returncode == 1 and "reserved at every depth" in r.stderr, r.stderr
    assert not (fresh / "sub").exists()
    # the revision before the planted one still checks out
    vs.cli("checkout", f"{root}/film", str(tmp_path / "old"), "--rev", "1")
    assert (tmp_path / "old" / "a.txt").read_text() == "a"
