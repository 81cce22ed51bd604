"""``avatar-vcam models export-onnx``: the engine's networks as ONNX files.

    register(cli)    # adds `export-onnx` to the `models` group
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from engine.errors import EngineError

from .errors import user_errors

console = Console(stderr=True)
EXAMPLES = """
\b
Examples:
  avatar-vcam models export-onnx                   # into the cache --backend onnx reads
  avatar-vcam models export-onnx --out onnx/       # LivePortrait (if installed) + lip-sync
  avatar-vcam --backend onnx --source demo         # then run on onnxruntime
"""


@click.command("export-onnx", epilog=EXAMPLES)
@click.option("--out", type=click.Path(path_type=Path),
              help="Folder to write (default: the cache that --backend onnx uses).")
@click.option("--input-size", default=256, show_default=True, type=click.IntRange(128, 512),
              help="LivePortrait input size (the renderer's is 256; a multiple of 32).")
@click.option("--a2m", "a2m_weights", metavar="learned|FILE.npz", default="learned",
              show_default=True, help="Audio2Motion weights to export.")
@user_errors
def export_onnx_cmd(out: Path | None, input_size: int, a2m_weights: str) -> None:
    """Export LivePortrait's seven networks (when installed) and the Audio2Motion TCN to
    ONNX (opset 20, batch 1, fixed shapes; the TCN's frame count per push is dynamic)."""
    from engine.onnx.a2m import ensure_a2m_exported
    from engine.onnx.export import export_a2m_step, export_liveportrait, file_digest
    from engine.onnx.liveportrait import cache_folder, ensure_exported
    from engine.onnx.session import require_onnx
    from engine.renderers import liveportrait_weights_missing
    from engine.renderers.liveportrait.weights import default_dir

    require_onnx()
    if input_size % 32:
        raise click.BadParameter("must be a multiple of 32", param_hint="--input-size")
    weights = None if a2m_weights == "learned" else Path(a2m_weights)
    if weights is not None and not weights.is_file():
        raise EngineError(f"Audio2Motion weights not found: {weights}; pass an existing .npz "
                          "or learned")
    missing = liveportrait_weights_missing()
    if missing:
        console.print(f"[yellow]warning:[/] {escape(missing)}; exporting Audio2Motion only",
                      soft_wrap=True)
    else:
        console.print("exporting LivePortrait (about half a minute)...")
        if out is None:
            folder = ensure_exported(None, input_size)
        else:
            from engine.renderers.liveportrait.loader import load_networks

            _, fp = cache_folder(default_dir(), input_size)
            folder = out / f"liveportrait-{input_size}"
            export_liveportrait(load_networks(default_dir()), folder, input_size, source=fp)
        console.print(f"LivePortrait: {escape(str(folder))}", soft_wrap=True)
    if out is None:
        a2m = ensure_a2m_exported(weights)
    else:
        from engine.audio2motion.learned import WEIGHTS

        npz = weights or WEIGHTS
        a2m = export_a2m_step(npz, out / f"a2m-{file_digest(npz)}.onnx")
    console.print(f"Audio2Motion: {escape(str(a2m))}", soft_wrap=True)


def register(cli: click.Group) -> None:
    """Add ``export-onnx`` to the ``models`` group of ``cli``."""
    cli.commands["models"].add_command(export_onnx_cmd)
