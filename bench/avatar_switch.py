"""Live avatar switch on the real daemon: command -> new face on the camera, longest frame gap.

Starts a private PulseAudio, builds the v4l2 preload shim, runs
``avatar-vcam --source system --sink vcam:/dev/video10 --voice-out avatar_mic --control``
and switches leo -> grace (by the real `avatar-vcam avatar use` command: its start-up
counts), grace -> leo (control API, prepared afresh), then leo -> grace -> leo again (both
from the cache). For each: milliseconds from the request to the first camera frame that
shows the new face (pixels of the face region), what the daemon says (prepare time,
taken by the render thread), and the longest wait between camera frames from 0.5 s before
the request to 1 s after the new face. Also D and the A/V offset before and after.

    python bench/avatar_switch.py --size 192
    python bench/avatar_switch.py --size 1280x720   # the camera's default size
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
from pulse_server import PulseServer  # noqa: E402
from switch_run import FPS, build_shim, run_switches  # noqa: E402

PLAN = [("grace", "cli"), ("leo", "api"), ("grace", "api"), ("leo", "api")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="192", help="N or WxH (the daemon's --size)")
    ap.add_argument("--between", type=float, default=2.0, help="seconds after each switch")
    ap.add_argument("--json", action="store_true", help="print JSON only")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="avatar-switch-bench-"))
    pulse = PulseServer().start()
    try:
        r = run_switches(pulse.env, build_shim(folder), folder, PLAN, size=args.size,
                         between_s=args.between)
    finally:
        pulse.stop()
        shutil.rmtree(folder, ignore_errors=True)
    rows = []
    for s in r["switches"]:
        last = s.status_after["avatar_switch"]["last_switch"]
        rows.append({"avatar": s.avatar, "by": s.by, "to_face_ms": s.to_face_ms,
                     "prepare_ms": last["prepare_ms"], "taken_ms": last["switch_ms"],
                     "gap_ms": round(1000 * s.gap_s, 1)})
    before, end = r["status_before"], r["status_end"]
    out = {"size": args.size, "fps": FPS, "switches": rows,
           "baseline_gap_ms": round(1000 * r["baseline_gap_s"], 1),
           "delay_ms": [before["delay_ms"], end["delay_ms"]],
           "av_offset_ms": [before["av_offset_ms"], end["av_offset_ms"]],
           "late": [before["late"], end["late"]], "black_frames": r["black_frames"],
           "rc": r["rc"]}
    if args.json:
        print(json.dumps(out))
        return
    print(f"size {args.size}, {FPS} fps; longest gap before any switch "
          f"{out['baseline_gap_ms']} ms")
    for row in rows:
        face = "never" if row["to_face_ms"] is None else f"{row['to_face_ms']:.0f} ms"
        print(f"  -> {row['avatar']:6} by {row['by']}: new face on the camera after {face} "
              f"(prepare {row['prepare_ms']} ms, taken {row['taken_ms']} ms after the "
              f"request), longest gap {row['gap_ms']} ms")
    print(f"D {out['delay_ms'][0]} -> {out['delay_ms'][1]} ms, A/V "
          f"{out['av_offset_ms'][0]} -> {out['av_offset_ms'][1]} ms, late ticks "
          f"{out['late'][0]} -> {out['late'][1]}, black frames {out['black_frames']}, "
          f"exit {out['rc']}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
