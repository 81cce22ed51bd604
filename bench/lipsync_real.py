"""Both Audio2Motion models on real human voices (see audio2motion/real_voices.py).

    python bench/lipsync_real.py [--cache ~/.cache/avatar-vcam/real-voices] [--lookahead-ms 40]

Needs the alsa-utils package (its speaker-test voice) and network access to PyPI once
(the pyannote.audio wheel's 30 s telephone sample). Prints one row per clip and model.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
from pathlib import Path

import numpy as np

from engine.audio2motion import make_audio2motion
from engine.audio2motion.training.real_voices import (
    alsa_clips,
    fetch_pyannote_sample,
    pyannote_clip,
    score,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path,
                    default=Path.home() / ".cache" / "avatar-vcam" / "real-voices")
    ap.add_argument("--lookahead-ms", type=float, default=40.0)
    ap.add_argument("--models", default="dsp,learned")
    args = ap.parse_args()
    clips = alsa_clips() + [pyannote_clip(fetch_pyannote_sample(args.cache))]
    print(f"{dt.datetime.now():%Y-%m-%d %H:%M} {platform.node()}, look-ahead "
          f"{args.lookahead_ms:.0f} ms, {len(clips)} clips")
    print(f"{'clip':22s} {'model':8s} {'jaw voiced':>10s} {'r(jaw,dB)':>9s} "
          f"{'open in pauses':>14s} {'speaking in pauses':>18s}")
    totals: dict[str, list[dict[str, float]]] = {}
    for clip in clips:
        for name in args.models.split(","):
            s = score(make_audio2motion(name, args.lookahead_ms), clip)
            totals.setdefault(name, []).append(s)
            print(f"{clip.name:22s} {name:8s} {s['jaw_voiced']:10.2f} {s['r_energy']:9.2f} "
                  f"{s['open_in_pauses']:14.2f} {s['speaking_in_pauses']:18.2f}")
    for name, rows in totals.items():
        mean = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
        print(f"{'MEAN':22s} {name:8s} {mean['jaw_voiced']:10.2f} {mean['r_energy']:9.2f} "
              f"{mean['open_in_pauses']:14.2f} {mean['speaking_in_pauses']:18.2f}")


if __name__ == "__main__":
    main()
