"""The hot path on a device: warp + decode built once, replayed per batch.

:class:`WarpDecodeRuntime` owns the fast W+G module (see ``fast.py``) in the chosen dtype
and memory format, optionally compiled with ``torch.compile`` (Inductor's on-disk cache
under ``cache_dir`` makes a restart reuse what an earlier run compiled), and on CUDA one
captured graph per batch size, so a frame costs one graph launch.

Batch sizes are few on purpose: a call is padded to a size already run, or to the next of
1, 2, 3, 4, 6, 8, 12, ... (``batch_size_for``). With ``background_compile``, a size the
compile has not reached yet is compiled in the compile thread and served meanwhile in chunks
of the sizes already compiled, so no call waits for Dynamo or for cuDNN's benchmark.
Callers wait for results with a stream synchronize (or a copy to the host), never
``torch.cuda.synchronize()``: that one fails while the compile thread captures a graph.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .aot import AotModule
from .fast import FastSPADE, FastWarpDecode, GraphRunner
from .spade import SPADEGenerator
from .warping import WarpingNetwork

log = logging.getLogger(__name__)

# the GIL switch interval while a background compile runs (Python's default: 5 ms)
COMPILE_SWITCH_INTERVAL_S = 0.0005


@dataclass
class RuntimeOptions:
    """How the warp + decode runs (measurements on an H100 in docs/benchmarks-history.md).

    dtype: float16 on CUDA (within 1e-2 of float32 on the fixtures), float32 on the CPU.
    channels_last: NHWC for the 2-D decoder. Eager it is slower; compiled, with today's other
        options, W+G batch 1 on an H100 went 3.21-3.22 -> 3.09-3.13 ms (round 13), so the
        renderer turns it on with the compile on CUDA. Off here: plain CPU runs.
    channels_last_3d: NDHWC for the 3-D hourglass of the dense-motion network.
    grouped: the 12 middle SPADE gamma/beta convs as one grouped conv.
    pad8: zero-pad dense-motion channel counts to multiples of 8 (tensor-core widths; -3%).
    unfold3d: the two full-resolution 3-D convs as 2-D convs over depth-unfolded input.
    width_taps: the 22-channel 7x7x7 mask conv as a 154-channel 7x7x1 conv + shift-add.
    depth_taps: every dense-motion 3-D conv as one 2-D conv over the depth slices (kd x the
        outputs) + a shift-add over depth, on NDHWC tensors (overrides width_taps; compiled
        W+G batch 1: 4.24 -> 3.82 ms on an H100; eager it is slower, 7.8 -> 8.7 ms).
    occlusion_taps: the 2304 -> 1 occlusion conv as a 1x1 conv to 49 (56) outputs + a 7x7
        shift-add (same sums; compiled W+G batch 1 on an H100: 3.78 -> 3.59 ms).
    mask_in: the dense-motion mask conv reads its input zero-padded to this many channels
        (None: 144 with pad8). Alone on an H100 its 7x7 taps conv ran 6% faster at batch 32
        with 160 inputs; inside W+G it bought nothing (b1 3.42 vs 3.40 ms, b32 364 vs 360
        frames/s), so it stays off.
    mask_width_taps: with depth_taps (so only in the compiled warp), the mask conv's width
        taps go to its outputs too: a 7x1 conv with 7 x 7 x 24 outputs + a 49-tap shift-add.
        The conv runs at ~540 TFLOP/s instead of ~340 (compiled W+G on an H100: b1 3.46 ->
        3.33 ms, b32 361 -> 376 frames/s).
    img_taps: the decoder's last conv (64 -> 12, ~40 TFLOP/s) as a 1x1 conv to 9 x 12
        outputs + a 3x3 shift-add (with mask_width_taps: b1 3.33 -> 3.29 ms, b32 equal).
    phase_up: the up blocks' SPADE shared convs computed on the 64^2 segmap as 2x2 phase
        convs instead of 3x3 convs on its 2x / 4x nearest-upsampled copy (16/36 of the
        multiplies, the 256-channel 256^2 copy never built; compiled b1 3.78 -> 3.69 ms).
    distinct_phases: with phase_up, the 4x phase conv computes its 9 distinct phases, not
        all 16 (compiled W+G on an H100: b1 3.28 -> 3.24 ms, b32 377 -> 378 frames/s).
    phase_major: with phase_up, the phase convs' outputs ordered phase-major, so their pixel
        shuffle reads each pixel's channels contiguously in NHWC (see PhaseUpConv2d).
    compose_shortcut: the up blocks' 1x1 shortcut conv composed with their beta conv (one
        3x3 conv with 64 / 256 outputs instead of 256 / 512 then the 1x1). With the two
        above: compiled b1 3.78 -> 3.37 ms, b32 326 -> 364 frames/s.
    mask_packed: with mask_width_taps, the mask's 7 x 7 x 22 tap outputs are padded as a
        whole to 1080 conv outputs instead of each tap's 22 to 24 (1176): 8% less of the
        largest dense-motion conv and of its shift-add (exact). Compiled W+G b1 on an H100:
        kernels 2.963 -> 2.932 ms, the mask conv 0.280 -> 0.262 ms; wall 3.05-3.06 ms
        either way (round 18).
    nhwc_tap_weights: with depth_taps, the tap convs' weights stored channels_last like the
        NDHWC slices they read; else the compiled module converts 12 weights (43M elements)
        on every call (compiled W+G b1 on an H100: 2.94 / 2.98 -> 2.90 / 2.91 ms; round 19).
    split_hidden: with channels_last, each SPADE stage's shared activations are split into
        per-layer channels_last tensors by one copy, instead of a copy per layer before each
        gamma/beta conv (compiled W+G b1 on an H100: the middle stage 3.09 / 3.14 -> 3.07 /
        3.07 ms, round 15; the up stages too, -> 2.94 / 2.98 ms, round 19).
    eager_taps: with ``background_compile``, whether the eager module that serves frames
        while the compile runs uses the depth / occlusion taps too. Off: their shift-adds
        only pay once Inductor fuses them (eager b1 on an H100: 7.8 ms without depth taps,
        8.7 ms with); the compiled module keeps them.
    eager_benchmark: with ``background_compile``, whether cuDNN benchmarks the eager
        path's convs (the frames served until the compile lands) or takes its heuristic's
        pick. Off (the default), the first frame skips the benchmark; the compile thread
        (or a loaded AOT package) turns benchmark mode on first, so the compiled path is
        tuned as before. Warm restart on an H100: first frame 0.34-0.36 s after the build
        instead of 2.37-2.43 s (9.9 / 10.5 s -> 8.7 / 7.0 s from process start), served
        frames while compiling and the compiled speed unchanged (docs/benchmarks-history.md,
        run AU).
    compile_options: Inductor options passed to ``torch.compile`` (e.g. ``freezing``).
    compile: ``torch.compile`` the module (fuses norm + modulation + activation).
    aot: with ``compile`` and a ``cache_dir``, compile to AOTInductor packages (``aot.py``,
        one per batch size) instead: built once like a compile, then loaded in about a
        second, so on a warm restart the compiled path serves the first frame and nothing
        is traced while eager frames are served. Off: on the H100 machine (torch
        2.11.0+cu130) loading any CUDA package, even a one-conv one, segfaults inside
        ``aoti_load_package`` (docs/benchmarks-history.md, rounds 6 and 7, runs M-O; a
        crash no ``except`` can catch), so it stays off until a torch release loads them.
        Works on the CPU.
    cuda_graphs: capture one CUDA graph per batch size and replay it.
    cache_dir: Inductor cache folder (kept between runs); None: Inductor's default.
    background_compile: serve frames from the eager path (graphed) at once and compile in a
        thread; the compiled graph takes over once it is built (fast first frame). While
        it compiles, the GIL switch interval is 0.5 ms, so served frames wait less for it.
    """

    dtype: torch.dtype | None = None
    channels_last: bool = False
    channels_last_3d: bool = False
    grouped: bool = False
    pad8: bool = True
    unfold3d: bool = False
    width_taps: bool = True
    depth_taps: bool = True
    occlusion_taps: bool = True
    mask_in: int | None = None
    mask_width_taps: bool = True
    img_taps: bool = True
    phase_up: bool = True
    distinct_phases: bool = True
    phase_major: bool = True
    compose_shortcut: bool = True
    split_hidden: bool = True
    mask_packed: bool = True
    nhwc_tap_weights: bool = True
    eager_taps: bool = False
    eager_benchmark: bool = False
    compile: bool = False
    aot: bool = False
    compile_options: dict[str, object] | None = None
    cuda_graphs: bool = True
    cache_dir: Path | None = None
    background_compile: bool = False


def set_compile_cache(cache_dir: Path | None) -> None:
    """Point Inductor's on-disk caches at ``cache_dir`` (before the first compile)."""
    if cache_dir is None:
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir / "inductor")
    os.environ["TRITON_CACHE_DIR"] = str(cache_dir / "triton")


