"""The click application: a lazily loading group and the one place errors become exits."""

from __future__ import annotations

import os
import sys
from importlib import import_module

import click

from vstudio import __version__
from vstudio.cli.entry import COMMANDS
from vstudio.errors import VStudioError


class LazyGroup(click.Group):
    """Loads a command's module only when the command is called or listed in --help."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        mod_name, _, attr = target.partition(":")
        command: click.Command = getattr(import_module(mod_name), attr)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vstudio")
def cli() -> None:
    """vstudio: asset repository, render farm and project rendering for small studios."""


def run(args: list[str]) -> None:
    try:
        cli.main(args=args, prog_name="vstudio", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(2 if isinstance(e, click.UsageError) else e.exit_code)
    except VStudioError as e:
        click.echo(f"error: {e.message}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except OSError as e:
        if os.environ.get("VSTUDIO_DEBUG"):
            raise
        click.echo(f"error: {e.strerror or e}{': ' + str(e.filename) if e.filename else ''}",
                   err=True)
        sys.exit(1)
    except Exception as e:  # a bug: one line for users, the traceback on request
        if os.environ.get("VSTUDIO_DEBUG"):
            raise
        click.echo(f"internal error: {type(e).__name__}: {e} (set VSTUDIO_DEBUG=1 for details)",
                   err=True)
        sys.exit(1)
    sys.exit(0)


def main() -> None:  # pragma: no cover - console script
    run(sys.argv[1:])

