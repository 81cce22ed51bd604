"""LivePortrait speed on a GPU: warp + decode (W then G), 256x256 source -> 512x512 frame.

Weights are synthesised with the conformance rule (same compute as the official ones).
One command runs every section and prints tables (medians of CUDA-event timings after
warm-up; several input sets rotated so caches do not flatter):

1. check    fp32 / fp16, plain and fast path, against the reference fixtures
2. variants ms/frame at batch 1 and 8: plain PyTorch baseline (fp32, fp16, + CUDA graph)
            and each optimisation of the fast path added in turn
3. parts    per network at batch 1 (F, M, MLPs, W, G)
4. batch    frames/s over batch sizes (several streams in one call), eager and compiled
5. restart  time from a fresh process to the first frame, cold and warm compile cache
6. renderer the whole renderer on the bundled avatar: MotionFrames -> uint8 frames

    python bench/liveportrait_speed.py                     # everything, on a CUDA machine
    python bench/liveportrait_speed.py --sections check variants
    python bench/liveportrait_speed.py --smoke             # tiny, on the CPU: checks it runs
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

T_START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.renderers.liveportrait import (  # noqa: E402
    NETWORKS,
    LivePortraitNetworks,
    keypoints_from_motion,
    load_networks,
    network_from_state_dict,
)
from engine.renderers.liveportrait.fast import (  # noqa: E402
    FastSPADE,
    FastWarping,
    GraphRunner,
)
from engine.renderers.liveportrait.runtime import (  # noqa: E402
    RuntimeOptions,
    WarpDecodeRuntime,
)

FIXTURES = ROOT / "tests" / "fixtures" / "liveportrait"
TESTDATA = ROOT / "tests" / "liveportrait"
Fn = Callable[..., Tensor]


def _testdata():
    sys.path.insert(0, str(TESTDATA))
    spec = importlib.util.spec_from_file_location("lp_testdata", TESTDATA / "lp_testdata.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def synth_networks() -> LivePortraitNetworks:
    """All five networks holding the stand-in weights of the conformance fixtures."""
    td = _testdata()
    manifest = td.load_manifest()
    nets = {name: network_from_state_dict(name, td.synth_checkpoint(f, manifest), f)
            for name, (f, _, _) in NETWORKS.items()}
    return LivePortraitNetworks(**nets)


def write_weights(folder: Path) -> None:
    """Synthesised checkpoints saved in the official layout (for the restart probe)."""
    td = _testdata()
    manifest = td.load_manifest()
    for filename, sub, _ in NETWORKS.values():
        (folder / sub).mkdir(parents=True, exist_ok=True)
        torch.save(td.synth_checkpoint(filename, manifest), folder / sub / filename)


def time_ms(fn: Fn, input_sets: list[tuple[Tensor, ...]], warmup: int, iters: int) -> float:
    """Median time of one call in ms (CUDA events on a GPU), rotating over input sets."""
    cuda = input_sets[0][0].is_cuda
    for i in range(warmup):
        fn(*input_sets[i % len(input_sets)])
    times = []
    for i in range(iters):
        inputs = input_sets[i % len(input_sets)]
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


def input_sets(batch: int, hw: int, device: torch.device, dtype: torch.dtype, n: int = 3):
    return [make_inputs(batch, hw, device, dtype, seed=s) for s in range(n)]


def rel(a: Tensor, b: Tensor) -> float:
    return float((a.double().cpu() - b.double().cpu()).norm() / b.double().cpu().norm())


def plain_fn(nets: LivePortraitNetworks, device: torch.device, dtype: torch.dtype) -> Fn:
    """The networks as written (conformance code), moved to ``device``/``dtype``."""
    w = _copy(nets.warping).to(device, dtype)
    g = _copy(nets.spade).to(device, dtype)

    def run(feature: Tensor, kp_d: Tensor, kp_s: Tensor) -> Tensor:
        return g(w(feature, kp_d, kp_s)["out"])

    return run


def _copy(m: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(m)


def graphed(fn: Fn, inputs: tuple[Tensor, ...]) -> Fn:
    return GraphRunner(fn, inputs)


# --------------------------------------------------------------------------- sections
@torch.no_grad()
def section_check(nets: LivePortraitNetworks, device: torch.device, args: argparse.Namespace,
                  results: dict) -> None:
    torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32 here (TF32 is ~1e-3 off)
    torch.backends.cuda.matmul.allow_tf32 = False
    with np.load(FIXTURES / "fixtures.npz") as data:
        fx = {k: torch.from_numpy(data[k]) for k in data.files}
    args32 = tuple(fx[k] for k in ("W_in_feature_3d", "W_in_kp_driving", "W_in_kp_source"))
    hw = args32[0].shape[-1]
    dtypes = [torch.float32] + ([torch.float16] if device.type == "cuda" else [])
    print("\n[check] relative L2 error vs reference fixtures (128x128 source)")
    ref_frame = None
    rows = {}
    for dtype in dtypes:
        a = tuple(x.to(device, dtype) for x in args32)
        w = _copy(nets.warping).to(device, dtype)
        g = _copy(nets.spade).to(device, dtype)
        w_out = w(*a)
        errs = {"W.out": rel(w_out["out"], fx["W_out_out"]),
                "G": rel(g(fx["G_in_feature"].to(device, dtype)), fx["G_out"])}
        frame = g(w_out["out"]).float()
        if ref_frame is None:
            ref_frame = frame
        fast_w = FastWarping(nets.warping, hw).to(device, dtype)
        fast_g = FastSPADE(nets.spade).to(device, dtype)
        errs["fast W"] = rel(fast_w(*a), fx["W_out_out"])
        errs["fast G"] = rel(fast_g(fx["G_in_feature"].to(device, dtype)), fx["G_out"])
        for cl in (False, True):
            opts = RuntimeOptions(dtype=dtype, channels_last=cl, cuda_graphs=False)
            rt = WarpDecodeRuntime(nets.warping, nets.spade, hw, device, opts)
            errs[f"fast W->G{' cl' if cl else ''} vs fp32 W->G"] = rel(rt(*a), ref_frame)
        errs["plain W->G vs fp32 W->G"] = rel(frame, ref_frame)
        name = str(dtype).removeprefix("torch.")
        rows[name] = errs
        print(f"  {name:<8} " + "  ".join(f"{k} {v:.2e}" for k, v in errs.items()), flush=True)
    if args.compile and device.type == "cuda":
        a = tuple(x.to(device, torch.float16) for x in args32)
        rt = WarpDecodeRuntime(nets.warping, nets.spade, hw, device,
                               RuntimeOptions(channels_last=True, compile=True))  # renderer's
        rows["float16"]["compiled W->G vs fp32 W->G"] = rel(rt(*a), ref_frame)
        print(f"  float16  compiled W->G vs fp32 W->G "
              f"{rows['float16']['compiled W->G vs fp32 W->G']:.2e}", flush=True)
    torch.backends.cudnn.allow_tf32 = True
    results["check"] = rows


@torch.no_grad()
def section_variants(nets: LivePortraitNetworks, device: torch.device, args: argparse.Namespace,
                     results: dict) -> None:
    hw = args.size // 4
    cuda = device.type == "cuda"
    f16 = torch.float16 if cuda else torch.float32

    def fast(**kw) -> Callable[[tuple], Fn]:
        def build(example: tuple) -> Fn:
            opts = RuntimeOptions(dtype=kw.pop("dtype", f16), cuda_graphs=False, **kw)
            return WarpDecodeRuntime(nets.warping, nets.spade, hw, device, opts)
        return build

    # (label, dtype, builder, capture graph)
    variants: list[tuple[str, torch.dtype, Callable[[tuple], Fn], bool]] = [
        ("plain fp32 eager", torch.float32, lambda ex: plain_fn(nets, device, torch.float32),
         False),
    ]
    if cuda and args.variant_set == "final":
        # the baseline and what the renderer runs (its RuntimeOptions: channels_last, every
        # default rewrite), nothing else: the headline comparison in one run
        variants += [
            ("plain fp16 eager", f16, lambda ex: plain_fn(nets, device, f16), False),
            ("plain fp16 + graph", f16, lambda ex: plain_fn(nets, device, f16), True),
            ("fast fp16 cl + graph (eager)", f16, fast(channels_last=True), True),
            ("fast fp16 cl compile + graph", f16, fast(channels_last=True, compile=True), True),
        ]
    elif cuda:
        variants += [
            ("plain fp16 eager", f16, lambda ex: plain_fn(nets, device, f16), False),
            ("plain fp16 + graph", f16, lambda ex: plain_fn(nets, device, f16), True),
            ("fast fp16 eager", f16, fast(channels_last=False), False),
            ("fast fp16 + graph", f16, fast(channels_last=False), True),
            ("fast fp16 cl + graph", f16, fast(channels_last=True), True),
            ("fast fp16 cl grouped + graph", f16, fast(channels_last=True, grouped=True), True),
            ("fast fp16 cl cl3d + graph", f16,
             fast(channels_last=True, channels_last_3d=True), True),
        ]
        if args.compile:
            variants += [
                ("fast fp16 compile + graph", f16, fast(channels_last=False, compile=True), True),
                ("fast fp16 cl compile + graph", f16, fast(channels_last=True, compile=True),
                 True),
            ]
    else:
        variants.append(("fast fp32 cl", torch.float32, fast(channels_last=True), False))
    print(f"\n[variants] W+G, {args.size}x{args.size} source -> {2 * args.size}x{2 * args.size}"
          f" frame, median of {args.iters} after {args.warmup} warm-up")
    header = f"{'variant':<32}" + "".join(f"{f'b{b} ms/frame':>14}" for b in args.batches)
    print(header + "\n" + "-" * len(header))
    table = {}
    for label, dtype, build, graph in variants:
        row, cells = f"{label:<32}", {}
        for batch in args.batches:
            sets = input_sets(batch, hw, device, dtype)
            try:
                fn = build(sets[0])
                if graph:
                    fn = graphed(fn, sets[0])
                ms = time_ms(fn, sets, args.warmup, args.iters) / batch
                cells[batch] = ms
                row += f"{ms:>14.2f}"
            except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
                row += f"{'error':>14}"
                print(f"  {label} b{batch}: {type(exc).__name__}: {str(exc)[:160]}")
            fn = None
            if cuda:
                torch.cuda.empty_cache()
        table[label] = cells
        print(row, flush=True)
    results["variants"] = table


@torch.no_grad()
def section_parts(nets: LivePortraitNetworks, device: torch.device, args: argparse.Namespace,
                  results: dict) -> None:
    cuda = device.type == "cuda"
    dtype = torch.float16 if cuda else torch.float32
    hw = args.size // 4
    sets = input_sets(1, hw, device, dtype)
    img = [torch.rand(1, 3, args.size, args.size, device=device, dtype=dtype) for _ in range(3)]
    parts: dict[str, float] = {}
    f = _copy(nets.appearance).to(device, dtype)
    m = _copy(nets.motion).to(device, dtype)
    parts["F appearance (prepare, once)"] = time_ms(f, [(x,) for x in img], 3, 10)
    parts["M motion (prepare, once)"] = time_ms(m, [(x,) for x in img], 3, 10)
    r = _copy(nets.retargeting).to(device, torch.float32)
    kp = [(s[2].float(), s[1].float()) for s in sets]
    parts["stitching MLP (fp32)"] = time_ms(r.stitch, kp, 3, args.iters)
    cl = torch.channels_last
    fw = FastWarping(nets.warping, hw).to(device, dtype)
    fg = FastSPADE(nets.spade).to(device, dtype).to(memory_format=cl)
    wfn = graphed(fw, sets[0]) if cuda else fw
    parts["W warping, fast (+graph)"] = time_ms(wfn, sets, args.warmup, args.iters)
    feats = [(fw(*s).contiguous(memory_format=cl),) for s in sets]
    gfn = graphed(fg, feats[0]) if cuda else fg
    parts["G decoder, fast cl (+graph)"] = time_ms(gfn, feats, args.warmup, args.iters)
    pw = _copy(nets.warping).to(device, dtype)
    pg = _copy(nets.spade).to(device, dtype)
    parts["W warping, plain (+graph)"] = time_ms(
        graphed(lambda *a: pw(*a)["out"], sets[0]) if cuda else (lambda *a: pw(*a)["out"]),
        sets, args.warmup, args.iters)
    parts["G decoder, plain (+graph)"] = time_ms(graphed(pg, feats[0]) if cuda else pg,
                                                 [(x[0].contiguous(),) for x in feats],
                                                 args.warmup, args.iters)
    print("\n[parts] batch 1, ms (fp16 on CUDA)")
    for k, v in parts.items():
        print(f"  {k:<34}{v:>8.2f}")
    results["parts"] = parts


@torch.no_grad()
def section_batch(nets: LivePortraitNetworks, device: torch.device, args: argparse.Namespace,
                  results: dict) -> None:
    cuda = device.type == "cuda"
    hw = args.size // 4
    out = {}
    configs = [("fast fp16 + graph", RuntimeOptions(channels_last=False, cuda_graphs=cuda))]
    if args.compile and cuda:
        configs.append(("fast fp16 compile + graph",
                        RuntimeOptions(channels_last=False, compile=True)))
    for label, opts in configs:
        out[label] = _throughput(nets, device, args, hw, label, opts)
    results["batch"] = out


def _throughput(nets, device, args, hw, label, opts) -> dict:
    cuda = device.type == "cuda"
    out = {}
    print(f"\n[batch] {label}")
    rt = WarpDecodeRuntime(nets.warping, nets.spade, hw, device, opts)
    for batch in args.throughput_batches:
        sets = input_sets(batch, hw, device, rt.dtype, n=2)
        try:
            ms = time_ms(rt, sets, 3, max(5, args.iters // 4))
        except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
            print(f"  batch {batch}: {type(exc).__name__}: {str(exc)[:120]}")
            break
        out[batch] = {"ms_per_call": ms, "fps": 1000 * batch / ms}
        print(f"  batch {batch:>3}: {ms:8.2f} ms/call  {ms / batch:6.2f} ms/frame  "
              f"{1000 * batch / ms:7.0f} frames/s", flush=True)
        rt._graphs.clear()
        if cuda:
            torch.cuda.empty_cache()
    return out


@torch.no_grad()
def section_renderer(nets: LivePortraitNetworks, device: torch.device,
                     args: argparse.Namespace, results: dict) -> None:
    """The whole renderer: MotionFrame batch -> uint8 frames of the bundled avatar (512)."""
    from engine.avatar import load_avatar
    from engine.motion import N_CHANNELS, channel_index
    from engine.renderers.liveportrait.renderer import LivePortraitRenderer

    # with --compile: the compiled W+G (compiled in the foreground here), as the renderer
    # runs once its background compile has landed
    opts = RuntimeOptions(channels_last=True, cuda_graphs=device.type == "cuda",
                          compile=args.compile and device.type == "cuda")
    r = LivePortraitRenderer(device=device, nets=nets, input_size=args.size, options=opts)
    t0 = time.perf_counter()
    state = r.prepare(load_avatar(ROOT / "avatars" / "leo"), 2 * args.size)
    prep = time.perf_counter() - t0
    out = {"prepare_s": prep, "compiled": opts.compile}
    kind = "compiled" if opts.compile else "eager"
    print(f"\n[renderer] leo, {2 * args.size}px frames, W+G {kind}; prepare {prep:.2f} s")

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def wall(fn, *fn_args) -> float:
        ts = []
        for _ in range(n):
            t = time.perf_counter()
            fn(*fn_args)
            sync()
            ts.append((time.perf_counter() - t) * 1e3)
        return statistics.median(ts)

    n = max(3, args.iters // 5)
    first: dict[int, np.ndarray] = {}
    # graphed: the renderer's CUDA path (mapping, W+G and paste each one graph replay);
    # eager: the same torch ops launched one by one (W+G still graphed by its runtime)
    for mode in (("graphed", "eager") if device.type == "cuda" else ("eager",)):
        r.use_graphs = mode == "graphed"
        state.graphs.clear()
        for batch in (1, 8):
            m = np.zeros((batch, N_CHANNELS), np.float32)
            m[:, channel_index("jawOpen")] = np.linspace(0, 1, batch)
            frames = r.render(state, m)
            if batch in first:  # same kernels either way: the frames must agree
                diff = int(np.abs(first[batch].astype(int) - frames).max())
                out[f"b{batch}_max_diff_vs_graphed"] = diff
            else:
                first[batch] = frames
            ms = wall(r.render, state, m)
            # where the time goes: mapping, W+G alone, paste + copy to the host alone
            x_d = r._map(state, m).clone()
            crops = r._crops([state], [x_d]).clone()
            parts = {"mapping": wall(r._map, state, m), "W+G": wall(r._crops, [state], [x_d]),
                     "paste + to host": wall(r._paste, state, crops)}
            out[f"{mode}_b{batch}_ms_per_frame"] = ms / batch
            out[f"{mode}_b{batch}_parts_ms_per_call"] = parts
            print(f"  {mode} batch {batch}: {ms / batch:.2f} ms/frame wall (mapping, W+G, "
                  f"paste, to host), frames {frames.shape}; per call: "
                  + ", ".join(f"{k} {v:.2f} ms" for k, v in parts.items()), flush=True)
    if "b1_max_diff_vs_graphed" in out:
        print(f"  eager vs graphed frames: max |diff| b1 {out['b1_max_diff_vs_graphed']}, "
              f"b8 {out['b8_max_diff_vs_graphed']} (uint8 levels)")
    results["renderer"] = out


def section_restart(args: argparse.Namespace, results: dict) -> None:
    """Fresh processes: weights from disk -> F, M -> runtime -> first frame; compile on/off,
    cold then warm cache."""
    tmp = Path(tempfile.mkdtemp(prefix="lp_restart_"))
    weights = tmp / "weights"
    write_weights(weights)
    out = {}
    print("\n[restart] fresh process -> first frame (s); compile cache in", tmp / "cache")
    runs = [("eager + graph", [], "first"), ("eager + graph", [], "again")]
    if args.compile:
        runs += [("background compile", ["--compile", "--background"], "cold"),
                 ("background compile", ["--compile", "--background"], "warm"),
                 ("compile + graph", ["--compile"], "warm")]
    if args.compile and args.eager_benchmark:  # the eager first frames with cuDNN's
        bench = ["--compile", "--background", "--eager-benchmark"]  # benchmark (before run
        runs += [("bg eager benchmark", bench, "warm"),  # AU), in turns with the default
                 ("background compile", ["--compile", "--background"], "warm again"),
                 ("bg eager benchmark", bench, "warm again")]
    if args.aot_only:
        runs = []
    if args.aot or args.aot_only:  # AOTInductor packages: built once (cold), then loaded
        runs += [("aot background", ["--compile", "--background", "--aot"], "cold"),
                 ("aot background", ["--compile", "--background", "--aot"], "warm")]
    for label, flags, phase in runs:
        cmd = [sys.executable, __file__, "--probe", str(weights), "--cache", str(tmp / "cache"),
               "--size", str(args.size)] + flags
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.probe_timeout,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
        except subprocess.TimeoutExpired:
            print(f"  {label:<16} {phase}: timed out after {args.probe_timeout} s")
            out[f"{label} {phase}"] = {"timeout": args.probe_timeout}
            continue
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode or not lines:
            print(f"  {label} {phase}: failed rc={proc.returncode}\n{proc.stderr[-2000:]}")
            continue
        rec = json.loads(lines[-1])
        out[f"{label} {phase}"] = rec
        print(f"  {label:<16} {phase}: " + "  ".join(
            f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in rec.items()),
            flush=True)
    results["restart"] = out


def _other_stacks(depth: int = 12) -> list[list[str]]:
    """Every other thread's innermost ``depth`` frames, innermost first."""
    me = threading.get_ident()
    return [[f"{'/'.join(Path(f.filename).parts[-2:])}:{f.lineno} {f.name}"
             for f in reversed(traceback.extract_stack(frame)[-depth:])]
            for tid, frame in sys._current_frames().items() if tid != me]


