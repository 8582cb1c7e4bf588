"""Working-copy commands: checkout, status, add, rm, mv, commit, update, diff, revert.

(Locks are in ``lock_cmd``; log, cat, tag and info in ``history_cmd``.)
New files are added and deleted files removed by the next commit (implicit add/remove);
``.vstudioignore`` at the working copy's root lists glob patterns to leave out.
``add``/``rm``/``mv`` exist for Subversion habits: ``add`` checks paths, ``rm`` and ``mv``
act on the files.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import click

from vstudio.cli.common import emit, json_option

token_option = click.option("--token", metavar="TOKEN", default=None,
                            help="API token for http(s) URLs (default: $VSTUDIO_TOKEN, then "
                                 "the one remembered by the working copy).")


def current_wc(token: str | None = None) -> Any:
    """The working copy holding the current folder, closed when the command ends."""
    from vstudio.cli.repos import open_wc

    wc = open_wc(None, token)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:  # release database connections when the command ends
        ctx.call_on_close(wc.backend.close)
    return wc


def _bar() -> Any:
    from vstudio.cli.progress import bar

    return bar()


@click.command("checkout")
@click.argument("url")
@click.argument("directory", required=False)
@click.option("--rev", type=int, default=None, help="Revision to check out (default: head).")
@token_option
@json_option
def checkout_cmd(url: str, directory: str | None, rev: int | None, token: str | None,
                 as_json: bool) -> None:
    """Check out project URL (STUDIO_DIR/PROJECT or http(s)://HOST:PORT/PROJECT)."""
    from vstudio.cli.repos import checkout

    wc = checkout(url, directory, rev, token, _bar())
    click.get_current_context().call_on_close(wc.backend.close)
    data = {"path": str(wc.root), "rev": wc.index.rev, "files": len(wc.index.entries)}
    emit(data, as_json, lambda d: click.echo(
        f"checked out r{d['rev']} ({d['files']} files) into {d['path']}"))


@click.command("status")
@click.argument("paths", nargs=-1)
@click.option("-u", "--show-updates", is_flag=True,
              help="Also ask the repository: others' locks (O) and newer versions (*).")
@token_option
@json_option
def status_cmd(paths: tuple[str, ...], show_updates: bool, token: str | None,
               as_json: bool) -> None:
    """Changed files: M modified, A added, D deleted, C conflict, L link; K locked by you."""
    from vstudio.repo.wcops import incoming

    wc = current_wc(token)
    remote_locks = wc.backend.locks() if show_updates else {}
    newer = incoming(wc) if show_updates else set()
    rows: list[dict[str, Any]] = []
    for t in paths or ("",):
        rel = wc.rel(t) if t else ""
        rows += _status_rows(wc, rel, remote_locks, newer)

    def human(rs: list[dict[str, Any]]) -> None:
        for r in rs:
            code = {"modified": "M", "added": "A", "deleted": "D", "conflicted": "C",
                    "link": "L", "normal": " "}[r["status"]]
            lk = "K" if r["locked"] else ("O" if r["lock_owner"] else " ")
            extra = f"  (locked by {r['lock_owner']})" if lk == "O" else ""
            star = "*" if r["out_of_date"] else " "
            click.echo(f"{code}{lk}{star} {r['path']}{extra}" if show_updates
                       else f"{code}{lk} {r['path']}")

    emit(rows, as_json, human)


def _status_rows(wc: Any, rel: str, remote_locks: dict[str, Any],
                 newer: set[str]) -> list[dict[str, Any]]:
    """``status --json``'s rows below ``rel``: local changes, others' locks, incoming."""
    res = wc.status(rel)
    codes = dict((p, c) for c, p in res.lines(wc.index.locks))
    for p, lk in remote_locks.items():
        if lk.owner != wc.backend.user and (not rel or p == rel or p.startswith(rel + "/")):
            codes[p] = codes.get(p, "  ")[0] + "O"
    for p in newer:  # a folder's name ends with '/'
        if not rel or p.rstrip("/") == rel or p.startswith(rel + "/"):
            codes.setdefault(p, "  ")
    names = {"M": "modified", "A": "added", "D": "deleted", "C": "conflicted",
             "L": "link", " ": "normal"}
    rows = []
    for p in sorted(codes):
        c = codes[p]
        lk = remote_locks.get(p)
        rows.append({"path": p, "status": names[c[0]], "locked": c[1] == "K",
                     "lock_owner": lk.owner if lk else (wc.backend.user if c[1] == "K"
                                                         else None),
                     "out_of_date": p in newer})
    return rows


@click.command("add")
@click.argument("paths", nargs=-1, required=True)
def add_cmd(paths: tuple[str, ...]) -> None:
    """Check that PATHS can be committed (new files are added by the next commit anyway)."""
    wc = current_wc()
    for t in paths:
        rel = wc.rel(t)
        full = wc.root / rel
        if full.is_symlink():
            raise click.ClickException(f"{t} is a symbolic link: links cannot be committed")
        if not full.exists():
            from vstudio.errors import NotFound

            raise NotFound(f"{t} does not exist")
        click.echo(f"A {rel}" if rel not in wc.index.entries else f"  {rel} (versioned)")


@click.command("rm")
@click.argument("paths", nargs=-1, required=True)
def rm_cmd(paths: tuple[str, ...]) -> None:
    """Delete PATHS from the working copy; the next commit removes them."""
    wc = current_wc()
    for t in paths:
        rel = wc.rel(t)
        full = wc.root / rel
        if full.is_dir() and not full.is_symlink():
            shutil.rmtree(full)
        elif os.path.lexists(full):
            full.unlink()
        else:
            from vstudio.errors import NotFound

            raise NotFound(f"{t} does not exist")
        click.echo(f"D {rel}")


@click.command("mv")
@click.argument("source")
@click.argument("dest")
def mv_cmd(source: str, dest: str) -> None:
    """Rename SOURCE to DEST; the next commit records it (no bytes are uploaded again)."""
    wc = current_wc()
    a, b = wc.rel(source), wc.rel(dest)
    # A case-only rename on a case-insensitive disk: dest "exists" as source itself.
    case_only = a != b and a.casefold() == b.casefold()
    if os.path.lexists(wc.root / b) and not (
            case_only and os.path.samefile(wc.root / a, wc.root / b)):
        from vstudio.errors import AlreadyExists

        raise AlreadyExists(f"{dest} exists")
    (wc.root / b).parent.mkdir(parents=True, exist_ok=True)
    os.rename(wc.root / a, wc.root / b)
    click.echo(f"D {a}\nA {b}")


@click.command("commit")
@click.argument("paths", nargs=-1)
@click.option("-m", "--message", required=True, help="What changed and why.")
@click.option("--keep-locks", "--no-unlock", "keep_locks", is_flag=True,
              help="Keep your locks on the committed files (default: released).")
@token_option
@json_option
def commit_cmd(paths: tuple[str, ...], message: str, keep_locks: bool, token: str | None,
               as_json: bool) -> None:
    """Commit the changes of the working copy (or below PATHS) as a new revision."""
    from vstudio.repo.wccommit import commit

    wc = current_wc(token)
    targets = [wc.rel(t) for t in paths] or None
    done = commit(wc, message, targets, _bar(), keep_locks)
    if done is None:
        emit({"rev": None, "changed": []}, as_json, lambda d: click.echo("nothing to commit"))
        return
    rev, changed = done
    emit({"rev": rev, "changed": changed}, as_json,
         lambda d: click.echo(f"committed r{d['rev']} ({len(d['changed'])} paths)"))


@click.command("update")
@click.option("--rev", type=int, default=None, help="Revision to update to (default: head).")
@token_option
@json_option
def update_cmd(rev: int | None, token: str | None, as_json: bool) -> None:
    """Bring the working copy to a revision, keeping local changes; conflicts keep both."""
    from vstudio.repo.wcupdate import update

    wc = current_wc(token)
    r = update(wc, rev, _bar())
    data = {"rev": r.rev, "updated": r.updated, "added": r.added, "removed": r.removed,
            "conflicts": {p: wc.index.conflicts[p] for p in r.conflicts}, "kept": r.kept,
            "tree_conflicts": r.aside}

    def human(d: dict[str, Any]) -> None:
        for key, code in (("added", "A"), ("updated", "U"), ("removed", "D")):
            for p in d[key]:
                click.echo(f"{code} {p}")
        for p, copy in d["conflicts"].items():
            click.echo(f"C {p}  (yours kept; incoming version in {copy})")
        for p in d["kept"]:
            click.echo(f"C {p}  (removed upstream; your modified file kept)")
        for p, aside in d["tree_conflicts"].items():
            click.echo(f"C {p}  (a folder in r{d['rev']}; your file kept as {aside})")
        click.echo(f"at revision {d['rev']}")

    emit(data, as_json, human)

@click.command("diff")
@click.argument("paths", nargs=-1)
@click.option("--stat", "stat_only", is_flag=True, help="Only a summary per file.")
@json_option
def diff_cmd(paths: tuple[str, ...], stat_only: bool, as_json: bool) -> None:
    """Local changes against the base versions (text diffs; sizes for binary files)."""
    from vstudio.repo.wcops import diff

    diffs = diff(current_wc(), list(paths))
    rows = [{"path": d.path, "status": d.status, "added": d.added, "removed": d.removed,
             "old_size": d.old_size, "new_size": d.new_size} for d in diffs]
    if as_json:
        emit(rows, True)
        return
    for d in diffs:
        if stat_only or d.added < 0:
            what = (f"Bin {d.old_size} -> {d.new_size} bytes" if d.added < 0
                    else f"+{d.added} -{d.removed}")
            click.echo(f" {d.path} | {what}")
        else:
            click.echo(d.text, nl=False)
    if stat_only:
        click.echo(f" {len(diffs)} files changed")


@click.command("revert")
@click.argument("paths", nargs=-1, required=True)
def revert_cmd(paths: tuple[str, ...]) -> None:
    """Undo local changes to PATHS (files or folders), from the base versions."""
    from vstudio.repo.wcops import revert

    for p in revert(current_wc(), list(paths)):
        click.echo(f"reverted {p}")
