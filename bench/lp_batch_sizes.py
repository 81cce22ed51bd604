"""New batch sizes on a running renderer: served at once, compiled in the background.

A renderer that compiles in the background (the default on CUDA) starts compiled at the
first batch size it sees. This probe then asks for further sizes, each call alternating with
a batch-1 "live" call, and records per size:
- the size the call ran at (``WarpDecodeRuntime.batch_size_for``: a short chunk is padded to a
  size already run, else to the next of 1, 2, 3, 4, 6, 8, 12, ...);
- seconds until that size ran compiled, and the wall time of every call until then;
- the batch-1 calls' wall times meanwhile (a background compile must not stall them);
- ms per call once compiled, and the relative L2 error against the eager module.

    python3 bench/lp_batch_sizes.py --sizes 1 2 5 8 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import liveportrait_speed as S  # noqa: E402  (bench/ is on sys.path: the script's folder)

from engine.renderers.liveportrait.runtime import (  # noqa: E402
    RuntimeOptions,
    WarpDecodeRuntime,
)


def _wall(fn, *args) -> tuple[torch.Tensor, float]:
    t0 = time.perf_counter()
    out = fn(*args)
    if out.is_cuda:  # the stream, not the device: the compile thread may be capturing a
        torch.cuda.current_stream().synchronize()  # graph, and a device sync would fail
    return out, (time.perf_counter() - t0) * 1e3


def _stats(ms: list[float]) -> dict:
    if not ms:
        return {}
    return {"n": len(ms), "p50": statistics.median(ms), "max": max(ms)}


@torch.no_grad()
def probe(sizes: list[int], timeout_s: float, smoke: bool) -> dict:
    dev = torch.device("cuda" if torch.cuda.is_available() and not smoke else "cpu")
    hw = 32 if smoke else 64
    nets = S.synth_networks()
    cache = Path(tempfile.mkdtemp(prefix="lp_sizes_"))
    opts = RuntimeOptions(compile=True, background_compile=True, cache_dir=cache)
    rt = WarpDecodeRuntime(nets.warping, nets.spade, hw, dev, opts)
    if smoke:  # Dynamo's per-size specialisation without Inductor's minutes on the CPU
        rt._compile = lambda: torch.compile(rt.module, dynamic=False, backend="eager")
    live = S.make_inputs(1, hw, dev, rt.dtype, seed=1)
    res: dict = {"device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
                 "sizes": {}}
    t_start = time.perf_counter()
    for b in sizes:
        x = S.make_inputs(b, hw, dev, rt.dtype, seed=10 + b)
        size = rt.batch_size_for(b)
        t0 = time.perf_counter()
        waiting, live_ms = [], []
        while True:
            compiled = size in rt._ready_graphs or (not rt.use_graphs and
                                                    size in rt._compiled_sizes)
            if compiled and rt.fn is rt.compiled:
                break
            if time.perf_counter() - t0 > timeout_s:
                break
            _, ms = _wall(rt, *x)
            waiting.append(ms)
            if b != 1:
                _, ms = _wall(rt, *live)
                live_ms.append(ms)
            time.sleep(0.01)
        became = time.perf_counter() - t0
        out, _ = _wall(rt, *x)
        want = rt.module(*x)  # the same fast module, eager
        calls = [_wall(rt, *x)[1] for _ in range(20)]
        row = {"ran_at": size, "s_until_compiled": became, "compiled": compiled,
               "wall_ms_while_waiting": _stats(waiting), "live_b1_ms_meanwhile": _stats(live_ms),
               "compiled_ms_p50": statistics.median(calls),
               "err_vs_eager": S.rel(out.float(), want.float()), "out_rows": out.shape[0]}
        res["sizes"][b] = row
        w, lv = row["wall_ms_while_waiting"], row["live_b1_ms_meanwhile"]
        print(f"  b{b:<3} ran at {size:<3} compiled after {became:6.1f} s ({w.get('n', 0)} calls"
              f", wall p50/max {w.get('p50', 0):6.1f}/{w.get('max', 0):7.1f} ms)  live b1 "
              f"meanwhile p50/max {lv.get('p50', 0):5.1f}/{lv.get('max', 0):6.1f} ms  "
              f"compiled {row['compiled_ms_p50']:6.2f} ms/call  err {row['err_vs_eager']:.1e}"
              f"  rows {out.shape[0]}", flush=True)
    res["total_s"] = time.perf_counter() - t_start
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 5, 8])
    ap.add_argument("--timeout", type=float, default=150, help="seconds to wait per size")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run: checks the script runs")
    args = ap.parse_args()
    res = probe(args.sizes, 20 if args.smoke else args.timeout, args.smoke)
    print(f"total {res['total_s']:.0f} s on {res['device']}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