@torch.no_grad()
def probe(args: argparse.Namespace) -> None:
    """One restart: import -> load weights -> prepare source -> build runtime -> frame."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    marks = {"import": time.perf_counter() - T_START}
    torch.backends.cudnn.benchmark = True
    nets = load_networks(args.probe, device=device)
    marks["load"] = time.perf_counter() - T_START
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    src = torch.rand(1, 3, args.size, args.size, device=device)
    f_s = nets.appearance(src)
    x_s = keypoints_from_motion(nets.motion(src))
    x_s.sum().item()
    marks["prepare_FM"] = time.perf_counter() - T_START
    rt = WarpDecodeRuntime(nets.warping, nets.spade, args.size // 4, device,
                           RuntimeOptions(dtype=dtype, channels_last=True, compile=args.compile,
                                          cache_dir=Path(args.cache),
                                          background_compile=args.background,
                                          eager_benchmark=args.eager_benchmark,
                                          aot=args.aot))
    marks["build"] = time.perf_counter() - T_START
    # LP_STALL_TRACE=1: the other threads' stacks right after each stall (the thread that
    # held the GIL has just let go, so it is still at or just past that call); what they
    # showed is in docs/benchmarks-history.md, "What the served frames wait for" (run AX)
    trace = bool(os.environ.get("LP_STALL_TRACE"))
    frame = rt(f_s, x_s + 0.01, x_s)
    frame.float().mean().item()
    marks["first_frame"] = time.perf_counter() - T_START
    sets = [(f_s, x_s + 0.01 * i, x_s) for i in range(3)]
    if args.background:
        marks["ms_b1_eager_while_compiling"] = time_ms(rt, sets, 2, 20)
        n, walls, slow = 0, [], []
        while (rt._thread is not None and rt._thread.is_alive()) or (rt.compiled_ready.is_set()
                                                                    and rt.fn is not rt.compiled):
            ready, was_eager = rt.compiled_ready.is_set(), rt.fn is not rt.compiled
            t = time.perf_counter()
            rt(*sets[n % 3]).float().mean().item()  # wall: what a 25 fps stream waits
            walls.append((time.perf_counter() - t) * 1e3)
            if walls[-1] > 100:  # a visible stall: when, and was it the swap to compiled?
                phase = ("swap" if was_eager and rt.fn is rt.compiled
                         else "ready" if ready else "compiling")
                slow.append([round(t - T_START, 2), round(walls[-1]), phase])
                if trace:
                    slow[-1].append(_other_stacks())
            n += 1
            time.sleep(0.04)
        marks["frames_before_switch"] = n
        if walls:  # the served frames' wall time while compiling (GIL contention shows here)
            q = np.percentile(walls, [50, 90, 100])
            marks["wall_ms_while_compiling_p50_p90_max"] = [round(float(v), 2) for v in q]
            marks["stalls_over_100ms_t_ms_phase"] = slow
        marks["compiled_active"] = time.perf_counter() - T_START
    marks["compile_call"] = rt.compile_seconds
    marks["ms_b1"] = time_ms(rt, sets, 5, 50)
    print(json.dumps(marks))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run: checks the script runs")
    ap.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    ap.add_argument("--size", type=int, default=256, help="source size (multiple of 128)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--throughput-batches", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--sections", nargs="+",
                    default=["check", "variants", "batch", "restart", "parts", "renderer"])
    ap.add_argument("--compile", action="store_true", help="include torch.compile variants")
    ap.add_argument("--variant-set", choices=["all", "final"], default="all",
                    help="variants section: every layout option, or only the plain baseline "
                         "and the renderer's own eager and compiled paths")
    ap.add_argument("--probe-timeout", type=int, default=420)
    ap.add_argument("--json", type=Path, help="write all results here")
    ap.add_argument("--probe", help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    ap.add_argument("--background", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--eager-benchmark", action="store_true",
                    help="restart: also the background compile with cuDNN's benchmark for "
                         "the eager frames (RuntimeOptions.eager_benchmark=True, the "
                         "default before run AU)")
    ap.add_argument("--aot", action="store_true",
                    help="restart: also AOTInductor packages (cold build, then warm load)")
    ap.add_argument("--aot-only", action="store_true",
                    help="restart: only the AOTInductor packages (cold build, then warm load)")
    args = ap.parse_args()
    if args.probe:
        probe(args)
        return
    if args.smoke:
        args.device = args.device or "cpu"
        args.size, args.batches, args.warmup, args.iters = 128, [1], 0, 1
        args.throughput_batches = [1, 2]
        args.sections = [s for s in args.sections if s != "restart"]
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.size % 128:
        ap.error("--size must be a multiple of 128 (the dense-motion hourglass pools 5 times)")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    t0 = time.perf_counter()
    nets = synth_networks()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"synthesised networks in {time.perf_counter() - t0:.1f} s; torch {torch.__version__};"
          f" {name}")
    results: dict = {"device": name, "torch": torch.__version__, "size": args.size}
    steps = {"check": lambda: section_check(nets, device, args, results),
             "variants": lambda: section_variants(nets, device, args, results),
             "parts": lambda: section_parts(nets, device, args, results),
             "batch": lambda: section_batch(nets, device, args, results),
             "restart": lambda: section_restart(args, results),
             "renderer": lambda: section_renderer(nets, device, args, results)}
    for s in args.sections:
        t = time.perf_counter()
        steps[s]()
        print(f"  ({s}: {time.perf_counter() - t:.0f} s)", flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
