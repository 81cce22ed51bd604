"""Batch-1 W+G: the module lp_levers times against the renderer's runtime, in one process.

lp_levers' compiled ``r19`` module measured 2.89-2.91 ms; the renderer's
``WarpDecodeRuntime`` with the same options measured 3.01-3.06 ms (runs AN, AR, AS). This
times both in turns on the same inputs, so a gap that survives is the runtime's, and a gap
that does not was the machine's:

- ``module``   ``torch.compile(FastWarpDecode(**r19))``, as lp_levers builds it
- ``runtime``  ``WarpDecodeRuntime(RuntimeOptions(channels_last=True, compile=True))``, the
               renderer's options, its own CUDA graph off so one graph wraps it as above
- ``runtime+graphs``  the same with the runtime's own CUDA graphs (what the renderer runs)

    python bench/lp_runtime_ab.py            # on a CUDA machine
    python bench/lp_runtime_ab.py --smoke    # tiny, on the CPU: checks it runs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import liveportrait_speed as S  # noqa: E402  (bench/ is on sys.path: the script's folder)
from lp_levers import VARIANTS  # noqa: E402

from avatar_vcam.engine.renderers.liveportrait.fast import (  # noqa: E402
    FastWarpDecode,
    GraphRunner,
)
from avatar_vcam.engine.renderers.liveportrait.runtime import (  # noqa: E402
    RuntimeOptions,
    WarpDecodeRuntime,
)


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    cuda = dev.type == "cuda"
    torch.backends.cudnn.benchmark = cuda
    dt = torch.float16 if cuda else torch.float32
    hw, warm, iters = (32, 1, 2) if args.smoke else (64, 10, 60)
    nets = S.synth_networks()
    sets = S.input_sets(1, hw, dev, dt, n=2)
    backend = {"backend": "eager"} if args.smoke else {}

    r19 = VARIANTS["r19"][1]  # lp_levers' module options for its variant "r19"
    module = FastWarpDecode(nets.warping, nets.spade, hw, pad8=True, width_taps=True, **r19
                            ).to(dev, dt).eval().requires_grad_(False)
    compiled = torch.compile(module, dynamic=False, **backend)

    def runtime(graphs: bool) -> WarpDecodeRuntime:
        rt = WarpDecodeRuntime(nets.warping, nets.spade, hw, dev,
                               RuntimeOptions(dtype=dt, channels_last=True, compile=True,
                                              cuda_graphs=graphs))
        if args.smoke:
            rt.compiled = rt.fn = torch.compile(rt.module, dynamic=False, **backend)
        return rt

    rt_plain, rt_graphs = runtime(False), runtime(True)
    fns = {"module": GraphRunner(compiled, sets[0]) if cuda else compiled,
           "runtime": GraphRunner(rt_plain, sets[0]) if cuda else rt_plain,
           "runtime+graphs": rt_graphs}
    ref = fns["module"](*sets[0]).float().clone()
    for name, fn in fns.items():
        print(f"  {name:<16} rel diff to module {S.rel(fn(*sets[0]).float(), ref):.1e}")
    rows: dict[str, list[float]] = {k: [] for k in fns}
    for rnd in range(args.rounds):
        for name, fn in fns.items():
            rows[name].append(S.time_ms(fn, sets, warm, iters))
        print(f"  round {rnd + 1}: " + "  ".join(f"{k} {v[-1]:.3f}" for k, v in rows.items()),
              flush=True)
    print("\nbatch 1 W+G, ms (CUDA-event medians per round):")
    for name, v in rows.items():
        print(f"  {name:<16} " + " / ".join(f"{x:.3f}" for x in v))


if __name__ == "__main__":
    main()
