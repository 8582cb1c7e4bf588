"""Project rendering end to end with real Blender, Synfig and a real studio store."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from tests.helpers import cli, need
from tests.render_projects import make_project, write_png, write_sif


def render(project: Path, studio: Path, *args: str) -> list[dict[str, Any]]:
    out = cli("render", str(project), "--studio", str(studio), "-j", "2", "--json", *args)
    return json.loads(out.stdout)


def status(items: list[dict[str, Any]]) -> dict[str, str]:
    return {i["file"]: i["status"] for i in items}


def test_render_only_what_changed(studio_dir: Path, tmp_path: Path) -> None:
    need("blender", "apt-get install blender")
    need("synfig", "apt-get install synfig")
    proj = make_project(tmp_path / "film")

    plan = render(proj, studio_dir, "--dry-run")
    assert status(plan) == {"shots/s1.blend": "planned", "shots/s2.blend": "planned",
                            "title.sif": "planned", "edit.blend": "planned"}
    # dependencies come first; the library and the textures are never targets
    order = [i["file"] for i in plan]
    assert order.index("edit.blend") == 3 and "lib/props.blend" not in order

    first = render(proj, studio_dir)
    assert set(status(first).values()) == {"rendered"}, first
    assert {i["frames"] for i in first if i["file"] != "edit.blend"} == {2}
    edit_frames = sorted(p.name for p in (proj / "render/edit.blend.png").iterdir())
    assert edit_frames == [f"{n:04d}.png" for n in range(1, 7)]
    assert len(list((proj / "render/title.sif.png").glob("*.png"))) == 2
    keys = {i["file"]: i["key"] for i in first}

    # nothing changed: nothing renders, and the decision is quick
    t0 = time.monotonic()
    second = render(proj, studio_dir)
    took = time.monotonic() - t0
    assert set(status(second).values()) == {"cached"}
    assert sum(i.get("chunks", 0) for i in second) == 0
    assert took < 1.0, f"an unchanged project took {took:.2f} s to decide"

    # touching files without changing their bytes renders nothing
    later = time.time() + 5
    for f in ("textures/wood.png", "shots/s1.blend", "lib/props.blend"):
        os.utime(proj / f, (later, later))
    assert set(status(render(proj, studio_dir)).values()) == {"cached"}

    # a new texture re-renders exactly the shot that uses it, and the edit
    write_png(proj / "textures" / "wood.png", 8, 8, (20, 200, 60))
    why = {i["file"]: i["reason"] for i in render(proj, studio_dir, "--dry-run")}
    assert why["shots/s1.blend"].endswith("changed since its last render here: "
                                          "textures/wood.png")
    assert why["edit.blend"].endswith("render of shots/s1.blend")
    third = render(proj, studio_dir)
    assert status(third) == {"shots/s1.blend": "rendered", "shots/s2.blend": "cached",
                             "title.sif": "cached", "edit.blend": "rendered"}
    assert {i["file"]: i["key"] for i in third}["shots/s2.blend"] == keys["shots/s2.blend"]

    # a named profile renders side by side; changing it re-renders that profile only
    # (without the default outputs: the draft edit must read the draft shots)
    shutil.rmtree(proj / "render" / "shots")
    shutil.rmtree(proj / "render" / "title.sif.png")
    draft = render(proj, studio_dir, "--profile", "draft")
    assert set(status(draft).values()) == {"rendered"}
    draft_edit = sorted((proj / "render/draft/edit.blend.png").iterdir())
    assert len(draft_edit) == 6 and len({p.read_bytes() for p in draft_edit}) >= 3
    toml = proj / "vstudio.toml"
    toml.write_text(toml.read_text().replace("samples = 2", "samples = 3"))
    assert set(status(render(proj, studio_dir, "--profile", "draft")).values()) == {"rendered"}
    assert set(status(render(proj, studio_dir)).values()) == {"cached"}
    assert (proj / "render/shots/s1.blend.png/0002.png").is_file()  # assembled again
    assert set(status(render(proj, studio_dir, "--profile", "final")).values()) == {"rendered"}

    # a per-file override (sidecar) changes that file and what uses its render
    (proj / "shots/s2.blend.toml").write_text("samples = 3\n")
    after = render(proj, studio_dir)
    assert status(after) == {"shots/s1.blend": "cached", "shots/s2.blend": "rendered",
                             "title.sif": "cached", "edit.blend": "rendered"}

    # a copy of the project elsewhere, without outputs or caches, renders nothing
    copy = tmp_path / "elsewhere" / "film"
    shutil.copytree(proj, copy, ignore=shutil.ignore_patterns("render", ".vstudio"))
    copied = render(copy, studio_dir)
    assert set(status(copied).values()) == {"cached"}
    assert {i["file"]: i["key"] for i in copied} == {i["file"]: i["key"] for i in after}
    assert ((copy / "render/edit.blend.png/0006.png").read_bytes()
            == (proj / "render/edit.blend.png/0006.png").read_bytes())


def test_missing_texture_names_file_and_shot(studio_dir: Path, tmp_path: Path) -> None:
    need("blender", "apt-get install blender")
    proj = make_project(tmp_path / "film", shots=1, edit=False, synfig=False)
    (proj / "textures" / "wood.png").unlink()
    out = cli("render", str(proj), "--studio", str(studio_dir), check=False)
    assert out.returncode == 1
    assert "textures/wood.png" in out.stderr and "shots/s1.blend" in out.stderr
    assert "Traceback" not in out.stderr
    deps = cli("deps", str(proj / "shots/s1.blend"), "--json", check=False)
    assert deps.returncode == 1
    report = json.loads(deps.stdout)
    assert [m["path"] for m in report["missing"]] == ["textures/wood.png"]
    ok = cli("deps", str(proj / "shots/s1.blend"), "--allow-missing")
    assert "MISSING" in ok.stdout


def test_cycle_is_reported(studio_dir: Path, tmp_path: Path) -> None:
    proj = tmp_path / "loop"
    write_png(proj / "logo.png", 4, 4, (1, 2, 3))
    for a, b in (("a", "b"), ("b", "a")):
        text = (write_sif(proj / f"{a}.sif", "logo.png").read_text()
                .replace("</canvas>", f'<layer type="paste_canvas"><param name="canvas" '
                                      f'use="{b}.sif#"/></layer></canvas>'))
        (proj / f"{a}.sif").write_text(text)
    out = cli("render", str(proj), "--studio", str(studio_dir), check=False)
    assert out.returncode == 1
    assert "cycle" in out.stderr and "a.sif" in out.stderr and "b.sif" in out.stderr
