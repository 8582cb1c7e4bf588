"""``vstudio deps`` and ``vstudio render``: thin wrappers over ``vstudio.render``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from vstudio.cli.common import emit, json_option, studio_option
from vstudio.errors import StudioNotFound, UsageError, VStudioError


class MissingInputs(VStudioError):
    """Files that the file uses are missing."""


@click.command("deps")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--tree", is_flag=True, help="Print the uses as a tree.")
@click.option("--allow-missing", is_flag=True, help="Exit 0 even when files are missing.")
@json_option
def deps_cmd(file: Path, tree: bool, allow_missing: bool, as_json: bool) -> None:
    """What FILE uses, recursively, with missing files marked."""
    from vstudio.render.deps import deps_report, format_flat, format_tree

    report = deps_report(file)
    for line in report["warnings"]:
        click.echo(f"warning: {line}", err=True)
    if as_json:
        emit(report, True)
    else:
        click.echo(format_tree(report) if tree else format_flat(report))
    if report["cycle"]:
        raise MissingInputs("dependency cycle: " + " -> ".join(report["cycle"]))
    if report["missing"] and not allow_missing:
        n = len(report["missing"])
        raise MissingInputs(f"{n} missing file{'s' if n > 1 else ''} "
                            "(pass --allow-missing to accept)")


@click.command("render")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--profile", default=None, help="Profile of vstudio.toml (default: [render] "
              "profile, else the file's own settings).")
@click.option("--farm", "farm_url", metavar="URL", default=None,
              help="Render on the farm at URL as one job, a block per file (token: "
              "--token or $VSTUDIO_TOKEN).")
@click.option("--local", "local", is_flag=True, help="Render on this machine (the default).")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=None,
              help="Renderer processes at once (default: number of CPUs, at most 4).")
@click.option("--dry-run", is_flag=True, help="Print the plan and render nothing.")
@click.option("--force", is_flag=True, help="Render again even what is cached.")
@click.option("--overwrite", is_flag=True, help="Replace files under render/ that vstudio "
              "did not write (a RenderChan render); without it they are never touched.")
@click.option("--token", default=None, help="API token for --farm (default: $VSTUDIO_TOKEN).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS", help="With --farm: give up after SECONDS, cancel the "
              "unfinished job and name what its files were doing.")
@json_option
@studio_option
def render_cmd(paths: tuple[Path, ...], profile: str | None, farm_url: str | None, local: bool,
               jobs: int | None, dry_run: bool, force: bool, overwrite: bool, token: str | None,
               timeout: float | None, as_json: bool, studio_dir: str | None) -> None:
    """Render files or folders in dependency order; only what changed renders.

    A folder renders its roots (files no other file uses) and the renders they need;
    outputs go to render/<path>.<ext> beside the sources (render/<profile>/... for a
    named profile that is not the project's default). A folder with RenderChan's
    project.conf takes RenderChan's names and settings (render/PATH.png/file.00001.png,
    render/PATH.mp4). --json prints one entry per file considered: file, key, status
    (rendered, cached, failed; planned with --dry-run), frames, seconds (wall time), and
    the reason it renders.
    """
    import time

    from vstudio.render import noop
    from vstudio.render.engine import ProjectRender
    from vstudio.render.project import find_root

    if farm_url and local:
        raise UsageError("--farm and --local exclude each other")
    if timeout is not None and not farm_url:
        raise UsageError("--timeout applies to --farm renders")
    root = find_root(paths[0].resolve())
    store = _open_store(studio_dir, root, farm_url, token)
    log = (lambda m: None) if as_json else (lambda m: click.echo(m, err=True))
    job = ProjectRender(list(paths), store, profile=profile, force=force,
                        jobs=jobs or min(4, os.cpu_count() or 1), log=log, overwrite=overwrite,
                        farm=bool(farm_url))
    started = time.monotonic()
    items = job.plan()
    studio = noop.studio_of(studio_dir) if not (farm_url or dry_run) else None
    plan = noop.planned(job, studio) if studio else None
    for line in job.graph.warnings + job.project.warnings + job.warnings:
        click.echo(f"warning: {line}", err=True)
    if not dry_run:
        if farm_url:
            from vstudio.client.farm import FarmClient
            from vstudio.render.farm import FarmTimeout, run_on_farm

            client = FarmClient(farm_url, token or os.environ.get("VSTUDIO_TOKEN"))
            try:
                run_on_farm(job, client, timeout=timeout)
            except FarmTimeout:
                emit([i.to_json() for i in items], as_json,
                     lambda d: _human(d, dry_run, time.monotonic() - started))
                raise
        else:
            job.run()
    wall = time.monotonic() - started
    emit([i.to_json() for i in items], as_json, lambda d: _human(d, dry_run, wall))
    for i in items:
        if i.warning:
            click.echo(f"WARNING: {i.warning}", err=True)
    if studio:
        _record_noop(job, plan, studio, profile, as_json)
    failed = [i for i in items if i.status == "failed"]
    if failed:
        raise VStudioError(f"{len(failed)} of {len(items)} files failed: "
                           + "; ".join(f"{i.file}: {i.error}" for i in failed[:3]))


def _open_store(studio_dir: str | None, root: Path, farm_url: str | None,
                token: str | None) -> Any:
    """The studio's store: --studio, the farm server's, $VSTUDIO_STUDIO, the folder upwards,
    or $VSTUDIO_SERVER's. With --farm the server's store comes first, because its render
    nodes read their inputs from it."""
    from vstudio import config as cfg
    from vstudio.studio import Studio

    token = token or os.environ.get("VSTUDIO_TOKEN")
    if farm_url and not studio_dir:
        if not token:
            raise UsageError("--farm needs a token: pass --token or set VSTUDIO_TOKEN")
        from vstudio.store.remote import RemoteStore

        return RemoteStore(_server_base(farm_url), token)
    try:
        return Studio.open(studio_dir).store
    except StudioNotFound:
        if studio_dir:
            raise
    for folder in (root, *root.parents):
        if (folder / cfg.STUDIO_FILE).is_file():
            return Studio.open(folder).store
    server = os.environ.get("VSTUDIO_SERVER")
    if server and token:
        from vstudio.store.remote import RemoteStore

        return RemoteStore(_server_base(server), token)
    raise StudioNotFound("render keeps its cache in a studio's store: pass --studio DIR, "
                         "set VSTUDIO_STUDIO, or pass --farm URL with a token")


def _server_base(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _human(items: list[dict[str, Any]], dry_run: bool, wall: float) -> None:
    click.echo("\n".join(_human_lines(items, dry_run, f"{wall:.1f}")))


def _human_lines(items: list[dict[str, Any]], dry_run: bool, wall: str) -> list[str]:
    if not items:
        return ["nothing to render: no .blend, .sif, .sifz or .kra files here"]
    out = []
    for i in items:
        status = "render" if i["status"] == "planned" else i["status"]
        line = f"{status:9} {i['file']}  {i['frames']} frames  {i['key'][:12]}  -> {i['output']}"
        if i["status"] == "rendered":
            line += f"  ({i['seconds']:.1f} s)"
        if dry_run or i["status"] == "failed":
            line += f"\n          {i['error'] or i['reason']}"
        out.append(line)
    counts = {s: sum(1 for i in items if i["status"] == s)
              for s in ("planned", "rendered", "cached", "failed")}
    if dry_run:
        out.append(f"plan: {counts['planned']} to render "
                   f"({sum(i['chunks'] for i in items)} chunks), {counts['cached']} cached")
    else:
        out.append(f"{counts['rendered']} rendered, {counts['cached']} cached, "
                   f"{counts['failed']} failed in {wall} s")
    return out


def _record_noop(job: Any, plan: dict[str, Any] | None, studio: str, profile: str | None,
                 as_json: bool) -> None:
    """Stamp this render for the no-op fast path (vstudio.render.noop)."""
    import contextlib
    import json

    from vstudio.render import noop
    from vstudio.render.engine import CACHED

    items = noop.as_noop([i.to_json() for i in job.items], CACHED)
    stdout = (json.dumps(items, indent=2, default=str) if as_json
              else "\n".join(_human_lines(items, False, noop.WALL))) + "\n"
    stderr = [f"warning: {line}" for line in job.graph.warnings + job.project.warnings]
    with contextlib.suppress(OSError):  # no stamp: the next no-op takes the full path
        noop.record(job, plan, studio, profile, as_json, stdout, stderr)
