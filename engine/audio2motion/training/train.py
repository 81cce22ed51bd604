"""Train the learned Audio2Motion on a synthesised espeak-ng corpus (CPU, a few minutes).

    python -m engine.audio2motion.training.train [--clips 1500] [--steps 4000] \
        [--out weights.npz] [--onnx model.onnx] [--extra DIR]

Builds the corpus (:mod:`.corpus`: training voices only, augmented, plus negative clips),
computes the same features the streaming model computes, trains :class:`..tcn.CausalTcn`
with every look-ahead head at once, and writes float16 weights (``.npz``, ~0.2 MB).
``--extra DIR`` adds your own recordings: ``NAME.wav`` with ``NAME.phones`` next to it,
one ``start end phone`` line per phone (seconds, espeak-ng mnemonics, ``_`` for pauses).
``--real SPLIT`` adds real recorded speech from registry packages, force-aligned
(:mod:`.real_speech`, :mod:`.alignment`; the ``train`` split's speakers are never in the
evaluation), each clip ``--real-repeat`` times with a fresh augmentation (room, noise,
level, microphone) every time, so a few minutes of real voices weigh against hours of
synthetic ones. Needs scipy (resampling, reverb) and the espeak-ng library.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...errors import EngineError
from ..features import features
from ..learned import WEIGHTS
from ..tcn import CausalTcn, TcnDims, export_onnx, save_npz
from .corpus import Clip, augment, formant_clip, negative_clip, training_clips
from .espeak import Phone


def _log(msg: str) -> None:
    print(msg, flush=True)


CHANNEL_WEIGHTS = (3.0, 1.5, 1.0, 1.0, 1.0, 0.5, 1.0)  # jaw, close, funnel, pucker, stretch,
# speaking, roll (the target rows)


@dataclass
class TrainConfig:
    """Corpus and optimiser settings; the defaults made the shipped weights."""

    clips: int = 1500
    negatives: float = 0.15  # fraction of extra clips without speech
    formant: float = 0.15  # fraction of extra clips of source-filter vowel syllables
    clean: float = 0.25  # fraction of speech clips left unaugmented
    speaker: float = 0.0  # of the augmented clips, share with speaker/channel augmentation
    steps: int = 4000
    batch: int = 16
    frames: int = 256  # crop length (2.56 s)
    lr: float = 3e-3
    seed: int = 0
    channels: int = 64
    threads: int = 2
    real_repeat: int = 8  # each real recording enters the corpus this many times


def read_extra(folder: Path) -> list[Clip]:
    """User recordings: ``*.wav`` with a ``.phones`` file (``start end phone`` per line)."""
    from ...audio.decode import decode_audio

    clips = []
    for wav in sorted(folder.glob("*.wav")):
        lab = wav.with_suffix(".phones")
        if not lab.is_file():
            raise EngineError(f"{wav} has no {lab.name}: write one `start end phone` line per "
                              "phone next to it")
        phones = []
        for i, line in enumerate(lab.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            try:
                phones.append(Phone(parts[2], float(parts[0]), float(parts[1])))
            except (IndexError, ValueError):
                raise EngineError(f"{lab}:{i}: expected `start end phone`, got {line!r}"
                                  ) from None
        pcm, sr = decode_audio(wav)
        clips.append(Clip(pcm, sr, phones, "user", wav.stem))
    return clips


def real_clips(split: str, log: Callable[[str], None] = _log) -> list[Clip]:
    """Real recorded speech of ``split``, force-aligned (fetched and aligned once, cached)."""
    from .alignment import to_clip
    from .real_speech import recordings

    t0 = time.time()
    clips = [to_clip(r) for r in recordings(split)]
    secs = sum(len(c.pcm) / c.sr for c in clips)
    log(f"real speech '{split}': {len(clips)} recordings, {secs / 60:.1f} min, "
        f"{len({c.voice for c in clips})} speakers ({time.time() - t0:.0f} s)")
    return clips


def build_dataset(cfg: TrainConfig, extra: list[Clip] | None = None,
                  log: Callable[[str], None] = _log,
                  real: list[Clip] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, F) and targets (N, N_TARGETS) of the whole corpus, clips joined end to end.

    ``real`` clips enter ``cfg.real_repeat`` times, augmented afresh each time (the first
    copy of each is left clean)."""
    rng = np.random.default_rng(cfg.seed + 1)
    xs, ys = [], []
    t0 = time.time()
    clips = list(training_clips(cfg.clips, seed=cfg.seed)) + list(extra or [])

    def add(c: Clip) -> None:
        a = c if rng.random() < cfg.clean else augment(c, rng, cfg.speaker)
        y = c.targets() if a.phones is c.phones else a.targets()  # a speaker warp retimes
        xs.append(features(a.pcm, a.sr, len(y)))
        ys.append(y)

    for c in clips:
        add(c)
    for c in real or []:
        for k in range(cfg.real_repeat):
            a = c if k == 0 else augment(c, rng, cfg.speaker)
            y = c.targets() if a.phones is c.phones else a.targets()
            xs.append(features(a.pcm, a.sr, len(y)))
            ys.append(y)
    for _ in range(round(cfg.formant * len(clips))):
        add(formant_clip(rng))
    for _ in range(round(cfg.negatives * len(clips))):
        c = negative_clip(rng)
        y = c.targets()
        xs.append(features(c.pcm, c.sr, len(y)))
        ys.append(y)
    x, y = np.concatenate(xs), np.concatenate(ys)
    log(f"corpus: {len(xs)} clips, {len(x) / 100 / 60:.1f} min, {time.time() - t0:.0f} s")
    return x.astype(np.float32), y.astype(np.float32)


