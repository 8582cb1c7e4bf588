"""``vstudio mount`` and ``vstudio umount``: the read-only FUSE view of a project."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import click


@click.command("mount")
@click.argument("url")
@click.argument("mountpoint", type=click.Path(file_okay=False, path_type=Path))
@click.option("--token", metavar="TOKEN", default=None,
              help="API token for an http(s) URL (default: $VSTUDIO_TOKEN).")
@click.option("--cache", "cache_dir", metavar="DIR", type=click.Path(path_type=Path),
              default=None, help="Cache folder shared by mounts: blocks in DIR/blocks, "
              "logs in DIR/logs (default: $VSTUDIO_CACHE or ~/.cache/vstudio).")
@click.option("--max-cache", "max_cache_gb", metavar="GB", type=click.FloatRange(min=0.01),
              default=10.0, show_default=True, help="Bound of the block cache in GB.")
@click.option("--write", is_flag=True, help="Make latest/ writable: every change is "
              "committed (grouped once changes settle), as the mount's user.")
@click.option("--settle", metavar="SECONDS", type=click.FloatRange(min=0.1, max=3600),
              default=2.0, show_default=True,
              help="With --write: commit once no change came for this long.")
@click.option("--write-cache", "write_cache_gb", metavar="GB", type=click.FloatRange(min=0.0001),
              default=20.0, show_default=True, help="With --write: bound of the local write "
              "cache (uncommitted bytes); writes beyond it fail with ENOSPC.")
@click.option("--poll", metavar="SECONDS", type=click.FloatRange(min=0.1, max=3600),
              default=1.0, show_default=True, help="How often latest/ looks for new commits.")
@click.option("--foreground", is_flag=True, help="Serve in this process until unmounted.")
@click.option("--debug", is_flag=True, hidden=True, help="libfuse debug output.")
def mount_cmd(url: str, mountpoint: Path, token: str | None, cache_dir: Path | None,
              max_cache_gb: float, write: bool, settle: float, write_cache_gb: float,
              poll: float, foreground: bool, debug: bool) -> None:
    """Mount every revision of a project at MOUNTPOINT (read-only unless --write).

    URL is STUDIO_DIR/PROJECT or http(s)://HOST:PORT/PROJECT. Layout: latest/, r/N/,
    tags/NAME/. Files carry the extended attributes user.vstudio.id, .rev, .author and
    .lock (getfattr -d FILE). Without --foreground it returns once the mount is ready.
    With --write, latest/ takes changes: saved, renamed and removed files become commits
    "mount: N files saved by USER"; .vstudioignore'd files stay local; a needs-lock file
    is writable once you lock it (setfattr -n user.vstudio.lock -v MESSAGE FILE).
    """
    from vstudio.mount import runner

    token = token or os.environ.get("VSTUDIO_TOKEN")
    mnt = Path(os.path.abspath(mountpoint))
    if not foreground:
        # Check the URL here so mistakes are reported by this command, not in a log.
        source = runner.open_source(url, token)
        try:
            source.reader.head(source.project)  # unknown project, bad token: say so here
        finally:
            source.close()
        runner.check_mountpoint(mnt)
        args = [url, str(mnt), "--max-cache", str(max_cache_gb), "--poll", str(poll)]
        if write:
            args += ["--write", "--settle", str(settle), "--write-cache", str(write_cache_gb)]
        if cache_dir is not None:
            args += ["--cache", str(cache_dir.expanduser().resolve())]
        digest = hashlib.sha256(str(mnt).encode()).hexdigest()[:12]
        log_path = _cache_root(cache_dir) / "logs" / f"mount-{digest}.log"
        pid = runner.spawn_daemon(args, mnt, log_path, env={"VSTUDIO_TOKEN": token} if token
                                  else None)
        click.echo(f"mounted {url} at {mnt} (pid {pid}; log {log_path})")
        return
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if write and not debug:  # the log shows each commit the mount makes
        logging.getLogger("vstudio.mount").setLevel(logging.INFO)
    source = runner.open_source(url, token)
    opts = None
    if write:
        from vstudio.mount.writecache import WriteOptions

        opts = WriteOptions(_cache_root(cache_dir), int(write_cache_gb * 1024**3), settle)
    runner.run_foreground(source, mnt, cache_dir=cache_dir, poll_seconds=poll,
                          max_cache_bytes=int(max_cache_gb * 1024**3), debug=debug,
                          write=opts)


def _cache_root(cache_dir: Path | None) -> Path:
    if cache_dir is not None:
        return cache_dir.expanduser()
    from vstudio.mount.blocks import default_cache_dir

    return default_cache_dir().parent


@click.command("umount")
@click.argument("mountpoint", type=click.Path(file_okay=False, path_type=Path))
def umount_cmd(mountpoint: Path) -> None:
    """Unmount MOUNTPOINT; also clears a stale mount left by a crashed mount process."""
    from vstudio.mount import runner

    click.echo(f"{runner.unmount(mountpoint)}: {os.path.abspath(mountpoint)}")


@click.command("mount-status")
@click.argument("mountpoint", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON.")
def mount_status_cmd(mountpoint: Path, as_json: bool) -> None:
    """What a writable mount has not committed yet, and why a commit keeps failing.

    Exits 1 while commits fail (the changes stay in the write cache and are retried).
    """
    import json

    from vstudio.mount import control

    state = control.status(mountpoint)
    if as_json:
        click.echo(json.dumps(state, indent=2, sort_keys=True))
    else:
        for line in control.describe(state):
            click.echo(line)
    if state.get("error"):
        raise SystemExit(1)
