"""``vstudio serve``: the studio server (repository, farm manager, web page)."""

from __future__ import annotations

import click

from vstudio.cli.common import open_studio_from, studio_option


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
    click.echo(f"vstudio serving {studio.root} on http://{host}:{port}/", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                timeout_graceful_shutdown=5)
