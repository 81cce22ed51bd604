"""The ``avatar`` command group: show, create and preview avatar packages.

    register(cli)   # adds `avatar show|create|preview|use` to the main group
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from .errors import user_errors

console = Console(stderr=True)

CREATE_EXAMPLES = """
\b
Examples:
  avatar-vcam avatar create me.jpg --name me
  avatar-vcam avatar create team.jpg --name ana --face 2      # 2nd face from the left
  avatar-vcam avatar create party.jpg --name bo               # several faces: lists them
  avatar-vcam avatar create me.jpg --name me --landmarker ~/face_landmarker.task  # offline
"""


@click.group("avatar")
def avatar_group() -> None:
    """Inspect, create and preview avatar packages."""


@avatar_group.command("show")
@click.argument("name")
@user_errors
def avatar_show(name: str) -> None:
    """Print an avatar package's metadata."""
    from avatars import load

    a = load(name)
    info = {
        "name": a.name, "display_name": a.display_name, "path": str(a.root),
        "resolution": a.resolution, "face_bbox": list(a.bbox), "landmarks": len(a.landmarks),
        "mask": a.mask is not None, "renderer": a.renderer,
        "expressions": sorted(a.expressions), "idle": a.idle, "credits": a.credits,
    }
    click.echo(json.dumps(info, indent=2))


