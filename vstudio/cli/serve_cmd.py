"""``vstudio serve``: the studio server (repository, farm manager, web page)."""

from __future__ import annotations

import errno
import socket

import click

from vstudio.cli.common import open_studio_from, studio_option
from vstudio.errors import BadInput


@click.command("serve")
@studio_option
@click.option("--host", default=None, help="Address to listen on (default from studio.toml).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port (default from studio.toml, 8642).")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve_cmd(studio_dir: str | None, host: str | None, port: int | None, log_level: str) -> None:
    """Run the studio server: HTTP API under /api/, web page at /."""
    import uvicorn

    from vstudio.api.app import create_app

    studio = open_studio_from(studio_dir)
    host = host or str(studio.config.server.get("host", "127.0.0.1"))
    port = port if port is not None else int(studio.config.server.get("port", 8642))
    app = create_app(studio)
    sock = listen(host, port)  # before saying "serving": a busy port is an error, not a lie
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"vstudio serving {studio.root} on http://{shown}:{port}/", err=True)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                            timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a one-line error saying what to do."""
    where = f"{host}:{port}"
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as e:
        raise BadInput(f"cannot listen on {where}: unknown address ({e}); "
                       f"check --host or [server] host in studio.toml") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        hint = ("another program listens there: stop it or pick another --port "
                "(or [server] port in studio.toml)" if e.errno == errno.EADDRINUSE else
                "check --host/--port or [server] host/port in studio.toml")
        raise BadInput(f"cannot listen on {where}: {e.strerror or e}; {hint}") from None
    sock.set_inheritable(True)
    return sock
