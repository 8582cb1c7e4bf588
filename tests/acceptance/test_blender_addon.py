"""The Blender add-on in Debian's Blender against a real ``vstudio serve`` (and a worker).

The add-on is installed by ``vstudio blender install`` into a temporary Blender user
folder (never the real home), then each test opens a working-copy file in headless
Blender and drives ``bpy.ops.vstudio.*`` through ``blender_driver.py``.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServerProc, start_server
from tests.helpers import VSTUDIO, cli, free_port, need, stop
from tests.render_projects import write_png
from vstudio.jobtypes.samples import make_blend

DRIVER = Path(__file__).with_name("blender_driver.py")
# tokens come from each working copy (or the add-on's preferences), as for an artist
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("VSTUDIO_TOKEN", "VSTUDIO_SERVER")}


@dataclass
class Base:
    """What every test of this module shares: one server, one add-on install, one scene.

    Each test still gets its own project (its own revisions and locks) and its own working
    copies, so no test sees another's state; only the slow parts are made once.
    """

    tmp: Path
    server: ServerProc
    ana: str
    ben: str
    env: dict[str, str]  # Blender's user folders, holding the installed add-on
    installed: dict[str, Any]  # what ``vstudio blender install --json`` said
    template: Path  # shots/a.blend using tex/wall.png, made by Blender once


@dataclass
class Setup:
    tmp: Path
    server: ServerProc
    ana: str
    ben: str
    wc_ana: Path
    env: dict[str, str]
    project: str

    @property
    def shot(self) -> Path:
        return self.wc_ana / "shots" / "a.blend"

    @property
    def wc_ben(self) -> Path:
        """Ben's working copy, checked out when a test first needs it (at r1 then)."""
        wc = self.tmp / "ben"
        if not wc.exists():
            cli("checkout", f"{self.server.url}/{self.project}", str(wc), "--token", self.ben)
        return wc

    def blender(self, file: Path, steps: list[dict[str, Any]], name: str = "run",
                env: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Open ``file`` in headless Blender with the installed add-on and run ``steps``."""
        steps_file, out = self.tmp / f"{name}-steps.json", self.tmp / f"{name}-out.json"
        steps_file.write_text(json.dumps(steps))
        proc = subprocess.run(
            ["blender", "-b", str(file), "--python-exit-code", "1", "--python", str(DRIVER),
             "--", str(steps_file), str(out)],
            env={**CLEAN_ENV, **self.env, **(env or {})}, capture_output=True, text=True,
            timeout=600)
        assert proc.returncode == 0 and out.is_file(), proc.stdout[-3000:] + proc.stderr[-2000:]
        return list(json.loads(out.read_text()))


def texts(rec: dict[str, Any], level: str | None = None) -> list[str]:
    return [t for lv, t in rec["messages"] if level is None or lv == level]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Base]:
    from vstudio.studio import init_studio

    exe = need("blender", "apt-get install blender")
    tmp = tmp_path_factory.mktemp("addon")
    init_studio(tmp / "studio", store_url=None, db_url=None).close()
    server = start_server(tmp / "studio", tmp / "server.log")
    try:
        env = {"BLENDER_USER_CONFIG": str(tmp / "bl-config"),
               "BLENDER_USER_SCRIPTS": str(tmp / "bl-scripts")}
        installed = json.loads(cli("blender", "install", "--blender", exe, "--json",
                                   env=env).stdout)
        template = tmp / "template"
        (template / "tex").mkdir(parents=True)
        # write_png, not samples.PNG_1PX: libpng refuses that one ("IDAT: incorrect data
        # check"), and here Blender must read the texture's pixels
        write_png(template / "tex" / "wall.png", 1, 1, (230, 230, 230))
        make_blend(template / "shots" / "a.blend", frames=2,
                   texture=template / "tex" / "wall.png")
        yield Base(tmp, server, server.add_user("ana"), server.add_user("ben"), env,
                   installed, template)
    finally:
        server.stop()


_projects = itertools.count(1)


@pytest.fixture
def setup(base: Base, tmp_path: Path) -> Setup:
    """A project of its own on the shared server: ana's shot (a needs-lock .blend using a
    texture) committed as r1; working copies of ana and ben."""
    from vstudio.catalog import accounts
    from vstudio.studio import Studio

    project = f"film{next(_projects)}"
    studio = Studio.open(base.server.studio)  # as `vstudio project create`, in-process
    try:
        accounts.create_project(studio.engine, project)
    finally:
        studio.close()
    wc_ana = tmp_path / "ana"
    cli("checkout", f"{base.server.url}/{project}", str(wc_ana), "--token", base.ana)
    shutil.copytree(base.template, wc_ana, dirs_exist_ok=True)
    cli("lock", "--rule", "*.blend", cwd=wc_ana)
    cli("commit", "-m", "first shot", cwd=wc_ana)
    return Setup(tmp_path, base.server, base.ana, base.ben, wc_ana, base.env, project)


def test_install_and_zip(base: Base, tmp_path: Path) -> None:
    """install enables the add-on in the user's Blender; zip packs both layouts."""
    data, env = base.installed, base.env
    assert data["enabled"] and Path(data["addon"]).is_relative_to(base.tmp / "bl-scripts")
    assert json.loads((Path(data["addon"]) / "cli.json").read_text())["argv"][:1] == VSTUDIO[:1]
    probe = ("import bpy, addon_utils; print('STATE', addon_utils.check('vstudio_blender')[1],"
             " sorted(n for n in dir(bpy.ops.vstudio) if not n.startswith('_')))")
    proc = subprocess.run(["blender", "-b", "--python-expr", probe], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=120)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("STATE"))
    assert line.startswith("STATE True") and "'submit'" in line and "'lock'" in line, line
    z = cli("blender", "zip", str(tmp_path / "a.zip")).stdout.strip()
    assert "vstudio_blender/__init__.py" in zipfile.ZipFile(z).namelist()
    cli("blender", "zip", str(tmp_path / "e.zip"), "--extension")
    names = zipfile.ZipFile(tmp_path / "e.zip").namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    bad = cli("blender", "install", "--blender", str(tmp_path / "nope"), check=False)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0
    assert "Blender not found" in bad.stderr


