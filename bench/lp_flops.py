"""FLOPs of one W+G call per fast-path variant (counted by torch's FlopCounterMode, CPU).

A count, not a time: it says how much work each exact rewrite removes; whether that buys
time on a GPU is for bench/lp_levers.py to measure.

    python bench/lp_flops.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import liveportrait_speed as S  # noqa: E402  (bench/ is on sys.path: the script's folder)

from avatar_vcam.engine.renderers.liveportrait.fast import FastWarpDecode  # noqa: E402

VARIANTS = {
    "plain networks": None,
    "fast, pad8 + depth taps (the default)": {"pad8": True, "depth_taps": True},
    "+ phase_up": {"pad8": True, "depth_taps": True, "phase_up": True},
    "+ phase_up + compose_shortcut": {"pad8": True, "depth_taps": True, "phase_up": True,
                                      "compose_shortcut": True},
    "+ phase_up + compose_shortcut + occlusion_taps": {
        "pad8": True, "depth_taps": True, "phase_up": True, "compose_shortcut": True,
        "occlusion_taps": True},
}


@torch.no_grad()
def gflop(fn, *args) -> float:
    """GFLOP of one call of ``fn``."""
    with FlopCounterMode(display=False) as fc:
        fn(*args)
    return fc.get_total_flops() / 1e9


def main() -> None:
    nets = S.synth_networks()
    args = S.make_inputs(1, 64, torch.device("cpu"), torch.float32, seed=0)
    rows = []
    for name, kw in VARIANTS.items():
        if kw is None:
            warped = nets.warping(*args)["out"]
            w, g = gflop(nets.warping, *args), gflop(nets.spade, warped)
        else:
            mod = FastWarpDecode(nets.warping, nets.spade, 64, **kw).eval()
            with torch.no_grad():
                warped = mod.warp(*args)
            w, g = gflop(mod.warp, *args), gflop(mod.spade, warped)
        rows.append((name, w, g))
        print(f"{name:<52} W {w:7.1f}  G {g:7.1f}  GFLOP", flush=True)
    base = rows[1][1] + rows[1][2]
    print("\n| variant | W GFLOP | G GFLOP | W+G | vs default |")
    print("|---|---|---|---|---|")
    for name, w, g in rows:
        print(f"| {name} | {w:.1f} | {g:.1f} | {w + g:.1f} | {100 * ((w + g) / base - 1):+.1f}% |")


if __name__ == "__main__":
    main()
