"""CPU cost of the DSP Audio2Motion: ms of CPU per 10 ms of audio, streaming 20 ms blocks.

    python bench/a2m_cost.py [--rate 48000] [--block-ms 20] [--seconds 60] [--fps 30]

Streams the bundled demo clip (resampled, looped) the way the live loop does: push a
block, then ask for every video frame that became ready. Prints one line with the date
and machine. Real time needs well under 10 ms per 10 ms; this should stay near 1-2 % of a core.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import platform
import time
from pathlib import Path

import numpy as np

from avatar_vcam.engine.audio.decode import decode_audio
from avatar_vcam.engine.audio2motion import DspAudio2Motion

CLIP = Path(__file__).resolve().parents[1] / "avatar_vcam" / "assets" / "demo_speech.wav"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=48000)
    ap.add_argument("--block-ms", type=float, default=20.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--fps", type=int, default=30)
    args = ap.parse_args()

    clip, sr = decode_audio(CLIP, args.rate)
    pcm = np.resize(clip, round(args.seconds * sr))  # loop the clip
    n = max(1, round(args.block_ms / 1000 * sr))
    m = DspAudio2Motion()
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
          f"a2m=dsp rate={sr} block={args.block_ms:g}ms audio={audio:.0f}s frames={frames}: "
          f"{per10:.4f} ms CPU per 10 ms audio ({cpu / audio * 100:.2f}% of one core; "
          f"wall {wall / (audio / 0.01) * 1000:.4f} ms)")


if __name__ == "__main__":
    main()
