"""Issue 12: project rights on `vstudio render --farm`, with a real server and render node.

A render of a working copy whose project's render cache the server refuses to the user
still renders on the farm, says why in one warning line and records nothing in the cache.
"""

from __future__ import annotations

import json
import shutil
from contextlib import closing
from pathlib import Path

from tests.conftest import ServerProc
from tests.helpers import cli, need
from tests.integration.test_render_cli import synfig_project


def _set_right(server: ServerProc, user: str, right: str, on: bool) -> None:
    from vstudio.catalog import accounts
    from vstudio.studio import Studio

    with closing(Studio.open(server.studio)) as s:
        accounts.set_right(s.engine, "film", user, right, on)


def _working_copy(server: ServerProc, tmp_path: Path, token: str) -> Path:
    """ana's checkout of project film holding a committed three-frame Synfig title."""
    from vstudio.catalog import accounts
    from vstudio.studio import Studio

    with closing(Studio.open(server.studio)) as s:
        accounts.create_project(s.engine, "film")
    _set_right(server, "ana", "write", True)
    ana = tmp_path / "ana"
    cli("checkout", f"{server.url}/film", str(ana), "--token", token)
    shutil.copytree(synfig_project(tmp_path / "src"), ana, dirs_exist_ok=True)
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