def _nullctx() -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


class WarpDecodeRuntime:
    """``(feature_3d, kp_driving, kp_source) -> frames (B, 3, 8h, 8w)`` on one device."""

    def __init__(self, warping: WarpingNetwork, spade: SPADEGenerator, feature_hw: int,
                 device: torch.device | str, opts: RuntimeOptions | None = None) -> None:
        self.device = torch.device(device)
        opts = opts or RuntimeOptions()
        cuda = self.device.type == "cuda"
        self.dtype = opts.dtype or (torch.float16 if cuda else torch.float32)
        self.opts = opts
        if cuda:  # shapes are fixed per batch size: let cuDNN time its kernels once, as the
            torch.backends.cudnn.benchmark = True  # docs/benchmarks-history.md's runs were
        if opts.compile and opts.background_compile and not opts.eager_benchmark:
            torch.backends.cudnn.benchmark = False  # until the compile thread starts
        # folded and regrouped in the networks' own precision, then cast (the inputs are
        # not modified: FastWarpDecode works on copies)
        module = self._build(warping, spade, feature_hw, opts.depth_taps, opts.occlusion_taps)
        self.module = module
        self.fn = module
        if (opts.compile and opts.background_compile
                and (opts.depth_taps or opts.occlusion_taps) and not opts.eager_taps):
            # frames until the compile lands come from a warp without taps (faster eager);
            # the decoder, most of the weights, is shared, not built twice
            self.fn = self._build(warping, module.spade, feature_hw, False, False)
        self.eager_fn = self.fn  # what serves a batch size the compile has not reached yet
        self.compile_seconds = 0.0
        self.compiled_ready = threading.Event()
        self._switch_started = False  # the first call decides: load, or compile in a thread
        self._thread: threading.Thread | None = None  # the compile thread, if one was needed
        self.compiled = None
        self._compiled_fn = None  # the compile thread's function, before it is swapped in
        # batch sizes for the compile thread: asked for, waiting, done (compiled + captured)
        self._lock = threading.Lock()
        self._requested: set[int] = set()
        self._pending: list[tuple[Tensor, ...]] = []
        self._worker_busy = False
        self._compiled_sizes: set[int] = set()
        self._sizes: set[int] = set()  # batch sizes run so far (see batch_size_for)
        if opts.compile:
            set_compile_cache(opts.cache_dir)
            if not opts.background_compile:  # importing Inductor alone takes seconds:
                self.compiled = self._compile()  # in the thread if so
                self.fn = self.compiled
        self.use_graphs = cuda and opts.cuda_graphs
        self._graphs: dict[int, GraphRunner] = {}
        self._eager_graphs: dict[int, GraphRunner] = {}  # eager frames of a background compile
        # the compiled function's graphs, captured by the compile thread (see _compile_worker)
        self._ready_graphs: dict[int, GraphRunner] = {}

    def _build(self, warping: WarpingNetwork, spade: SPADEGenerator | FastSPADE,
               feature_hw: int, depth_taps: bool, occlusion_taps: bool) -> FastWarpDecode:
        """The fast W+G module in this runtime's device, dtype and options."""
        o = self.opts
        module = FastWarpDecode(
            warping, spade, feature_hw, channels_last=o.channels_last,
            channels_last_3d=o.channels_last_3d, grouped=o.grouped, pad8=o.pad8,
            unfold3d=o.unfold3d, width_taps=o.width_taps, depth_taps=depth_taps,
            occlusion_taps=occlusion_taps, phase_up=o.phase_up,
            compose_shortcut=o.compose_shortcut, mask_in=o.mask_in,
            mask_width_taps=o.mask_width_taps and depth_taps, img_taps=o.img_taps,
            distinct_phases=o.distinct_phases, phase_major=o.phase_major,
            split_hidden=o.split_hidden,
            mask_packed=o.mask_packed and depth_taps,
            nhwc_tap_weights=o.nhwc_tap_weights and depth_taps)
        return module.to(self.device, self.dtype).eval().requires_grad_(False)

    @property
    def _aot(self) -> bool:
        return self.opts.aot and self.opts.cache_dir is not None

    def _compile(self) -> torch.nn.Module | AotModule:
        if self._aot:
            return AotModule(self.module, self.opts.cache_dir / "aot",
                             self.opts.compile_options)
        return torch.compile(self.module, dynamic=False, options=self.opts.compile_options)

    def batch_size_for(self, b: int) -> int:
        """The batch size a call of ``b`` frames runs at, padded with copies of its last row.

        Each new batch size costs a compile (Dynamo specialises on shapes) and a graph capture,
        so a call runs at a size already run when one lies in ``[b, 2b]`` (an offline render's
        last, shorter chunk reuses the chunk size), else at the next size of the ladder 1, 2,
        3, 4, 6, 8, 12, 16, 24, ... (at most a third wasted). Plain eager CPU runs are not
        padded: there, nothing is specialised per size.
        """
        if not (self.use_graphs or self.opts.compile):
            return b
        seen = [s for s in self._sizes if b <= s <= 2 * b]
        size = min(seen) if seen else _ladder_size(b)
        self._sizes.add(size)
        return size

    @torch.no_grad()
    def __call__(self, feature: Tensor, kp_driving: Tensor, kp_source: Tensor) -> Tensor:
        args = tuple(x.to(self.device, self.dtype) for x in (feature, kp_driving, kp_source))
        b = args[0].shape[0]
        size = self.batch_size_for(b)
        if size != b:
            args = _pad_rows(args, size)
        if self.opts.compile and self.opts.background_compile:
            out = self._serve_background(args)
        else:
            out = self._serve(self._run, self._graphs, args)
        return out if size == b else out[:b]

    def _serve(self, fn: Callable[..., Tensor], graphs: dict[int, GraphRunner],
               args: tuple[Tensor, ...]) -> Tensor:
        """``fn(*args)``, from a graph captured per batch size in ``graphs`` on CUDA."""
        if not self.use_graphs:
            return fn(*args)
        b = args[0].shape[0]
        runner = graphs.get(b)
        if runner is None:
            t0 = time.perf_counter()
            try:
                runner = GraphRunner(fn, args)
            except RuntimeError as exc:
                if not isinstance(self.fn, AotModule):
                    raise
                # not yet seen on a GPU: a package that cannot be captured still runs
                log.warning("CUDA graph capture of the compiled package failed (%s); "
                            "running it without a graph", str(exc).splitlines()[0])
                self.use_graphs = False
                return fn(*args)
            graphs[b] = runner
            log.info("captured warp+decode graph for batch %d in %.1f s", b,
                     time.perf_counter() - t0)
        return runner(*args)

    def _serve_background(self, args: tuple[Tensor, ...]) -> Tensor:
        """Eager until the first compile lands; then compiled: a batch size the compile
        thread has not reached yet is queued for it and served meanwhile in chunks of the
        compiled sizes, so a new size never waits for Dynamo or for cuDNN's benchmark."""
        self._maybe_switch(args)
        if isinstance(self.compiled, AotModule) and self.fn is self.compiled:
            return self._serve(self._run, self._graphs, args)  # loaded packages, any size
        if self.fn is not self.compiled:
            out = self._serve(self.eager_fn, self._eager_graphs, args)
            if not self._requested:
                # the compile thread starts after the first frame, not before it: Dynamo's
                # tracing holds the GIL, and that frame's cuDNN benchmark and graph capture
                # took 4.3-6.5 s after the build with it running, against 1.5-2.0 s
                # without (H100, docs/benchmarks-history.md runs AK and AN)
                self._request(args)
            return out
        b = args[0].shape[0]
        runner = self._ready_graphs.get(b)
        if runner is not None:
            return runner(*args)
        if b in self._compiled_sizes:  # compiled; its graph, if any, not captured in the thread
            return self._serve(self.compiled, self._graphs, args)
        self._request(args)
        return self._chunked(args)

    def _chunked(self, args: tuple[Tensor, ...]) -> Tensor:
        """``args``' rows through the compiled sizes: the largest that fits, repeatedly; a
        rest smaller than every compiled size is padded to the smallest."""
        fns = (dict(self._ready_graphs) if self.use_graphs
               else dict.fromkeys(self._compiled_sizes, self.compiled))
        if not fns:  # no graph was captured in the compile thread
            return self._serve(self.eager_fn, self._eager_graphs, args)
        sizes = sorted(fns)
        n, i, out = args[0].shape[0], 0, None
        while i < n:
            fit = [s for s in sizes if s <= n - i]
            s = fit[-1] if fit else sizes[0]
            take = min(s, n - i)
            part = tuple(x[i:i + take] for x in args)
            if take < s:
                part = _pad_rows(part, s)
            y = fns[s](*part)[:take]  # a graph's buffer: copied out before the next replay
            if out is None:
                out = y.new_empty((n, *y.shape[1:]))
            out[i:i + take].copy_(y)
            i += take
        return out

    def _maybe_switch(self, args: tuple[Tensor, ...]) -> None:
        """On first use, load a built AOT package if there is one (the compile itself is
        requested after the first eager frame); swap the compiled path in once it is built."""
        if not self._switch_started:
            self._switch_started = True
            aot = self._compile() if self._aot else None  # cheap to make: no build yet
            if aot is not None and aot.ready(args):  # built earlier: load now, first frame too
                self._tune_convs()
                aot(*args)
                self.compiled, self.fn = aot, aot
                self.compiled_ready.set()
                return
            self._compiled_fn = aot  # the compile is requested after this first frame
        elif self.compiled_ready.is_set() and self.fn is not self.compiled:
            self.fn = self.compiled

    def _tune_convs(self) -> None:
        """cuDNN's benchmark mode on for the compiled path (off for the eager first frames
        unless ``eager_benchmark``). On CUDA always; elsewhere only to undo what
        ``__init__`` turned off (the flag is process-wide)."""
        if self.device.type == "cuda" or not self.opts.eager_benchmark:
            torch.backends.cudnn.benchmark = True

    def _request(self, args: tuple[Tensor, ...]) -> None:
        """Queue a batch size for the compile thread (once), starting the thread if idle."""
        b = args[0].shape[0]
        with self._lock:
            if b in self._requested:
                return
            self._requested.add(b)
            self._pending.append(tuple(x.clone() for x in args))
            if self._worker_busy:
                return
            self._worker_busy = True
        self._thread = threading.Thread(target=self._compile_worker, name="lp-compile",
                                        daemon=True)
        self._thread.start()

    def _compile_worker(self) -> None:
        """Compile (and capture) each queued batch size in turn, then exit."""
        # Dynamo's tracing is pure Python and holds the GIL; a frame being served needs it
        # back after each GIL-free call, and waits up to the switch interval each time
        # (5 ms by default: eager frames took 26-79 ms while compiling on an H100)
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, COMPILE_SWITCH_INTERVAL_S))
        self._tune_convs()
        try:
            while True:
                with self._lock:
                    if not self._pending:
                        self._worker_busy = False
                        return
                    example = self._pending.pop(0)
                if not self._compile_size(example) and self.compiled is None:
                    # before the first success: everything stays eager. After it, a size
                    # that failed stays served in chunks of the compiled ones, and the
                    # sizes queued behind it are still compiled.
                    with self._lock:
                        self._pending.clear()
                        self._worker_busy = False
                    return
        finally:
            sys.setswitchinterval(switch)

    def _compile_size(self, example: tuple[Tensor, ...]) -> bool:
        """Compile for ``example``'s batch size and capture its graph; False on failure."""
        t0 = time.perf_counter()
        b = example[0].shape[0]
        stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        try:
            if self._compiled_fn is None:  # (not `or`: a compiled module has no truth value)
                self._compiled_fn = self._compile()
            compiled = self._compiled_fn
            with torch.no_grad(), (torch.cuda.stream(stream) if stream else _nullctx()):
                compiled(*example)
                if stream is not None:
                    stream.synchronize()
            seconds = time.perf_counter() - t0
            if self.use_graphs:
                self._capture_ready(compiled, example)
        except Exception:  # keep serving the eager path; say why once
            log.warning("torch.compile of the LivePortrait decoder failed for batch %d; "
                        "staying on the eager path", b, exc_info=True)
            return False
        self._compiled_sizes.add(b)
        log.info("compiled warp+decode for batch %d in %.1f s", b, seconds)
        if self.compiled is None:
            self.compile_seconds = seconds
            self.compiled = compiled
            self.compiled_ready.set()
        return True

    def _capture_ready(self, compiled: torch.nn.Module | AotModule,
                       example: tuple[Tensor, ...]) -> None:
        """Capture the compiled function's graph here, in the compile thread, so the swap
        costs the serving thread nothing. Captured on first use there instead, a frame
        stalled 1.3-1.8 s on an H100 (docs/benchmarks-history.md, run S): PyTorch keeps cuDNN's
        benchmark results per thread (``thread_local`` caches in ATen's ``cudnn/Conv_v8.cpp``),
        so the compiled convs were benchmarked again in the serving thread before the capture."""
        try:
            self._ready_graphs[example[0].shape[0]] = GraphRunner(compiled, example)
        except RuntimeError as exc:  # captured lazily by the serving thread instead
            log.warning("capturing the compiled warp+decode graph in the compile thread "
                        "failed (%s); it is captured on the first compiled frame instead, "
                        "which may stall that frame", str(exc).splitlines()[0])

    def _run(self, feature: Tensor, kp_d: Tensor, kp_s: Tensor) -> Tensor:
        if self.compiled is not None and self.fn is self.compiled and not self.compile_seconds:
            t0 = time.perf_counter()
            out = self.fn(feature, kp_d, kp_s)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.compile_seconds = time.perf_counter() - t0
            return out
        return self.fn(feature, kp_d, kp_s)


def _pad_rows(args: tuple[Tensor, ...], size: int) -> tuple[Tensor, ...]:
    """Each tensor grown to ``size`` rows with copies of its last row."""
    return tuple(torch.cat([x, x[-1:].expand(size - x.shape[0], *x.shape[1:])]) for x in args)


def _ladder_size(b: int) -> int:
    """The smallest of 1, 2, 3, 4, 6, 8, 12, 16, 24, ... (2^k and 3 * 2^k) that is >= b."""
    p = 1
    while p < b:
        p *= 2
    return 3 * p // 4 if p >= 4 and 3 * p // 4 >= b else p
