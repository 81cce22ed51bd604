"""Jaw gain of learned weights: open the mouth as wide as the DSP estimator does.

The learned model reproduces the phone targets' openness (mean ~0.39 on loud speech
frames), the DSP estimator opens wider (~0.52). Viewers read a small opening as
mumbling, so the learned model's ``jawOpen`` is scaled by ``jaw_gain`` (stored in the
weights' meta): the ratio of the two models' mean ``jawOpen`` over loud speech frames of
fresh clips by the *training* voices (never the held-out espeak voices or real recordings).

    python -m engine.audio2motion.training.calibrate WEIGHTS.npz [--clips 12]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..dsp import DspAudio2Motion
from ..learned import LearnedAudio2Motion
from ..tcn import load_npz
from .corpus import training_clips
from .evaluation import stream_clip

CALIBRATION_SEED = 10_000  # training uses seeds 0.. (clip texts), so these texts are new


def mean_loud_jaw(model_factory, clips) -> float:
    """Mean jawOpen over frames within 20 dB of each clip's loudest 10 ms."""
    vals = []
    for c in clips:
        n = len(c.targets())
        jaw = stream_clip(model_factory(), c.pcm, c.sr, n)[:, 0]
        hop = c.sr // 100
        x = np.zeros(n * hop, np.float32)
        x[: min(len(c.pcm), n * hop)] = c.pcm[: n * hop]
        db = 10 * np.log10(np.mean(x.reshape(n, hop).astype(np.float64) ** 2, axis=1) + 1e-14)
        vals.append(jaw[db > db.max() - 20])
    return float(np.concatenate(vals).mean())


def jaw_gain(weights: Path, n_clips: int = 12, lookahead_ms: float = 40.0) -> float:
    """DSP's mean loud-frame jawOpen over the learned model's (gain 1) on training voices."""
    clips = list(training_clips(n_clips, seed=CALIBRATION_SEED))

    def learned() -> LearnedAudio2Motion:
        m = LearnedAudio2Motion(lookahead_ms, weights)
        m.jaw_gain = 1.0
        return m

    dsp = mean_loud_jaw(lambda: DspAudio2Motion(lookahead_ms=lookahead_ms), clips)
    return dsp / mean_loud_jaw(learned, clips)


def write_gain(weights: Path, gain: float) -> None:
    """Store ``jaw_gain`` in the meta of a weights file (rewrites it in place)."""
    _, w, meta = load_npz(weights)
    arrays = {k: v.astype(np.float16) for k, v in w.items()}
    arrays["__meta__"] = np.frombuffer(repr({**meta, "jaw_gain": round(gain, 3)}).encode(),
                                       np.uint8)
    with open(weights, "wb") as f:
        np.savez_compressed(f, **arrays)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: measure and store the jaw gain of a weights file."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", type=Path)
    ap.add_argument("--clips", type=int, default=12)
    a = ap.parse_args(argv)
    g = jaw_gain(a.weights, a.clips)
    write_gain(a.weights, g)
    print(f"{a.weights}: jaw_gain {g:.3f}")


if __name__ == "__main__":
    main()
