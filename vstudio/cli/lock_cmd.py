"""Lock commands: lock and unlock a working copy's file (or one under a writable mount),
and needs-lock rules (``lock --rule GLOB``)."""

from __future__ import annotations

import os
from typing import Any

import click

from vstudio.cli.wc_cmd import current_wc, token_option


@click.command("lock")
@click.argument("path", required=False)
@click.option("-m", "--message", default="", help="Why you lock it.")
@click.option("--rule", "rules", multiple=True, metavar="GLOB",
              help="Add a needs-lock rule (e.g. '*.blend'): matching files are read-only "
                   "in working copies until locked.")
@token_option
def lock_cmd(path: str | None, message: str, rules: tuple[str, ...], token: str | None) -> None:
    """Lock PATH so that only you can commit it.

    PATH may be a file under MOUNT/latest/ of a writable mount: the mount takes the lock
    as its user, and the (needs-lock) file becomes writable there.
    """
    from vstudio.repo.wcops import lock

    mp = _in_mount(path, rules) if path else None
    if path and mp is not None:
        from vstudio.mount import control

        rel, owner = control.lock(path, message, mp)
        click.echo(f"locked {rel} ({owner})")
        return
    wc = current_wc(token)
    if rules:
        wc.backend.add_lock_rules(list(rules))
        click.echo("needs-lock rules: " + ", ".join(wc.backend.lock_rules()))
    if path:
        info = lock(wc, path, message)
        click.echo(f"locked {info.path} ({info.owner})")
    elif not rules:
        raise click.UsageError("name a PATH to lock (or --rule GLOB)")


def _in_mount(path: str, rules: tuple[str, ...]) -> Any:
    """The vstudio mount PATH is in (a ``control.MountPath``), or None."""
    if not os.path.exists("/proc/self/mounts"):
        return None
    from vstudio.mount.control import find_mount

    mp = find_mount(path)
    if mp is not None and rules:
        raise click.UsageError("--rule is set from a working copy, not on a mount path")
    return mp


@click.command("unlock")
@click.argument("path")
@click.option("--force", is_flag=True, help="Break someone else's lock.")
@token_option
def unlock_cmd(path: str, force: bool, token: str | None) -> None:
    """Release the lock on PATH (a working copy's file, or one under a writable mount)."""
    from vstudio.repo.wcops import unlock

    mp = _in_mount(path, ())
    if mp is not None:
        from vstudio.mount import control

        rel, owner = control.unlock(path, force, mp)
        click.echo(f"unlocked {rel}" + (f" (was held by {owner})" if force else ""))
        return
    info = unlock(current_wc(token), path, force)
    click.echo(f"unlocked {info.path}" + (f" (was held by {info.owner})" if force else ""))
