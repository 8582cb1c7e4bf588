"""Frame by frame: an edit's chunk starts once the shot frames it shows exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.helpers import cli, need
from tests.render_projects import make_project


def test_edit_chunks_start_before_the_shot_is_done(studio_dir: Path, tmp_path: Path) -> None:
    need("blender", "apt-get install blender")
    proj = make_project(tmp_path / "film", shots=1, frames=4, synfig=False)
    (proj / "vstudio.toml").write_text("[render]\nchunk = 1\n", encoding="utf-8")
    out = cli("render", str(proj), "--studio", str(studio_dir), "-j", "2")
    log = out.stderr.splitlines()
    done = next(n for n, line in enumerate(log) if line.startswith("rendered shots/s1.blend"))
    early = [n for n, line in enumerate(log)
             if line.startswith("edit.blend frames ") and "of shots/s1.blend" in line]
    # the strip shows shot frame N at edit frame N: edit frame 1 needs only shot frame 1,
    # so with 4 one-frame shot chunks it starts while the shot still renders
    assert early and early[0] < done, out.stderr
    # which shot frame lands first is up to the two renderers; the edit chunk that starts
    # early is always a one-frame chunk (it reads only its own shot frame)
    assert re.search(r"^edit\.blend frames (\d)-\1: start with", out.stderr, re.M), out.stderr
    edit = sorted((proj / "render/edit.blend.png").glob("*.png"))
    shot = sorted((proj / "render/shots/s1.blend.png").glob("*.png"))
    assert [p.name for p in edit] == [p.name for p in shot] == [
        "0001.png", "0002.png", "0003.png", "0004.png"]
    assert len({p.read_bytes() for p in edit}) == 4  # each edit frame shows its own shot frame
    # and what rendered early is what the cache holds: a second run renders nothing
    again = json.loads(cli("render", str(proj), "--studio", str(studio_dir), "--json").stdout)
    assert {i["status"] for i in again} == {"cached"}
