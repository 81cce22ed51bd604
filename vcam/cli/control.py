"""CLI commands that drive a running daemon through its control API, and the daemon's
control/OBS flags.

    register(cli)              # adds `expr`, `status`, `scene` to the main group
    @daemon_options            # adds --config, --control-port, --obs... to the main command
    values = resolve_settings(ctx)   # config.toml merged with the flags the user typed
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..control.api import ControlClient
from ..control.settings import flag_type
from .errors import user_errors


def _client() -> ControlClient:
    return ControlClient.from_runtime_file()


@click.command("expr")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def expr_cmd(name: str | None, as_json: bool) -> None:
    """Set the running avatar's expression: NAME, or `list` to list them.

    Without NAME, print the current expression.
    """
    client = _client()
    if name is None or name == "list":
        info = client.expressions()
        if as_json:
            click.echo(json.dumps(info))
        elif name is None:
            click.echo(info.get("expression"))
        else:
            for e in info.get("expressions", []):
                click.echo(f"{'*' if e == info.get('expression') else ' '} {e}")
        return
    reply = client.set_expression(name)
    click.echo(json.dumps(reply) if as_json else f"expression: {reply.get('expression')}")


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def status_cmd(as_json: bool) -> None:
    """Show the running daemon's state (avatar, expression, OBS connection)."""
    info = _client().status()
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True))
        return
    click.echo(format_status(info))


def format_status(info: dict[str, Any]) -> str:
    """Human-readable status lines."""
    lines = [f"daemon: running (pid {info.get('pid')})"]
    for key in ("avatar", "expression", "source"):
        if info.get(key) is not None:
            lines.append(f"{key}: {info[key]}")
    obs = info.get("obs")
    if obs is None:
        lines.append("obs: not configured")
    elif obs.get("connected"):
        lines.append(f"obs: connected to {obs.get('url')} (OBS {obs.get('obs_version')}), "
                     f"scene {obs.get('scene')!r}")
    else:
        lines.append(f"obs: {obs.get('state')} ({obs.get('error') or 'no error yet'}) for "
                     f"{obs.get('for_s')} s; the avatar keeps running")
    skip = {"pid", "avatar", "expression", "source", "obs", "expressions"}
    lines += [f"{k}: {_plain(v)}" for k, v in info.items() if k not in skip]
    return "\n".join(lines)


def _plain(value: Any) -> str:
    """A status value as a person reads it: no Python ``None`` or list brackets."""
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


@click.command("scene")
@click.argument("name")
@user_errors
def scene_cmd(name: str) -> None:
    """Switch OBS's program scene through the running daemon."""
    _client().set_scene(name)
    click.echo(f"scene: {name}")


def register(cli_group: click.Group) -> None:
    """Add `expr`, `status`, `scene` and `obs-url` to the main group."""
    from .obs_url import obs_url_cmd

    for cmd in (expr_cmd, status_cmd, scene_cmd, obs_url_cmd):
        cli_group.add_command(cmd)


_OPTIONS = [
    click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
                 help="Config file (default ~/.config/avatar-vcam/config.toml; "
                      "env AVATAR_VCAM_CONFIG)."),
    click.option("--control/--no-control", default=True, show_default=True,
                 help="Serve the local control API (avatar-vcam expr/status/scene). A file "
                      "render (a file or demo source into file: outputs only, no "
                      "--voice-out) serves none unless you type --control, so it runs "
                      "beside a live daemon, which keeps the API."),
    click.option("--control-port", type=flag_type("control.port"), default=0,
                 help="Control API port on 127.0.0.1 (default: any free port)."),
    click.option("--obs", metavar="ws://HOST:PORT", default="",
                 help="Connect to OBS's obs-websocket, e.g. ws://127.0.0.1:4455."),
    click.option("--obs-password-env", metavar="VAR", default="",
                 help="Environment variable holding the obs-websocket password."),
    click.option("--obs-scene", "obs_scenes", metavar="SCENE=EXPRESSION", multiple=True,
                 help="While SCENE is on program, show EXPRESSION (repeatable)."),
    click.option("--obs-scene-avatar", "obs_scene_avatars", metavar="SCENE=AVATAR",
                 multiple=True, help="While SCENE is on program, show AVATAR (switched "
                                     "live; repeatable)."),
    click.option("--obs-talking-scene", metavar="SCENE", default="",
                 help="Switch OBS to SCENE while the avatar speaks."),
    click.option("--obs-idle-scene", metavar="SCENE", default="",
                 help="Switch OBS back to SCENE after --obs-hold seconds of silence."),
    click.option("--obs-hold", type=flag_type("obs.hold_s"), default=1.0, show_default=True,
                 help="Seconds of silence before the idle scene."),
    click.option("--obs-timeout", type=flag_type("obs.timeout"), default=2.0,
                 show_default=True, help="Seconds without an answer before OBS counts as "
                                         "frozen."),
]


def daemon_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator adding the control API and OBS flags to the main command."""
    for opt in reversed(_OPTIONS):
        fn = opt(fn)
    return fn


def resolve_settings(ctx: click.Context) -> dict[str, Any]:
    """Dotted settings: defaults < config.toml < flags typed on the command line.

    Keys not given anywhere fall back to the click parameter's default, so the result has
    every key of :data:`~vcam.control.settings.KEYS` that the command has as a flag.
    """
    from ..control.settings import KEYS, explicit_flags, load_config, merge

    path = ctx.params.get("config_file")
    values = merge(load_config(path), explicit_flags(ctx))
    for key in KEYS.values():
        if key.name not in values and key.param in ctx.params:
            value = ctx.params[key.param]
            values[key.name] = list(value) if isinstance(value, tuple) else value
    return values
