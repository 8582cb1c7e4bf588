"""Issue 12: project rights on `vstudio render --farm`, with a real server and render node.

A render of a working copy whose project's render cache the server refuses to the user
still renders on the farm, says why in one warning line and records nothing in the cache.
A right revoked while the farm renders stops the job at the next task handed out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from contextlib import closing
from pathlib import Path

from tests.conftest import ServerProc
from tests.helpers import VSTUDIO, cli, need, stop, wait_for
from tests.integration.test_render_cli import synfig_project
from tests.render_projects import write_png, write_sif


def _set_right(server: ServerProc, user: str, right: str, on: bool) -> None:
    from vstudio.catalog import accounts
    from vstudio.studio import Studio

    with closing(Studio.open(server.studio)) as s:
        accounts.set_right(s.engine, "film", user, right, on)


def _working_copy(server: ServerProc, tmp_path: Path, token: str,
                  src: Path | None = None) -> Path:
    """ana's checkout of project film holding a committed Synfig title (three frames
    unless ``src`` holds another project)."""
    from vstudio.catalog import accounts
    from vstudio.studio import Studio

    with closing(Studio.open(server.studio)) as s:
        accounts.create_project(s.engine, "film")
    _set_right(server, "ana", "write", True)
    ana = tmp_path / "ana"
    cli("checkout", f"{server.url}/film", str(ana), "--token", token)
    shutil.copytree(src or synfig_project(tmp_path / "src"), ana, dirs_exist_ok=True)
    cli("commit", "-m", "title", cwd=ana)
    return ana


def _farm(server: ServerProc, folder: Path, token: str,
          tmp_path: Path) -> tuple[list[dict[str, str]], list[str]]:
    """`render --farm` of ``folder`` as the token's user: its items and its lines on the
    render cache."""
    out = cli("render", str(folder), "--farm", server.url, "--token", token, "--json",
              "--timeout", "120", cwd=folder, check=False, timeout=180,
              env={"VSTUDIO_STUDIO": "", "VSTUDIO_SERVER": "", "TMPDIR": str(tmp_path)})
    worker_log = (tmp_path / "worker.log").read_text(errors="replace")[-2000:]
    assert out.returncode == 0, out.stderr + worker_log
    assert "Traceback" not in out.stderr
    return json.loads(out.stdout), [ln for ln in out.stderr.splitlines()
                                    if "render cache" in ln]


def test_a_refused_cache_renders_on_the_farm_without_it(server: ServerProc, worker: object,
                                                        tmp_path: Path) -> None:
    """ana lost her rights on film after checkout: `render --farm` still renders on the
    farm, warns once naming the refusal, writes nothing into film's cache; with read
    right only, it takes nothing new into the cache either."""
    need("synfig", "apt-get install synfig")
    from vstudio.store.remote import RemoteStore

    token = server.add_user("ana")
    ana = _working_copy(server, tmp_path, token)
    admin = RemoteStore(server.url, server.admin_token)
    _set_right(server, "ana", "read", False)
    items, warned = _farm(server, ana, token, tmp_path)
    assert [i["status"] for i in items] == ["rendered"]
    assert len(warned) == 1 and warned[0].startswith(
        f"warning: rendering without the render cache: the server at {server.url}")
    assert "may not read the render cache of project 'film'" in warned[0]
    frames = sorted(p.name for p in (ana / "render/title.sif.png").iterdir())
    assert frames == ["0000.png", "0001.png", "0002.png"]
    assert admin.list_refs("render/") == [] and admin.list_refs("render-chunks/") == []
    # read right only: the cache is read, the farm's render is not recorded in it
    _set_right(server, "ana", "read", True)
    _set_right(server, "ana", "write", False)
    shutil.rmtree(ana / "render")
    items, warned = _farm(server, ana, token, tmp_path)
    assert [i["status"] for i in items] == ["rendered"]
    assert warned == ["not recorded in the render cache (p.film): user 'ana' may not write "
                      "the render cache of project 'film'"]
    assert len(list((ana / "render/title.sif.png").iterdir())) == 3
    assert admin.list_refs("render/") == [] and admin.list_refs("render-chunks/") == []


def test_a_right_revoked_while_the_farm_renders_stops_the_job(
        server: ServerProc, worker: object, tmp_path: Path) -> None:
    """ana's read right on film is revoked while her farm job renders (paused by an admin
    after its first task, revoked, resumed): no further task is handed to a node, the job
    ends canceled naming why, her render fails saying so, and nothing is in the cache."""
    need("synfig", "apt-get install synfig")
    import httpx

    from vstudio.store.remote import RemoteStore

    # sixty frames, a task each: most are left at the revocation (with twelve, two slots
    # once rendered them all before the pause, and nothing was left to refuse)
    src = tmp_path / "src"
    src.mkdir()
    (src / "vstudio.toml").write_text("[render]\nchunk = 1\n")
    write_png(src / "textures/logo.png", 16, 9, (200, 30, 30))
    write_sif(src / "title.sif", "textures/logo.png", 60)
    token = server.add_user("ana")
    ana = _working_copy(server, tmp_path, token, src)
    admin = httpx.Client(base_url=server.url, timeout=30,
                         headers={"Authorization": f"Bearer {server.admin_token}"})
    env = {**os.environ, "VSTUDIO_STUDIO": "", "VSTUDIO_SERVER": "", "TMPDIR": str(tmp_path)}
    render = subprocess.Popen(
        [*VSTUDIO, "render", str(ana), "--farm", server.url, "--token", token, "--json"],
        cwd=ana, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def first_done() -> int | None:
            for job in admin.get("/api/jobs").json():
                tasks = admin.get(f"/api/jobs/{job['id']}").json()["tasks"]
                if any(t["status"] == "done" for t in tasks):
                    return int(job["id"])
            return None

        job_id = wait_for(first_done, 120, "the first task of ana's farm job")
        assert admin.post(f"/api/jobs/{job_id}/pause").status_code == 200
        _set_right(server, "ana", "read", False)
        assert admin.post(f"/api/jobs/{job_id}/resume").status_code == 200
        out, err = render.communicate(timeout=120)
    finally:
        stop(render)  # type: ignore[arg-type]
    assert render.returncode == 1 and "Traceback" not in err, err
    assert "title.sif: farm job" in err and "may not read" in err, err
    assert json.loads(out)[0]["status"] == "failed"

    def ended() -> dict[str, object] | None:
        job = admin.get(f"/api/jobs/{job_id}").json()
        return job if job["status"] == "canceled" else None

    job = wait_for(ended, 60, "the farm to cancel the job")
    tasks = job["tasks"]
    left = [t for t in tasks if t["status"] != "done"]
    assert len(tasks) == 60 and left, tasks
    assert {t["status"] for t in left} == {"canceled"}
    assert {t["error"] for t in left} == {
        "refused by the farm: user 'ana' may no longer read project 'film' "
        "(the job was canceled)"}
    store = RemoteStore(server.url, server.admin_token)
    assert store.list_refs("render/") == [] and store.list_refs("render-chunks/") == []
