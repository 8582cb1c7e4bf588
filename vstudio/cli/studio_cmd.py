"""``init``, ``project`` and ``user``: creating a studio and its people and projects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vstudio.cli.common import emit, json_option, open_studio_from, studio_option


@click.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--store", "store_url", metavar="URL",
              help="Object store: a folder, file://DIR or s3://BUCKET/PREFIX?endpoint=...")
@click.option("--db", "db_url", metavar="URL",
              help="Catalog database: sqlite:///FILE (default) or postgresql://...")
@click.option("--encrypt-key-file", type=click.Path(dir_okay=False), default=None,
              help="Encrypt everything in the store with the key in this file "
                   "(created with 32 random bytes when absent).")
@json_option
def init_cmd(directory: str, store_url: str | None, db_url: str | None,
             encrypt_key_file: str | None, as_json: bool) -> None:
    """Create a studio: studio.toml, the catalog database and the object store."""
    from vstudio.studio import init_studio

    options: dict[str, object] = {}
    if encrypt_key_file:
        options["key_file"] = str(Path(encrypt_key_file).expanduser().resolve())
    studio = init_studio(Path(directory), store_url=store_url, db_url=db_url,
                         store_options=options)
    info = {"studio": str(studio.root), "store": studio.config.store_url,
            "db": studio.engine.url.render_as_string(hide_password=True)}
    emit(info, as_json, lambda d: click.echo(
        f"created studio {d['studio']}\n  catalog: {d['db']}\n  store:   {d['store']}"))


@click.group("project")
def project_group() -> None:
    """Projects of the studio and who may read or write them."""


@project_group.command("create")
@click.argument("name")
@click.option("--trusted", is_flag=True,
              help="Let this project's .blend files run their Python scripts on the farm.")
@studio_option
@json_option
def project_create(name: str, trusted: bool, studio_dir: str | None, as_json: bool) -> None:
    """Create a project."""
    from vstudio.catalog import accounts

    studio = open_studio_from(studio_dir)
    p = accounts.create_project(studio.engine, name, trusted=trusted)
    emit({"name": p.name, "id": p.id, "trusted": p.trusted}, as_json,
         lambda d: click.echo(f"created project {d['name']}"))


@project_group.command("rm")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@studio_option
@json_option
def project_rm(name: str, yes: bool, studio_dir: str | None, as_json: bool) -> None:
    """Remove a project and its history (its data is freed by the next 'store gc')."""
    import sys

    from vstudio.repo.removal import describe, remove_project

    studio = open_studio_from(studio_dir)
    info = describe(studio, name)
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("removing a project cannot be undone: pass --yes")
        click.confirm(f"Remove project {name!r} and its {info['head']} revisions for good?",
                      abort=True)
    remove_project(studio, name)
    emit(info, as_json, lambda d: click.echo(
        f"removed project {d['project']} (r{d['head']}); 'vstudio store gc' frees its data"))


@project_group.command("ls")
@studio_option
@json_option
def project_ls(studio_dir: str | None, as_json: bool) -> None:
    """List the projects."""
    from vstudio.catalog import accounts

    studio = open_studio_from(studio_dir)
    rows = [{"name": p.name, "id": p.id, "trusted": p.trusted, "created": p.created}
            for p in accounts.list_projects(studio.engine)]
    emit(rows, as_json, lambda d: click.echo("\n".join(r["name"] for r in d)))


def _right_cmd(granted: bool) -> Any:
    @click.argument("project")
    @click.argument("user")
    @click.argument("right", type=click.Choice(["read", "write"]))
    @studio_option
    def cmd(project: str, user: str, right: str, studio_dir: str | None) -> None:
        from vstudio.catalog import accounts

        studio = open_studio_from(studio_dir)
        accounts.set_right(studio.engine, project, user, right, granted)
        click.echo(f"{'granted' if granted else 'revoked'} {right} on {project} "
                   f"{'to' if granted else 'from'} {user}")

    return cmd


project_group.command("grant", help="Give USER the READ or WRITE right on PROJECT.")(
    _right_cmd(True))
project_group.command("revoke", help="Take the READ or WRITE right on PROJECT from USER.")(
    _right_cmd(False))


@project_group.command("trust")
@click.argument("project")
@click.option("--off", is_flag=True, help="Stop trusting the project.")
@studio_option
def project_trust(project: str, off: bool, studio_dir: str | None) -> None:
    """Let (or stop letting) PROJECT's .blend files run Python on the farm."""
    from vstudio.catalog import accounts

    accounts.set_trusted(open_studio_from(studio_dir).engine, project, not off)
    click.echo(f"{project} is {'not ' if off else ''}trusted")


