"""Options and helpers shared by the command modules."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

studio_option = click.option(
    "--studio", "studio_dir", metavar="DIR", default=None,
    help="Studio folder (default: $VSTUDIO_STUDIO or the current folder upwards).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def server_options(f: F) -> F:
    """--server/--token, defaulting to VSTUDIO_SERVER / VSTUDIO_TOKEN."""

    @click.option("--server", metavar="URL", default=None,
                  help="Studio server URL (default: $VSTUDIO_SERVER).")
    @click.option("--token", metavar="TOKEN", default=None,
                  help="API token (default: $VSTUDIO_TOKEN).")
    @wraps(f)
    def wrapper(*args: Any, server: str | None, token: str | None, **kw: Any) -> Any:
        server = server or os.environ.get("VSTUDIO_SERVER")
        token = token or os.environ.get("VSTUDIO_TOKEN")
        if not server:
            raise click.UsageError("no server: pass --server URL or set VSTUDIO_SERVER")
        return f(*args, server=server.rstrip("/"), token=token, **kw)

    return wrapper  # type: ignore[return-value]


def emit(data: Any, as_json: bool, human: Callable[[Any], object] | None = None) -> None:
    """Print ``data`` as JSON, or through ``human`` for people."""
    if as_json or human is None:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        human(data)


def open_studio_from(studio_dir: str | None) -> Any:
    from vstudio.studio import Studio

    return Studio.open(studio_dir)
