"""``vstudio worker``: run a render node for a studio server."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from vstudio.cli.common import server_options


@click.command("worker")
@server_options
@click.option("--slots", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Tasks to run at once.")
@click.option("--tags", default="", help="Comma-separated tags jobs can ask for (gpu,big-ram).")
@click.option("--name", default="", help="Name shown on the farm (default: host-pid).")
@click.option("--idle-only", is_flag=True,
              help="Render only while the user is away: no keyboard/mouse input (xprintidle, "
                   "logind or "
                   "input interrupts) for --idle-after seconds and other programs' CPU use "
                   "under 30%; work is given back when the user returns. Refused where no input "
                   "source exists.")
@click.option("--idle-after", type=click.FloatRange(0), default=300.0, show_default=True,
              help="Seconds without input before the machine counts as idle.")
@click.option("--allow-commands", is_flag=True,
              help="Also run raw 'command' tasks (arbitrary programs: trusted farms only).")
@click.option("--allow-local-paths", is_flag=True,
              help="Let tasks name files by absolute path on this machine (a farm with a "
                   "shared disk); without it a task may read only the files sent with it.")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for fetched inputs and task folders "
                   "(default: ~/.cache/vstudio/worker).")
@click.option("--max-cache", type=click.FloatRange(0.01), default=20.0, show_default=True,
              help="Size limit of the input cache in GB (least recently used files go first).")
@click.option("--poll", type=click.FloatRange(0.5, 30), default=10.0, show_default=True,
              help="Seconds to wait for work in one request.")
@click.option("--store", "store_url", metavar="URL", default=None,
              help="Use the studio's object store directly (a shared folder or an S3 bucket "
                   "this machine may reach) instead of through the server.")
@click.option("--keep-task-dirs", is_flag=True, help="Keep task folders (for debugging).")
@click.option("--no-warm-blender", "no_warm_blender", is_flag=True,
              help="Start a fresh blender for every task instead of keeping one running per "
                   "slot (which re-uses the open file when the next task has the same one).")
def worker_cmd(server: str, token: str | None, slots: int, tags: str, name: str,
               idle_only: bool, idle_after: float, allow_commands: bool, cache_dir: str | None,
               max_cache: float, poll: float, store_url: str | None,
               keep_task_dirs: bool, no_warm_blender: bool = False,
               allow_local_paths: bool = False) -> None:
    """Render for the studio at --server: take tasks, run them, report, repeat."""
    from vstudio.worker.node import Worker, WorkerOptions

    if not token:
        raise click.UsageError("no token: pass --token T or set VSTUDIO_TOKEN "
                               "(create one with 'vstudio user add NAME --role worker')")
    if not server.startswith(("http://", "https://")):
        raise click.UsageError(f"--server must be an http(s):// URL, not {server!r}")
    opts = WorkerOptions(
        server=server, token=token, slots=slots,
        tags=[t.strip() for t in tags.split(",") if t.strip()], name=name,
        idle_only=idle_only, idle_after=idle_after, allow_commands=allow_commands,
        allow_local_paths=allow_local_paths,
        max_cache_bytes=int(max_cache * 1e9), poll_seconds=poll, keep_task_dirs=keep_task_dirs,
        warm_blender=not no_warm_blender)
    if cache_dir:
        opts.cache_dir = Path(cache_dir).expanduser().resolve()
    store = sign = None
    if store_url:
        from vstudio.grants import store_signer
        from vstudio.store import open_store

        store = open_store(store_url, {}, cache_dir=opts.cache_dir / "store-index", create=False)
        sign = store_signer(store)
    sys.exit(Worker(opts, store=store, sign=sign).run())
