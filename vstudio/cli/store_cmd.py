"""``vstudio store``: plumbing commands of the object store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from vstudio.cli.common import emit, json_option, open_studio_from, studio_option
from vstudio.errors import BadInput, PermissionDenied

server_option = click.option(
    "--server", metavar="URL", default=None,
    help="Use the store of this studio server instead of a local studio "
         "(token from --token or VSTUDIO_TOKEN).")
token_option = click.option("--token", metavar="TOKEN", default=None,
                            help="API token for --server (default: $VSTUDIO_TOKEN).")


def _open(studio_dir: str | None, server: str | None = None, token: str | None = None) -> Any:
    """The local studio's store, or a server's over HTTP."""
    if server:
        import os

        from vstudio.store.remote import RemoteStore

        return RemoteStore(server, token or os.environ.get("VSTUDIO_TOKEN"))
    return open_studio_from(studio_dir).store


@click.group("store")
def store_group() -> None:
    """The studio's object store: put, get, check, gc, stats."""


@store_group.command("put")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@studio_option
@server_option
@token_option
@json_option
def store_put(paths: tuple[Path, ...], studio_dir: str | None, server: str | None,
              token: str | None, as_json: bool) -> None:
    """Store files; prints each file's id."""
    from vstudio.cli.progress import bar

    for p in paths:  # check all before storing any, so a typo stores nothing
        if not p.exists():
            raise BadInput(f"{p} does not exist")
        if p.is_dir():
            raise BadInput(f"{p} is a folder: give files (for example {p}/*)")
    store = _open(studio_dir, server, token)
    progress = bar()
    out = []
    with store.writer() as w:
        for p in paths:
            out.append({"path": str(p), "id": w.put_file(p, progress)})
    emit(out, as_json, lambda d: click.echo("\n".join(f"{r['id']}  {r['path']}" for r in d)))


@store_group.command("get")
@click.argument("oid", metavar="ID")
@click.argument("dest", type=click.Path(path_type=Path))
@studio_option
@server_option
@token_option
@click.option("--project", default=None,
              help="With --server: the project whose history holds ID (default: any you "
                   "may read).")
def store_get(oid: str, dest: Path, studio_dir: str | None, server: str | None,
              token: str | None, project: str | None = None) -> None:
    """Write the object ID to the file DEST ('-' for standard output).

    Through --server, a user reads the objects of the projects they may read (any
    revision); an admin reads any object."""
    from vstudio.cli.progress import bar
    from vstudio.store.objects import parse_id

    parse_id(oid)
    store = _open(studio_dir, server, token)

    def get() -> None:
        if str(dest) == "-":
            for block in store.iter_file(oid):
                sys.stdout.buffer.write(block)
            return
        store.get_file(oid, dest, bar())

    if not server:
        get()
        return
    try:
        get()  # an admin needs no grant
    except PermissionDenied:
        store.remember({oid: _grant_by_id(store, oid, project)})
        get()


def _grant_by_id(store: Any, oid: str, project: str | None) -> str:
    """The read grant the server gives for an id of a project this user may read."""
    resp = store.http.get(f"{store.base}/objects/{oid}/grant",
                          params={"project": project} if project else {})
    if resp.status_code != 200:
        raise PermissionDenied(str(resp.json().get("detail", resp.text)))
    return str(resp.json()["grant"])


