"""Lip-sync accuracy of the Audio2Motion models on held-out voices and texts.

    python bench/lipsync_eval.py [--a2m dsp,learned] [--lookahead-ms 0,40,60,100] \
        [--conditions clean,noise20,quiet,48k,reverb] [--voices 15] [--weights PATH]

The held-out set (:func:`engine.audio2motion.training.corpus.heldout_clips`): espeak-ng
voices and sentences that the learned model never saw in training, with phone timings from
espeak-ng as ground truth. Each clip is streamed in 20 ms blocks like a live input.
Metrics (see :mod:`engine.audio2motion.training.evaluation`): Pearson r of jawOpen with
the target openness, closure recall at p/b/m, share of silence with the mouth closed,
onset lag at speech starts. Prints a markdown table with the date, machine and command.
Goals (issue 5): r >= 0.8, closure recall >= 90 %, silence closed 100 %, onset lag <= 40 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys

import numpy as np

from engine.audio2motion import make_audio2motion
from engine.audio2motion.training.corpus import (
    Clip,
    coloured_noise,
    heldout_clips,
    resample,
    reverb,
)
from engine.audio2motion.training.evaluation import Scores, stream_clip


def condition(clip: Clip, name: str, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """The clip's audio under one listening condition."""
    x, sr = clip.pcm, clip.sr
    if name == "clean":
        return x, sr
    if name == "noise20":  # pink noise at 20 dB SNR (speech RMS over the whole clip)
        rms = np.sqrt(np.mean(x**2))
        return (x + coloured_noise(len(x), sr, rng, "pink") * rms / 10).astype(np.float32), sr
    if name == "quiet":  # peaks at -40 dBFS
        return (x * 0.01 / np.abs(x).max()).astype(np.float32), sr
    if name == "48k":
        return resample(x, sr, 48000), 48000
    if name == "8k":
        return resample(x, sr, 8000), 8000
    if name == "reverb":
        return reverb(x, sr, rng), sr
    raise SystemExit(f"unknown condition {name!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a2m", default="dsp,learned")
    ap.add_argument("--lookahead-ms", default="0,40,60,100")
    ap.add_argument("--conditions", default="clean")
    ap.add_argument("--voices", type=int, default=None, help="first N held-out voices")
    ap.add_argument("--weights", default=None, help="weights .npz of the learned model")
    args = ap.parse_args()

    clips = list(heldout_clips(args.voices))
    secs = sum(len(c.pcm) / c.sr for c in clips)
    print(f"{dt.date.today()} {platform.machine()} {platform.processor() or ''}: "
          f"{len(clips)} held-out clips, {secs:.0f} s; command: "
          f"python bench/lipsync_eval.py {' '.join(sys.argv[1:])}")
    print("| model | look-ahead (ms) | condition | r jawOpen | closure recall | "
          "silence closed | onset lag median / mean (ms) | onsets |")
    print("|---|---|---|---|---|---|---|---|")
    for cond in args.conditions.split(","):
        rng = np.random.default_rng(5)
        audio = [condition(c, cond, rng) for c in clips]
        for name in args.a2m.split(","):
            for la in (float(v) for v in args.lookahead_ms.split(",")):
                kw = {"weights": args.weights} if name == "learned" and args.weights else {}
                probe = make_audio2motion(name, la, **kw)
                sc = Scores(lookahead=probe.lookahead)
                for c, (x, sr) in zip(clips, audio, strict=True):
                    m = make_audio2motion(name, la, **kw)
                    sc.add(stream_clip(m, x, sr, len(c.targets())), c)
                s = sc.summary()
                print(f"| {name} | {probe.lookahead * 1000:.0f} | {cond} | {s['r_jaw']:.3f} | "
                      f"{s['closure_recall'] * 100:.1f} % ({s['n_closures']:.0f}) | "
                      f"{s['silence_closed'] * 100:.1f} % | {s['onset_lag_ms']:+.0f} / "
                      f"{s['onset_lag_mean_ms']:+.0f} | {s['n_onsets']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
