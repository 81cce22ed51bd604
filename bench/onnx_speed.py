"""onnxruntime against the project's torch path: LivePortrait warp + decode (W then G,
256x256 source -> 512x512 frame, batch 1) and the Audio2Motion TCN step, in one run.

Weights are synthesised with the conformance rule (same compute as the official ones) and
exported to ONNX here (opset 20). Rows, medians after warm-up, input sets rotated:

- torch rows on CUDA: CUDA-event time of the call, and wall time with a synchronize;
- onnxruntime rows: wall time of ``session.run`` with host arrays in and out (what
  ``--backend onnx`` does: on the CUDA provider that includes the copies);
- the same on the CPU (all cores) for torch fp32 and onnxruntime's CPU provider.

Each ONNX row is checked against torch fp32 (rel L2). Providers that this onnxruntime lacks
are listed as such.

    python bench/onnx_speed.py                 # on the GPU machine
    python bench/onnx_speed.py --smoke         # tiny, on the CPU: checks it runs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from liveportrait_speed import make_inputs, rel, synth_networks  # noqa: E402

from engine.onnx.export import export_a2m_step, export_liveportrait  # noqa: E402

ROWS: list[dict] = []


def median_ms(fn: Callable[[int], object], warmup: int, iters: int,
              sync: Callable[[], None] | None = None, events: bool = False) -> dict:
    """Median wall (and CUDA-event) ms of ``fn(i)`` over ``iters`` calls after warm-up."""
    for i in range(warmup):
        fn(i)
    if sync:
        sync()
    walls, evs = [], []
    for i in range(iters):
        if events:
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
        t0 = time.perf_counter()
        fn(i)
        if events:
            b.record()
        if sync:
            sync()
        walls.append((time.perf_counter() - t0) * 1e3)
        if events:
            evs.append(a.elapsed_time(b))
    out = {"wall_ms": statistics.median(walls)}
    if events:
        out["event_ms"] = statistics.median(evs)
    return out


def row(label: str, timing: dict, err: float | None = None, note: str = "") -> None:
    """Record and print one result row."""
    r = {"path": label, **timing, "rel_l2_vs_torch_fp32": err, "note": note}
    ROWS.append(r)
    ev = f"{timing['event_ms']:.2f}" if "event_ms" in timing else "-"
    e = f"{err:.1e}" if err is not None else "-"
    print(f"  {label:<46}{ev:>9}{timing.get('wall_ms', float('nan')):>10.2f}{e:>10}  {note}",
          flush=True)


def ort_session(path: Path, provider: str, threads: int = 0):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    opts_p: dict = {}
    if provider == "TensorrtExecutionProvider":
        opts_p = {"trt_fp16_enable": False, "trt_engine_cache_enable": False}
    names = list(dict.fromkeys([provider, "CPUExecutionProvider"]))
    return ort.InferenceSession(str(path), opts, providers=names,
                                provider_options=[opts_p, {}][:len(names)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--cpu-iters", type=int, default=5)
    ap.add_argument("--compile", action="store_true", help="add the compiled torch path")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        args.size, args.warmup, args.iters, args.cpu_iters = 128, 1, 2, 2
    import onnxruntime as ort

    cuda = torch.cuda.is_available() and not args.smoke
    card = torch.cuda.get_device_name(0) if cuda else "no GPU"
    providers = ort.get_available_providers()
    print(f"card: {card}; torch {torch.__version__}; onnxruntime {ort.__version__}; "
          f"providers: {', '.join(providers)}; CPU threads: {torch.get_num_threads()}",
          flush=True)
    t0 = time.perf_counter()
    nets = synth_networks()
    tmp = Path(tempfile.mkdtemp(prefix="onnx-speed-"))
    export_liveportrait(nets, tmp, args.size, names=("warping", "spade"))
    print(f"synthesised + exported W, G at {args.size} in {time.perf_counter() - t0:.1f} s",
          flush=True)
    hw = args.size // 4
    sets32 = [make_inputs(1, hw, torch.device("cpu"), torch.float32, seed=s) for s in range(3)]
    np_sets = [tuple(x.numpy() for x in s) for s in sets32]
    with torch.no_grad():  # the reference: torch fp32 on the CPU
        ref = [nets.spade(nets.warping(*s)["out"]) for s in sets32]

    print("\nW+G batch 1, ms per frame (medians)\n"
          f"  {'path':<46}{'events':>9}{'wall':>10}{'relL2':>10}")
    if cuda:
        torch_rows(nets, sets32, ref, args)
    onnx_rows(tmp, np_sets, ref, providers, args, cuda)
    with torch.no_grad():
        cpu_fn = lambda i: nets.spade(nets.warping(*sets32[i % 3])["out"])  # noqa: E731
        row("torch fp32 eager, CPU", median_ms(cpu_fn, 1, args.cpu_iters), 0.0)
    a2m_rows(tmp, args)
    meta = {"card": card, "torch": torch.__version__, "onnxruntime": ort.__version__,
            "providers": providers, "size": args.size}
    save(args.out, meta)
    if cuda and args.compile:  # last: the slowest to start, and it may fail
        print("\nW+G batch 1, compiled torch path, ms per frame")
        compiled_row(nets, sets32, ref, args)
        save(args.out, meta)
    print(f"\ncard: {card}; torch {torch.__version__}; onnxruntime {ort.__version__}")


def save(out: Path, meta: dict) -> None:
    """The rows so far as JSON under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "onnx_speed.json").write_text(json.dumps({**meta, "rows": ROWS}, indent=1))


