"""`vstudio render`/`deps` bad input, and the render cache shared through an S3 bucket."""

from __future__ import annotations

import json
import re
import shutil
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import S3Server, ServerProc
from tests.helpers import cli, need
from tests.render_projects import TOML, write_png, write_sif
from vstudio.errors import PermissionDenied


def synfig_project(root: Path) -> Path:
    (root).mkdir(parents=True)
    (root / "vstudio.toml").write_text(TOML)
    write_png(root / "textures" / "logo.png", 16, 9, (200, 30, 30))
    write_sif(root / "title.sif", "textures/logo.png", 3)
    return root


@pytest.mark.parametrize("args, code, message", [
    (["render", "{p}/nope.sif"], 1, "does not exist"),
    (["render", "{p}/textures/logo.png"], 1, "not a file vstudio can render"),
    (["render", "{p}", "--profile", "nope"], 2, "no profile 'nope'"),
    (["render", "{p}", "--farm", "http://127.0.0.1:9", "--local"], 2, "exclude each other"),
    (["render", "{p}", "--farm", "ftp://x"], 1, "http(s)://host:port"),
    (["render", "{p}", "-j", "0"], 2, "0 is not in the range"),
    (["render", "{p}", "{p}/.."], 1, "render one project at a time"),
    (["deps", "{p}"], 1, "is a folder"),
    (["deps", "{p}/textures/logo.png"], 1, "no scanner for '.png'"),
])
def test_bad_input_is_a_clear_error(studio_dir: Path, tmp_path: Path, args: list[str],
                                    code: int, message: str) -> None:
    proj = synfig_project(tmp_path / "p")
    argv = [a.replace("{p}", str(proj)) for a in args]
    extra = ["--studio", str(studio_dir)] if argv[0] == "render" else ["--json"]
    out = cli(*argv, *extra, check=False)
    assert out.returncode == code, out.stderr
    assert message in out.stderr + out.stdout
    assert "Traceback" not in out.stderr and "internal error" not in out.stderr


def test_bad_project_settings_and_damaged_files(studio_dir: Path, tmp_path: Path) -> None:
    proj = synfig_project(tmp_path / "p")
    (proj / "vstudio.toml").write_text("[profiles.draft]\nsampels = 4\n")
    out = cli("render", str(proj), "--studio", str(studio_dir), "--profile", "draft",
              check=False)
    assert out.returncode == 1 and "unknown render setting 'sampels'" in out.stderr
    (proj / "vstudio.toml").write_text("")
    (proj / "broken.blend").write_bytes(b"BLENDER-v304 and then nothing useful")
    out = cli("render", str(proj), "--studio", str(studio_dir), check=False)
    assert out.returncode == 1 and "broken.blend" in out.stderr
    assert "Traceback" not in out.stderr


def test_no_studio_is_explained(tmp_path: Path) -> None:
    proj = synfig_project(tmp_path / "p")
    out = cli("render", str(proj), check=False, cwd=tmp_path,
              env={"VSTUDIO_STUDIO": "", "VSTUDIO_SERVER": "", "VSTUDIO_TOKEN": ""})
    assert out.returncode == 1 and "--studio" in out.stderr


def test_two_machines_share_renders_through_s3(s3_server: S3Server, tmp_path: Path) -> None:
    need("synfig", "apt-get install synfig")
    url = s3_server.url(s3_server.new_bucket())
    for machine in ("a", "b"):
        cli("init", str(tmp_path / machine / "studio"), "--store", url)
    proj = synfig_project(tmp_path / "a" / "film")
    first = json.loads(cli("render", str(proj), "--studio", str(tmp_path / "a" / "studio"),
                           "--json").stdout)
    assert [(i["file"], i["status"], i["frames"]) for i in first] == \
        [("title.sif", "rendered", 3)]
    other = tmp_path / "b" / "film"
    shutil.copytree(proj, other, ignore=shutil.ignore_patterns("render", ".vstudio"))
    second = json.loads(cli("render", str(other), "--studio", str(tmp_path / "b" / "studio"),
                            "--json").stdout)
    assert [(i["file"], i["status"]) for i in second] == [("title.sif", "cached")]
    a = sorted((proj / "render/title.sif.png").iterdir())
    b = sorted((other / "render/title.sif.png").iterdir())
    assert [p.name for p in a] == [p.name for p in b] == ["0000.png", "0001.png", "0002.png"]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True))
    # the mp4 format is a video made by ffmpeg, cached like frames
    need("ffmpeg", "apt-get install ffmpeg")
    (other / "vstudio.toml").write_text(TOML + '\n[profiles.video]\nformat = "mp4"\n')
    video = json.loads(cli("render", str(other), "--studio", str(tmp_path / "b" / "studio"),
                           "--profile", "video", "--json").stdout)
    assert video[0]["status"] == "rendered"
    mp4 = other / "render/video/title.sif.mp4"
    assert mp4.is_file() and mp4.read_bytes()[4:8] == b"ftyp"


