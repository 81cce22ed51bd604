"""LivePortrait W+G at batch 1: the two levers of round 7 (issue #6), on a CUDA machine.

- ``mask``     the dense-motion mask conv (7x7x7, 144 -> 24, run as a 7x7 2-D conv with
               7 x 24 = 168 outputs over the B*16 depth slices): its cuDNN kernel ran at
               ~300 TFLOP/s, half what the decoder's convs reach. Output / input widths,
               layouts, a split, cuDNN's heuristic vs benchmark choice, each timed
               alone (fp16). (Inductor's max_autotune over the whole W+G: slower, round 6.)
- ``streams``  the decoder's SPADE modulations on a second CUDA stream
               (``liveportrait/streams.py``) vs the one-module compile (the renderer's
               default), and the same pieces on one stream (what splitting the compile
               costs by itself); all replayed as CUDA graphs, batch 1 and 32.

    python bench/lp_streams.py                     # both, on a CUDA machine
    python bench/lp_streams.py --sections streams
    python bench/lp_streams.py --smoke             # tiny, on the CPU: checks it runs
    python bench/lp_streams.py --sections split    # round 16: the four-piece split
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import liveportrait_speed as S  # noqa: E402  (bench/ is on sys.path: the script's folder)
from lp_levers import ALL3, DEFAULT, _sync  # noqa: E402

from avatar_vcam.engine.renderers.liveportrait.fast import (  # noqa: E402
    FastWarpDecode,
    GraphRunner,
)
from avatar_vcam.engine.renderers.liveportrait.streams import (  # noqa: E402
    SplitStreamWarpDecode,
    StreamedWarpDecode,
)

# the renderer's defaults when this was measured (round 7: ALL3), as lp_levers builds its
# variants; the later defaults are lp_levers.DEFAULT
DEFAULTS = {"pad8": True, "width_taps": True} | ALL3


def raise_recompile_limit(limit: int = 64) -> None:
    """Dynamo compiles each piece once per batch size; the six middle blocks are six modules
    of one class, which can count against one code object's limit (8 by default), and
    past it Dynamo would silently run the piece eagerly."""
    import torch._dynamo.config as dynamo_config

    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(dynamo_config, name):
            setattr(dynamo_config, name, max(limit, getattr(dynamo_config, name)))


def compile_and_graph(fn, inputs: tuple, dev: torch.device) -> tuple:
    """The first call of ``fn`` (it compiles), then a CUDA graph of it on CUDA: (what to
    time, compile seconds, a copy of its output)."""
    t = time.perf_counter()
    fn(*inputs)
    _sync(dev)
    compile_s = time.perf_counter() - t
    runner = GraphRunner(fn, inputs) if dev.type == "cuda" else fn
    return runner, compile_s, runner(*inputs).clone()


@torch.no_grad()
def section_mask(dev: torch.device, smoke: bool, results: dict) -> None:
    dt = torch.float16 if dev.type == "cuda" else torch.float32
    hw, iters = (16, 2) if smoke else (64, 30)
    out: dict = {}
    print("\n[mask] the 7x7 taps conv over depth slices alone, fp16: ms per call (median)")
    print(f"  {'variant':<44}{'b1':>8}{'TF/s':>7}{'b32':>8}{'TF/s':>7}")

    def conv_fn(ci: int, co: int, k=(7, 7), cl: bool = True):
        w = torch.randn(co, ci, *k, device=dev, dtype=dt) * 0.01
        if cl:
            w = w.contiguous(memory_format=torch.channels_last)
        pad = (k[0] // 2, k[1] // 2)
        return lambda x: F.conv2d(x, w, padding=pad)

    def inp(b: int, ci: int, cl: bool = True):
        x = torch.randn(b * 16, ci, hw, hw, device=dev, dtype=dt)
        return x.contiguous(memory_format=torch.channels_last) if cl else x

    def two(ci: int, cos: tuple[int, ...]):
        fns = [conv_fn(ci, c) for c in cos]
        return lambda x: [f(x) for f in fns]

    variants = [
        ("144>168 NHWC (the default)", 144, lambda: conv_fn(144, 168), True, 168),
        ("144>168 NCHW", 144, lambda: conv_fn(144, 168, cl=False), False, 168),
        ("144>160 (22 masks x 7 = 154, padded)", 144, lambda: conv_fn(144, 160), True, 160),
        ("144>192", 144, lambda: conv_fn(144, 192), True, 192),
        ("144>128 + 144>48 (two convs)", 144, lambda: two(144, (128, 48)), True, 176),
        ("160>168 (inputs padded)", 160, lambda: conv_fn(160, 168), True, 168),
        ("192>168 (inputs padded)", 192, lambda: conv_fn(192, 168), True, 168),
        ("1008>168 1x7 (h im2col'd)", 1008, lambda: conv_fn(1008, 168, (1, 7)), True, 168),
    ]
    flop_px = 144 * 49 * 2  # per output channel per pixel (the default's inputs)
    for name, ci, make, cl, co in variants:
        row = {}
        for b in (1, 32):
            if smoke and b > 1:
                continue
            x = [inp(b, ci, cl) for _ in range(2)]
            fn = make()
            ms = S.time_ms(fn, [(t,) for t in x], 3, iters)
            row[f"b{b}"] = ms
            row[f"b{b}_tfs"] = b * 16 * hw * hw * flop_px * co / ms / 1e9
        out[name] = row
        print(f"  {name:<44}{row['b1']:8.3f}{row['b1_tfs']:7.0f}"
              + (f"{row['b32']:8.3f}{row['b32_tfs']:7.0f}" if "b32" in row else ""), flush=True)
    # the renderer before this round ran with cuDNN's heuristic (benchmark off)
    torch.backends.cudnn.benchmark = False
    for b in (1, 32):
        if smoke and b > 1:
            continue
        x = [inp(b, 144) for _ in range(2)]
        ms = S.time_ms(conv_fn(144, 168), [(t,) for t in x], 3, iters)
        out[f"heuristic b{b}"] = ms
        print(f"  {'144>168 NHWC, cudnn.benchmark off':<44} b{b} {ms:8.3f}", flush=True)
    torch.backends.cudnn.benchmark = True
    results["mask"] = out


def _module_to_split(dev: torch.device, smoke: bool, opts: dict) -> tuple:
    """(W+G module built with ``opts``, the compile its pieces get, dtype, feature size),
    for the sections that compile a module whole and in pieces (smoke: eager backend)."""
    torch.backends.cudnn.benchmark = True
    raise_recompile_limit()
    dt = torch.float16 if dev.type == "cuda" else torch.float32
    hw = 32 if smoke else 64
    nets = S.synth_networks()
    module = FastWarpDecode(nets.warping, nets.spade, hw, **opts).to(dev, dt).eval()
    module.requires_grad_(False)

    def comp(m):
        return torch.compile(m, dynamic=False, **({"backend": "eager"} if smoke else {}))

    return module, comp, dt, hw


@torch.no_grad()
def section_streams(dev: torch.device, smoke: bool, results: dict) -> None:
    module, comp, dt, hw = _module_to_split(dev, smoke, DEFAULTS)
    iters = 2 if smoke else 40
    variants = {
        "one module compiled (default)": lambda: comp(module),
        "pieces compiled, one stream": lambda: StreamedWarpDecode(module, comp, streams=False),
        "pieces compiled, two streams": lambda: StreamedWarpDecode(module, comp, streams=True),
    }
    out: dict = {}
    print("\n[streams] compiled W+G + CUDA graph, fp16: ms per call")
    ref = {}
    for name, make in variants.items():
        fn = make()
        row = {}
        for b in (1, 32) if not smoke else (1,):
            sets = S.input_sets(b, hw, dev, dt, n=2)
            runner, row[f"b{b}_compile_s"], y = compile_and_graph(fn, sets[0], dev)
            if b not in ref:
                ref[b] = y
            row[f"b{b}_err_vs_default"] = S.rel(y.float(), ref[b].float())
            ms = S.time_ms(runner, sets, 2 if smoke else 8, iters)
            row[f"b{b}_ms"] = ms
            row[f"b{b}_fps"] = 1000 * b / ms
            print(f"  {name:<32} b{b}: compile {row[f'b{b}_compile_s']:5.1f} s  {ms:7.3f} ms  "
                  f"{1000 * b / ms:6.0f} frames/s  err {row[f'b{b}_err_vs_default']:.1e}",
                  flush=True)
            del runner
            if dev.type == "cuda":
                torch.cuda.empty_cache()
        out[name] = row
    results["streams"] = out


@torch.no_grad()
def section_split(dev: torch.device, smoke: bool, results: dict) -> None:
    """Round 16: the renderer's module (round 15 options) against the four-piece split
    (``SplitStreamWarpDecode``) on one stream and on two, at a few cut points; batch 1,
    compiled, replayed as CUDA graphs; each variant timed twice, in turn."""
    # pad8 and width_taps as lp_levers builds its modules (round 16 itself ran without
    # these two: 3.43 ms for the one module, not 3.07)
    opts = DEFAULT | {"channels_last": dev.type == "cuda", "split_hidden": True,
                      "pad8": True, "width_taps": True}
    module, comp, dt, hw = _module_to_split(dev, smoke, opts)
    iters = 2 if smoke else 60
    variants = {
        "one module (renderer)": lambda: comp(module),
        "split 3, one stream": lambda: SplitStreamWarpDecode(module, comp, False, 3),
        "split 3, two streams": lambda: SplitStreamWarpDecode(module, comp, True, 3),
        "split 2, two streams": lambda: SplitStreamWarpDecode(module, comp, True, 2),
        "split 4, two streams": lambda: SplitStreamWarpDecode(module, comp, True, 4),
    }
    sets = S.input_sets(1, hw, dev, dt, n=2)
    out: dict = {}
    runners = {}
    ref = None
    print("\n[split] compiled W+G + CUDA graph, fp16, batch 1: ms per call")
    for name, make in variants.items():
        t = time.perf_counter()
        fn = make()  # the split's pieces are built here: counted with the compile
        build_s = time.perf_counter() - t
        runner, compile_s, y = compile_and_graph(fn, sets[0], dev)
        compile_s += build_s
        ref = y if ref is None else ref
        out[name] = {"compile_s": compile_s, "err_vs_module": S.rel(y.float(), ref.float()),
                     "ms": []}
        runners[name] = runner
        print(f"  {name:<24} compile {compile_s:5.1f} s  err {out[name]['err_vs_module']:.1e}",
              flush=True)
    for rnd in range(2):
        for name, runner in runners.items():
            ms = S.time_ms(runner, sets, 2 if smoke else 10, iters)
            out[name]["ms"].append(ms)
            print(f"  round {rnd + 1}  {name:<24} {ms:7.3f} ms", flush=True)
    results["split"] = out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", nargs="+", default=["mask", "streams"])
    ap.add_argument("--smoke", action="store_true", help="tiny, on the CPU: checks it runs")
    ap.add_argument("--json", type=Path, help="write all results here")
    args = ap.parse_args()
    dev = torch.device("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}; {name}")
    results: dict = {"device": name, "torch": torch.__version__}
    steps = {"mask": section_mask, "streams": section_streams, "split": section_split}
    for s in args.sections:
        t = time.perf_counter()
        steps[s](dev, args.smoke, results)
        print(f"  ({s}: {time.perf_counter() - t:.0f} s)", flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