def fit(x: np.ndarray, y: np.ndarray, cfg: TrainConfig,
        log: Callable[[str], None] = _log) -> tuple[CausalTcn, float]:
    """Train a CausalTcn on (features, targets); returns it and the final mean loss."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    model = CausalTcn(TcnDims(channels=cfg.channels))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=max(cfg.steps, 2),
                                                pct_start=0.1)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    w = torch.tensor(CHANNEL_WEIGHTS)[None, :, None]
    la = model.dims.lookaheads
    n = len(x) - cfg.frames - 1
    if n <= 0:
        raise EngineError("training corpus is shorter than one crop: use more --clips")
    gen = torch.Generator().manual_seed(cfg.seed)
    t0, run = time.time(), 0.0
    for step in range(cfg.steps):
        starts = torch.randint(0, n, (cfg.batch,), generator=gen)
        idx = starts[:, None] + torch.arange(cfg.frames)
        xb = xt[idx].transpose(1, 2)  # (B, F, T)
        yb = yt[idx].transpose(1, 2)  # (B, N_TARGETS, T)
        logits = model(xb)  # (B, H, N_TARGETS, T)
        loss = 0.0
        for h, a in enumerate(la):  # head h at j predicts frame j - a
            lg = logits[:, h, :, a:]
            tg = yb[:, :, : cfg.frames - a]
            bce = torch.nn.functional.binary_cross_entropy_with_logits(lg, tg, reduction="none")
            loss = loss + (bce * w).mean()
        loss = loss / len(la)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        run = 0.98 * run + 0.02 * loss.item() if step else loss.item()
        if step % 250 == 0 or step == cfg.steps - 1:
            log(f"step {step:5d}/{cfg.steps} loss {run:.4f} ({time.time() - t0:.0f} s)")
    return model.eval(), run


def train(cfg: TrainConfig, out: Path, onnx: Path | None = None, extra: Path | None = None,
          log: Callable[[str], None] = _log, real: str | None = None) -> Path:
    """Build the corpus, train, write the weights (and optionally ONNX); returns ``out``."""
    try:
        import scipy.signal  # noqa: F401  (resampling and reverb of the corpus)
    except ImportError:
        raise EngineError("training needs scipy: pip install scipy") from None
    t0 = time.time()
    extra_clips = read_extra(extra) if extra else None  # the user's files: checked first
    real_set = real_clips(real, log) if real else None
    x, y = build_dataset(cfg, extra_clips, log, real_set)
    model, loss = fit(x, y, cfg, log)
    meta = {"trained": dt.datetime.now().isoformat(timespec="seconds"), "loss": round(loss, 5),
            "real": real or "",
            "config": vars(cfg), "corpus_minutes": round(len(x) / 6000, 1),
            "seconds": round(time.time() - t0)}
    save_npz(model, out, meta)
    log(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB) in {time.time() - t0:.0f} s")
    if onnx is not None:
        export_onnx(out, onnx)
        log(f"wrote {onnx}")
    return out


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (``python -m engine.audio2motion.training.train``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    d = TrainConfig()
    ap.add_argument("--clips", type=int, default=d.clips, help="synthesised speech clips")
    ap.add_argument("--steps", type=int, default=d.steps, help="optimiser steps")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--speaker-aug", type=float, default=d.speaker,
                    help="share of augmented clips that also get another speaker/microphone "
                    "(vocal-tract warp, EQ, breath, telephone)")
    ap.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads")
    ap.add_argument("--channels", type=int, default=d.channels,
                    help="width of the network (CPU per hop grows with its square)")
    ap.add_argument("--out", type=Path, default=WEIGHTS, help="weights file (.npz)")
    ap.add_argument("--onnx", type=Path, help="also export the network to this .onnx file")
    ap.add_argument("--extra", type=Path, help="folder of your own NAME.wav + NAME.phones")
    ap.add_argument("--real", metavar="SPLIT",
                    help="add real recorded speech from registry packages, aligned (e.g. train)")
    ap.add_argument("--real-repeat", type=int, default=d.real_repeat,
                    help="copies of each real recording, each augmented afresh")
    a = ap.parse_args(argv)
    cfg = TrainConfig(clips=a.clips, steps=a.steps, seed=a.seed, threads=a.threads,
                      channels=a.channels,
                      speaker=a.speaker_aug, real_repeat=a.real_repeat)
    try:
        train(cfg, a.out, a.onnx, a.extra, real=a.real)
    except EngineError as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