@store_group.command("stats")
@studio_option
@server_option
@token_option
@json_option
def store_stats(studio_dir: str | None, server: str | None, token: str | None,
                as_json: bool) -> None:
    """Sizes and counts: bytes put, bytes the backend holds, chunks, packs."""
    from vstudio.store import maintenance

    store = _open(studio_dir, server, token)
    data: dict[str, Any] = store.stats() if server else maintenance.stats(store)

    def human(d: dict[str, Any]) -> None:
        ratio = d["stored_bytes"] / d["logical_bytes"] if d["logical_bytes"] else 0.0
        click.echo(f"backend:       {d['backend']}{' (encrypted)' if d['encrypted'] else ''}\n"
                   f"logical bytes: {d['logical_bytes']}\n"
                   f"stored bytes:  {d['stored_bytes']} ({ratio:.2f} of logical)\n"
                   f"chunks:        {d['chunks']}\npacks:         {d['packs']}\n"
                   f"refs:          {d['refs']}\n"
                   "chunkers:      " + ", ".join(f"{k}={v}" for k, v in
                                                 sorted(d["chunkers"].items())))

    emit(data, as_json, human)


@store_group.command("check")
@click.option("--read-data", is_flag=True, help="Also read and verify every stored byte.")
@studio_option
@json_option
def store_check(read_data: bool, studio_dir: str | None, as_json: bool) -> None:
    """Check the store from every root; exit 1 naming each bad or missing object and
    each ref that names one."""
    from vstudio.store import maintenance
    from vstudio.store.roots import live_ids

    studio = open_studio_from(studio_dir)
    problems = maintenance.check(studio.store, read_data, set(live_ids(studio)))
    emit({"ok": not problems, "problems": problems}, as_json, lambda d: click.echo(
        "store is consistent" if d["ok"] else "\n".join(d["problems"])))
    if problems:
        if not as_json:
            click.echo(f"error: {len(problems)} problem(s) found", err=True)
        sys.exit(1)


@store_group.command("gc")
@click.option("--grace", type=click.FloatRange(min=0), default=3600.0, show_default=True,
              metavar="SECONDS",
              help="Keep unreferenced data this long (protects concurrent writers).")
@studio_option
@json_option
def store_gc(grace: float, studio_dir: str | None, as_json: bool) -> None:
    """Remove what no ref reaches (two runs, GRACE apart, when others may be writing).

    Render cache refs from before scopes (``render/KEY``) are deleted first: they are no
    hits any more, and their renders are then collected like any unreferenced data."""
    from vstudio.render.cachescope import drop_unscoped
    from vstudio.store import maintenance
    from vstudio.store.roots import live_ids

    studio = open_studio_from(studio_dir)
    legacy = drop_unscoped(studio.store)
    result = maintenance.gc(studio.store, set(live_ids(studio)), grace)
    result["unscoped_render_refs_deleted"] = len(legacy)
    emit(result, as_json, lambda d: click.echo(
        f"deleted {d['packs_deleted']} packs and {d['orphan_packs_deleted']} orphan packs "
        f"({d['bytes_freed']} bytes); {d['doomed_objects']} unreferenced objects wait "
        "for the next gc" + (f"; deleted {len(legacy)} render cache refs from before "
                             "scopes" if legacy else "")))


@store_group.command("repair")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@studio_option
@json_option
def store_repair(paths: tuple[Path, ...], studio_dir: str | None, as_json: bool) -> None:
    """Rewrite damaged or lost pieces of the store from the original files."""
    from vstudio.cli.progress import bar
    from vstudio.store.repair import repair

    for p in paths:  # check all before storing any, as put does
        if not p.exists():
            raise BadInput(f"{p} does not exist")
        if p.is_dir():
            raise BadInput(f"{p} is a folder: give files (for example {p}/*)")
    done = repair(open_studio_from(studio_dir).store, paths, bar())
    data = {"files": [{"path": p, "id": i} for p, i in done.files],
            "repaired_objects": done.objects, "packs_rewritten": done.packs}
    emit(data, as_json, lambda d: click.echo(
        "\n".join(f"{f['id']}  {f['path']}" for f in d["files"]) + "\n"
        + (f"repaired {d['repaired_objects']} damaged or lost objects "
           f"({d['packs_rewritten']} packs rewritten); run 'vstudio store check "
           "--read-data' to see what is left" if d["repaired_objects"] else
           "nothing to repair: every stored piece of these files is intact")))
