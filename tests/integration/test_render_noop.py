"""The no-op fast path of ``vstudio render`` (vstudio.render.noop) with real Synfig."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests.helpers import cli, need
from tests.render_projects import write_png, write_sif


def _project(root: Path) -> Path:
    (root / "project.conf").parent.mkdir(parents=True)
    (root / "project.conf").write_text("[main]\nactive_profile=draft\n\n[draft]\nFPS=24\n")
    write_png(root / "logo.png", 32, 18, (230, 200, 20))
    write_sif(root / "title.sif", "logo.png", frames=3)
    old = time.time() - 60  # not "racy": changed well before the render looked at it
    for f in root.iterdir():
        os.utime(f, (old, old))
    return root


def test_noop_fast_path_matches_full_and_notices_changes(studio_dir: Path,
                                                         tmp_path: Path) -> None:
    need("synfig", "apt-get install synfig")
    proj = _project(tmp_path / "film")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    args = ("render", str(proj / "title.sif"), "--studio", str(studio_dir), "--json")
    first = json.loads(cli(*args, env=env).stdout)
    assert [i["status"] for i in first] == ["rendered"]
    assert list((tmp_path / "cache" / "vstudio" / "noop").glob("*.json"))

    full = cli(*args, env={**env, "VSTUDIO_NO_FAST_PATH": "1"})
    fast = cli(*args, env=env)
    assert fast.stdout == full.stdout and json.loads(fast.stdout)[0]["status"] == "cached"
    # the fast path answers without loading the CLI framework or the render engine
    timed = cli(*args, env={**env, "PYTHONPROFILEIMPORTTIME": "1"})
    assert "click" not in timed.stderr and "vstudio.render.engine" not in timed.stderr
    assert timed.stdout == full.stdout
    cli(*args[:-1], env=env)  # the human form has its own stamp: made here
    human = cli(*args[:-1], env={**env, "PYTHONPROFILEIMPORTTIME": "1"})
    assert "click" not in human.stderr
    assert human.stdout.splitlines()[-1] == "0 rendered, 1 cached, 0 failed in 0.0 s"

    # a FILE.conf that was not there: RenderChan's per-file settings apply, render again
    (proj / "title.sif.conf").write_text("WIDTH=32\nHEIGHT=18\n")
    again = json.loads(cli(*args, env=env).stdout)
    assert [i["status"] for i in again] == ["rendered"]
    # an output removed beside the sources is put back (the full path runs)
    frame = next((proj / "render" / "title.sif.png").glob("*.png"))
    frame.unlink()
    back = json.loads(cli(*args, env=env).stdout)
    assert [i["status"] for i in back] == ["cached"] and frame.is_file()
    # options the stamp does not cover take the full path
    dry = json.loads(cli(*args, "--dry-run", env=env).stdout)
    assert [i["status"] for i in dry] == ["cached"]

