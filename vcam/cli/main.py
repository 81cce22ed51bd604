"""The ``avatar-vcam`` command line: thin commands that parse, call library code, print."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from engine.audio2motion import (
    A2M_MODELS,
    DEFAULT_A2M,
    DEFAULT_LOOKAHEAD_MS,
    is_weights_file,
)
from engine.config import EngineConfig
from engine.onnx import BACKENDS
from engine.renderers import RENDERERS

from .. import __version__
from ..control.settings import flag_type
from .a2m import register_a2m
from .avatar import register as register_avatar_commands
from .control import daemon_options, register, resolve_settings
from .errors import user_errors
from .live_setup import register as register_live_commands
from .liveportrait import register as register_liveportrait_commands
from .models import register as register_models_commands
from .onnx import register as register_onnx_commands
from .param_types import FiniteFloatRange
from .say import register as register_say
from .tables import stdout_console

console = Console(stderr=True)
STARTED_AT = time.monotonic()  # start-up is timed from here (or from vcam.cli.entry)
EXAMPLES = """
\b
Examples:
  avatar-vcam --avatar leo --source demo                  # bundled clip -> camera/window/mp4
  avatar-vcam --source file:speech.wav --sink file:out.mp4
  avatar-vcam avatars                                     # list avatars
"""


def _check_a2m(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """--a2m: a model name or an existing .npz weights file."""
    if value in A2M_MODELS or (is_weights_file(value) and Path(value).is_file()):
        return value
    raise click.BadParameter(f"{value!r}: use {', '.join(A2M_MODELS)} or an existing .npz "
                             "weights file (avatar-vcam train-a2m --out FILE.npz)")


def default_sinks() -> list[str]:
    """Virtual camera if there is one, else a window if there is a display, else an mp4."""
    from ..errors import DeviceError
    from ..sinks import VirtualCameraSink, display_available

    try:
        probe = VirtualCameraSink()
        probe.open(64, 64, 25)
        probe.close()
        return ["vcam"]
    except DeviceError:
        pass
    if display_available():
        return ["window"]
    return [f"file:avatar-vcam-{time.strftime('%Y%m%d-%H%M%S')}.mp4"]


@click.group(invoke_without_command=True, epilog=EXAMPLES,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--avatar", default="leo", show_default=True, help="Avatar name or package folder.")
@click.option("--source", default="demo", show_default=True,
              help="Audio input: mic, system (what the computer plays), device:NAME, demo, "
                   "file:PATH, pipe:FORMAT:RATE[:CHANNELS] (raw s16le/f32le PCM on stdin), "
                   "or idle (only what programs stream in: avatar-vcam say, /v1/audio).")
@click.option("--sink", "sinks", multiple=True,
              help="Output, repeatable: file:PATH.mp4, window, vcam, vcam:/dev/videoN. "
                   "Default: vcam if present, else window if a display exists, else an mp4.")
@click.option("--vcam-device", metavar="PATH",
              help="Virtual camera device for --sink vcam (e.g. /dev/video10).")
@click.option("--voice-out", metavar="DEVICE|none",
              help="Play the voice, delayed to match the lips, into this output (a virtual "
                   "mic: a PulseAudio/PipeWire sink name or a device name); none: frames "
                   "as early as possible.")
@click.option("--delay-ms", type=flag_type("delay_ms"),
              help="Voice delay D (default: look-ahead + capture block + render + margin, "
                   "measured at start).")
@click.option("--fps", default=25, show_default=True, type=flag_type("fps"))
@click.option("--size", type=flag_type("size"),
              help="Output size: N (a square) or WIDTHxHEIGHT. Default: 1280x720 for a "
                   "virtual camera (what meeting apps expect), else 512.")
@click.option("--framing", type=flag_type("framing"),
              help="Zoom (1..3) of the avatar in a wide frame, and x,y offsets as fractions "
                   "of the frame: ZOOM or ZOOM,X,Y, e.g. 1.2,0,0.05.")
@click.option("--background", type=flag_type("background"),
              help="Around the avatar: photo (its own background, extended; the default), "
                   "blur, a colour (#00ff00) or an image file.")
@click.option("--duration", type=FiniteFloatRange(min=0, min_open=True),
              help="Stop after this many seconds of audio.")
@click.option("--renderer", default="auto", show_default=True, type=click.Choice(RENDERERS),
              help="auto: LivePortrait when its weights and a GPU are there, else warp.")
@click.option("--device", default="auto", show_default=True,
              help="Torch device for rendering: auto (the GPU if any), cpu, cuda, cuda:N.")
@click.option("--backend", default="torch", show_default=True, type=click.Choice(BACKENDS),
              help="Run the networks in torch, or on onnxruntime from their ONNX exports "
                   "(needs: pip install 'avatar-vcam[onnx]').")
@click.option("--realtime", is_flag=True, help="Pace file sources like a live input.")
@click.option("--lookahead-ms", default=DEFAULT_LOOKAHEAD_MS, show_default=True,
              type=flag_type("lookahead_ms"), help="Audio look-ahead of the lip motion.")
@click.option("--a2m", default=DEFAULT_A2M, show_default=True, callback=_check_a2m,
              metavar="learned|dsp|FILE.npz",
              help="Lip-sync model: learned (causal TCN), dsp (signal features), or weights "
                   "from `avatar-vcam train-a2m`.")
@click.option("--head-motion", default="speech", show_default=True,
              type=flag_type("head_motion"),
              help="What moves the head: speech (nods and brow raises with the voice, idle "
                   "sway in silence), idle (sway only) or off (a still head).")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), metavar="N",
              help="Seed of idle life and head gestures (blinks, sway); default: a fresh one "
                   "per run, shown in the first line.")
@click.option("--expression", default="neutral", show_default=True,
              help="Expression preset to start with.")
@daemon_options
@click.option("-v", "--verbose", is_flag=True, help="Log details; show tracebacks on errors.")
@click.version_option(__version__, prog_name="avatar-vcam")
@click.pass_context
@user_errors
def cli(ctx: click.Context, verbose: bool, **params: Any) -> None:
    """Turn a portrait into a talking head on a virtual webcam, driven by a voice."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from ..stopping import Interrupted, StopSignals, default_handlers, startup_summary

    if ctx.invoked_subcommand is not None:
        default_handlers()  # the entry point's start-up handlers are for the main job
        return

    sinks: list[str] = list(params.get("sinks") or ())  # _main_job fills in the defaults
    with StopSignals(started_at=STARTED_AT) as stop:  # Ctrl-C/SIGTERM at any moment
        try:
            _main_job(ctx, params, stop, sinks)
        except Interrupted as e:
            console.print(escape(startup_summary(e, sinks)), soft_wrap=True)


