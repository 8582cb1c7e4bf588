"""``vstudio demo``: the whole studio on one machine (server, two render nodes, a job)."""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import click


@click.command("demo")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="Folder for the demo studio (default: a new temporary folder).")
@click.option("--once", is_flag=True,
              help="Run the job, stop everything and print the video's path on the last line.")
@click.option("--frames", type=click.IntRange(2, 250), default=24, show_default=True)
@click.option("--size", default="320x180", show_default=True, help="Frame size WxH.")
@click.option("--samples", type=click.IntRange(1, 4096), default=8, show_default=True)
def demo_cmd(directory: str | None, once: bool, frames: int, size: str, samples: int) -> None:
    """Create a studio, start the server and two workers, render and encode a scene."""
    from vstudio.cli.demo_run import Demo, DemoError, DemoSettings

    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise click.UsageError(f"--size must be WxH, like 320x180, not {size!r}") from None
    if not (16 <= w <= 4096 and 16 <= h <= 4096):
        raise click.UsageError("--size must be between 16x16 and 4096x4096")
    for program, package in (("blender", "blender"), ("ffmpeg", "ffmpeg")):
        if not shutil.which(program):
            raise DemoError(f"{program} is not installed: run 'sudo apt-get install {package}' "
                            "(or 'make demo', which installs what is missing)")
    root = Path(directory).expanduser().resolve() if directory else Path(
        tempfile.mkdtemp(prefix="vstudio-demo-"))
    root.mkdir(parents=True, exist_ok=True)

    def say(msg: str) -> None:
        click.echo(msg, err=once)  # with --once stdout ends with the path alone

    demo = Demo(DemoSettings(root=root, frames=frames, size=(w, h), samples=samples, say=say))

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # unwinds to the cleanup below, which stops every process

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    try:
        video = demo.run()
        say(f"web page: {demo.url}/  (log in with the token {demo.admin_token})")
        for v in demo.videos:
            say(f"video: {v}")
        if once:
            demo.stop()
            click.echo(str(video))
            sys.exit(0 if video.is_file() else 1)
        click.echo(f"\nThe studio keeps running at {demo.url}/ ; press Ctrl-C to stop it.")
        while True:
            time.sleep(1)
            demo.check_alive()
    except KeyboardInterrupt:
        click.echo("stopping the demo studio", err=True)
    finally:
        demo.stop()