def test_lock_commit_update_history(setup: Setup) -> None:
    """An artist's day on one file: lock, change, commit with its texture, update, history."""
    s = setup
    change = "import bpy; bpy.context.scene['note'] = 'ana'; bpy.ops.wm.save_mainfile()"
    note = "import bpy; APP.messages.append(('X', str(bpy.context.scene.get('note'))))"
    recs = s.blender(s.shot, [
        {"op": "lock", "args": {"message": "animating"}},
        {"py": "open(r'%s', 'ab').write(b'\\0')" % (s.wc_ana / "tex" / "wall.png")},
        {"py": change},
        {"py": "import bpy; bpy.ops.vstudio.commit(message='cube up', uses=["
               "{'name': u['path'], 'include': True, **u} "
               "for u in APP.state(bpy.data.filepath)['changed_uses']])"},
        {"op": "unlock"},
        {"op": "history"},
    ], "day")
    load, lock, _tex, save, commit, unlock, history = recs
    assert load["state"]["summary"] == "needs lock" and load["line"] == "needs lock"
    assert texts(lock, "INFO")[0].startswith("locked shots/a.blend")
    assert lock["state"]["lock"]["owner"] == "ana" and lock["line"] == "locked by me"
    assert lock["seconds"] < 0.1  # the call ran off the main thread
    assert save["state"]["summary"] == "modified, locked by me"
    assert save["state"]["changed_uses"] == [{"path": "tex/wall.png", "status": "modified"}]
    assert texts(commit, "INFO") == ["committed r2 (2 paths)"], commit["messages"]
    assert commit["state"]["rev"] == 2 and commit["state"]["status"] == "normal"
    assert unlock["state"]["lock"] is None
    assert [r["rev"] for r in history["history"]] == [2, 1]
    log = json.loads(cli("log", "-v", "--json", cwd=s.wc_ana).stdout)
    assert set(log[0]["changed"]) == {"shots/a.blend", "tex/wall.png"}

    # ben changes the shot; ana sees "out of date", updates, and the file is reloaded
    cli("update", cwd=s.wc_ben)
    cli("lock", "shots/a.blend", cwd=s.wc_ben)
    s.blender(s.wc_ben / "shots" / "a.blend", [
        {"py": "import bpy; bpy.context.scene['note'] = 'ben'; bpy.ops.wm.save_mainfile()"},
        {"op": "commit", "args": {"message": "cube right"}},
        {"op": "unlock"}], "ben")
    recs = s.blender(s.shot, [
        {"op": "update"},
        {"py": note},
        {"op": "open_revision", "args": {"rev": 1}},
        {"py": note + "; import os; APP.messages.append(('W', "
               "str(os.stat(bpy.data.filepath).st_mode & 0o222)))"},
        {"py": "import bpy; bpy.ops.wm.save_mainfile()"},
    ], "update")
    load, update, after, rev1, z, save = recs
    assert load["line"] == "out of date"
    assert texts(update, "INFO")[0].startswith("at revision 3: 1 updated")
    assert update["state"]["summary"] == "needs lock" and texts(after, "X") == ["ben"]
    assert rev1["file"].endswith("a.r1.blend") and rev1["line"] == "r1 of a.blend (read-only)"
    assert texts(z, "X") == ["None"] and texts(z, "W") == ["0"]
    assert any("opened read-only" in t for t in texts(save, "WARNING"))