def is_file_render(source: str, sinks: list[str], voice_out: str | None) -> bool:
    """A file (or the demo clip) into mp4 files only, with no voice output: a job that
    ends by itself and that nobody steers, so it serves no control API by default."""
    return (source == "demo" or source.startswith("file:")) and bool(sinks) \
        and all(s.startswith("file:") for s in sinks) and voice_out in (None, "", "none")


def _main_job(ctx: click.Context, params: dict[str, Any], stop: Any,
              resolved_sinks: list[str]) -> None:
    """Settings -> engine config and run options -> :func:`vcam.run.run_main`.

    ``resolved_sinks`` is set to the outputs chosen (for the summary of an interrupted run).
    """
    from ..control.settings import ObsSettings, explicit_flags
    from ..run import RunOptions, run_main

    v = resolve_settings(ctx)
    sinks = list(v.get("sinks") or [])
    if v.get("vcam_device"):
        sinks = [f"vcam:{v['vcam_device']}" if s == "vcam" else s for s in sinks] or \
            [f"vcam:{v['vcam_device']}"]
    sinks = sinks or default_sinks()
    resolved_sinks[:] = sinks
    size = v.get("size") or ((1280, 720) if any(s.startswith("vcam") for s in sinks) else 512)
    config = EngineConfig(fps=v["fps"], size=size, renderer=v["renderer"],
                          framing=v.get("framing") or (1.0, 0.0, 0.0),
                          background=v.get("background") or "photo",
                          device=v["device"], lookahead_ms=v["lookahead_ms"], a2m=v["a2m"],
                          head_motion=v["head_motion"], seed=params["seed"],
                          backend=params["backend"])
    if not v.get("obs.url"):
        ignored = [flag for key, flag in (("obs.scenes", "--obs-scene"),
                                          ("obs.talking_scene", "--obs-talking-scene"),
                                          ("obs.idle_scene", "--obs-idle-scene")) if v.get(key)]
        if ignored:
            console.print(f"[yellow]warning:[/] {', '.join(ignored)}: only with --obs "
                          "ws://HOST:PORT; ignored", soft_wrap=True)
    control = v["control.enabled"]
    if is_file_render(v["source"], sinks, v.get("voice_out")):
        # runs beside a live daemon, which keeps the control API (and `avatar-vcam expr`)
        typed = explicit_flags(ctx)
        control = bool(typed.get("control.enabled")) or \
            (control and "control.port" in typed)
    opts = RunOptions(avatar=v["avatar"], source=v["source"], sinks=sinks,
                      duration=params["duration"], realtime=params["realtime"],
                      expression=v["expression"], voice_out=v.get("voice_out"),
                      delay_ms=v.get("delay_ms"), control=control,
                      control_port=v["control.port"], obs=ObsSettings.from_values(v))
    run_main(config, opts, console, stop=stop)


@cli.command("avatars")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def avatars_cmd(as_json: bool) -> None:
    """List bundled and user avatars."""
    from avatars import available, user_avatar_dir

    found = available()
    if as_json:
        click.echo(json.dumps({n: {"path": str(p), "kind": k} for n, (p, k) in found.items()}))
        return
    table = Table("name", "display name", "kind", "path")
    broken: list[str] = []
    for name, (path, kind) in sorted(found.items()):
        display, problem = _display_name(path, name)
        if problem:
            broken.append(f"{path / 'avatar.json'}: {problem}")
        table.add_row(name, escape(display), kind, escape(str(path)))
    stdout_console().print(table)
    for line in broken:  # listed above all the same: the others stay usable
        console.print(f"[yellow]warning:[/] {escape(line)}; fix it or re-create that avatar",
                      soft_wrap=True)
    console.print(f"user avatars folder: {user_avatar_dir()}")


def _display_name(folder: Path, name: str) -> tuple[str, str]:
    """``(display name, "")`` from a package's avatar.json, or ``(placeholder, reason)``."""
    from engine import jsonfile

    try:
        meta = jsonfile.read(folder / "avatar.json")
    except OSError as e:
        return "(unreadable avatar.json)", f"cannot read it ({e.strerror or e})"
    except jsonfile.JsonError as e:
        return "(broken avatar.json)", f"it is {e}"
    if not isinstance(meta, dict):
        return "(broken avatar.json)", "it must hold a JSON object"
    return str(meta.get("display_name", name)), ""


register_avatar_commands(cli)
register_models_commands(cli)
register_onnx_commands(cli)
register_liveportrait_commands(cli)
register_a2m(cli)


register(cli)
register_live_commands(cli)
register_say(cli)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name=Path(sys.argv[0]).name if sys.argv else "avatar-vcam")