@click.group("user")
def user_group() -> None:
    """People and render nodes that may use the studio."""


@user_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "artist", "viewer", "worker"]),
              default="artist", show_default=True)
@click.option("--password", default=None, help="Also allow logging in with this password.")
@studio_option
@json_option
def user_add(name: str, role: str, password: str | None, studio_dir: str | None,
             as_json: bool) -> None:
    """Add a user; prints the user's token alone on the last line."""
    from vstudio.catalog import accounts

    user, token = accounts.add_user(open_studio_from(studio_dir).engine, name, role, password)
    emit({"name": user.name, "role": user.role.value, "token": token}, as_json,
         lambda d: click.echo(f"added {d['role']} {d['name']}; token:\n{d['token']}"))


@user_group.command("token")
@click.argument("name")
@studio_option
def user_token(name: str, studio_dir: str | None) -> None:
    """Issue another token for NAME (printed alone on the last line)."""
    from vstudio.catalog import accounts

    click.echo(accounts.new_user_token(open_studio_from(studio_dir).engine, name))


@user_group.command("ls")
@studio_option
@json_option
def user_ls(studio_dir: str | None, as_json: bool) -> None:
    """List users and roles."""
    from vstudio.catalog import accounts

    rows = [{"name": u.name, "role": u.role.value}
            for u in accounts.list_users(open_studio_from(studio_dir).engine)]
    emit(rows, as_json,
         lambda d: click.echo("\n".join(f"{r['name']:<24} {r['role']}" for r in d)))


@user_group.command("rm")
@click.argument("name")
@studio_option
def user_rm(name: str, studio_dir: str | None) -> None:
    """Remove a user and its tokens."""
    from vstudio.catalog import accounts

    accounts.remove_user(open_studio_from(studio_dir).engine, name)
    click.echo(f"removed {name}")


@user_group.command("sessions")
@click.argument("name", required=False)
@studio_option
@json_option
def user_sessions(name: str | None, studio_dir: str | None, as_json: bool) -> None:
    """List live sessions (password logins) and tokens, of NAME or of everyone."""
    from vstudio.catalog import web_sessions

    rows = [{"id": s.id, "user": s.user, "kind": s.kind, "created": s.created,
             "expires": s.expires, "label": s.label}
            for s in web_sessions.list_sessions(open_studio_from(studio_dir).engine, name)]
    emit(rows, as_json, lambda d: click.echo("\n".join(_session_line(r) for r in d)
                                             or "no sessions"))


def _session_line(r: dict[str, Any]) -> str:
    import time

    def when(t: float | None) -> str:
        return "never" if t is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(t))

    return (f"{r['id']:>6}  {r['user']:<20} {r['kind']:<8} created {when(r['created'])}  "
            f"expires {when(r['expires'])}  {r['label'] or ''}").rstrip()


@user_group.command("revoke-session")
@click.argument("session_id", type=click.IntRange(1, 2**31 - 1), metavar="ID")
@studio_option
def user_revoke_session(session_id: int, studio_dir: str | None) -> None:
    """End session or token ID (see 'vstudio user sessions'); a running server stops
    accepting it within 5 seconds."""
    from vstudio.catalog import web_sessions

    web_sessions.revoke(open_studio_from(studio_dir).engine, session_id)
    click.echo(f"revoked session {session_id}")
