"""History commands: log, cat (a file as of a revision), tag (naming a revision), info,
and ``catalog rebuild`` (the catalog remade from the object store's refs)."""

from __future__ import annotations

import sys
import time

import click

from vstudio.cli.common import emit, json_option, studio_option
from vstudio.cli.wc_cmd import current_wc, token_option


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


@click.command("log")
@click.argument("path", required=False)
@click.option("-l", "--limit", type=int, default=None, help="At most this many revisions.")
@click.option("-v", "--verbose", is_flag=True, help="List the changed paths.")
@token_option
@json_option
def log_cmd(path: str | None, limit: int | None, verbose: bool, token: str | None,
            as_json: bool) -> None:
    """History of the project (or of PATH), newest first, and who holds locks there."""
    wc = current_wc(token)
    rel = wc.rel(path) if path else None
    entries = wc.backend.log(rel or None, limit)
    rows = [{"rev": c.rev, "author": c.author, "time": c.time, "message": c.message,
             "changed": c.changed, "props": c.props} for c in entries]
    if as_json:
        emit(rows, True)
        return
    for lk in wc.backend.locks().values():
        if not rel or lk.path == rel or lk.path.startswith(rel + "/"):
            click.echo(f"locked: {lk.path} by {lk.owner} since {_when(lk.time)}"
                       + (f" ({lk.message})" if lk.message else ""))
    for r in rows:
        click.echo("-" * 60)
        click.echo(f"r{r['rev']} | {r['author']} | {_when(r['time'])} | "
                   f"{len(r['changed'])} paths")
        if verbose:
            for k, v in sorted(r["props"].items()):
                click.echo(f"   {k}: {v}")
            for p in r["changed"]:
                click.echo(f"   {p}")
        click.echo(f"\n{r['message']}")


@click.command("cat")
@click.argument("spec", metavar="PATH[@REV]")
@click.option("--url", default=None, help="Read from this project URL instead of the "
                                          "working copy.")
@token_option
def cat_cmd(spec: str, url: str | None, token: str | None) -> None:
    """Print a file as of a revision (number, rN, HEAD or a tag; default: your base)."""
    from vstudio.cli.repos import open_url
    from vstudio.repo.wcops import cat_entry

    if url:
        backend = open_url(url, token)
        entry = cat_entry(None, backend, spec if "@" in spec else spec + "@HEAD")
    else:
        wc = current_wc(token)
        backend = wc.backend
        entry = cat_entry(wc, backend, spec)
    out = sys.stdout.buffer
    step = 4 << 20
    for off in range(0, max(entry.size, 1), step):
        if entry.size:
            out.write(backend.store.read_range(entry.oid, off, min(step, entry.size - off)))
    out.flush()


@click.command("tag")
@click.argument("name")
@click.option("--rev", type=int, default=None, help="Revision to tag (default: head).")
@token_option
def tag_cmd(name: str, rev: int | None, token: str | None) -> None:
    """Name a revision (tags can then be used as PATH@TAG)."""
    r = current_wc(token).backend.set_tag(name, rev)
    click.echo(f"tagged r{r} as {name}")


@click.command("info")
@token_option
@json_option
def info_cmd(token: str | None, as_json: bool) -> None:
    """Where the working copy comes from, its revision and the repository's head."""
    wc = current_wc(token)
    meta = wc.meta
    data = {"path": str(wc.root), "project": meta["project"],
            "url": meta.get("server") or meta.get("studio"), "kind": meta["kind"],
            "rev": wc.index.rev, "head": wc.backend.head(), "user": wc.backend.user,
            "files": len(wc.index.entries), "locks": wc.index.locks,
            "needs_lock": wc.index.rules, "tags": wc.backend.tags()}
    emit(data, as_json, lambda d: click.echo("\n".join(
        f"{k}: {v}" for k, v in d.items())))


@click.group("catalog")
def catalog_group() -> None:
    """The catalog database: rebuild it from the object store."""


@catalog_group.command("rebuild")
@studio_option
@json_option
def catalog_rebuild(studio_dir: str | None, as_json: bool) -> None:
    """Recreate projects, revisions, tags and lock rules from the store's refs."""
    from vstudio.cli.common import open_studio_from
    from vstudio.repo.rebuild import rebuild

    report = rebuild(open_studio_from(studio_dir))
    emit(report, as_json, lambda d: click.echo("\n".join([
        *(f"{p}: {n} revisions" for p, n in d["projects"].items()),
        *([] if d["projects"] else ["no project found in the store"]),
        f"restored from the store: {', '.join(d['restored'])}",
        f"not in the store, not restored: {'; '.join(d['not_restored'])}",
        f"  ({d['redo']})",
        f"users in the catalog: {d['users']}" + (
            "" if d["users"] else ": add an admin with 'vstudio user add NAME --role admin'"),
    ])))
