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
@click.option("--foreground", is_flag=True, help="Serve in this process until unmounted.")
@click.option("--debug", is_flag=True, hidden=True, help="libfuse debug output.")
def mount_cmd(url: str, mountpoint: Path, token: str | None, cache_dir: Path | None,
              max_cache_gb: float, foreground: bool, debug: bool) -> None:
    """Mount every revision of a project read-only at MOUNTPOINT.

    URL is STUDIO_DIR/PROJECT or http(s)://HOST:PORT/PROJECT. Layout: latest/, r/N/,
    tags/NAME/. Files carry the extended attributes user.vstudio.id, .rev, .author and
    .lock (getfattr -d FILE). Without --foreground it returns once the mount is ready.
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
        args = [url, str(mnt), "--max-cache", str(max_cache_gb)]
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
    source = runner.open_source(url, token)
    runner.run_foreground(source, mnt, cache_dir=cache_dir,
                          max_cache_bytes=int(max_cache_gb * 1024**3), debug=debug)


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
