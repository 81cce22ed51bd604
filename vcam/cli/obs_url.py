"""``avatar-vcam obs-url``: the running daemon's browser-source URL (``--sink obs``)."""

from __future__ import annotations

import click

from ..control.api import ControlClient
from .errors import user_errors


@click.command("obs-url")
@user_errors
def obs_url_cmd() -> None:
    """Print the URL of the transparent avatar page for an OBS Browser Source.

    The daemon must run with --sink obs. The URL carries the page's token; it stays the
    same across restarts until you log out (the port: --control-port, default 47410).
    """
    click.echo(ControlClient.from_runtime_file().request("GET", "/v1/obs-url")["url"])