def test_file_locked_by_someone_else_and_every_lock_listed(setup: Setup) -> None:
    """Opening a file ben holds says so at once; saving over it warns; the state lists every
    lock of the project (the CLI's --json and the add-on's Locks panel)."""
    s = setup
    cli("lock", "shots/a.blend", "-m", "lighting pass", cwd=s.wc_ben)
    cli("lock", "tex/wall.png", cwd=s.wc_ana)
    recs = s.blender(s.shot, [{"py": "import bpy; bpy.ops.wm.save_mainfile()"},
                              {"op": "lock"}], "other")
    load, save, lock = recs
    warn = texts(load, "WARNING")
    assert len(warn) == 1 and "is locked by ben since" in warn[0] and "lighting pass" in warn[0]
    assert load["line"].startswith("locked by ben since ")
    assert any(t.startswith("saving over shots/a.blend is locked by ben")
               for t in texts(save, "WARNING"))
    cli_err = cli("lock", "shots/a.blend", cwd=s.wc_ana, check=False).stderr.strip()
    assert texts(lock, "ERROR") == [cli_err] and "ben" in cli_err

    state = json.loads(cli("blender", "state", str(s.shot), "--json", cwd=s.wc_ana).stdout)
    locks = state["locks"]
    assert [(x["path"], x["owner"], x["message"]) for x in locks] == [
        ("shots/a.blend", "ben", "lighting pass"), ("tex/wall.png", "ana", "")]
    assert all(abs(x["since"] - time.time()) < 600 for x in locks)
    human = cli("blender", "state", str(s.shot), cwd=s.wc_ana).stdout
    assert f"locks in {s.project}: 2" in human and "  tex/wall.png  ana since " in human
    lines = [(path, who) for path, who, _icon in load["locks"]]  # the Locks panel's lines
    assert [p for p, _ in lines] == ["shots/a.blend", "tex/wall.png"]
    assert lines[0][1].startswith("ben since ") and lines[0][1].endswith("“lighting pass”")
    assert lines[1][1].startswith("me since ")


def test_errors_wrong_token_and_server_down(setup: Setup) -> None:
    """A wrong token and a stopped server reach the artist as the CLI's one-line message."""
    s = setup
    prefs = "bpy.context.preferences.addons['vstudio_blender'].preferences"
    recs = s.blender(s.shot, [{"py": f"import bpy; {prefs}.token = 'wrong'"},
                              {"op": "refresh"}, {"op": "lock"}], "badtoken")
    cli_err = cli("lock", "shots/a.blend", cwd=s.wc_ana, check=False,
                  env={"VSTUDIO_TOKEN": "wrong"}).stderr.strip()
    assert cli_err.startswith("error:") and texts(recs[3], "ERROR") == [cli_err]
    assert recs[2]["error"] == cli_err  # the panel says why there is no state
    # the server this working copy was checked out from no longer answers (the shared
    # server keeps running for the other tests: only this copy's address changes)
    meta_file = s.wc_ana / ".vstudio" / "wc.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "server": f"http://127.0.0.1:{free_port()}"}))
    recs = s.blender(s.shot, [{"op": "update"}, {"op": "submit", "args": {"frames": "1-2"}}],
                     "down")
    cli_err = cli("update", cwd=s.wc_ana, check=False).stderr.strip()
    assert "cannot reach" in cli_err and texts(recs[1], "ERROR") == [cli_err]
    assert len(texts(recs[2], "ERROR")) == 1 and "cannot reach" in texts(recs[2], "ERROR")[0]


def test_update_brings_other_files_another_user_changed(setup: Setup) -> None:
    """Update from Blender brings ben's commit whole: the texture the open file uses (and
    Blender shows the new one at once) and a file he added, not only the open file."""
    s = setup
    # the pixels are read first, as a viewport would: only a reload shows the new ones
    size = ("img = bpy.data.images['wall.png']; img.pixels[0]; "
            "APP.messages.append(('SIZE', str(tuple(img.size))))")
    write_png(s.wc_ben / "tex" / "wall.png", 2, 2, (200, 30, 30))
    (s.wc_ben / "lib").mkdir()
    shutil.copy(s.wc_ben / "shots" / "a.blend", s.wc_ben / "lib" / "props.blend")
    cli("add", "lib/props.blend", cwd=s.wc_ben)
    cli("commit", "-m", "red wall, props library", cwd=s.wc_ben)
    load, before, update, after = s.blender(s.shot, [{"py": size}, {"op": "update"},
                                                     {"py": size}], "others")
    assert load["line"] == "needs lock" and texts(before, "SIZE") == ["(1, 1)"]
    assert texts(update, "INFO")[0] == "at revision 2: 1 updated, 1 added, 0 removed"
    assert texts(after, "SIZE") == ["(2, 2)"], after["messages"]  # reloaded in Blender
    for rel in ("tex/wall.png", "lib/props.blend"):
        assert (s.wc_ana / rel).read_bytes() == (s.wc_ben / rel).read_bytes(), rel
    assert update["state"]["rev"] == 2 and update["state"]["summary"] == "needs lock"
    assert json.loads(cli("status", "--json", cwd=s.wc_ana).stdout) == []


