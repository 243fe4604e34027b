"""``llmaudit ui``: serve the read-only web viewer (`llmaudit.ui`) over a store until Ctrl-C."""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
import sys
import webbrowser

import click

from ._common import storage_option, storage_url
from ._text import plain

__all__ = ["ui"]

_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """Whether *host* only reaches this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@click.command()
@storage_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one)."
)
@click.option("--open", "open_browser", is_flag=True, help="Open the viewer in a browser.")
@click.option("--token", default=None, help="Require this token (needed to listen beyond this machine).")
@click.option(
    "--no-auth",
    is_flag=True,
    help="Listen beyond this machine without a token (anyone who can reach it reads the log).",
)
def ui(
    storage: str | None, host: str, port: int, open_browser: bool, token: str | None, no_auth: bool
) -> None:
    """Browse the audit log in a web browser: sessions, conversations, records, a dashboard and the
    integrity report. Read-only; binds 127.0.0.1 unless told otherwise."""
    try:
        import uvicorn  # noqa: PLC0415 - the ui extra is optional

        from ..ui import create_app  # noqa: PLC0415
    except ImportError as exc:
        raise click.ClickException(
            f"the web viewer needs its extra ({getattr(exc, 'name', None) or exc} is missing): "
            "pip install 'llmaudit-sdk[ui]'"
        ) from None
    if token is not None and no_auth:
        raise click.UsageError("--token and --no-auth exclude each other")
    local = is_loopback(host)
    if not local and token is None and not no_auth:
        raise click.UsageError(
            f"listening on {host} lets other machines read the audit log: give --token TOKEN "
            "(or --token generate), or --no-auth to allow it without one"
        )
    if token == "generate":  # noqa: S105 - the word, not a secret
        token = secrets.token_urlsafe(24)
    url = storage_url(storage)
    # on loopback without a token, only this machine's names are accepted as Host: a web page
    # that rebinds its own name to 127.0.0.1 cannot read the log through the browser
    hosts = list(_LOOPBACK_NAMES) if local and token is None else None
    app = create_app(url, token=token, allowed_hosts=hosts)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", server_header=False)
    server = uvicorn.Server(config)
    shown_host = f"[{host}]" if ":" in host else host

    def announce() -> None:
        bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
        address = f"http://{shown_host}:{bound}/"
        click.echo(f"llmaudit ui: reading {plain(app.state.store.shown_url)} (read-only)")
        if token is not None:
            click.echo(f"  token: {token}")
            click.echo(f"  open {address}?token={token}")
        else:
            click.echo(f"  open {address}")
        click.echo("  press Ctrl-C to stop")
        if open_browser:
            webbrowser.open(address + (f"?token={token}" if token else ""))

    original = server.startup

    async def startup(sockets: object = None) -> None:
        await original(sockets=sockets)  # type: ignore[arg-type]
        if server.started:
            announce()

    server.startup = startup  # type: ignore[method-assign]
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn handles SIGINT itself; a second one ends it
        server.run()
    if not server.started:
        click.echo(f"llmaudit ui: could not listen on {shown_host}:{port}", err=True)
        sys.exit(1)
    click.echo("llmaudit ui: stopped")