@torch.no_grad()
def torch_rows(nets, sets32, ref, args) -> None:
    """The project's torch paths on CUDA."""
    import copy

    from engine.renderers.liveportrait.fast import GraphRunner
    from engine.renderers.liveportrait.runtime import RuntimeOptions, WarpDecodeRuntime

    dev = torch.device("cuda")
    sync = torch.cuda.synchronize
    torch.backends.cudnn.benchmark = True
    w = copy.deepcopy(nets.warping).to(dev)
    g = copy.deepcopy(nets.spade).to(dev)
    sets = [tuple(x.to(dev) for x in s) for s in sets32]

    def plain(*a):
        return g(w(*a)["out"])

    row("torch fp32 eager (plain networks)",
        median_ms(lambda i: plain(*sets[i % 3]), args.warmup, args.iters, sync, True),
        rel(plain(*sets[0]), ref[0]), "TF32 convs (cuDNN's default)")
    graph = GraphRunner(plain, sets[0])
    row("torch fp32 + CUDA graph",
        median_ms(lambda i: graph(*sets[i % 3]), args.warmup, args.iters, sync, True),
        rel(graph(*sets[0]), ref[0]))
    hw = args.size // 4
    fast = WarpDecodeRuntime(nets.warping, nets.spade, hw, dev, RuntimeOptions())
    row("torch fp16 fast + CUDA graph (runtime, eager)",
        median_ms(lambda i: fast(*sets[i % 3]), args.warmup, args.iters, sync, True),
        rel(fast(*sets[0]).float(), ref[0]), "fp16: rel L2 of fp16 itself")


@torch.no_grad()
def compiled_row(nets, sets32, ref, args) -> None:
    """The renderer's default on CUDA: fp16, channels_last, torch.compile + CUDA graph."""
    from engine.renderers.liveportrait.runtime import RuntimeOptions, WarpDecodeRuntime

    dev = torch.device("cuda")
    sync = torch.cuda.synchronize
    sets = [tuple(x.to(dev) for x in s) for s in sets32]
    hw = args.size // 4
    t0 = time.perf_counter()
    try:
        opts = RuntimeOptions(channels_last=True, compile=True,
                              cache_dir=Path(tempfile.mkdtemp(prefix="inductor-")))
        rt = WarpDecodeRuntime(nets.warping, nets.spade, hw, dev, opts)
        rt(*sets[0])
        sync()
        note = f"renderer's default; compile {time.perf_counter() - t0:.0f} s"
        timing = median_ms(lambda i: rt(*sets[i % 3]), args.warmup, args.iters, sync, True)
        # checked after the timing, on a fresh call: the output is a CUDA graph's buffer,
        # which each replay overwrites
        row("torch fp16 compiled + CUDA graph (renderer)", timing,
            rel(rt(*sets[0]).float(), ref[0]), note)
    except Exception:  # report and go on
        traceback.print_exc()


def onnx_rows(folder: Path, np_sets, ref, providers, args, cuda: bool) -> None:
    """W then G on each onnxruntime provider there is."""
    wanted = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    for p in wanted:
        label = f"onnxruntime {p.removesuffix('ExecutionProvider')} EP fp32"
        if p not in providers:
            print(f"  {label:<46}{'-':>9}{'-':>10}{'-':>10}  not in this onnxruntime build")
            continue
        if p != "CPUExecutionProvider" and not cuda:
            continue
        try:
            t0 = time.perf_counter()
            sw, sg = ort_session(folder / "warping.onnx", p), ort_session(folder / "spade.onnx", p)

            def run(i: int, sw=sw, sg=sg) -> np.ndarray:
                f, kd, ks = np_sets[i % 3]
                out = sw.run(["out"], {"feature_3d": f, "kp_driving": kd, "kp_source": ks})[0]
                return sg.run(["image"], {"feature": out})[0]

            got = run(0)
            note = f"sessions + first run {time.perf_counter() - t0:.1f} s"
            cpu = p == "CPUExecutionProvider"
            timing = median_ms(run, 1 if cpu else args.warmup,
                               args.cpu_iters if cpu else args.iters)
            row(label, timing, rel(torch.from_numpy(got), ref[0]), note)
        except Exception as exc:  # a provider that fails to start: say why, go on
            print(f"  {label:<46} failed: {str(exc).splitlines()[0][:200]}")


def a2m_rows(tmp: Path, args) -> None:
    """The Audio2Motion TCN step on 10 new frames (a 100 ms push): numpy vs onnxruntime."""
    from engine.audio2motion.learned import WEIGHTS, _NumpyTcn
    from engine.audio2motion.tcn import load_npz
    from engine.onnx.a2m import OrtTcn
    from engine.onnx.export import a2m_step_shapes
    from engine.onnx.session import OnnxNet

    dims, w, _ = load_npz(WEIGHTS)
    path = export_a2m_step(WEIGHTS, tmp / "a2m.onnx")
    ref = _NumpyTcn(dims, w, 2)
    ort_net = OrtTcn(OnnxNet(path, "cpu", a2m_step_shapes(dims), threads=1), dims, 2)
    x = np.random.default_rng(0).standard_normal((10, dims.n_in)).astype(np.float32)
    err = float(np.linalg.norm(ort_net(x) - ref(x)) / np.linalg.norm(ref(x)))
    print(f"\nAudio2Motion TCN step, 10 frames (100 ms of audio), CPU, ms\n"
          f"  {'path':<46}{'events':>9}{'wall':>10}{'relL2':>10}")
    row("a2m numpy (torch backend's path)", median_ms(lambda i: ref(x), 20, 200))
    row("a2m onnxruntime CPU EP, 1 thread", median_ms(lambda i: ort_net(x), 20, 200), err,
        "rel L2 vs numpy")


if __name__ == "__main__":
    main()