def test_render_from_a_subfolder_takes_the_project_root(setup: Setup) -> None:
    """`vstudio render --farm` started in shots/: the project is the working copy (no
    vstudio.toml anywhere), or the RenderChan project (project.conf) inside it."""
    s = setup
    env = {"VSTUDIO_TOKEN": s.ana, "VSTUDIO_STUDIO": "", "VSTUDIO_SERVER": ""}
    plan = json.loads(cli("render", "a.blend", "--farm", s.server.url, "--dry-run", "--json",
                          cwd=s.wc_ana / "shots", env=env).stdout)
    assert [(i["file"], i["output"]) for i in plan] == [
        ("shots/a.blend", "render/shots/a.blend.png")]
    rc = s.wc_ana / "episode"  # a RenderChan project in the working copy: its root wins
    shutil.copytree(s.wc_ana / "shots", rc / "shots")
    shutil.copytree(s.wc_ana / "tex", rc / "tex")
    (rc / "project.conf").write_text("[main]\nactive_profile=draft\n\n[draft]\n"
                                     "WIDTH=64\nHEIGHT=36\n")
    plan = json.loads(cli("render", "a.blend", "--farm", s.server.url, "--dry-run", "--json",
                          cwd=rc / "shots", env=env).stdout)
    assert [(i["file"], i["output"]) for i in plan] == [
        ("shots/a.blend", "render/shots/a.blend.png")]


@pytest.fixture
def node(setup: Setup) -> Iterator[Path]:
    """A real render node for the setup's server; yields its log."""
    token = setup.server.add_user(f"node-{setup.project}", "worker")
    log_path = setup.tmp / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*VSTUDIO, "worker", "--server", setup.server.url, "--token", token, "--poll", "1",
             "--cache", str(setup.tmp / "wcache")], stdout=log, stderr=log)
        try:
            yield log_path
        finally:
            stop(proc)


def test_farm_submit_watch_page_fetch_and_project_render(setup: Setup, node: Path) -> None:
    """The saved, checked-in shot goes to the farm from Blender; a real node renders it; the
    job page opens at the job's URL; fetch brings the frames beside the file; "render this
    shot and what it needs" runs on the farm too."""
    s = setup
    opened = s.tmp / "opened.txt"
    browser = s.tmp / "browser.sh"  # Blender opens pages with Python's webbrowser: $BROWSER
    browser.write_text(f"#!/bin/sh\necho \"$1\" >> {opened}\n")
    browser.chmod(0o755)
    # no vstudio.toml: the project is the working copy, so shots/a.blend's texture
    # (../tex/wall.png) is inside it and travels with the farm render
    last = "max(APP.jobs)"
    recs = s.blender(s.shot, [
        {"op": "submit", "args": {"frames": "1-2", "chunk": 1}, "timeout": 400},
        {"py": f"bpy.ops.vstudio.job_page(job_id={last})"},
        {"py": f"bpy.ops.vstudio.fetch(job_id={last})"},
        {"op": "render_project", "args": {"farm": True}, "timeout": 400},
    ], "farm", env={"BROWSER": str(browser)})
    _load, submit, page, fetch, render = recs
    log = node.read_text()[-2000:]
    assert texts(submit, "INFO")[0].endswith(" (2 files)"), (submit["messages"], log)
    job = int(texts(submit, "INFO")[0].split()[2])
    assert submit["jobs"][str(job)]["status"] == "done", (submit["jobs"], log)
    assert texts(submit, "INFO")[-1].startswith(f"job {job} done 100%")
    assert opened.read_text().split() == [f"{s.server.url}/jobs/{job}"], page["messages"]
    frames = sorted((s.wc_ana / "shots" / "render" / f"a-job{job}").rglob("*.png"))
    assert len(frames) == 2 and all(f.read_bytes()[:4] == b"\x89PNG" for f in frames)
    assert texts(fetch, "INFO") == [f"fetched 2 file(s) of job {job} into {frames[0].parent}"]
    assert texts(render, "INFO")[-1] == "1 rendered, 0 cached, 0 failed", render["messages"]
    assert [(i["status"], i["file"]) for i in render["renders"]] == [
        ("rendered", "shots/a.blend")]
