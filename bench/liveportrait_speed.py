"""LivePortrait warp + decode (W then G) speed on a GPU, 256x256 source -> 512x512 frame.

Weights are synthesised with the conformance rule (same compute as the official ones).
Reports median ms per frame, CUDA events after warm-up, at batch 1 and batch 8, for
fp32 eager, fp16 eager, fp16 + channels_last, fp16 + CUDA graph (and channels_last + graph),
then the fp16 / fp32 relative error against the reference fixtures.

    python bench/liveportrait_speed.py               # on a CUDA machine
    python bench/liveportrait_speed.py --smoke       # tiny, on the CPU: checks it runs
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from avatar_vcam.engine.renderers.liveportrait import (  # noqa: E402
    SPADEGenerator,
    WarpingNetwork,
    network_from_state_dict,
)

FIXTURES = ROOT / "tests" / "fixtures" / "liveportrait"
SYNTH = ROOT / "tests" / "liveportrait" / "synth_weights.py"
Fn = Callable[[Tensor, Tensor, Tensor], Tensor]


def synth_networks() -> tuple[WarpingNetwork, SPADEGenerator]:
    """W and G holding the stand-in weights of the conformance fixtures (fp32, CPU)."""
    spec = importlib.util.spec_from_file_location("synth_weights", SYNTH)
    synth = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(synth)
    ckpts = json.loads((FIXTURES / "manifest.json").read_text())["checkpoints"]
    nets = []
    for name, filename in (("warping", "warping_module.pth"), ("spade", "spade_generator.pth")):
        shapes = {k: tuple(shape) for k, (shape, _) in ckpts[filename].items()}
        nets.append(network_from_state_dict(name, synth.synth_state_dict(shapes), filename))
    return nets[0], nets[1]


def pipeline(warp: WarpingNetwork, gen: SPADEGenerator, channels_last: bool = False) -> Fn:
    """feature_3d, kp_driving, kp_source -> frame."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def run(feature: Tensor, kp_d: Tensor, kp_s: Tensor) -> Tensor:
        out = warp(feature, kp_d, kp_s)["out"]
        return gen(out.contiguous(memory_format=fmt))

    return run


def to_channels_last(warp: WarpingNetwork, gen: SPADEGenerator) -> None:
    """channels_last for every 2-D conv (the 3-D dense-motion part stays contiguous)."""
    for m in (gen, warp.third, warp.fourth):
        m.to(memory_format=torch.channels_last)


def cuda_graph(fn: Fn, inputs: tuple[Tensor, ...]) -> Fn:
    """Capture ``fn`` on static copies of ``inputs``; the returned callable copies + replays."""
    static = [x.clone() for x in inputs]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn(*static)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn(*static)

    def replay(*xs: Tensor) -> Tensor:
        for dst, src in zip(static, xs, strict=True):
            dst.copy_(src)
        graph.replay()
        return out

    return replay


