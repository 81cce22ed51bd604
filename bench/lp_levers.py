"""LivePortrait W+G on a GPU: the levers not tried in the first round (issue #6 follow-up).

Each lever runs in its own process (Inductor's config is process-wide; one shared on-disk
cache, so a second run of the same variant measures the warm-cache compile):

- ``conv3d``   the dense-motion 3-D convs alone (cuDNN, fp16): NCDHW vs NDHWC, and the
               "depth-tap" form (one channels_last 2-D conv with kd x O outputs over the
               (B*D) slices + a shift-add over depth), plus the 2304 -> 1 occlusion conv
- ``dtype``    fast path eager + CUDA graph at batch 1: fp16 vs bf16 time and error vs fp32
- ``compile``  torch.compile variants (Inductor options / modes), each at the sizes asked:
               compile seconds, ms per call (CUDA graph of the compiled module), error vs fp32;
               optionally several batch-1 graphs replayed on several CUDA streams at once

    python bench/lp_levers.py                       # the whole plan, on a CUDA machine
    python bench/lp_levers.py --plan conv3d dtype   # some of it
    python bench/lp_levers.py --smoke               # tiny, on the CPU: checks it runs
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import liveportrait_speed as S  # noqa: E402  (bench/ is on sys.path: the script's folder)

from avatar_vcam.engine.renderers.liveportrait.fast import (  # noqa: E402
    DepthTapConv3d,
    FastWarpDecode,
    GraphRunner,
)

# the round-3 winners (now the renderer's defaults), the base of the later rounds
ALL3 = {"depth_taps": True, "phase_up": True, "occlusion_taps": True, "compose_shortcut": True}
# the W+G module's options in the renderer in round 12, the base of later rounds; since
# round 13 the renderer also sets channels_last (the variant default_cl)
DEFAULT = ALL3 | {"mask_width_taps": True, "img_taps": True, "distinct_phases": True,
                  "phase_major": True}
# round 11's default: the phase convs' outputs in pixel_shuffle's (O-major) order
DEFAULT_R11 = DEFAULT | {"phase_major": False}

# the renderer's options since round 15
CL_SPLIT = DEFAULT | {"channels_last": True, "split_hidden": True}

# name -> (torch.compile keyword arguments, FastWarpDecode keyword arguments)
VARIANTS: dict[str, tuple[dict, dict]] = {
    "base": ({}, {}),
    "freeze": ({"options": {"freezing": True}}, {}),
    "freeze_cdt": ({"options": {"freezing": True, "coordinate_descent_tuning": True}}, {}),
    "autotune": ({"mode": "max-autotune-no-cudagraphs"}, {}),
    "autotune_freeze": ({"options": {"max_autotune": True, "coordinate_descent_tuning": True,
                                     "freezing": True}}, {}),
    "cl3d": ({}, {"channels_last_3d": True}),
    "dtaps": ({}, {"depth_taps": True}),
    "dtaps_freeze": ({"options": {"freezing": True}}, {"depth_taps": True}),
    "cl": ({}, {"channels_last": True}),
    # round 3 (written 2026-11-23 afternoon, no GPU lent that session: not yet measured)
    "dtaps_phase": ({}, {"depth_taps": True, "phase_up": True}),
    "dtaps_occ": ({}, {"depth_taps": True, "occlusion_taps": True}),
    "dtaps_phase_occ": ({}, {"depth_taps": True, "phase_up": True, "occlusion_taps": True}),
    "dtaps_all3": ({}, ALL3),
    # round 4: on top of the round-3 winners (now the renderer's defaults)
    "all3_cl": ({}, ALL3 | {"channels_last": True}),
    "all3_cdt": ({"options": {"coordinate_descent_tuning": True}}, ALL3),
    "all3_pw": ({"options": {"max_autotune_pointwise": True, "aggressive_fusion": True}}, ALL3),
    # round 6 (next GPU session): conv/GEMM template autotuning only (Triton conv templates
    # against cuDNN per conv shape), with the result kept in the on-disk cache: a one-time
    # cost is allowed, a multi-minute one at each start is not (the warm run says which)
    "all3_mat": ({"options": {"max_autotune": True}}, ALL3),
    # round 8 (next GPU session): the mask conv's inputs zero-padded to 160 (alone: 6%
    # faster at b32), and cuDNN's heuristic instead of its benchmark (HEURISTIC below)
    "all3_m160": ({}, ALL3 | {"mask_in": 160}),
    "all3_heur": ({}, ALL3),
    "all3_m160_heur": ({}, ALL3 | {"mask_in": 160}),
    # horizontal fusion of independent kernels into one launch (fewer, fuller kernels at b1)
    "all3_combo": ({"options": {"combo_kernels": True}}, ALL3),
    # round 10: the taps for the two narrow convs the r9 per-conv table shows far below peak
    "all3_mwt": ({}, ALL3 | {"mask_width_taps": True}),
    "all3_img": ({}, ALL3 | {"img_taps": True}),
    "all3_mwt_img": ({}, ALL3 | {"mask_width_taps": True, "img_taps": True}),
    # round 11: + the 4x phase conv computes its 9 distinct phases only (now the default)
    "default": ({}, DEFAULT),
    "default_r11": ({}, DEFAULT_R11),
    # round 12 (prepared 2026-11-23, not yet run): cuDNN's benchmark tries every engine
    # instead of its first 10 (BENCH_ALL below); coordinate-descent tuning of the Triton
    # kernels compiled to completion (round 4 stopped it at 150 s; the renderer compiles in
    # the background and keeps the cache, so one long cold compile would be acceptable)
    "default_bl0": ({}, DEFAULT),
    "default_cdt": ({"options": {"coordinate_descent_tuning": True}}, DEFAULT),
    # programmatic dependent launch: each Triton kernel may start while the one before it
    # drains (Hopper); ~150 short Triton kernels at batch 1 (config absent before torch 2.10?)
    "default_pdl": ({"options": {"triton.enable_pdl": True}}, DEFAULT),
    # round 1 measured these before every later lever; again on today's default
    "default_cl": ({}, DEFAULT | {"channels_last": True}),
    "default_grouped": ({}, DEFAULT | {"grouped": True}),
    # round 14 measured "cl_gather": the 3-D grid samples as gathers Inductor fuses
    # (FastWarping(gather_sample=True), removed after it measured slower: BENCHMARKS.md)
    # the middle SPADE layers' shared activations split into channels_last tensors by one
    # copy (round 14's profile: 12 aten copies, one per layer, before the gamma/beta convs)
    "cl_split": ({}, CL_SPLIT),
    # round 17: Inductor's reduction and tiling options, on the renderer's round-15 module
    # (batch 1 has ~70 short norm-statistics / modulation kernels)
    "r17_nosplitred": ({"options": {"split_reductions": False}}, CL_SPLIT),
    "r17_coop": ({"options": {"triton.cooperative_reductions": True}}, CL_SPLIT),
    "r17_multik": ({"options": {"triton.multi_kernel": 1}}, CL_SPLIT),
    "r17_nd": ({"options": {"triton.prefer_nd_tiling": True}}, CL_SPLIT),
    "r17_nolof": ({"options": {"loop_ordering_after_fusion": False}}, CL_SPLIT),
    "r17_reads8": ({"options": {"realize_reads_threshold": 8}}, CL_SPLIT),
    "r17_fuse128": ({"options": {"max_fusion_size": 128, "aggressive_fusion": True}},
                    CL_SPLIT),
    # round 18: the mask's tap outputs padded as a whole (1080, not 7 x 7 x 24 = 1176)
    "cl_split_mp": ({}, CL_SPLIT | {"mask_packed": True}),
    # round 19: the renderer's round-18 module (cl_split_mp; split_hidden now also splits
    # the up stages' activations), + the tap convs' weights stored channels_last (round
    # 18's output code converted 12 of them on every call)
    "r19": ({}, CL_SPLIT | {"mask_packed": True, "nhwc_tap_weights": True}),
    # round 22 measured "r22_fft" / "r22_ffth": the mask conv through the FFT
    # (FastWarpDecode(mask_fft=...), removed after it measured slower: BENCHMARKS.md)
    # round 7 measured "all3_rows": the mask conv as a 1x7 conv over row-stacked input
    # (FastWarpDecode(mask_rows=True), removed after it measured slower: BENCHMARKS.md)
}

# variants compiled and run with torch.backends.cudnn.benchmark off (cuDNN's heuristic picks
# each conv's kernel): alone, the mask conv's benchmark pick was slower at batch 1 (round 7)
HEURISTIC = {"all3_heur", "all3_m160_heur"}
# variants compiled with torch.backends.cudnn.benchmark_limit = 0: cuDNN's benchmark tries
# every engine it has, not the first 10 of its heuristic's list (PyTorch's default)
BENCH_ALL = {"default_bl0"}

# (label, worker arguments, timeout s): run in order while the time budget lasts
PLAN = [
    ("conv3d", ["conv3d"], 90),
    ("dtype", ["dtype"], 90),
    ("base b1", ["compile", "base", "1"], 150),
    ("dtaps b1", ["compile", "dtaps", "1"], 150),
    ("base b1 b32 (same run)", ["compile", "base", "1,32"], 150),
    ("dtaps b1 b32 b128 + streams", ["compile", "dtaps", "1,32,128", "streams"], 200),
    ("freeze b1", ["compile", "freeze", "1"], 150),
    ("autotune b1 (cold)", ["compile", "autotune", "1"], 240),
    ("base b64 b128 + streams", ["compile", "base", "1,64,128", "streams"], 200),
    ("dtaps_freeze b1 b64", ["compile", "dtaps_freeze", "1,64"], 150),
    ("autotune b1 (warm)", ["compile", "autotune", "1"], 90),
    ("freeze_cdt b1", ["compile", "freeze_cdt", "1"], 150),
    ("cl3d b1", ["compile", "cl3d", "1"], 150),
    # round 3: python bench/lp_levers.py --plan r3 --budget 560
    ("r3 dtaps b1 b32", ["compile", "dtaps", "1,32"], 120),
    ("r3 dtaps_phase b1 b32", ["compile", "dtaps_phase", "1,32"], 120),
    ("r3 dtaps_occ b1", ["compile", "dtaps_occ", "1"], 100),
    ("r3 dtaps_all3 b1 b32 b64 + streams", ["compile", "dtaps_all3", "1,32,64", "streams"],
     180),
    # round 4: python bench/lp_levers.py --plan r4 --budget 540
    ("r4 profile all3 b1", ["profile", "dtaps_all3", "1"], 90),
    ("r4 profile all3 b32", ["profile", "dtaps_all3", "32"], 100),
    ("r4 all3_cl b1 b64", ["compile", "all3_cl", "1,64"], 110),
    ("r4 all3_pw b1 b64", ["compile", "all3_pw", "1,64"], 120),
    ("r4 all3_cdt b1 b64", ["compile", "all3_cdt", "1,64"], 150),
    ("r5 all3 b1 b32", ["compile", "dtaps_all3", "1,32"], 100),
    # round 6, two calls (each a cold compile then the same one from its cache):
    #   python bench/lp_levers.py --plan "r6 mat" --budget 570
    #   python bench/lp_levers.py --plan "r6 cdt" --budget 570
    # A long one-time compile is acceptable if the warm one is short: the renderer serves
    # eager frames while it compiles in the background, and keeps the cache.
    ("r6 mat all3_mat b1 (cold)", ["compile", "all3_mat", "1"], 430),
    ("r6 mat all3_mat b1 b32 (warm)", ["compile", "all3_mat", "1,32"], 130),
    ("r6 cdt all3_cdt b1 (cold)", ["compile", "all3_cdt", "1"], 430),
    ("r6 cdt all3_cdt b1 b32 (warm)", ["compile", "all3_cdt", "1,32"], 130),
    # round 7: python bench/lp_levers.py --plan r7 --budget 320
    ("r7 all3 b1 b32", ["compile", "dtaps_all3", "1,32"], 160),
    # round 8: python bench/lp_levers.py --plan r8 --budget 560
    ("r8 profile all3 b1", ["profile", "dtaps_all3", "1"], 90),
    # round 9: the same profile with a per-conv table (shapes, GFLOP, TFLOP/s), b1 and b32
    ("r9 profile all3 b1", ["profile", "dtaps_all3", "1"], 100),
    ("r9 profile all3 b32", ["profile", "dtaps_all3", "32"], 120),
    # round 10: python bench/lp_levers.py --plan r10 --budget 520
    ("r10 all3 b1 b32", ["compile", "dtaps_all3", "1,32"], 100),
    ("r10 all3_mwt b1 b32", ["compile", "all3_mwt", "1,32"], 110),
    ("r10 all3_mwt_img b1 b32", ["compile", "all3_mwt_img", "1,32"], 110),
    ("r10 profile all3_mwt_img b1", ["profile", "all3_mwt_img", "1"], 90),
    ("r10 all3_img b1 b32", ["compile", "all3_img", "1,32"], 110),
    # round 11: python bench/lp_levers.py --plan r11 --budget 230
    ("r11 all3_mwt_img b1 b32", ["compile", "all3_mwt_img", "1,32"], 110),
    ("r11 default b1 b32", ["compile", "default", "1,32"], 110),
    # round 12, two calls:
    #   python bench/lp_levers.py --plan "r12 bl" --budget 560
    #   python bench/lp_levers.py --plan "r12 cdt" --budget 580
    ("r12 bl default b1 b32", ["compile", "default", "1,32"], 110),
    ("r12 bl default_bl0 b1 b32", ["compile", "default_bl0", "1,32"], 180),
    ("r12 bl default_pdl b1 b32", ["compile", "default_pdl", "1,32"], 120),
    ("r12 bl profile default b1", ["profile", "default", "1"], 90),
    ("r12 bl profile default b32", ["profile", "default", "32"], 110),
    ("r12 cdt default_cdt b1 (cold)", ["compile", "default_cdt", "1"], 440),
    ("r12 cdt default_cdt b1 b32 (warm)", ["compile", "default_cdt", "1,32"], 130),
    # round 12, third call: python bench/lp_levers.py --plan "r12 pm" "r12 big" --budget 560
    ("r12 pm default_r11 b1 b32", ["compile", "default_r11", "1,32"], 110),
    ("r12 pm default b1 b32", ["compile", "default", "1,32"], 110),
    ("r12 pm profile default b1", ["profile", "default", "1"], 90),
    ("r12 big default b8 b16 b32 + bigstreams",
     ["compile", "default", "8,16,32", "bigstreams"], 240),
    # round 13: python bench/lp_levers.py --plan r13 --budget 330
    ("r13 default b1 b32", ["compile", "default", "1,32"], 110),
    ("r13 default_cl b1 b32", ["compile", "default_cl", "1,32"], 110),
    ("r13 default_grouped b1 b32", ["compile", "default_grouped", "1,32"], 110),
    # round 13b, the confirmation in the other order: --plan r13b --budget 270
    ("r13b default_cl b1 b32", ["compile", "default_cl", "1,32"], 90),
    ("r13b default b1 b32", ["compile", "default", "1,32"], 90),
    ("r13b again default_cl b1 b32", ["compile", "default_cl", "1,32"], 90),
    # round 14: python bench/lp_levers.py --plan r14 --budget 400
    ("r14 default_cl b1 b32", ["compile", "default_cl", "1,32"], 100),
    ("r14 again default_cl b1", ["compile", "default_cl", "1"], 70),
    # round 15: python bench/lp_levers.py --plan r15 --budget 500
    ("r15 default_cl b1", ["compile", "default_cl", "1"], 80),
    ("r15 cl_split b1", ["compile", "cl_split", "1"], 80),
    ("r15 again default_cl b1", ["compile", "default_cl", "1"], 60),
    ("r15 again cl_split b1", ["compile", "cl_split", "1"], 60),
    ("r15 profile cl_split b1", ["profile", "cl_split", "1"], 60),
    ("r15 profile default_cl b1", ["profile", "default_cl", "1"], 60),
    # round 17: python bench/lp_levers.py --plan r17 --budget 560
    ("r17 cl_split b1", ["compile", "cl_split", "1"], 70),
    ("r17 r17_nosplitred b1", ["compile", "r17_nosplitred", "1"], 70),
    ("r17 r17_coop b1", ["compile", "r17_coop", "1"], 70),
    ("r17 r17_multik b1", ["compile", "r17_multik", "1"], 80),
    ("r17 r17_nd b1", ["compile", "r17_nd", "1"], 70),
    ("r17 r17_nolof b1", ["compile", "r17_nolof", "1"], 70),
    ("r17 r17_reads8 b1", ["compile", "r17_reads8", "1"], 70),
    ("r17 r17_fuse128 b1", ["compile", "r17_fuse128", "1"], 70),
    ("r17 again cl_split b1", ["compile", "cl_split", "1"], 50),
    # batched throughput of the renderer's round-15 module: --plan r17b --budget 250
    ("r17b big cl_split b16 b32 + bigstreams", ["compile", "cl_split", "16,32", "bigstreams"],
     240),
    # round 18: python bench/lp_levers.py --plan r18 --budget 330
    ("r18 cl_split b1", ["compile", "cl_split", "1"], 70),
    ("r18 cl_split_mp b1", ["compile", "cl_split_mp", "1"], 70),
    ("r18 again cl_split b1", ["compile", "cl_split", "1"], 50),
    ("r18 again cl_split_mp b1", ["compile", "cl_split_mp", "1"], 50),
    ("r18 profile cl_split_mp b1", ["profile", "cl_split_mp", "1"], 60),
    # round 18b, batch 32: --plan r18b --budget 200
    ("r18b cl_split b32", ["compile", "cl_split", "32"], 100),
    ("r18b cl_split_mp b32", ["compile", "cl_split_mp", "32"], 100),
    # round 19: python bench/lp_levers.py --plan r19 --budget 400
    ("r19 cl_split_mp b1", ["compile", "cl_split_mp", "1"], 70),
    ("r19 r19 b1", ["compile", "r19", "1"], 70),
    ("r19 again cl_split_mp b1", ["compile", "cl_split_mp", "1"], 50),
    ("r19 again r19 b1", ["compile", "r19", "1"], 50),
    ("r19 profile r19 b1", ["profile", "r19", "1"], 60),
    ("r19 big r19 b32", ["compile", "r19", "32"], 90),
    # next: batched throughput of the round-19 module: --plan r20 --budget 250
    ("r20 big r19 b16 b32 + bigstreams", ["compile", "r19", "16,32", "bigstreams"], 240),
    # round 21: where batch 32's time goes now: --plan "r21 profile" --budget 120
    ("r21 profile r19 b32", ["profile", "r19", "32"], 110),
    # the issue's per-network breakdown on today's module: --plan "r23 parts" --budget 300
    ("r23 parts r19 b1 b32", ["parts", "r19", "1,32"], 290),
    ("r8 all3 b1 b32", ["compile", "dtaps_all3", "1,32"], 110),
    ("r8 all3_m160 b1 b32", ["compile", "all3_m160", "1,32"], 110),
    ("r8 all3_heur b1 b32", ["compile", "all3_heur", "1,32"], 110),
    ("r8 all3_combo b1 b32", ["compile", "all3_combo", "1,32"], 110),
    ("r8 all3_m160_heur b1 b32", ["compile", "all3_m160_heur", "1,32"], 110),
]


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


# ------------------------------------------------------------------------------ workers
@torch.no_grad()
def worker_conv3d(dev: torch.device, smoke: bool) -> dict:
    """Each 3-D conv shape of the dense-motion net: cuDNN NCDHW / NDHWC / depth-tap."""
    dt = torch.float16 if dev.type == "cuda" else torch.float32
    d, iters = (4, 2) if smoke else (16, 30)
    scale = 8 if smoke else 1
    shapes = [("down0 112>64 @64", 112, 64, 64, (3, 3, 3)),
              ("up4 128>32 @64", 128, 32, 64, (3, 3, 3)),
              ("dec 144>144 @64", 144, 144, 64, (3, 3, 3)),
              ("maskWT 144>168 7x7x1 @64", 144, 168, 64, (7, 7, 1)),
              ("up3 256>64 @32", 256, 64, 32, (3, 3, 3)),
              ("down1 64>128 @32", 64, 128, 32, (3, 3, 3))]
    out = {}
    print(f"\n[conv3d] fp16, batch 1, depth {d}: ms per conv (median of {iters}); "
          "TFLOP/s of the best")
    print(f"  {'conv':<26}{'NCDHW':>8}{'NDHWC':>8}{'taps2d':>8}{'tap+add':>8}{'err':>9}"
          f"{'TF/s':>7}")
    for name, ci, co, hw, k in shapes:
        hw //= scale
        conv = torch.nn.Conv3d(ci, co, k, padding=tuple(x // 2 for x in k)).to(dev, dt)
        xs = [(torch.randn(1, ci, d, hw, hw, device=dev, dtype=dt),) for _ in range(2)]
        xs_cl = [(x[0].contiguous(memory_format=torch.channels_last_3d),) for x in xs]
        conv_cl = torch.nn.Conv3d(ci, co, k, padding=tuple(x // 2 for x in k)).to(dev, dt)
        conv_cl.load_state_dict(conv.state_dict())
        conv_cl.to(memory_format=torch.channels_last_3d)
        tap = DepthTapConv3d(conv).to(dev)
        tap.conv.to(memory_format=torch.channels_last)
        xs_2d = [(x[0].permute(0, 2, 1, 3, 4).reshape(d, ci, hw, hw),) for x in xs_cl]
        ms = [S.time_ms(conv, xs, 3, iters), S.time_ms(conv_cl, xs_cl, 3, iters),
              S.time_ms(tap.conv, xs_2d, 3, iters), S.time_ms(tap, xs_cl, 3, iters)]
        ref = conv.float()(xs[0][0].float())
        conv.to(dt)
        err = S.rel(tap(xs_cl[0][0]).float(), ref)
        flop = 2 * ci * co * k[0] * k[1] * k[2] * d * hw * hw
        best = min(ms)
        out[name] = {"ms": ms, "err_tap": err, "tflops_best": flop / best / 1e9}
        print(f"  {name:<26}" + "".join(f"{m:>8.3f}" for m in ms) + f"{err:>9.1e}"
              f"{flop / best / 1e9:>7.0f}", flush=True)
    # the occlusion conv: 16 * 144 channels -> 1, 7x7 at 64x64
    hw = 64 // scale
    occ = torch.nn.Conv2d(144 * d, 1, 7, padding=3).to(dev, dt)
    xs = [(torch.randn(1, 144 * d, hw, hw, device=dev, dtype=dt),) for _ in range(2)]
    occ_cl = torch.nn.Conv2d(144 * d, 1, 7, padding=3).to(dev, dt)
    occ_cl.load_state_dict(occ.state_dict())
    occ_cl.to(memory_format=torch.channels_last)
    xs_cl = [(x[0].contiguous(memory_format=torch.channels_last),) for x in xs]
    o_ms = [S.time_ms(occ, xs, 3, iters), S.time_ms(occ_cl, xs_cl, 3, iters)]
    out["occlusion 2304>1 7x7 @64"] = {"ms": o_ms}
    print(f"  {'occlusion 2304>1 7x7 @64':<26}" + "".join(f"{m:>8.3f}" for m in o_ms))
    return out


@torch.no_grad()
def worker_dtype(dev: torch.device, smoke: bool) -> dict:
    """fp16 vs bf16: eager fast path + CUDA graph at batch 1; error vs fp32 (TF32 off)."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    nets = S.synth_networks()
    hw = 32 if smoke else 64
    ref_mod = FastWarpDecode(nets.warping, nets.spade, hw, pad8=True, width_taps=True
                             ).to(dev, torch.float32).eval()
    sets32 = S.input_sets(1, hw, dev, torch.float32, n=2)
    ref = ref_mod(*sets32[0])
    out = {}
    print("\n[dtype] fast W+G eager + graph, batch 1")
    cfgs = ([(torch.float16, {}), (torch.bfloat16, {}), (torch.float16, {"depth_taps": True})]
            if dev.type == "cuda" else [(torch.float32, {"depth_taps": True})])
    for dt, kw in cfgs:
        mod = FastWarpDecode(nets.warping, nets.spade, hw, pad8=True, width_taps=True, **kw
                             ).to(dev, dt).eval()
        sets = [tuple(x.to(dt) for x in s) for s in sets32]
        err = S.rel(mod(*sets[0]).float(), ref)
        fn = GraphRunner(mod, sets[0]) if dev.type == "cuda" else mod
        ms = S.time_ms(fn, sets, 2 if smoke else 10, 2 if smoke else 40)
        name = str(dt).removeprefix("torch.") + (" depth_taps" if kw else "")
        out[name] = {"ms_b1": ms, "err_vs_fp32": err}
        print(f"  {name:<20} {ms:7.2f} ms   rel err vs fp32 {err:.2e}", flush=True)
    return out


