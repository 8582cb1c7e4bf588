"""``svn-import`` and ``svn-sync``: bring a Subversion repository's history in, and keep
pulling its new revisions while the studio still works in Subversion."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any

import click

from vstudio.cli.common import emit, json_option

token_option = click.option("--token", metavar="TOKEN", default=None,
                            help="Admin API token for http(s) project URLs "
                                 "(default: $VSTUDIO_TOKEN).")


def _backend(url: str, token: str | None) -> Any:
    from vstudio.cli.repos import open_url

    backend = open_url(url, token)
    click.get_current_context().call_on_close(backend.close)
    return backend


def _bar() -> Any:
    from vstudio.cli.progress import bar

    return bar()


def _human(d: dict[str, Any]) -> None:
    if d["revisions"]:
        click.echo(f"imported r{d['first']}..r{d['last']} ({d['revisions']} revisions, "
                   f"{d['files']} file versions)")
    else:
        click.echo(f"nothing new: the project is at r{d['head']}")
    if d["skipped"]:
        click.echo(f"  skipped {d['skipped']} revisions the project had already")
    for n in d["not_carried"]:
        click.echo(f"  not carried: {n}")


@click.command("svn-import")
@click.argument("dumpfile", type=click.Path(dir_okay=False, allow_dash=True))
@click.argument("url")
@click.option("--renumber", is_flag=True,
              help="Store a dump that starts later than the project's head + 1 from the "
                   "next revision on (original numbers kept as 'svn-original-rev').")
@token_option
@json_option
def svn_import_cmd(dumpfile: str, url: str, renumber: bool, token: str | None,
                   as_json: bool) -> None:
    """Import an 'svnadmin dump' stream (format 2 or 3, full or --incremental).

    The dump continues the project: it may start at the project's head + 1, or earlier
    (revisions the project has already are checked and skipped, so the same command
    resumes an interrupted import).
    """
    with (contextlib.nullcontext(sys.stdin.buffer) if dumpfile == "-"
          else open(dumpfile, "rb")) as f:
        from vstudio.repo.svnimport import import_dump

        backend = _backend(url, token)
        report = import_dump(f, backend, _bar(), renumber=renumber)
    emit(report, as_json, _human)


@click.command("svn-sync")
@click.argument("svn_url")
@click.argument("url")
@click.option("--watch", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="Keep syncing, every SECONDS, until interrupted.")
@click.option("--final", is_flag=True,
              help="Switch-over: lock the Subversion side (file:// repositories get a "
                   "pre-commit hook; for servers it says how), then pull the last revisions.")
@token_option
@json_option
def svn_sync_cmd(svn_url: str, url: str, watch: float | None, final: bool, token: str | None,
                 as_json: bool) -> None:
    """Pull the revisions of SVN_URL that project URL lacks (file://, http(s)://, svn://)."""
    from vstudio.repo import svnsync

    if watch and final:
        raise click.UsageError("--watch and --final exclude each other")
    backend = _backend(url, token)
    locked = svnsync.lock_repository(svn_url, url) if final else False
    while True:
        report = svnsync.sync(svn_url, backend, _bar())
        if final:
            report["locked"] = locked
            if not locked:
                report["how_to_lock"] = svnsync.how_to_lock(svn_url)
        emit(report, as_json, _sync_human)
        if not watch:
            return
        sys.stdout.flush()
        time.sleep(watch)


def _sync_human(d: dict[str, Any]) -> None:
    _human(d)
    if d.get("locked"):
        click.echo("the Subversion repository now refuses commits (pre-commit hook): "
                   "switch the artists to vstudio")
    elif "how_to_lock" in d:
        click.echo(d["how_to_lock"])
