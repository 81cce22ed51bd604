"""``avatar-vcam liveportrait replay``: render native LivePortrait motion to an mp4.

    register(cli)    # adds the `liveportrait` group to the main group
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from engine.errors import EngineError

from .errors import user_errors

console = Console(stderr=True)
EXAMPLES = """
\b
Examples:
  avatar-vcam liveportrait replay driving.npz --avatar leo --out replay.mp4
  avatar-vcam liveportrait replay kp.npz --stitch --fps 30
"""


@click.group("liveportrait", epilog=EXAMPLES)
def liveportrait_group() -> None:
    """LivePortrait tools (needs `avatar-vcam models fetch liveportrait`)."""


@liveportrait_group.command("replay", epilog=EXAMPLES)
@click.argument("motion", type=click.Path(path_type=Path))
@click.option("--avatar", default="leo", show_default=True, help="Avatar name or folder.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("replay.mp4"),
              show_default=True, help="mp4 to write.")
@click.option("--fps", default=25, show_default=True, type=click.IntRange(1, 120))
@click.option("--size", default=512, show_default=True, type=click.IntRange(64, 2048))
@click.option("--stitch/--no-stitch", default=None,
              help="Apply the stitching network (default: as the file says; exact replay off).")
@click.option("--device", default="cuda", show_default=True, help="Torch device.")
@click.option("--batch", default=8, show_default=True, type=click.IntRange(1, 256))
@click.option("--input-size", default=256, show_default=True, hidden=True,
              type=click.IntRange(128, 512))
@user_errors
def replay_cmd(motion: Path, avatar: str, out: Path, fps: int, size: int,
               stitch: bool | None, device: str, batch: int, input_size: int) -> None:
    """Replay a native motion file (.npz: LivePortrait codes or 3-D keypoints per frame)."""
    import torch

    from avatars import load
    from engine.frames import VideoFrame
    from engine.renderers import check_device, liveportrait_weights_missing
    from engine.renderers.liveportrait.native import load_motion
    from engine.renderers.liveportrait.renderer import LivePortraitRenderer

    from ..sinks import Mp4Sink
    from ..sinks.base import writing

    if size % 2:
        raise click.BadParameter("must be even (video encoders need even sizes)",
                                 param_hint="--size")
    if input_size % 128:
        raise click.BadParameter("must be a multiple of 128", param_hint="--input-size")
    check_device(device, need_present=False)  # a device torch does not know: one line
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EngineError("no CUDA GPU: pass --device cpu to replay on the CPU (seconds per "
                          "frame)")
    native = load_motion(motion)
    if stitch is not None:
        native.stitch = stitch
    missing = liveportrait_weights_missing()
    if missing:
        raise EngineError(missing)
    renderer = LivePortraitRenderer(device=device, input_size=input_size)
    state = renderer.prepare(load(avatar), size)
    sink = Mp4Sink(out)
    sink.open(size, size, fps)
    with writing(sink):  # a failed or interrupted render keeps an existing file
        n = len(native)
        for start in range(0, n, batch):
            part = native.slice(start, min(n, start + batch))
            for i, image in enumerate(renderer.render_native(state, part)):
                k = start + i
                sink.send(VideoFrame(k / fps, k, image))
    console.print(f"wrote {out} ({len(native)} frames, {len(native) / fps:.2f} s)")


def register(cli: click.Group) -> None:
    """Add the ``liveportrait`` group to the main command group."""
    cli.add_command(liveportrait_group)