def _stream_fps(runners: list[GraphRunner], iters: int, batch: int = 1) -> float:
    """Frames/s with one graph of ``batch`` frames per CUDA stream, all replayed at once."""
    cur = torch.cuda.current_stream()
    streams = [torch.cuda.Stream() for _ in runners]
    times = []
    for i in range(iters + 3):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for s, r in zip(streams, runners, strict=True):
            s.wait_stream(cur)
            with torch.cuda.stream(s):
                r.graph.replay()
        for s in streams:
            cur.wait_stream(s)
        end.record()
        end.synchronize()
        if i >= 3:
            times.append(start.elapsed_time(end))
    times.sort()
    return 1000 * len(runners) * batch / times[len(times) // 2]


def _compiled_variant(dev: torch.device, smoke: bool, variant: str):
    """Synthesised networks, feature size, dtype and the variant's module, compiled (lazily:
    the first call compiles). Smoke runs use the eager backend."""
    torch.backends.cudnn.benchmark = variant not in HEURISTIC
    if variant in BENCH_ALL:
        torch.backends.cudnn.benchmark_limit = 0
    compile_kw, module_kw = VARIANTS[variant]
    if smoke:
        compile_kw = {"backend": "eager"}
    nets = S.synth_networks()
    hw = 32 if smoke else 64
    dt = torch.float16 if dev.type == "cuda" else torch.float32
    mod = FastWarpDecode(nets.warping, nets.spade, hw, pad8=True, width_taps=True,
                         **module_kw).to(dev, dt).eval().requires_grad_(False)
    return nets, hw, dt, torch.compile(mod, dynamic=False, **compile_kw)


@torch.no_grad()
def worker_compile(dev: torch.device, smoke: bool, variant: str, batches: list[int],
                   streams: bool, big_streams: bool = False) -> dict:
    """Compile one variant; per batch size: compile seconds, ms per call, error (b1)."""
    t0 = time.perf_counter()
    import torch._inductor.config  # noqa: F401  (import time kept out of the compile time)

    t_import = time.perf_counter() - t0
    nets, hw, dt, compiled = _compiled_variant(dev, smoke, variant)
    res: dict = {"variant": variant, "inductor_import_s": t_import}
    iters = 2 if smoke else 40
    for b in batches:
        sets = S.input_sets(b, hw, dev, dt, n=2)
        t = time.perf_counter()
        y = compiled(*sets[0])
        _sync(dev)
        c_s = time.perf_counter() - t
        fn = GraphRunner(compiled, sets[0]) if dev.type == "cuda" else compiled
        ms = S.time_ms(fn, sets, 2 if smoke else 8, iters)
        row = {"compile_s": c_s, "ms_call": ms, "ms_frame": ms / b, "fps": 1000 * b / ms}
        if b == 1:
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
            ref_mod = FastWarpDecode(nets.warping, nets.spade, hw, pad8=True, width_taps=True
                                     ).to(dev, torch.float32).eval()
            row["err_vs_fp32"] = S.rel(y.float(), ref_mod(*(x.float() for x in sets[0])))
            del ref_mod
        res[f"b{b}"] = row
        print(f"  {variant} b{b}: compile {c_s:6.1f} s  {ms:8.2f} ms/call  {ms / b:6.2f} "
              f"ms/frame  {1000 * b / ms:6.0f} fps" +
              (f"  err {row['err_vs_fp32']:.2e}" if "err_vs_fp32" in row else ""), flush=True)
        del fn, y
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    if streams and dev.type == "cuda":
        for n in (4, 8):
            runners = [GraphRunner(compiled, S.make_inputs(1, hw, dev, dt, seed=10 + i))
                       for i in range(n)]
            fps = _stream_fps(runners, iters)
            res[f"streams{n}_b1_fps"] = fps
            print(f"  {variant} {n} streams x b1: {fps:6.0f} frames/s", flush=True)
            del runners
    if big_streams and dev.type == "cuda":
        # large batches side by side: one graph's memory-bound Triton kernels may run while
        # the other's convolutions do (each shape is compiled above, in batches)
        for n, b in ((2, 16), (4, 8), (2, 32)):
            if b not in batches:
                continue
            runners = [GraphRunner(compiled, S.make_inputs(b, hw, dev, dt, seed=20 + i))
                       for i in range(n)]
            fps = _stream_fps(runners, iters // 2, b)
            res[f"streams{n}_b{b}_fps"] = fps
            print(f"  {variant} {n} streams x b{b}: {fps:6.0f} frames/s", flush=True)
            del runners
            torch.cuda.empty_cache()
    return res


@torch.no_grad()
def worker_parts(dev: torch.device, smoke: bool, variant: str, batches: list[int]) -> dict:
    """The issue's per-network breakdown on one variant's module: W (warping) and G (decoder)
    each compiled alone, W+G compiled whole, and F / M (once per avatar, at prepare) eager
    fp16; per batch size, ms per call of a CUDA graph replay and ms per frame."""
    import torch._inductor.config  # noqa: F401  (import time kept out of the compile time)

    nets, hw, dt, whole = _compiled_variant(dev, smoke, variant)
    mod = whole._orig_mod
    kw = {"backend": "eager"} if smoke else VARIANTS[variant][0]
    cl = torch.channels_last if mod.channels_last else torch.contiguous_format
    parts = {"W warping": torch.compile(mod.warp, dynamic=False, **kw),
             "G decoder": torch.compile(mod.spade, dynamic=False, **kw), "W+G": whole}
    iters, warm = (2, 2) if smoke else (40, 8)
    size = 8 * hw // 2  # the source image the extractors read (256 for 64x64 features)
    res: dict = {"variant": variant}
    for b in batches[:1] if smoke else batches:
        sets = S.input_sets(b, hw, dev, dt, n=2)
        feats = [(mod.warp(*x).contiguous(memory_format=cl),) for x in sets]
        row: dict[str, float] = {}
        for name, fn in parts.items():
            ins = feats if name.startswith("G") else sets
            t = time.perf_counter()
            fn(*ins[0])
            _sync(dev)
            row[f"{name} compile_s"] = time.perf_counter() - t
            run = GraphRunner(fn, ins[0]) if dev.type == "cuda" else fn
            row[name] = S.time_ms(run, ins, warm, iters)
            del run
        img = [(torch.rand(b, 3, size, size, device=dev, dtype=dt),) for _ in range(2)]
        for name, net in (("F appearance", nets.appearance), ("M motion", nets.motion)):
            m = S._copy(net).to(dev, dt).eval()
            row[name] = S.time_ms(GraphRunner(m, img[0]) if dev.type == "cuda" else m, img,
                                  warm, iters)
        res[f"b{b}"] = row
        print(f"\n[parts] {variant} batch {b}: ms per call (ms per frame), graph replay")
        for k, v in row.items():
            if not k.endswith("compile_s"):
                print(f"  {k:<14}{v:9.3f} ({v / b:6.3f})")
        w, g, wg = row["W warping"] / b, row["G decoder"] / b, row["W+G"] / b
        print(f"  W alone + G alone {w + g:.3f} ms/frame against W+G {wg:.3f}: W is "
              f"{100 * w / (w + g):.0f}% of the pair")
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return res


def _kernel_kind(name: str) -> str:
    """A coarse class of a CUDA kernel from its name (for the time breakdown)."""
    n = name.lower()
    if n.startswith("triton_"):
        return "triton (fused norm/elementwise)"
    if any(k in n for k in ("conv", "xmma", "implicit", "sm90_", "sm80_", "cutlass", "gemm",
                            "wgrad", "dgrad", "fprop")):
        return "conv / gemm (cuDNN, cuBLAS)"
    if any(k in n for k in ("nchwtonhwc", "nhwctonchw", "transpose", "copy", "memcpy")):
        return "layout copies"
    return "other"


@torch.no_grad()
def worker_profile(dev: torch.device, smoke: bool, variant: str, batch: int) -> dict:
    """Kernel time of one compiled call, by kernel and by class (no CUDA graph)."""
    _, hw, dt, compiled = _compiled_variant(dev, smoke, variant)
    sets = S.input_sets(batch, hw, dev, dt, n=2)
    for i in range(4):
        compiled(*sets[i % 2])
    _sync(dev)
    from torch.profiler import ProfilerActivity, profile

    calls = 2 if smoke else 6
    acts = [ProfilerActivity.CUDA] if dev.type == "cuda" else [ProfilerActivity.CPU]
    with profile(activities=acts) as prof:
        for i in range(calls):
            compiled(*sets[i % 2])
        _sync(dev)
    convs = _conv_table(compiled, sets, calls, dev)
    rows = []
    for ev in prof.key_averages():
        us = getattr(ev, "device_time_total", 0) or getattr(ev, "self_cpu_time_total", 0)
        host_side = ev.key.startswith(("cuda", "cuLaunch", "cuFunc", "cuModule", "Activity ",
                                        "Command Buffer"))
        if us > 0 and not host_side and (dev.type == "cuda" or ev.key.startswith("aten::")):
            rows.append((ev.key, us / calls / 1000, ev.count // calls))
    rows.sort(key=lambda r: -r[1])
    kinds: dict[str, float] = {}
    for name, ms, _ in rows:
        kinds[_kernel_kind(name)] = kinds.get(_kernel_kind(name), 0.0) + ms
    total = sum(kinds.values())
    print(f"\n[profile] {variant} batch {batch}: {total:.3f} ms of kernels per call "
          f"({total / batch:.3f} ms/frame)")
    for k, ms in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<34}{ms:8.3f} ms  {100 * ms / total:5.1f}%")
    print(f"  {'kernel':<90}{'ms/call':>8}{'n':>4}")
    for name, ms, n in rows[:22]:
        print(f"  {name[:90]:<90}{ms:8.3f}{n:>4}")
    return {"variant": variant, "batch": batch, "kernel_ms": total, "by_kind": kinds,
            "top": rows[:40], "convs": convs}


def _conv_table(compiled, sets, calls: int, dev: torch.device) -> list[dict]:
    """Each convolution of the compiled call by its shapes: GPU ms per call, GFLOP and
    TFLOP/s (FLOPs from the shapes, output size = input size), to show which convs run far
    below peak."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=acts, record_shapes=True) as prof:
        for i in range(calls):
            compiled(*sets[i % 2])
        _sync(dev)
    rows = []
    for ev in prof.key_averages(group_by_input_shape=True):
        if ev.key != "aten::convolution":
            continue
        ms = (ev.device_time_total if dev.type == "cuda" else ev.cpu_time_total) / calls / 1000
        shapes = [list(x) for x in ev.input_shapes[:2]]  # input, weight
        (n, _, *spatial), (o, cg, *kernel) = shapes
        # stride 1, "same" output size: true of every conv here to within a pixel
        per = ev.count // calls
        gflop = per * 2 * n * o * cg * math.prod(spatial) * math.prod(kernel) / 1e9
        rows.append({"in": shapes[0], "w": shapes[1], "n": per, "ms": ms,
                     "gflop": gflop, "tflops": gflop / ms if ms else 0.0})
    rows.sort(key=lambda r: -r["ms"])
    total_ms = sum(r["ms"] for r in rows)
    total_gf = sum(r["gflop"] for r in rows)
    print(f"  convolutions by shape: {total_ms:.3f} ms, {total_gf:.0f} GFLOP per call "
          f"({total_gf / total_ms if total_ms else 0:.0f} TFLOP/s; profiled, with overhead)")
    print(f"  {'input':<24}{'weight':<22}{'n':>3}{'ms':>8}{'GFLOP':>8}{'TF/s':>6}")
    for r in rows[:30]:
        print(f"  {str(r['in']):<24}{str(r['w']):<22}{r['n']:>3}{r['ms']:8.3f}"
              f"{r['gflop']:8.1f}{r['tflops']:6.0f}")
    return rows


# ------------------------------------------------------------------------------ driver
def run_worker(argv: list[str]) -> None:
    smoke = "--smoke" in argv
    argv = [a for a in argv if a != "--smoke"]
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind = argv[0]
    if kind == "conv3d":
        torch.backends.cudnn.benchmark = True
        res = worker_conv3d(dev, smoke)
    elif kind == "dtype":
        res = worker_dtype(dev, smoke)
    elif kind == "profile":
        res = worker_profile(dev, smoke, argv[1], int(argv[2]))
    elif kind == "parts":
        res = worker_parts(dev, smoke, argv[1], [int(b) for b in argv[2].split(",")])
    else:
        res = worker_compile(dev, smoke, argv[1], [int(b) for b in argv[2].split(",")],
                             "streams" in argv[3:], "bigstreams" in argv[3:])
    print("RESULT " + json.dumps(res), flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        run_worker(sys.argv[2:])
        # no interpreter teardown: it waited on Inductor's compile workers and held a step
        # past its timeout after the result was printed (run AI)
        sys.stderr.flush()
        os._exit(0)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=540, help="seconds for the whole plan")
    ap.add_argument("--plan", nargs="+", help="labels (prefixes) of PLAN steps to run")
    ap.add_argument("--cache", type=Path, help="Inductor cache folder (default: a temp one)")
    ap.add_argument("--json", type=Path, help="write all results here")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    cache = args.cache or Path(tempfile.mkdtemp(prefix="lp_levers_"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "TORCHINDUCTOR_CACHE_DIR": str(cache / "inductor"),
           "TRITON_CACHE_DIR": str(cache / "triton")}
    plan = [p for p in PLAN if not args.plan or any(p[0].startswith(x) for x in args.plan)]
    if args.smoke:
        plan = [p for p in plan if "warm" not in p[0]][:4]
    t_start = time.perf_counter()
    results: dict = {}
    for label, wargs, timeout in plan:
        left = args.budget - (time.perf_counter() - t_start)
        if left < 30:
            print(f"\n[skip] {label}: budget spent")
            results[label] = {"skipped": "budget"}
            continue
        print(f"\n== {label}", flush=True)
        cmd = [sys.executable, __file__, "--worker", *wargs] + (["--smoke"] if args.smoke else [])
        t = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                  timeout=min(timeout, left))
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            rec = [json.loads(ln[7:]) for ln in out.splitlines() if ln.startswith("RESULT ")]
            print("\n".join(ln for ln in out.splitlines() if not ln.startswith("RESULT ")) +
                  f"\n  {label}: TIMED OUT after {time.perf_counter() - t:.0f} s" +
                  (" (its result came before: kept)" if rec else ""))
            results[label] = (rec[0] if rec else {}) | {"timeout_s": time.perf_counter() - t}
            continue
        lines = proc.stdout.splitlines()
        print("\n".join(ln for ln in lines if not ln.startswith("RESULT ")), flush=True)
        rec = [json.loads(ln[7:]) for ln in lines if ln.startswith("RESULT ")]
        if proc.returncode or not rec:
            print(f"  {label}: FAILED rc={proc.returncode}\n{proc.stderr[-1500:]}")
            results[label] = {"failed": proc.stderr[-1500:]}
        else:
            results[label] = rec[0] | {"wall_s": time.perf_counter() - t}
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    print("\n== summary (compile variants)")
    for label, r in results.items():
        rows = [k for k in r if isinstance(r[k], dict) and "compile_s" in r[k]]
        for k in rows:
            c = r[k]
            print(f"  {label:<26}{k:>5} compile {c['compile_s']:6.1f} s  {c['ms_frame']:6.2f} "
                  f"ms/frame {c['fps']:6.0f} fps" +
                  (f"  err {c['err_vs_fp32']:.1e}" if "err_vs_fp32" in c else ""))
        for k in (k for k in r if k.startswith("streams")):
            print(f"  {label:<26} {k}: {r[k]:.0f} fps")
        if "timeout_s" in r or "failed" in r or "skipped" in r:
            print(f"  {label:<26} " + ", ".join(k for k in ("timeout_s", "failed", "skipped")
                                                if k in r))
    print(f"total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
