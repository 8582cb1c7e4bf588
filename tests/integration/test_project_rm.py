"""``project rm`` (history gone, data freed by gc, name reusable) and ``commit --keep-locks``."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import cli, cli_json
from tests.svnkit import commit, dump, head, new_repo


def _store_has(studio: Path, oid: str) -> bool:
    from vstudio.studio import Studio

    s = Studio.open(studio)
    try:
        return bool(s.store.has(oid))
    finally:
        s.close()


def _refs(studio: Path, prefix: str) -> list[str]:
    from vstudio.studio import Studio

    s = Studio.open(studio)
    try:
        return list(s.store.list_refs(prefix))
    finally:
        s.close()


def test_project_rm_frees_data_at_gc_and_the_name(tmp_path: Path, studio_dir: Path) -> None:
    st = str(studio_dir)
    for name in ("gone", "kept"):
        cli("project", "create", name, "--studio", st)
    shared = os.urandom(5000)
    for name in ("gone", "kept"):
        wc = tmp_path / name
        cli("checkout", f"{st}/{name}", str(wc))
        (wc / "shared.bin").write_bytes(shared)
        (wc / "own.bin").write_bytes(os.urandom(7000))
        cli("commit", "-m", "files", cwd=wc)
        cli("lock", "own.bin", cwd=wc)
    from vstudio.repo import open_reader
    from vstudio.studio import Studio

    s = Studio.open(studio_dir)
    try:
        tree = {n: open_reader(s).tree(n, 1) for n in ("gone", "kept")}
    finally:
        s.close()
    own = tree["gone"]["own.bin"].oid
    assert tree["gone"]["shared.bin"].oid == tree["kept"]["shared.bin"].oid
    s = Studio.open(studio_dir)
    try:  # cached renders of both projects (render/p.NAME/KEY and an unfinished one)
        for name in ("gone", "kept"):
            s.store.put_ref(f"render/p.{name}/{'ab' * 32}", b"{}")
            s.store.put_ref(f"render-chunks/p.{name}/{'ab' * 32}/1-1", b"[]")
    finally:
        s.close()
    # No terminal, no --yes: refused, nothing removed.
    r = cli("project", "rm", "gone", "--studio", st, check=False)
    assert r.returncode == 2 and "--yes" in r.stderr
    assert head(studio_dir, "gone") == 1
    info = cli_json("project", "rm", "gone", "--yes", "--studio", st)
    assert info["head"] == 1 and info["refs"] >= 2  # its revision and its lock
    assert "gone" not in [p["name"] for p in cli_json("project", "ls", "--studio", st)]
    assert _refs(studio_dir, "projects/gone/") == []
    # its render cache went with it: a later project of that name starts without it
    assert _refs(studio_dir, "render/p.gone/") == _refs(studio_dir, "render-chunks/p.gone/") == []
    kept = _refs(studio_dir, "render/p.kept/") + _refs(studio_dir, "render-chunks/p.kept/")
    assert len(kept) == 2
    r = cli("project", "rm", "gone", "--yes", "--studio", st, check=False)
    assert r.returncode == 1 and "no project 'gone'" in r.stderr
    # catalog rebuild does not bring it back; gc frees what only it used.
    rebuilt = cli_json("catalog", "rebuild", "--studio", st)
    assert "gone" not in rebuilt["projects"] and "kept" in rebuilt["projects"]
    assert _store_has(studio_dir, own)
    for _ in range(2):  # gc: first marks, the next one deletes
        cli("store", "gc", "--grace", "0", "--studio", st)
    assert not _store_has(studio_dir, own)
    assert _store_has(studio_dir, tree["kept"]["shared.bin"].oid)
    assert _store_has(studio_dir, tree["kept"]["own.bin"].oid)
    # The name is free again: a failed import can start over under it.
    cli("project", "create", "gone", "--studio", st)
    repo, _url, swc = new_repo(tmp_path / "svn")
    (swc / "a.txt").write_text("a\n")
    commit(swc, "one")
    assert cli_json("svn-import", str(dump(repo, tmp_path / "d.dump")), f"{st}/gone")["last"] == 1


def test_commit_keep_locks(tmp_path: Path, studio_dir: Path) -> None:
    st = str(studio_dir)
    cli("project", "create", "p", "--studio", st)
    wc = tmp_path / "wc"
    cli("checkout", f"{st}/p", str(wc))
    (wc / "a.blend").write_bytes(b"one")
    (wc / "b.blend").write_bytes(b"one")
    cli("commit", "-m", "add", cwd=wc)
    cli("lock", "a.blend", cwd=wc)
    cli("lock", "b.blend", cwd=wc)
    (wc / "a.blend").write_bytes(b"two")
    cli("commit", "--keep-locks", "-m", "keep", cwd=wc)
    assert cli_json("info", cwd=wc)["locks"] == ["a.blend", "b.blend"]
    r = cli("lock", "a.blend", cwd=wc, check=False, env={"VSTUDIO_USER": "someone-else"})
    assert r.returncode == 1 and "locked by" in r.stderr
    (wc / "a.blend").write_bytes(b"three")
    (wc / "b.blend").write_bytes(b"three")
    cli("commit", "-m", "release", cwd=wc)  # the default releases them, as svn does
    assert cli_json("info", cwd=wc)["locks"] == []
    assert "locked" not in cli("log", "-l", "1", cwd=wc).stdout


def test_a_removed_projects_name_waits_for_its_farm_jobs(studio_dir: Path) -> None:
    """A removed project's farm jobs are their owners' alone; a new project of that name
    would give them to its readers, so the name is refused until they are deleted."""
    import asyncio

    from vstudio.catalog import accounts
    from vstudio.farm.service import Farm
    from vstudio.farm.spec import JobSpec
    from vstudio.studio import Studio

    st = str(studio_dir)
    cli("project", "create", "film", "--studio", st)
    spec = JobSpec.model_validate({"name": "shot", "project": "film", "blocks": [
        {"type": "command", "params": {"argv": ["true"]}, "frames": "1"}]})
    s = Studio.open(studio_dir)
    boss = accounts.add_user(s.engine, "boss", "admin")[0]

    async def farm(do: str) -> int:
        f = Farm(s)
        await f.start()
        try:
            if do == "submit":
                return int(await f.submit(boss, spec))
            await f.job_action(boss, job, "delete")
            return job
        finally:
            await f.stop()

    try:
        job = asyncio.run(farm("submit"))
        cli("project", "rm", "film", "--yes", "--studio", st)
        r = cli("project", "create", "film", "--studio", st, check=False)
        assert r.returncode == 1 and "1 farm job(s) of it remain" in r.stderr, r.stderr
        assert "film" not in [p["name"] for p in cli_json("project", "ls", "--studio", st)]
        asyncio.run(farm("delete"))
        cli("project", "create", "film", "--studio", st)  # the name is free again
    finally:
        s.close()
