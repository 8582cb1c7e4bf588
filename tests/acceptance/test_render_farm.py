"""`vstudio render --farm`: a real server and a real render node with no shared project disk."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ServerProc
from tests.helpers import cli, need
from tests.render_projects import make_project


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
    # the whole plan went as one job, a block per file
    assert len(jobs) == 1 and jobs[0]["status"] == "done"
    # the farm's renders are in the studio's render cache, in the scope of the user who
    # submitted them (plain files): rendered through the server, nothing renders again
    again = json.loads(cli("render", str(proj), "--json", cwd=tmp_path, env={
        "VSTUDIO_STUDIO": "", "VSTUDIO_SERVER": server.url,
        "VSTUDIO_TOKEN": server.admin_token}).stdout)
    assert {i["status"] for i in again} == {"cached"}


def test_shot_and_edit_one_job_frame_dependency(server: ServerProc, worker: object,
                                                 tmp_path: Path) -> None:
    need("blender", "apt-get install blender")
    proj = make_project(tmp_path / "film", shots=1, frames=3, synfig=False)
    env = {"VSTUDIO_STUDIO": "", "VSTUDIO_SERVER": ""}
    args = ("render", str(proj), "--farm", server.url, "--token", server.admin_token, "--json")
    out = cli(*args, check=False, timeout=240, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr + (tmp_path / "worker.log").read_text()[-3000:]
    assert {i["file"]: i["status"] for i in json.loads(out.stdout)} == {
        "shots/s1.blend": "rendered", "edit.blend": "rendered"}
    jobs = json.loads(cli("jobs", "ls", "--server", server.url, "--token",
                          server.admin_token, "--json").stdout)
    assert len(jobs) == 1 and jobs[0]["status"] == "done"
    detail = json.loads(cli("jobs", "show", str(jobs[0]["id"]), "--server", server.url,
                            "--token", server.admin_token, "--json").stdout)
    blocks = {b["name"]: b for b in detail["blocks"]}
    assert sorted(blocks) == ["b1-shots_s1.blend", "b2-edit.blend"]
    edit = blocks["b2-edit.blend"]
    # the edit's strip shows shot frame N at edit frame N: frame by frame, not whole
    assert edit["depends_on"] == [{"block": "b1-shots_s1.blend", "mode": "frame"}]
    assert edit["params"]["upstream_paths"] == {
        "b1-shots_s1.blend": "render/shots/s1.blend.png/{frame:04d}.png"}
    shot = sorted((proj / "render/shots/s1.blend.png").glob("*.png"))
    frames = sorted((proj / "render/edit.blend.png").glob("*.png"))
    assert [p.name for p in shot] == [p.name for p in frames] == [
        "0001.png", "0002.png", "0003.png"]
    # the node rendered the edit with the shot's frames in place (the shot moves per frame)
    assert len({p.read_bytes() for p in frames}) == 3
    again = cli(*args, check=False, timeout=120, cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert {i["status"] for i in json.loads(again.stdout)} == {"cached"}
    jobs = json.loads(cli("jobs", "ls", "--server", server.url, "--token",
                          server.admin_token, "--json").stdout)
    assert len(jobs) == 1  # nothing submitted the second time


def test_farm_timeout_names_stuck_jobs_and_cancels_them(server: ServerProc,
                                                          tmp_path: Path) -> None:
    # no render node runs: the job can only sit in the queue until --timeout
    from tests.render_projects import write_png, write_sif

    proj = tmp_path / "film"
    write_png(proj / "logo.png", 4, 4, (200, 10, 10))
    write_sif(proj / "title.sif", "logo.png", 2)
    (proj / "vstudio.toml").write_text("[render]\nchunk = 1\n", encoding="utf-8")
    out = cli("render", str(proj), "--farm", server.url, "--token", server.admin_token,
              "--timeout", "2", "--json", check=False, timeout=60, cwd=tmp_path,
              env={"VSTUDIO_STUDIO": "", "VSTUDIO_SERVER": ""})
    assert out.returncode == 1, out.stderr
    assert "timed out after 2 s" in out.stderr
    assert "(title.sif): queued" in out.stderr and "2 queued" in out.stderr
    assert "no render node took them" in out.stderr
    items = json.loads(out.stdout)
    assert [(i["file"], i["status"]) for i in items] == [("title.sif", "failed")]
    jobs = json.loads(cli("jobs", "ls", "--server", server.url, "--token",
                          server.admin_token, "--json").stdout)
    assert [j["status"] for j in jobs] == ["canceled"]
    # --timeout belongs to farm renders; a bad value is a usage error
    bad = cli("render", str(proj), "--timeout", "0", check=False, cwd=tmp_path)
    assert bad.returncode == 2 and "timeout" in bad.stderr.lower()
    local = cli("render", str(proj), "--timeout", "5", "--studio", str(server.studio),
                check=False, cwd=tmp_path)
    assert local.returncode == 2 and "--timeout applies to --farm" in local.stderr


def test_plan_larger_than_a_job_goes_as_jobs_in_order(server: ServerProc, worker: object,
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # a job holds at most MAX_BLOCKS blocks: with one per job, the edit goes in a second
    # job submitted after the shot's render is recorded, its frames as plain job inputs
    need("blender", "apt-get install blender")
    from vstudio.client.farm import FarmClient
    from vstudio.render import farm
    from vstudio.render.engine import ProjectRender
    from vstudio.store.remote import RemoteStore

    proj = make_project(tmp_path / "film", shots=1, frames=2, synfig=False)
    monkeypatch.setattr(farm, "MAX_BLOCKS", 1)
    job = ProjectRender([proj], RemoteStore(server.url, server.admin_token))
    job.plan()
    farm.run_on_farm(job, FarmClient(server.url, server.admin_token), poll=0.3, timeout=200)
    assert {i.file: i.status for i in job.items} == {
        "shots/s1.blend": "rendered", "edit.blend": "rendered"}, [i.error for i in job.items]
    jobs = json.loads(cli("jobs", "ls", "--server", server.url, "--token",
                          server.admin_token, "--json").stdout)
    assert len(jobs) == 2 and {j["status"] for j in jobs} == {"done"}
    edit = sorted((proj / "render/edit.blend.png").glob("*.png"))
    assert [p.name for p in edit] == ["0001.png", "0002.png"]
    assert len({p.read_bytes() for p in edit}) == 2


def test_failed_block_fails_its_readers_and_ends_the_job(server: ServerProc, worker: object,
                                                         tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # the shot's block fails on the node (a scene not in the file): the edit's tasks would
    # wait for it forever on the farm; render --farm fails both and cancels the job
    need("blender", "apt-get install blender")
    from vstudio.client.farm import FarmClient
    from vstudio.render import farm
    from vstudio.render.engine import ProjectRender
    from vstudio.store.remote import RemoteStore

    proj = make_project(tmp_path / "film", shots=1, frames=2, synfig=False)
    real = farm.task_for

    def broken(path: Path, *args: object) -> dict[str, object]:
        task = real(path, *args)  # type: ignore[arg-type]
        if path.name == "s1.blend":
            task["params"]["scene"] = "NoSuchScene"  # type: ignore[index]
        return task

    monkeypatch.setattr(farm, "task_for", broken)
    job = ProjectRender([proj], RemoteStore(server.url, server.admin_token))
    job.plan()
    farm.run_on_farm(job, FarmClient(server.url, server.admin_token), poll=0.3, timeout=200)
    by = {i.file: i for i in job.items}
    assert by["shots/s1.blend"].status == "failed"
    assert "NoSuchScene" in by["shots/s1.blend"].error, by["shots/s1.blend"].error
    assert by["edit.blend"].status == "failed"
    assert by["edit.blend"].error == "not rendered: it needs shots/s1.blend, which failed"
    jobs = json.loads(cli("jobs", "ls", "--server", server.url, "--token",
                          server.admin_token, "--json").stdout)
    # the farm ends the job itself (failed) once nothing can run, or render cancels it first
    assert [j["status"] for j in jobs] in (["failed"], ["canceled"])


def test_renderchan_project_on_the_farm(server: ServerProc, worker: object,
                                        tmp_path: Path) -> None:
    need("blender", "apt-get install blender")
    need("synfig", "apt-get install synfig")
    from tests.render_projects import make_rc_project

    # the edit reads shot 1 as RenderChan's file.NNNNN.png frames and the title's frames;
    # one more title frame than the title has: that edit must fail, named, not render empty
    strips: list[dict[str, object]] = [
        {"dir": "render/shots/s1.blend.png", "first": 1, "frames": 2, "name": "file.%05d.png"},
        {"dir": "render/title.sif.png", "first": 0, "frames": 2, "name": "file.%04d.png"}]
    proj = make_rc_project(tmp_path / "film", strips=strips)
    env = {"VSTUDIO_STUDIO": "", "VSTUDIO_SERVER": ""}
    args = ("render", str(proj), "--farm", server.url, "--token", server.admin_token, "--json")
    out = cli(*args, check=False, timeout=300, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr + (tmp_path / "worker.log").read_text()[-3000:]
    items = {i["file"]: i["status"] for i in json.loads(out.stdout)}
    assert items == {"shots/s1.blend": "rendered", "title.sif": "rendered",
                     "edit.blend": "rendered", "shots/s2.blend": "rendered"}  # s2: a root
    assert sorted(p.name for p in (proj / "render/shots/s1.blend.png").iterdir()) == [
        "file.00001.png", "file.00002.png"]
    edit = sorted((proj / "render/edit.blend.png").iterdir())
    assert [p.name for p in edit] == [f"file.{n:05d}.png" for n in range(1, 5)]
    assert len({p.read_bytes() for p in edit}) == 4  # every frame shows its source

    bad = make_rc_project(tmp_path / "film2", strips=[
        {"dir": "render/title.sif.png", "first": 0, "frames": 3, "name": "file.%04d.png"}])
    out = cli("render", str(bad), "--farm", server.url, "--token", server.admin_token,
              "--json", check=False, timeout=300, cwd=tmp_path, env=env)
    assert out.returncode == 1
    assert "render/title.sif.png/file.0002.png" in out.stderr
    assert not (bad / "render/edit.blend.png").exists()


def test_an_empty_farm_render_is_a_loud_warning(server: ServerProc, worker: object,
                                                tmp_path: Path) -> None:
    need("blender", "apt-get install blender")
    need("synfig", "apt-get install synfig")
    from tests.render_projects import MUTED_TITLE, assert_empty_edit_warned, make_rc_project

    proj = make_rc_project(tmp_path / "film", strips=MUTED_TITLE)
    out = cli("render", str(proj / "edit.blend"), "--farm", server.url, "--token",
              server.admin_token, "--json", check=False, timeout=300, cwd=tmp_path,
              env={"VSTUDIO_STUDIO": "", "VSTUDIO_SERVER": ""})
    assert out.returncode == 0, out.stderr + (tmp_path / "worker.log").read_text()[-3000:]
    assert_empty_edit_warned(out)


def test_image_list_read_on_the_farm(server: ServerProc, worker: object,
                                     tmp_path: Path) -> None:
    need("synfig", "apt-get install synfig")
    ffmpeg = need("ffmpeg", "apt-get install ffmpeg")
    from tests.render_projects import write_png, write_sif

    # comp.sif imports the title's render as RenderChan's image list (render/X.lst)
    root = tmp_path / "film"
    root.mkdir()
    (root / "project.conf").write_text("[main]\nactive_profile=draft\n\n[draft]\n"
                                       "WIDTH=64\nHEIGHT=36\nFPS=24\n")
    write_png(root / "logo.png", 32, 18, (230, 200, 20))
    write_sif(root / "title.sif", "logo.png", frames=3)
    write_sif(root / "comp.sif", "render/title.sif.lst", frames=3)
    out = cli("render", str(root / "comp.sif"), "--farm", server.url, "--token",
              server.admin_token, "--json", check=False, timeout=300, cwd=tmp_path,
              env={"VSTUDIO_STUDIO": "", "VSTUDIO_SERVER": ""})
    assert out.returncode == 0, out.stderr + (tmp_path / "worker.log").read_text()[-3000:]
    assert {i["file"]: i["status"] for i in json.loads(out.stdout)} == {
        "title.sif": "rendered", "comp.sif": "rendered"}
    assert (root / "render/title.sif.lst").read_text().splitlines() == [
        "FPS 24", *(f"title.sif.png/file.{n:04d}.png" for n in range(3))]
    frame = root / "render/comp.sif.png/file.0001.png"
    px = subprocess.run([ffmpeg, "-v", "error", "-i", str(frame), "-f", "rawvideo",
                         "-pix_fmt", "rgba", "-"], capture_output=True, check=True).stdout
    assert bytes((230, 200, 20, 255)) in px  # the title's logo, read through the list