def time_ms(fn: Fn, inputs: tuple[Tensor, ...], warmup: int, iters: int) -> float:
    """Median wall time of one call, in ms (CUDA events on a GPU)."""
    cuda = inputs[0].is_cuda
    for _ in range(warmup):
        fn(*inputs)
    times = []
    for _ in range(iters):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn(*inputs)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn(*inputs)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def make_inputs(batch: int, hw: int, device: torch.device, dtype: torch.dtype,
                seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    feature = torch.randn(batch, 32, 16, hw, hw, generator=g)
    kp_s = 0.4 * (torch.rand(batch, 21, 3, generator=g) * 2 - 1)
    kp_d = kp_s + 0.03 * torch.randn(batch, 21, 3, generator=g)
    return tuple(x.to(device, dtype) for x in (feature, kp_d, kp_s))


def rel(a: Tensor, b: Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def variants(device: torch.device) -> list[tuple[str, torch.dtype, bool, bool]]:
    """(label, dtype, channels_last, cuda_graph)."""
    out = [("fp32 eager", torch.float32, False, False)]
    if device.type == "cuda":
        out += [
            ("fp16 eager", torch.float16, False, False),
            ("fp16 channels_last", torch.float16, True, False),
            ("fp16 CUDA graph", torch.float16, False, True),
            ("fp16 channels_last + graph", torch.float16, True, True),
        ]
    else:
        out.append(("fp32 channels_last", torch.float32, True, False))
    return out


@torch.no_grad()
def bench(args: argparse.Namespace, warp: WarpingNetwork, gen: SPADEGenerator,
          device: torch.device) -> None:
    hw = args.size // 4  # the feature volume is a quarter of the source size
    print(f"\nW+G, {args.size}x{args.size} source -> {2 * args.size}x{2 * args.size} frame, "
          f"{device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
          f"median of {args.iters} after {args.warmup} warm-up")
    header = f"{'variant':<28}" + "".join(f"{f'batch {b} ms/frame':>20}" for b in args.batches)
    print(header + "\n" + "-" * len(header))
    for label, dtype, cl, graph in variants(device):
        w = copy.deepcopy(warp).to(device, dtype)
        g = copy.deepcopy(gen).to(device, dtype)
        if cl:
            to_channels_last(w, g)
        row = f"{label:<28}"
        for batch in args.batches:
            inputs = make_inputs(batch, hw, device, dtype)
            try:
                fn = pipeline(w, g, cl)
                if graph:
                    fn = cuda_graph(fn, inputs)
                ms = time_ms(fn, inputs, args.warmup, args.iters) / batch
                row += f"{ms:>20.2f}"
            except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
                row += f"{'error':>20}"
                print(f"  {label} batch {batch}: {type(exc).__name__}: {str(exc)[:120]}")
        print(row, flush=True)
        del w, g
        if device.type == "cuda":
            torch.cuda.empty_cache()


@torch.no_grad()
def check(warp: WarpingNetwork, gen: SPADEGenerator, device: torch.device) -> None:
    """Relative L2 error of fp32 / fp16 outputs against the reference fixtures, and of the
    fp16 W->G frame against the fp32 one."""
    with np.load(FIXTURES / "fixtures.npz") as data:
        fx = {k: torch.from_numpy(data[k]) for k in data.files}
    dtypes = [torch.float32] + ([torch.float16] if device.type == "cuda" else [])
    print("\nrelative L2 error vs reference fixtures (128x128 source)")
    frame32 = None
    for dtype in dtypes:
        w, g = copy.deepcopy(warp).to(device, dtype), copy.deepcopy(gen).to(device, dtype)
        names = ("W_in_feature_3d", "W_in_kp_driving", "W_in_kp_source")
        w_out = w(*(fx[k].to(device, dtype) for k in names))
        errs = {f"W.{k}": rel(w_out[k].cpu(), fx[f"W_out_{k}"])
                for k in ("out", "occlusion_map", "deformation")}
        errs["G"] = rel(g(fx["G_in_feature"].to(device, dtype)).cpu(), fx["G_out"])
        frame = g(w_out["out"]).float().cpu()
        if frame32 is None:
            frame32 = frame
        else:
            errs["W->G vs fp32 W->G"] = rel(frame, frame32)
        print(f"  {str(dtype).removeprefix('torch.'):<8} "
              + "  ".join(f"{k} {v:.2e}" for k, v in errs.items()), flush=True)
        del w, g
    if device.type != "cuda":
        print("  float16  skipped (needs CUDA)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true",
                    help="tiny run on the CPU (size 128, batches 1 2, one timed call each)")
    ap.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    ap.add_argument("--size", type=int, default=256, help="source size (multiple of 128)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--no-check", action="store_true", help="skip the fixture error check")
    args = ap.parse_args()
    if args.smoke:
        args.device = args.device or "cpu"
        args.size, args.batches, args.warmup, args.iters = 128, [1, 2], 0, 1
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.size % 128:
        ap.error("--size must be a multiple of 128 (the dense-motion hourglass pools 5 times)")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    t0 = time.perf_counter()
    warp, gen = synth_networks()
    print(f"synthesised W ({sum(p.numel() for p in warp.parameters()) / 1e6:.2f}M) and "
          f"G ({sum(p.numel() for p in gen.parameters()) / 1e6:.2f}M) "
          f"in {time.perf_counter() - t0:.1f} s; torch {torch.__version__}")
    bench(args, warp, gen, device)
    if not args.no_check:
        check(warp, gen, device)


if __name__ == "__main__":
    main()