def test_krita_file_layers_and_render(studio_dir: Path, tmp_path: Path) -> None:
    import zipfile

    from tests.kragen import first_pixel, make_still

    root = tmp_path / "paint"
    write_png(root / "ref.png", 8, 8, (5, 100, 5))
    made = make_still(tmp_path / "made.kra", (200, 30, 40))
    with zipfile.ZipFile(made) as src, zipfile.ZipFile(root / "board.kra", "w") as out:
        for info in src.infolist():  # a file layer under the painted one, 3 frames long
            data = src.read(info)
            if info.filename == "maindoc.xml":
                data = data.replace(b"</layers>", b'<layer name="r" nodetype="filelayer" '
                                    b'source="ref.png" filename="layer9" visible="1" '
                                    b'opacity="255"/></layers>')
                data = re.sub(rb'<range [^>]*>', b'<range type="timerange" from="0" to="2"/>',
                              data)
            out.writestr(info, data)
    deps = json.loads(cli("deps", str(root / "board.kra"), "--json").stdout)
    assert [(u["path"], u["kind"]) for u in deps["uses"]] == [("ref.png", "layer")]
    items = json.loads(cli("render", str(root), "--studio", str(studio_dir), "--json").stdout)
    assert [(i["file"], i["status"]) for i in items] == [("board.kra", "rendered")]
    frames = sorted(p for p in (root / "render").rglob("*.png") if p.is_file())
    assert len(frames) == items[0]["frames"] >= 1
    # rendered by Krita: the painted layer on top, on every frame of the still
    assert {first_pixel(f)[:3] for f in frames} == {(200, 30, 40)}


def test_an_interrupted_render_resumes_after_its_stored_chunks(studio_dir: Path,
                                                                tmp_path: Path) -> None:
    need("synfig", "apt-get install synfig")
    from vstudio.render import cachescope, outputs
    from vstudio.studio import Studio

    proj = synfig_project(tmp_path / "p")
    (proj / "vstudio.toml").write_text("[render]\nchunk = 1\n")
    plan = json.loads(cli("render", str(proj), "--studio", str(studio_dir), "--dry-run",
                          "--json").stdout)
    assert [(i["status"], i["chunks"]) for i in plan] == [("planned", 3)]
    # an earlier run stored frame 1's chunk and was killed
    marker = write_png(tmp_path / "marker.png", 64, 36, (1, 2, 3))
    studio = Studio.open(studio_dir)
    scope = cachescope.scope_for(proj, studio.store)  # plain files: the user's own
    assert scope.startswith("u.")
    outputs.save_chunk(studio.store, scope, plan[0]["key"], {1: marker})
    studio.close()
    again = json.loads(cli("render", str(proj), "--studio", str(studio_dir), "--dry-run",
                           "--json").stdout)
    assert again[0]["chunks"] == 2 and "resuming: 1 frames" in again[0]["reason"]
    done = json.loads(cli("render", str(proj), "--studio", str(studio_dir), "--json").stdout)
    assert done[0]["status"] == "rendered"
    frames = proj / "render/title.sif.png"
    assert (frames / "0001.png").read_bytes() == marker.read_bytes()
    assert (frames / "0000.png").read_bytes() != marker.read_bytes()
    studio = Studio.open(studio_dir)
    assert studio.store.list_refs(cachescope.chunk_prefix(scope, plan[0]["key"])) == []
    assert studio.store.list_refs("render/") == [cachescope.manifest_ref(scope, plan[0]["key"])]


