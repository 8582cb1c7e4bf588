"""`vstudio render --farm`: a real server and a real render node with no shared project disk."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ServerProc
from tests.helpers import cli, need
from tests.render_projects import make_project


@pytest.fixture
def worker(server: ServerProc, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    token = server.add_user("node1", "worker")
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "vstudio", "worker", "--server", server.url, "--token", token,
         "--slots", "2", "--poll", "1", "--cache", str(tmp_path / "wcache")],
        stdout=log, stderr=log)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_render_on_farm_then_cached_locally(server: ServerProc, worker: object,
                                            tmp_path: Path) -> None:
    need("blender", "apt-get install blender")
    need("synfig", "apt-get install synfig")
    proj = make_project(tmp_path / "film", shots=1)
    # no shared disk, no studio folder here: inputs and outputs travel through the server
    try:
        out = cli("render", str(proj), "--farm", server.url, "--token", server.admin_token,
                  "--json", check=False, timeout=240, cwd=tmp_path,
                  env={"VSTUDIO_STUDIO": "", "VSTUDIO_SERVER": ""})
    except subprocess.TimeoutExpired as e:
        jobs = cli("jobs", "ls", "--server", server.url, "--token", server.admin_token,
                   "--json", check=False).stdout
        raise AssertionError(f"render --farm hung; jobs: {jobs}\nrender: {e.stderr!r}\n"
                             f"worker: {(tmp_path / 'worker.log').read_text()[-3000:]}"
                             ) from None
    assert out.returncode == 0, out.stderr + (tmp_path / "worker.log").read_text()[-3000:]
    items = json.loads(out.stdout)
    assert {i["file"]: i["status"] for i in items} == {
        "shots/s1.blend": "rendered", "title.sif": "rendered", "edit.blend": "rendered"}
    # the edit rendered on the node read the shot frames the farm rendered before it
    edit = sorted((proj / "render/edit.blend.png").glob("*.png"))
    assert [p.name for p in edit] == ["0001.png", "0002.png", "0003.png", "0004.png"]
    assert len({p.read_bytes() for p in edit}) > 1
    jobs = json.loads(cli("jobs", "ls", "--server", server.url, "--token",
                          server.admin_token, "--json").stdout)
    assert len(jobs) == 3 and {j["status"] for j in jobs} == {"done"}
    # the farm's renders are in the studio's render cache: nothing renders again
    again = json.loads(cli("render", str(proj), "--studio", str(server.studio),
                           "--json").stdout)
    assert {i["status"] for i in again} == {"cached"}
