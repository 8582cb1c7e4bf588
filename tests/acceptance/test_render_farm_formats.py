"""`vstudio render --farm` of RenderChan's GIMP, Pencil2D and Synfig (extract_alpha, EXR)
sources: a real server and a real render node, no shared project disk."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import ServerProc
from tests.helpers import cli, need
from tests.integration.test_render_alpha_exr import SIF, exr_info
from tests.integration.test_render_gimp_pencil import make_pclx, make_xcf, rgba


def test_gimp_pencil2d_alpha_and_exr_render_on_the_farm(server: ServerProc, worker: object,
                                                         tmp_path: Path) -> None:
    for program in ("gimp", "pencil2d", "synfig"):
        need(program, f"apt-get install {program}")
    root = tmp_path / "film"
    root.mkdir()
    (root / "project.conf").write_text("[draft]\nWIDTH=32\nHEIGHT=18\n")
    make_xcf(root / "bg.xcf", 40, 30)
    make_pclx(root / "walk.pclx", {1: (255, 0, 0), 2: (0, 0, 255)})
    (root / "disc.sif").write_text(SIF)
    (root / "disc.sif.conf").write_text("extract_alpha=1\n")
    (root / "glow.sif").write_text(SIF)
    (root / "glow.sif.conf").write_text("FORMAT=exr\n")
    out = cli("render", str(root), "--farm", server.url, "--token", server.admin_token,
              "--json", check=False, timeout=240, cwd=tmp_path,
              env={"VSTUDIO_STUDIO": "", "VSTUDIO_SERVER": ""})
    assert out.returncode == 0, out.stderr + (tmp_path / "worker.log").read_text()[-3000:]
    assert {i["file"]: i["status"] for i in json.loads(out.stdout)} == {
        "bg.xcf": "rendered", "walk.pclx": "rendered", "disc.sif": "rendered",
        "glow.sif": "rendered"}
    # rendered by the node, as one job with a block of each file's type
    jobs = json.loads(cli("jobs", "ls", "--server", server.url, "--token",
                          server.admin_token, "--json").stdout)
    assert len(jobs) == 1 and jobs[0]["status"] == "done"
    detail = json.loads(cli("jobs", "show", str(jobs[0]["id"]), "--server", server.url,
                            "--token", server.admin_token, "--json").stdout)
    assert sorted(b.get("type", "") for b in detail["blocks"]) == [
        "gimp", "pencil2d", "synfig", "synfig"], detail["blocks"]
    w, h, px = rgba(root / "render/bg.xcf.png")
    assert (w, h) == (40, 30) and px[5 * w + 5] == (255, 0, 0, 255)
    frames = sorted(p.name for p in (root / "render/walk.pclx.png").iterdir())
    assert frames == ["file0001.png", "file0002.png"]
    w, h, px = rgba(root / "render/walk.pclx.png/file0002.png")
    assert (w, h) == (32, 18) and px[9 * 32 + 4] == (0, 0, 255, 255)
    disc = sorted(p.name for p in (root / "render/disc.sif.png").iterdir())
    assert "file-alpha.0001.png" in disc and "file.0001.png" in disc
    assert exr_info(root / "render/glow.sif.exr/file.0001.exr") == ("exr", "32x18")


def test_submit_gimp_and_pencil2d_jobs(server: ServerProc, worker: object,
                                       tmp_path: Path) -> None:
    import time

    need("gimp", "apt-get install gimp")
    need("pencil2d", "apt-get install pencil2d")
    make_xcf(tmp_path / "bg.xcf", 40, 30)
    make_pclx(tmp_path / "walk.pclx", {1: (255, 0, 0), 2: (0, 0, 255)})
    auth = ("--server", server.url, "--token", server.admin_token)
    gimp = json.loads(cli("submit", "gimp", str(tmp_path / "bg.xcf"), "--width", "20",
                          "--height", "15", *auth, "--json").stdout)["id"]
    pencil = json.loads(cli("submit", "pencil2d", str(tmp_path / "walk.pclx"), "--frames",
                            "1-2", "--transparency", *auth, "--json").stdout)["id"]
    deadline = time.monotonic() + 120
    for job in (gimp, pencil):
        while True:
            shown = json.loads(cli("jobs", "show", str(job), *auth, "--json").stdout)
            if shown["status"] in ("done", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert shown["status"] == "done", (shown, (tmp_path / "worker.log").read_text()[-3000:])
        cli("jobs", "fetch", str(job), str(tmp_path / f"out{job}"), *auth)
    [png] = list((tmp_path / f"out{gimp}").rglob("*.png"))
    w, h, px = rgba(png)
    assert (w, h) == (20, 15) and px[2 * w + 2] == (255, 0, 0, 255)
    frames = sorted((tmp_path / f"out{pencil}").rglob("*.png"))
    assert len(frames) == 2
    w, h, px = rgba(frames[1])
    assert (w, h) == (64, 36) and px[18 * w + 8] == (0, 0, 255, 255) and px[18 * w + 50][3] == 0
    # a .pcl needs its data folder: refused with one line, nothing submitted
    (tmp_path / "old.pcl").write_text("<document/>")
    out = cli("submit", "pencil2d", str(tmp_path / "old.pcl"), "--frames", "1", *auth,
              check=False)
    assert out.returncode == 1 and "save it as .pclx" in out.stderr
    assert "Traceback" not in out.stderr
