"""What fp8 convolutions would cost in accuracy, W -> G on the conformance fixtures (CPU).

Issue 6's throughput goal (>= 500 frames/s) is out of reach of exact fp16 work on an H100
at its power cap (BENCHMARKS.md). fp8 tensor cores run twice the fp16 rate, so fp8 convs
are the first non-exact option an owner would weigh. This script measures the accuracy
side without a GPU: every chosen convolution reads its input and weight rounded to a
low-precision format (scaled to the format's range: one scale per tensor for the input,
one per output channel for the weight), then computes in fp32. That is how an fp8 conv
with fp32 accumulation rounds; the rest of the network stays fp32.

The same rounding to fp16 shows how optimistic the method is: it gives 8.9e-4 where real
fp16 inference measures 7.7e-3 on the GPU (the renderer's fast path; norms and
intermediates are fp16 there too), so the fp8 figures are lower bounds. The weights are
synthesised, not trained, so the figures indicate rather than settle.

    python bench/lp_fp8_error.py            # prints a table; --json FILE keeps it
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import liveportrait_speed as S  # noqa: E402  (bench/ is on sys.path: the script's folder)

FORMATS = {"fp16": torch.float16, "fp8 e4m3": torch.float8_e4m3fn,
           "fp8 e5m2": torch.float8_e5m2}


def round_to(x: Tensor, dtype: torch.dtype, dim: int | None = None) -> Tensor:
    """``x`` rounded to ``dtype`` after scaling its absolute max (per tensor, or per slice
    along ``dim``) to the format's largest value; returned in fp32, scale undone."""
    if dtype == torch.float16:  # fp16's range fits these activations unscaled
        return x.to(dtype).float()
    top = torch.finfo(dtype).max
    amax = (x.abs().amax() if dim is None
            else x.abs().amax(dim=[d for d in range(x.dim()) if d != dim], keepdim=True))
    scale = top / amax.clamp_min(1e-12)
    return (x * scale).to(dtype).float() / scale


def rounded_convs(model: nn.Module, dtype: torch.dtype,
                  pick: Callable[[str, nn.Module], bool]) -> nn.Module:
    """A copy of ``model`` whose picked convs round their weight and input to ``dtype``."""
    model = S._copy(model)
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)) and pick(name, m):
            m.weight.data = round_to(m.weight.data, dtype, dim=0)
            m.register_forward_pre_hook(lambda _m, args, dt=dtype: (round_to(args[0], dt),))
    return model


def everything(_name: str, _m: nn.Module) -> bool:
    return True


def decoder_3x3(name: str, m: nn.Module) -> bool:
    """The SPADE decoder's 3x3 convs with many channels: most of its FLOPs."""
    return m.kernel_size == (3, 3) and m.in_channels >= 128


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write the table here")
    args = ap.parse_args()
    torch.manual_seed(0)
    nets = S.synth_networks()
    with np.load(S.FIXTURES / "fixtures.npz") as data:
        fx = {k: torch.from_numpy(data[k]) for k in data.files}
    inputs = tuple(fx[k] for k in ("W_in_feature_3d", "W_in_kp_driving", "W_in_kp_source"))
    w32, g32 = nets.warping.eval(), nets.spade.eval()
    ref = g32(w32(*inputs)["out"])
    err32 = S.rel(w32(*inputs)["out"], fx["W_out_out"])
    print(f"fp32 W against the reference fixture: {err32:.1e}")
    rows: dict[str, float] = {}
    cases = [("all convs (W and G)", everything, everything),
             ("G's 3x3 convs only (W exact)", lambda *_: False, decoder_3x3),
             ("G's convs only (W exact)", lambda *_: False, everything)]
    print(f"\n{'convs rounded':<32}" + "".join(f"{f:>12}" for f in FORMATS))
    for label, pick_w, pick_g in cases:
        line = f"{label:<32}"
        for fmt, dt in FORMATS.items():
            w = rounded_convs(w32, dt, pick_w)
            g = rounded_convs(g32, dt, pick_g)
            err = S.rel(g(w(*inputs)["out"]), ref)
            rows[f"{label} | {fmt}"] = err
            line += f"{err:12.2e}"
        print(line, flush=True)
    print("\nrelative L2 of the frame against fp32 W -> G (goal for fp16 in issue 6: 1e-2)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
