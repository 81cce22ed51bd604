"""What holds the GIL when a served frame stalls during the background compile.

A warm restart serves eager frames while the compile thread runs; a few of them take
0.1-0.36 s (BENCHMARKS.md, runs AR and AU), far longer than the 0.5 ms switch interval.
Such a stall is one call that keeps the GIL. This runs the restart probe twice (cold, to
fill the compile cache, then warm) with ``LP_STALL_TRACE`` set. The probe then has
``faulthandler`` dump every thread's stack every 50 ms from a C thread that needs no GIL.
For each stall, the script prints what the other threads were doing in the dumps that
fall inside it, and the longest runs of identical stacks in the compile thread.

    python bench/lp_stall_trace.py --out DIR      # on a CUDA machine
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent
FRAME = re.compile(r'\s+File "(.+)", line (\d+) in (.+)')
THREAD = re.compile(r"(?:Current thread|Thread) (0x[0-9a-f]+)")


def parse(path: Path) -> tuple[float, int, list[dict[int, list[str]]]]:
    """(armed time, main thread id, dumps: thread id -> frames, innermost first)."""
    lines = path.read_text(errors="replace").splitlines()
    armed, main = lines[0].split()[1], lines[0].split()[3]
    dumps: list[dict[int, list[str]]] = []
    thread = None
    for ln in lines[1:]:
        if ln.startswith("Timeout ("):
            dumps.append({})
            thread = None
        elif (m := THREAD.match(ln)) and dumps:
            thread = int(m.group(1), 16)
            dumps[-1][thread] = []
        elif (m := FRAME.match(ln)) and thread is not None:
            name = "/".join(Path(m.group(1)).parts[-2:])
            dumps[-1][thread].append(f"{name}:{m.group(2)} {m.group(3)}")
    return float(armed), int(main), dumps


def report(trace: Path, marks: dict) -> str:
    armed, main, dumps = parse(trace)
    out = [f"{len(dumps)} dumps, 50 ms apart from {armed:.2f} s"]

    def at(i: int) -> float:
        return armed + 0.05 * (i + 1)

    for t, ms, phase in marks.get("stalls_over_100ms_t_ms_phase", []):
        inside = [i for i in range(len(dumps)) if t <= at(i) <= t + ms / 1000]
        out.append(f"\nstall at {t:.2f} s, {ms} ms ({phase}): dumps {inside}")
        tops: Counter = Counter()
        for i in inside:
            for tid, frames in dumps[i].items():
                if tid != main and frames:
                    tops[" <- ".join(frames[:4])] += 1
            if dumps[i].get(main):
                out.append(f"  main: {dumps[i][main][0]}")
        for stack, n in tops.most_common(4):
            out.append(f"  {n}x other: {stack}")
    # runs of one non-main thread standing on the same innermost frame
    runs: list[tuple[int, int, str, list[str]]] = []
    last: dict[int, tuple[str, int]] = {}
    for i, d in enumerate(dumps):
        for tid, frames in d.items():
            if tid == main or not frames:
                continue
            key = "|".join(frames[:2])
            prev = last.get(tid)
            if prev and prev[0] == key:
                last[tid] = (key, prev[1])
            else:
                if prev and i - prev[1] >= 3:
                    runs.append((i - prev[1], prev[1], prev[0], dumps[prev[1]][tid]))
                last[tid] = (key, i)
    for tid, (_, start) in last.items():  # runs still going at the last dump
        if len(dumps) - start >= 3:
            runs.append((len(dumps) - start, start, "", dumps[start][tid]))
    runs.sort(key=lambda r: -r[0])
    out.append("\nlongest runs of one thread on the same frame (>= 150 ms):")
    for n, start, _, frames in runs[:8]:
        out.append(f"  {n * 50} ms from {at(start):.2f} s:")
        out.extend(f"      {f}" for f in frames[:10])
    return "\n".join(out)


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
    for phase in ("cold", "warm"):
        trace = args.out / f"stall_trace_{phase}.txt"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "LP_STALL_TRACE": str(trace)}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=400)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode or not lines:
            print(f"{phase}: probe failed rc={proc.returncode}\n{proc.stderr[-2000:]}")
            continue
        marks = json.loads(lines[-1])
        print(f"\n== {phase}: first frame {marks['first_frame']:.2f} s, compiled from "
              f"{marks.get('compiled_active', 0):.2f} s, stalls "
              f"{marks.get('stalls_over_100ms_t_ms_phase')}")
        text = report(trace, marks)
        (args.out / f"stall_report_{phase}.txt").write_text(text)
        print(text[:5000])


if __name__ == "__main__":
    main()