def test_render_through_a_server_caches_in_the_projects_scope(server: ServerProc,
                                                               tmp_path: Path) -> None:
    """Issue 12: the render cache over HTTP follows project rights. A render in a working
    copy of ``film`` is cached as film's (render/p.film/KEY): a reader of film takes it
    from the cache, while the same files outside the project are another user's own."""
    need("synfig", "apt-get install synfig")
    from vstudio.catalog import accounts
    from vstudio.render import cachescope
    from vstudio.store.remote import RemoteStore
    from vstudio.studio import Studio

    t = {n: server.add_user(n) for n in ("ana", "rita", "eve")}
    s = Studio.open(server.studio)
    try:
        accounts.create_project(s.engine, "film")
        accounts.set_right(s.engine, "film", "ana", "write", True)
        accounts.set_right(s.engine, "film", "rita", "read", True)  # eve: no right
    finally:
        s.close()
    env = {n: {"VSTUDIO_STUDIO": "", "VSTUDIO_SERVER": server.url, "VSTUDIO_TOKEN": t[n]}
           for n in t}
    ana = tmp_path / "ana"
    cli("checkout", f"{server.url}/film", str(ana), "--token", t["ana"])
    shutil.copytree(synfig_project(tmp_path / "src"), ana, dirs_exist_ok=True)
    cli("commit", "-m", "title", cwd=ana)

    def render(folder: Path, who: str) -> tuple[str, str]:
        items = json.loads(cli("render", str(folder), "--json", cwd=folder,
                               env=env[who]).stdout)
        assert len(items) == 1, items
        return items[0]["status"], items[0]["key"]

    status, key = render(ana, "ana")
    assert status == "rendered"
    admin = RemoteStore(server.url, server.admin_token)
    assert admin.list_refs("render/") == [f"render/p.film/{key}"]
    assert render(ana, "ana") == ("cached", key)  # a hit through the server
    # rita reads film: her checkout takes ana's render from the cache
    rita = tmp_path / "rita"
    cli("checkout", f"{server.url}/film", str(rita), "--token", t["rita"])
    assert render(rita, "rita") == ("cached", key)
    frames = sorted((rita / "render/title.sif.png").iterdir())
    assert [f.read_bytes() for f in frames] == [
        (ana / "render/title.sif.png" / f.name).read_bytes() for f in frames]
    # eve may not read film: neither its cache entries nor their frames reach her; the
    # same files outside any project are her own scope
    eve = RemoteStore(server.url, t["eve"])
    assert eve.list_refs("render/") == []
    with pytest.raises(PermissionDenied):
        eve.get_ref(f"render/p.film/{key}")
    assert cachescope.scope_for(tmp_path / "src", eve) == "u.eve"
    assert cachescope.scope_for(ana / "render", RemoteStore(server.url, t["ana"])) == "p.film"


def test_a_refused_cache_renders_without_it(server: ServerProc, tmp_path: Path) -> None:
    """Issue 12: when the server refuses its render cache (the user's right on the project
    was revoked after checkout, or a worker token), `vstudio render` renders without the
    cache and says why in one warning line, instead of failing on the 403."""
    need("synfig", "apt-get install synfig")
    from vstudio.catalog import accounts
    from vstudio.store.remote import RemoteStore
    from vstudio.studio import Studio

    t = {"ana": server.add_user("ana"), "node": server.add_user("node", "worker")}
    with closing(Studio.open(server.studio)) as s:
        accounts.create_project(s.engine, "film")
        accounts.set_right(s.engine, "film", "ana", "write", True)
    ana = tmp_path / "ana"
    cli("checkout", f"{server.url}/film", str(ana), "--token", t["ana"])
    shutil.copytree(synfig_project(tmp_path / "src"), ana, dirs_exist_ok=True)
    cli("commit", "-m", "title", cwd=ana)
    tmp = tmp_path / "tmp"  # where the throwaway store of a render without cache goes
    tmp.mkdir()
    env = {n: {"VSTUDIO_STUDIO": "", "VSTUDIO_SERVER": server.url, "VSTUDIO_TOKEN": t[n],
               "TMPDIR": str(tmp)} for n in t}

    def render(folder: Path, who: str) -> tuple[list[dict[str, str]], list[str]]:
        out = cli("render", str(folder), "--json", cwd=folder, env=env[who], check=False)
        assert out.returncode == 0, out.stderr
        assert "Traceback" not in out.stderr
        return json.loads(out.stdout), [ln for ln in out.stderr.splitlines()
                                        if "render cache" in ln]

    first, warned = render(ana, "ana")
    assert [i["status"] for i in first] == ["rendered"] and warned == []
    admin = RemoteStore(server.url, server.admin_token)
    cached = admin.list_refs("render/")
    assert cached == [f"render/p.film/{first[0]['key']}"]
    frames = {f.name: f.read_bytes() for f in (ana / "render/title.sif.png").iterdir()}
    shutil.rmtree(ana / "render")
    # ana's right on film is revoked: her render renders anew, warned once, and writes
    # nothing into film's cache
    with closing(Studio.open(server.studio)) as s:
        accounts.set_right(s.engine, "film", "ana", "read", False)
    again, warned = render(ana, "ana")
    assert [(i["status"], i["key"]) for i in again] == [("rendered", first[0]["key"])]
    assert len(warned) == 1 and warned[0].startswith("warning: rendering without the render "
                                                      f"cache: the server at {server.url}")
    assert "may not read the render cache of project 'film'" in warned[0]
    assert {f.name: f.read_bytes() for f in (ana / "render/title.sif.png").iterdir()} == frames
    assert admin.list_refs("render/") == cached and admin.list_refs("render-chunks/") == []
    # a worker token renders plain files without the cache, named as a worker's refusal
    plain = synfig_project(tmp_path / "plain")
    items, warned = render(plain, "node")
    assert [i["status"] for i in items] == ["rendered"]
    assert len(warned) == 1 and "a worker token can only take and report work" in warned[0]
    assert len(list((plain / "render/title.sif.png").iterdir())) == 3
    assert admin.list_refs("render/") == cached
    assert list(tmp.iterdir()) == []  # the throwaway stores went with their renders
