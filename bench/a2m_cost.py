"""CPU cost of the Audio2Motion models: ms of CPU per 10 ms of audio, streaming 20 ms blocks.

    python bench/a2m_cost.py [--a2m dsp,learned] [--lookahead-ms 60] [--rate 48000] \
        [--block-ms 20] [--seconds 60] [--fps 30]

Streams the bundled demo clip (resampled, looped) the way the live loop does: push a
block, then ask for every video frame that became ready. Prints one line per model with
the date and machine. Real time needs well under 10 ms per 10 ms; issue 5's budget is
0.5 ms per 10 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import platform
import time
from pathlib import Path

import numpy as np

from engine.audio.decode import decode_audio
from engine.audio2motion import A2M_MODELS, make_audio2motion
from engine.audio2motion.gestures import SpeechGestures

CLIP = Path(__file__).resolve().parents[1] / "vcam" / "assets" / "demo_speech.wav"


def cost(model: str, pcm: np.ndarray, sr: int, args: argparse.Namespace) -> None:
    """Stream ``pcm`` through one model and print its CPU cost."""
    n = max(1, round(args.block_ms / 1000 * sr))
    m = (_Gestures(args.lookahead_ms) if model == "gestures"
         else make_audio2motion(model, args.lookahead_ms))
    m.push(pcm[:n], 0.0, sr)  # warm the per-rate caches outside the timing
    k, frames = 0, 0
    t_cpu = time.process_time()
    t_wall = time.perf_counter()
    for i in range(n, len(pcm), n):
        m.push(pcm[i : i + n], i / sr, sr)
        last = math.floor(m.ready_until() * args.fps + 1e-9)
        while k <= last:
            m.motion_at(k / args.fps)
            k += 1
            frames += 1
    cpu = time.process_time() - t_cpu
    wall = time.perf_counter() - t_wall
    audio = (len(pcm) - n) / sr
    per10 = cpu / (audio / 0.01) * 1000
    print(f"{dt.date.today()} {platform.machine()} {platform.processor() or ''} "
          f"a2m={model} lookahead={args.lookahead_ms:g}ms rate={sr} block={args.block_ms:g}ms "
          f"audio={audio:.0f}s frames={frames}: "
          f"{per10:.4f} ms CPU per 10 ms audio ({cpu / audio * 100:.2f}% of one core; "
          f"wall {wall / (audio / 0.01) * 1000:.4f} ms)", flush=True)


class _Gestures(SpeechGestures):
    """The speech-gesture layer (head, brows) timed like a model: motion_at = value_at."""

    def motion_at(self, pts: float) -> np.ndarray:
        return self.value_at(pts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a2m", default="dsp,learned",
                    help=f"comma-separated, of {', '.join(A2M_MODELS)} and gestures (the "
                         "head/brow layer that runs beside them)")
    ap.add_argument("--lookahead-ms", type=float, default=60.0)
    ap.add_argument("--rate", type=int, default=48000)
    ap.add_argument("--block-ms", type=float, default=20.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--fps", type=int, default=30)
    args = ap.parse_args()
    models = [m.strip() for m in args.a2m.split(",") if m.strip()]
    unknown = [m for m in models if m not in (*A2M_MODELS, "gestures")]
    if unknown or not models:
        ap.error(f"--a2m: unknown model {', '.join(unknown) or '(none)'}; "
                 f"known: {', '.join(A2M_MODELS)}")

    clip, sr = decode_audio(CLIP, args.rate)
    pcm = np.resize(clip, round(args.seconds * sr))  # loop the clip
    for model in models:
        cost(model, pcm, sr, args)


if __name__ == "__main__":
    main()
