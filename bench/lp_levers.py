"""The renderer's compiled LivePortrait W+G module on a GPU: latency, throughput, parts.

The module is the one ``WarpDecodeRuntime`` compiles for the renderer (``FastWarpDecode``
with every default rewrite and channels_last: the variant ``r19``), compiled with
``torch.compile`` and replayed as a CUDA graph; times are CUDA-event medians of 40 calls
after warm-up, on synthesised weights, 256^2 source -> 512^2 frame. Each step runs in its
own process (Inductor's config is process-wide; one shared on-disk cache, so a second run
of the same step measures the warm-cache compile):

- ``compile``  compile seconds, ms per call and per frame at the batch sizes asked, error
               against fp32 at batch 1; with ``bigstreams``, two or four graphs of a large
               batch replayed side by side on CUDA streams
- ``parts``    the per-network breakdown: W (warping) and G (decoder) each compiled alone,
               W+G compiled whole, F / M (once per avatar, at prepare) eager fp16 + graph
- ``profile``  kernel time of one compiled call by kernel class, and each convolution by
               shape with its TFLOP/s (torch.profiler, no graph)

The plan's labels keep the names of the rounds that first ran them (BENCHMARKS.md names
the command behind each figure; the rounds are in docs/benchmarks-history.md, and the
variants of the earlier rounds are in this file's git history):

    python bench/lp_levers.py --plan r19 --budget 450           # batch 1 (and batch 32)
    python bench/lp_levers.py --plan r20 --budget 250           # batch 16 / 32, streams
    python bench/lp_levers.py --plan "r23 parts" --budget 330   # per network
    python bench/lp_levers.py --plan "r21 profile" --budget 120 # where batch 32's time goes
    python bench/lp_levers.py --smoke                           # tiny, on the CPU
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

from engine.renderers.liveportrait.fast import (  # noqa: E402
    FastWarpDecode,
    GraphRunner,
)

# the renderer's W+G module (RuntimeOptions' defaults with channels_last, as the renderer
# sets it with the compile on CUDA); lp_levers always adds pad8 and width_taps (below)
R19 = {"depth_taps": True, "phase_up": True, "occlusion_taps": True, "compose_shortcut": True,
       "mask_width_taps": True, "img_taps": True, "distinct_phases": True,
       "phase_major": True, "channels_last": True, "split_hidden": True,
       "mask_packed": True, "nhwc_tap_weights": True}

# name -> (torch.compile keyword arguments, FastWarpDecode keyword arguments)
VARIANTS: dict[str, tuple[dict, dict]] = {
    "r19": ({}, R19),
}

# (label, worker arguments, timeout s): run in order while the time budget lasts
PLAN = [
    # batch 1 (round 19): --plan r19 --budget 450
    ("r19 r19 b1", ["compile", "r19", "1"], 70),
    ("r19 again r19 b1", ["compile", "r19", "1"], 50),
    ("r19 profile r19 b1", ["profile", "r19", "1"], 60),
    ("r19 big r19 b32", ["compile", "r19", "32"], 90),
    # batched throughput, also two graphs side by side (round 20): --plan r20 --budget 250
    ("r20 big r19 b16 b32 + bigstreams", ["compile", "r19", "16,32", "bigstreams"], 240),
    # where batch 32's time goes (round 21): --plan "r21 profile" --budget 120
    ("r21 profile r19 b32", ["profile", "r19", "32"], 110),
    # the per-network breakdown (run AY): --plan "r23 parts" --budget 330
    ("r23 parts r19 b1 b32", ["parts", "r19", "1,32"], 290),
]


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


# ------------------------------------------------------------------------------ workers
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
    torch.backends.cudnn.benchmark = True  # as WarpDecodeRuntime sets it on CUDA
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
                   big_streams: bool = False) -> dict:
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
    if kind == "profile":
        res = worker_profile(dev, smoke, argv[1], int(argv[2]))
    elif kind == "parts":
        res = worker_parts(dev, smoke, argv[1], [int(b) for b in argv[2].split(",")])
    else:
        res = worker_compile(dev, smoke, argv[1], [int(b) for b in argv[2].split(",")],
                             "bigstreams" in argv[3:])
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
