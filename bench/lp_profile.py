"""Where the LivePortrait warp + decode time goes on a GPU, and what the W rewrites buy.

1. W alone (fast path, fp16, CUDA graph), eager and compiled, at batch 1 and 8, for the
   dense-motion rewrites: none, ``pad8`` (channels to multiples of 8), ``width_taps`` (the
   mask conv as a wide 7x7x1 conv + shift-add), ``unfold3d`` (3-D convs as depth-unfolded
   2-D convs; with --unfold).
2. The whole W+G with the chosen options, eager and compiled, batch 1 / 8 / 32.
3. torch.profiler: the kernels that take the most GPU time in one compiled W+G call.

    python bench/lp_profile.py            # on a CUDA machine (synthesised weights)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import liveportrait_speed as S  # noqa: E402  (bench/ is on sys.path: the script's folder)

from avatar_vcam.engine.renderers.liveportrait.fast import FastWarping, GraphRunner  # noqa: E402
from avatar_vcam.engine.renderers.liveportrait.runtime import (  # noqa: E402
    RuntimeOptions,
    WarpDecodeRuntime,
)


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--unfold", action="store_true", help="also the depth-unfold rewrite")
    args = ap.parse_args()
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    nets = S.synth_networks()
    hw, f16 = args.size // 4, torch.float16
    compile_too = not args.no_compile
    print(f"{torch.cuda.get_device_name(dev)}, torch {torch.__version__}")

    print("\n[W alone] ms per call (fp16, CUDA graph)")
    print(f"{'rewrite':<18}{'eager b1':>10}{'eager b8':>10}{'comp b1':>10}{'comp b8':>10}")
    best, best_ms = {}, float("inf")
    ref = None
    rewrites = [{}, {"pad8": True}, {"pad8": True, "width_taps": True},
                {"width_taps": True}]
    if args.unfold:
        rewrites += [{"unfold3d": True}, {"pad8": True, "unfold3d": True}]
    for kw in rewrites:
        w = FastWarping(nets.warping, hw, **kw).to(dev, f16).eval()
        row = f"{' '.join(kw) or 'none':<18}"
        s1 = S.input_sets(1, hw, dev, f16)
        out = w(*s1[0]).float()
        ref = out if ref is None else ref
        err = S.rel(out, ref)
        for fn in [w] + ([torch.compile(w, dynamic=False)] if compile_too else []):
            for b in (1, 8):
                sets = S.input_sets(b, hw, dev, f16, n=2)
                ms = S.time_ms(GraphRunner(fn, sets[0]), sets, 5, args.iters)
                row += f"{ms:>10.2f}"
                if (fn is not w or not compile_too) and b == 1 and ms < best_ms:
                    best, best_ms = kw, ms
        print(row + f"   (vs none: {err:.1e})", flush=True)
    print(f"  -> best at batch 1 ({'compiled' if compile_too else 'eager'}): {best or 'none'}")

    print("\n[W+G] ms per frame with that rewrite")
    for comp in (True,) if compile_too else (False,):
        opts = RuntimeOptions(compile=comp, **{"pad8": False, **best})
        rt = WarpDecodeRuntime(nets.warping, nets.spade, hw, dev, opts)
        row = f"  {'compiled' if comp else 'eager':<9}"
        for b in (1, 8, 32):
            sets = S.input_sets(b, hw, dev, f16, n=2)
            ms = S.time_ms(rt, sets, 3, max(5, args.iters // 2))
            row += f"  b{b} {ms / b:6.2f} ms ({1000 * b / ms:5.0f} fps)"
            rt._graphs.clear()
        print(row, flush=True)

    print("\n[profile] one W+G call at batch 1, top kernels by GPU time")
    opts = RuntimeOptions(compile=compile_too, cuda_graphs=False, **{"pad8": False, **best})
    rt = WarpDecodeRuntime(nets.warping, nets.spade, hw, dev, opts)
    sets = S.input_sets(1, hw, dev, f16)
    for _ in range(3):
        rt(*sets[0])
    torch.cuda.synchronize()
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for i in range(5):
            rt(*sets[i % 3])
        torch.cuda.synchronize()
    for key in ("device_time_total", "cuda_time_total"):
        try:
            print(prof.key_averages().table(sort_by=key, row_limit=12,
                                            max_name_column_width=70))
            break
        except (AttributeError, KeyError, ValueError):
            continue


if __name__ == "__main__":
    main()
