"""What holds the GIL when a served frame stalls during the background compile.

A warm restart serves eager frames while the compile thread runs, and a few of them take
0.1-0.36 s (BENCHMARKS.md, runs AR and AU). That is far longer than the 0.5 ms switch
interval, so a stall is one call that keeps the GIL. This script runs the restart probe
twice with ``LP_STALL_TRACE`` set: cold, to fill the compile cache, then warm. After each
stall the probe records the other threads' stacks. The thread that held the GIL has just
released it, so its stack is still at or just past the long call. The script prints them
and counts the innermost frames.

(A first version had ``faulthandler`` dump the stacks every 50 ms from its C thread. The
probes segfaulted in the dump on the H100 machine's Python, so the recording is in-process
now.)

    python bench/lp_stall_trace.py --out DIR      # on a CUDA machine
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="lp_stall_")))
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    import liveportrait_speed as S

    tmp = Path(tempfile.mkdtemp(prefix="lp_stall_run_"))
    S.write_weights(tmp / "weights")
    cmd = [sys.executable, str(ROOT / "liveportrait_speed.py"), "--probe", str(tmp / "weights"),
           "--cache", str(tmp / "cache"), "--size", str(args.size), "--compile", "--background"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LP_STALL_TRACE": "1"}
    innermost: Counter = Counter()
    for phase in ("cold", "warm", "warm again"):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=400)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode or not lines:
            print(f"{phase}: probe failed rc={proc.returncode}\n{proc.stderr[-2000:]}")
            continue
        marks = json.loads(lines[-1])
        (args.out / f"stalls_{phase.replace(' ', '_')}.json").write_text(json.dumps(marks))
        stalls = marks.get("stalls_over_100ms_t_ms_phase", [])
        print(f"\n== {phase}: first frame {marks['first_frame']:.2f} s, compiled from "
              f"{marks.get('compiled_active', 0):.2f} s, {len(stalls)} stalls over 100 ms")
        for t, ms, kind, *stacks in stalls:
            print(f"  {t:.2f} s  {ms} ms  {kind}")
            for stack in (stacks[0] if stacks else []):
                if stack and "probe" not in stack[0]:
                    innermost[stack[0]] += 1
                    print("      " + "\n        <- ".join(stack[:7]))
    print("\ninnermost frames of the other threads right after a stall:")
    for frame, n in innermost.most_common(12):
        print(f"  {n:3d}  {frame}")


if __name__ == "__main__":
    main()