@avatar_group.command("create", epilog=CREATE_EXAMPLES)
@click.argument("photo", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Name of the new avatar (letters, digits, -_.).")
@click.option("--display-name", help="Name to show (default: --name).")
@click.option("--face", type=click.IntRange(min=1),
              help="Which face when the photo has several, counted from the left "
                   "(small faces in large photos count too).")
@click.option("--resolution", default=512, show_default=True, type=int,
              help="Working resolution of source.png (square, pixels).")
@click.option("--landmarker", type=click.Path(dir_okay=False, path_type=Path),
              envvar="AVATAR_VCAM_LANDMARKER", show_envvar=True,
              help="mediapipe face_landmarker.task (float16/1) for offline machines; "
                   "default: downloaded once and cached.")
@click.option("--segmenter", type=click.Path(dir_okay=False, path_type=Path),
              envvar="AVATAR_VCAM_SEGMENTER", show_envvar=True,
              help="selfie_segmentation.tflite (mediapipe) for offline machines: the person "
                   "matte (mask.png) of a photo without transparency; default: downloaded "
                   "once and cached.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to create the package in (default: your avatars folder).")
@click.option("--force", is_flag=True, help="Replace an existing avatar of that name.")
@click.option("--credits", default="", help="Photo credits to store in avatar.json.")
@click.option("--keep-expression", is_flag=True,
              help="Keep the photo's own expression (its smile, open mouth) at rest instead "
                   "of starting from a calm, closed-mouth rest.")
@user_errors
def avatar_create(photo: Path, name: str, display_name: str | None, face: int | None,
                  resolution: int, landmarker: Path | None, out_dir: Path | None, force: bool,
                  credits: str, keep_expression: bool, segmenter: Path | None = None) -> None:
    """Turn a portrait PHOTO into an avatar package named NAME.

    Every face in the photo is found, small ones in a large group photo too; when several
    could be meant, it lists their widths and asks for --face. The face used must be at
    least 128 px wide. The avatar rests with a calm face (the photo's grin relaxed, an
    open mouth closed) unless --keep-expression; a photo that cannot be calmed well gets a
    warning line saying why.
    """
    from rich.progress import BarColumn, Progress, TextColumn

    from avatars import bundled, user_avatar_dir
    from engine.create import STEPS, CreateOptions, create_avatar

    opts = CreateOptions(name=name, display_name=display_name, face=face,
                         resolution=resolution, landmarker=landmarker, dest_root=out_dir,
                         force=force, credits=credits, keep_expression=keep_expression,
                         segmenter=segmenter)
    with Progress(TextColumn("{task.description:<16}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), console=console,
                  transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("starting", total=len(STEPS))
        done: list[str] = []
        warnings: list[str] = []

        def step(label: str) -> None:
            if done:
                bar.advance(task)
            done.append(label)
            bar.update(task, description=label)

        dest = create_avatar(photo, opts, progress=step, warn=warnings.append)
        bar.advance(task)
    for line in warnings:
        console.print(f"warning: {escape(line)}", soft_wrap=True)
    console.print(f"avatar {escape(repr(name))} written to {escape(str(dest))}",
                  soft_wrap=True)
    if name in bundled() and dest.parent.resolve() == user_avatar_dir().resolve():
        console.print(f"warning: it hides the bundled avatar {escape(repr(name))}; to use "
                      "that one again, remove yours or re-create it with another --name",
                      soft_wrap=True)
    click.echo(str(dest))


@avatar_group.command("preview")
@click.argument("name")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Contact sheet image: .png, .jpg or .webp (default: NAME-sheet.png).")
@click.option("--video", type=click.Path(dir_okay=False, path_type=Path),
              help="Idle-life mp4 (default: NAME-idle.mp4).")
@click.option("--no-video", is_flag=True, help="Only the contact sheet.")
@click.option("--seconds", default=6.0, show_default=True, type=click.FloatRange(0.2, 120),
              help="Length of the idle clip.")
@click.option("--size", default=512, show_default=True, type=click.IntRange(64, 2048))
@click.option("--fps", default=25, show_default=True, type=click.IntRange(1, 60))
@click.option("--renderer", default="warp", show_default=True)
@click.option("--device", default="cpu", show_default=True, help="Torch device for rendering.")
@user_errors
def avatar_preview(name: str, out: Path | None, video: Path | None, no_video: bool,
                   seconds: float, size: int, fps: int, renderer: str, device: str) -> None:
    """Render a contact sheet of every preset and key channel, and an idle-life mp4."""
    from avatars import load
    from engine.renderers import make_renderer

    from ..avatar_preview import SHEET_SUFFIXES, VIDEO_SUFFIXES, contact_sheet, idle_video
    from ..sinks.output_path import check_output

    if size % 2:
        raise click.BadParameter("must be even (video encoders need even sizes)",
                                 param_hint="--size")
    avatar = load(name)
    out = out or Path(f"{avatar.name}-sheet.png")
    video = None if no_video else video or Path(f"{avatar.name}-idle.mp4")
    check_output(out, SHEET_SUFFIXES)
    if video:
        check_output(video, VIDEO_SUFFIXES)
    r = make_renderer(renderer, device)
    with console.status(f"preparing {escape(avatar.name)}"):
        state = r.prepare(avatar, size)
    with console.status("rendering the contact sheet"):
        tiles = contact_sheet(r, state, avatar, size, out)
    console.print(f"contact sheet ({tiles} tiles): {escape(str(out))}", soft_wrap=True)
    click.echo(str(out))
    if video:
        with console.status(f"rendering {seconds:g} s of idle life"):
            frames = idle_video(r, state, avatar, size, video, seconds=seconds, fps=fps)
        console.print(f"idle clip ({frames} frames at {fps} fps): {escape(str(video))}",
                      soft_wrap=True)
        click.echo(str(video))


@avatar_group.command("use")
@click.argument("name")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait until the new face is on the outputs.")
@click.option("--timeout", default=60.0, show_default=True, type=click.FloatRange(0.1, 600),
              help="Seconds to wait for the switch.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def avatar_use(name: str, wait: bool, timeout: float, as_json: bool) -> None:
    """Switch the running daemon to avatar NAME, live (no restart, no gap in the video).

    The avatar is prepared in the background; the switch happens between two frames and
    the voice delay does not change. A request made while another is loading replaces it.
    """
    from .switch_client import use_avatar

    reply = use_avatar(name, wait=wait, timeout=timeout)
    if as_json:
        click.echo(json.dumps(reply))
    elif reply.get("state") == "current":
        click.echo(f"avatar: {name} (already shown)")
    elif not wait:
        click.echo(f"avatar: {name} (loading)")
    else:
        last = reply.get("last_switch") or {}
        click.echo(f"avatar: {name} (shown {last.get('switch_ms', '?')} ms after the "
                   f"request, prepared in {last.get('prepare_ms', '?')} ms)")


def register(cli: click.Group) -> None:
    """Add the ``avatar`` group to the main command group."""
    cli.add_command(avatar_group)
