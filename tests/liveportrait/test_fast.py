"""The fast warp + decode path computes the reference function (fixtures, fp32, CPU)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from lp_testdata import rel_l2

from engine.renderers.liveportrait.fast import (
    DepthTapConv3d,
    FastSPADE,
    FastWarpDecode,
    FastWarping,
    PhaseUpConv2d,
    SpatialTapConv2d,
    fold_bn,
)
from engine.renderers.liveportrait.runtime import RuntimeOptions, WarpDecodeRuntime

TOL = 1e-4


@pytest.fixture(scope="module")
def chain(nets, fixtures) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """The fixtures' W inputs and the plain networks' W -> G output for them (the reference
    every fast variant here is held to; computed once)."""
    args = (fixtures["W_in_feature_3d"], fixtures["W_in_kp_driving"],
            fixtures["W_in_kp_source"])
    with torch.no_grad():
        return args, nets.spade(nets.warping(*args)["out"])


def test_fold_bn_is_exact() -> None:
    g = torch.Generator().manual_seed(0)
    conv, bn = torch.nn.Conv3d(4, 6, 3, padding=1), torch.nn.BatchNorm3d(6).eval()
    bn.running_mean.normal_(generator=g)
    bn.running_var.uniform_(0.5, 1.5, generator=g)
    bn.weight.data.normal_(generator=g)
    bn.bias.data.normal_(generator=g)
    x = torch.randn(2, 4, 3, 5, 5, generator=g)
    with torch.no_grad():
        want = bn(conv(x))
    with torch.no_grad():
        fold_bn(conv, bn)
        assert rel_l2(conv(x), want) < 1e-6


@torch.no_grad()
def test_fast_warping_matches_reference(nets, fixtures) -> None:
    fast = FastWarping(nets.warping, feature_hw=fixtures["W_in_feature_3d"].shape[-1])
    got = fast(fixtures["W_in_feature_3d"], fixtures["W_in_kp_driving"],
               fixtures["W_in_kp_source"])
    assert rel_l2(got, fixtures["W_out_out"]) < TOL


@pytest.mark.parametrize("grouped", [False, True])
@torch.no_grad()
def test_fast_spade_matches_reference(nets, fixtures, grouped: bool) -> None:
    fast = FastSPADE(nets.spade, grouped=grouped)
    assert rel_l2(fast(fixtures["G_in_feature"]), fixtures["G_out"]) < TOL


@torch.no_grad()
def test_fast_warp_decode_channels_last(nets, chain) -> None:
    """The whole W -> G chain in channels_last equals the plain networks' chain."""
    args, want = chain
    fast = FastWarpDecode(nets.warping, nets.spade, feature_hw=args[0].shape[-1],
                          channels_last=True, channels_last_3d=True)
    assert rel_l2(fast(*args), want) < TOL


@pytest.mark.parametrize("pad8, unfold3d, taps", [(True, False, False), (False, True, False),
                                                  (True, True, False), (True, False, True)])
@torch.no_grad()
def test_fast_warping_padded_and_unfolded(nets, fixtures, pad8: bool, unfold3d: bool,
                                          taps: bool) -> None:
    fast = FastWarping(nets.warping, feature_hw=fixtures["W_in_feature_3d"].shape[-1],
                       pad8=pad8, unfold3d=unfold3d, width_taps=taps)
    if pad8:
        dm = fast.net.dense_motion_network
        assert dm.hourglass.encoder.down_blocks[0].conv.in_channels == 112
    got = fast(fixtures["W_in_feature_3d"], fixtures["W_in_kp_driving"],
               fixtures["W_in_kp_source"])
    assert rel_l2(got, fixtures["W_out_out"]) < TOL


@pytest.mark.parametrize("pad8", [False, True])
@torch.no_grad()
def test_fast_warping_depth_taps(nets, fixtures, pad8: bool) -> None:
    """Hourglass + mask convs as 2-D convs over depth slices + a depth shift-add: same W."""
    fast = FastWarping(nets.warping, feature_hw=fixtures["W_in_feature_3d"].shape[-1],
                       pad8=pad8, depth_taps=True)
    dm = fast.net.dense_motion_network
    assert isinstance(dm.mask, DepthTapConv3d)
    assert isinstance(dm.hourglass.decoder.conv, DepthTapConv3d)
    got = fast(fixtures["W_in_feature_3d"], fixtures["W_in_kp_driving"],
               fixtures["W_in_kp_source"])
    assert rel_l2(got, fixtures["W_out_out"]) < TOL


@pytest.mark.parametrize("depth_taps", [False, True])
@torch.no_grad()
def test_fast_warping_mask_reads_zero_padded_input(nets, fixtures, depth_taps: bool) -> None:
    """``mask_in``: the mask conv over the hourglass output padded with zero channels."""
    fast = FastWarping(nets.warping, feature_hw=fixtures["W_in_feature_3d"].shape[-1],
                       pad8=True, depth_taps=depth_taps, mask_in=160)
    mask = fast.net.dense_motion_network.mask
    assert (mask.conv if depth_taps else mask).in_channels == 160
    got = fast(fixtures["W_in_feature_3d"], fixtures["W_in_kp_driving"],
               fixtures["W_in_kp_source"])
    assert rel_l2(got, fixtures["W_out_out"]) < TOL
    with pytest.raises(ValueError, match="mask_in"):
        FastWarping(nets.warping, feature_hw=16, pad8=True, mask_in=100)


@torch.no_grad()
def test_depth_tap_conv3d_equals_conv3d() -> None:
    """Odd depths, both layouts, a 7-deep kernel: the shift-add covers the depth padding."""
    g = torch.Generator().manual_seed(1)
    conv = torch.nn.Conv3d(5, 3, (7, 3, 1), padding=(3, 1, 0))
    x = torch.randn(2, 5, 5, 6, 4, generator=g)
    tap = DepthTapConv3d(conv)
    assert rel_l2(tap(x), conv(x)) < 1e-6
    assert rel_l2(tap(x.contiguous(memory_format=torch.channels_last_3d)), conv(x)) < 1e-6


@torch.no_grad()
def test_depth_tap_conv3d_with_width_taps_equals_conv3d() -> None:
    """Depth and width taps both moved to the outputs (kh x 1 conv, kd * kw * O outputs):
    odd sizes, both layouts, padding on every axis."""
    g = torch.Generator().manual_seed(3)
    conv = torch.nn.Conv3d(5, 3, (5, 3, 7), padding=(2, 1, 3)).double()
    x = torch.randn(2, 5, 5, 6, 9, generator=g, dtype=torch.float64)
    tap = DepthTapConv3d(conv, width_taps=True)
    assert tap.conv.kernel_size == (3, 1) and tap.conv.out_channels == 5 * 7 * 3
    assert rel_l2(tap(x), conv(x)) < 1e-12
    assert rel_l2(tap(x.contiguous(memory_format=torch.channels_last_3d)), conv(x)) < 1e-12


@pytest.mark.parametrize("width_taps", [False, True])
def test_depth_tap_conv3d_padded_as_a_whole_equals_conv3d(width_taps: bool) -> None:
    """O = 3 outputs, 5 x 7 taps: 105 tap outputs padded to 112 as a whole, same numbers."""
    g = torch.Generator().manual_seed(5)
    conv = torch.nn.Conv3d(4, 3, (5, 3, 7), padding=(2, 1, 3)).double()
    x = torch.randn(2, 4, 6, 5, 9, generator=g, dtype=torch.float64)
    tap = DepthTapConv3d(conv, width_taps=width_taps, pad_total=True)
    n = 5 * 7 * 3 if width_taps else 5 * 3
    assert tap.conv.out_channels == -(-n // 8) * 8
    assert rel_l2(tap(x), conv(x)) < 1e-12
    assert rel_l2(tap(x.contiguous(memory_format=torch.channels_last_3d)), conv(x)) < 1e-12


@torch.no_grad()
def test_packed_mask_taps_match_reference(nets, chain) -> None:
    """The mask's 22 outputs unpadded, its 7 x 7 x 22 tap outputs padded as a whole to
    1080: W -> G still equals the plain networks' chain."""
    args, want = chain
    fast = FastWarpDecode(nets.warping, nets.spade, feature_hw=args[0].shape[-1], pad8=True,
                          depth_taps=True, occlusion_taps=True, mask_width_taps=True,
                          mask_packed=True, channels_last=True)
    mask = fast.warp.net.dense_motion_network.mask
    assert mask.o == 22 and mask.conv.out_channels == 1080
    assert rel_l2(fast(*args), want) < TOL


@pytest.mark.parametrize("phase_major", [False, True])
def test_mask_width_taps_and_img_taps_match_reference(nets, chain, phase_major: bool
                                                      ) -> None:
    """The mask conv with depth and width taps, the decoder's last conv as spatial taps,
    the 4x phase conv with its distinct phases only (either channel order): W -> G still
    equals the plain networks' chain."""
    args, want = chain
    fast = FastWarpDecode(nets.warping, nets.spade, feature_hw=args[0].shape[-1], pad8=True,
                          depth_taps=True, occlusion_taps=True, phase_up=True,
                          compose_shortcut=True, mask_width_taps=True, img_taps=True,
                          distinct_phases=True, phase_major=phase_major)
    assert fast.spade.stage_1.shared.n_phases == 3
    assert fast.spade.stage_0.shared.phase_major == phase_major
    mask = fast.warp.net.dense_motion_network.mask
    assert mask.kw == 7 and mask.conv.kernel_size == (7, 1)
    assert isinstance(fast.spade.conv_img[0], SpatialTapConv2d)
    assert rel_l2(fast(*args), want) < TOL


@torch.no_grad()
def test_split_hidden_feeds_each_middle_layer_a_channels_last_tensor(nets, chain,
                                                                     monkeypatch) -> None:
    """With channels_last, each stage's shared activations (the middle ones, and the up
    stages' pixel-shuffled ones) are split by one copy into channels_last tensors: no
    per-layer copy before each conv. The W -> G chain still equals the plain networks'."""
    args, want = chain
    fast = FastWarpDecode(nets.warping, nets.spade, feature_hw=args[0].shape[-1],
                          channels_last=True, split_hidden=True, phase_up=True,
                          compose_shortcut=True, distinct_phases=True, phase_major=True)
    seen: list[torch.Tensor] = []
    sp = fast.spade
    for conv in (*sp.stage_mid.gbs, *sp.stage_0.gbs, *sp.stage_1.gbs):
        conv.register_forward_pre_hook(lambda _m, a: seen.append(a[0]))
    assert rel_l2(fast(*args), want) < TOL
    assert len(seen) == 12 + 3 + 3
    assert all(x.is_contiguous(memory_format=torch.channels_last) for x in seen)


@torch.no_grad()
def test_tap_conv_weights_stored_channels_last(nets, chain) -> None:
    """The depth-tap convs read NDHWC slices; their weights are stored channels_last too
    (the compiled module converted them on every call otherwise), same numbers."""
    args, want = chain
    fast = FastWarpDecode(nets.warping, nets.spade, feature_hw=args[0].shape[-1], pad8=True,
                          depth_taps=True, mask_width_taps=True, mask_packed=True,
                          nhwc_tap_weights=True)
    taps = [m for m in fast.warp.modules() if isinstance(m, DepthTapConv3d)]
    assert len(taps) == 12
    assert all(t.conv.weight.is_contiguous(memory_format=torch.channels_last) for t in taps)
    assert rel_l2(fast(*args), want) < TOL


@pytest.mark.parametrize("phase_major", [False, True])
@pytest.mark.parametrize("distinct", [False, True])
@pytest.mark.parametrize("k, scale", [(3, 2), (3, 4), (3, 3), (5, 2), (5, 3), (1, 2), (3, 8)])
@torch.no_grad()
def test_phase_up_conv_equals_conv_of_upsampled(k: int, scale: int, distinct: bool,
                                                phase_major: bool) -> None:
    """conv(nearest-upsample(x)) from x itself, odd sizes and odd kernel extents included;
    with ``distinct``, equal phases are computed once (3x3 at 4x: 3 of 4 per axis); in
    either channel order of the phase conv."""
    g = torch.Generator().manual_seed(2)
    conv = torch.nn.Conv2d(5, 7, k, padding=k // 2).double()
    x = torch.randn(2, 5, 6, 9, generator=g, dtype=torch.float64)
    want = conv(F.interpolate(x, scale_factor=scale))
    phase = PhaseUpConv2d(conv, scale, distinct=distinct, phase_major=phase_major)
    assert rel_l2(phase(x), want) < 1e-12
    cl = x.contiguous(memory_format=torch.channels_last)  # NHWC, as the decoder runs it
    assert rel_l2(phase(cl), want) < 1e-12
    if distinct and (k, scale) == (3, 4):
        assert phase.n_phases == 3 and phase.conv.out_channels == 7 * 9
    if not distinct:
        assert phase.n_phases == scale


def test_phase_up_conv_refuses_strided_conv() -> None:
    with pytest.raises(ValueError, match="stride-1"):
        PhaseUpConv2d(torch.nn.Conv2d(3, 3, 3, stride=2, padding=1), 2)


@torch.no_grad()
def test_spatial_tap_conv_equals_conv() -> None:
    """The 1x1-then-shift-add form of a one-output 7x7 conv, borders included."""
    g = torch.Generator().manual_seed(3)
    conv = torch.nn.Conv2d(40, 1, 7, padding=3).double()
    x = torch.randn(2, 40, 10, 12, generator=g, dtype=torch.float64)
    tap = SpatialTapConv2d(conv)
    assert tap.conv.out_channels == 56  # 49 taps, padded to a multiple of 8
    assert rel_l2(tap(x), conv(x)) < 1e-6  # the taps are summed in fp32


@pytest.mark.parametrize("phase_up, compose", [(True, False), (False, True), (True, True)])
@torch.no_grad()
def test_fast_spade_phase_up_and_composed_shortcut_match_reference(nets, fixtures,
                                                                   phase_up: bool,
                                                                   compose: bool) -> None:
    fast = FastSPADE(nets.spade, phase_up=phase_up, compose_shortcut=compose)
    assert isinstance(fast.stage_1.shared, PhaseUpConv2d) == phase_up
    if compose:  # the up_1 shortcut's beta conv now has conv_s's 64 outputs, not 256
        assert fast.stage_1.gbs[2].out_channels == 256 + 64
    assert rel_l2(fast(fixtures["G_in_feature"]), fixtures["G_out"]) < TOL


@torch.no_grad()
def test_all_levers_together_match_reference(nets, chain) -> None:
    """Every rewrite on at once (the configuration a GPU run would measure), channels_last
    included: W -> G still equals the plain networks' chain."""
    args, want = chain
    fast = FastWarpDecode(nets.warping, nets.spade, feature_hw=args[0].shape[-1],
                          channels_last=True, pad8=True, depth_taps=True,
                          occlusion_taps=True, phase_up=True, compose_shortcut=True)
    assert isinstance(fast.warp.net.dense_motion_network.occlusion, SpatialTapConv2d)
    assert rel_l2(fast(*args), want) < TOL


@pytest.mark.parametrize("channels_last", [False, True])  # True: the renderer's on CUDA
@torch.no_grad()
def test_background_compile_serves_from_an_eager_warp_without_taps(nets, chain,
                                                                    channels_last: bool) -> None:
    """While the compile runs, frames come from a warp without depth / occlusion taps
    sharing the (phase_up, composed-shortcut) decoder; both compute the reference."""
    args, want = chain
    rt = WarpDecodeRuntime(nets.warping, nets.spade, args[0].shape[-1], "cpu",
                           RuntimeOptions(compile=True, background_compile=True,
                                          compile_options=None, channels_last=channels_last))
    assert rt.fn is not rt.module and rt.fn.spade is rt.module.spade
    dm_eager = rt.fn.warp.net.dense_motion_network
    assert not isinstance(dm_eager.mask, DepthTapConv3d)
    assert not isinstance(dm_eager.occlusion, SpatialTapConv2d)
    dm_compiled = rt.module.warp.net.dense_motion_network
    assert isinstance(dm_compiled.mask, DepthTapConv3d)
    assert isinstance(dm_compiled.occlusion, SpatialTapConv2d)
    assert isinstance(rt.module.spade.stage_1.shared, PhaseUpConv2d)  # the defaults
    assert rel_l2(rt.fn(*args), want) < TOL
    assert rel_l2(rt.module(*args), want) < TOL


def test_background_compile_shortens_the_gil_switch_interval_while_it_runs(nets) -> None:
    """Frames served while Dynamo traces wait for the GIL at most the switch interval per
    hand-off: the compile thread lowers it, and puts it back whether or not it succeeds."""
    import sys

    from engine.renderers.liveportrait import runtime

    rt = WarpDecodeRuntime(nets.warping, nets.spade, 16, "cpu",
                           RuntimeOptions(compile=True, background_compile=True))
    seen: list[float] = []

    def fake_compiled(*args: torch.Tensor) -> torch.Tensor:
        seen.append(sys.getswitchinterval())
        return args[0]

    def broken(*args: torch.Tensor) -> torch.Tensor:
        seen.append(sys.getswitchinterval())
        raise RuntimeError("compile failed")

    before = sys.getswitchinterval()
    example = (torch.zeros(1),)
    rt._compile = lambda: fake_compiled
    rt._pending.append(example)
    rt._compile_worker()
    assert rt.compiled_ready.is_set() and rt.compiled is fake_compiled
    rt2 = WarpDecodeRuntime(nets.warping, nets.spade, 16, "cpu",
                            RuntimeOptions(compile=True, background_compile=True))
    rt2._compile = lambda: broken
    rt2._pending.extend([example, example])
    rt2._compile_worker()
    assert not rt2.compiled_ready.is_set() and not rt2._pending  # the rest is dropped
    assert seen == [runtime.COMPILE_SWITCH_INTERVAL_S] * 2 and seen[0] < before
    assert sys.getswitchinterval() == before


def _recording_runner(monkeypatch, built: list) -> None:
    """GraphRunner (which needs CUDA) replaced by a stand-in that records who captured what:
    (thread name, batch size, function)."""
    import threading

    from engine.renderers.liveportrait import runtime

    class RecordingRunner:
        def __init__(self, fn, inputs) -> None:
            self.fn = fn
            built.append((threading.current_thread().name, inputs[0].shape[0], fn))

        def __call__(self, *xs: torch.Tensor) -> torch.Tensor:
            return self.fn(*xs)

    monkeypatch.setattr(runtime, "GraphRunner", RecordingRunner)


def _graphed_background_runtime(nets, fixtures, compiled) -> tuple[WarpDecodeRuntime, tuple]:
    f, kp_d, kp_s = (fixtures[k][:1] for k in ("W_in_feature_3d", "W_in_kp_driving",
                                                "W_in_kp_source"))
    rt = WarpDecodeRuntime(nets.warping, nets.spade, f.shape[-1], "cpu",
                           RuntimeOptions(compile=True, background_compile=True))
    rt.use_graphs = True  # as on CUDA
    rt._compile = lambda: compiled
    return rt, (f, kp_d, kp_s)


def _serve_until_compiled(rt: WarpDecodeRuntime, one: tuple) -> None:
    """The first frame (eager), the compile thread to its end, then the call that swaps the
    compiled path in."""
    rt(*one)
    rt._thread.join(60)
    rt(*one)


def _rows(args: tuple, n: int) -> list[torch.Tensor]:
    return [x.expand(n, *x.shape[1:]) for x in args]


def test_compile_thread_captures_the_compiled_graph_for_the_swap(nets, fixtures,
                                                                 monkeypatch) -> None:
    """The swap to the compiled path costs the serving thread no capture: the compile thread
    captures the first batch size's graph (on an H100, capturing it at the swap stalled a
    served frame 1.3-1.8 s). A batch size seen after the swap is compiled + captured in the
    thread and served meanwhile in chunks of the compiled sizes: nothing is captured (or
    benchmarked by cuDNN) in the serving thread (on an H100 an eager capture of a new size
    there stalled it 4.6-7.8 s)."""
    built: list = []
    _recording_runner(monkeypatch, built)

    class Compiled:  # like torch.compile's module: no truth value (its len() raises)
        def __call__(self, *args: torch.Tensor) -> torch.Tensor:
            return args[0] * 2

        def __len__(self) -> int:
            raise TypeError("does not support len()")

    fake_compiled = Compiled()
    rt, one = _graphed_background_runtime(nets, fixtures, fake_compiled)
    first = rt(*one)  # an eager frame; starts the compile thread
    assert first.shape[1] == 3  # a frame, not the fake's doubled input
    rt._thread.join(60)
    assert rt.compiled_ready.is_set()
    assert sorted((name, b, fn is fake_compiled) for name, b, fn in built) == [
        ("MainThread", 1, False), ("lp-compile", 1, True)]
    out = rt(*one)  # the swap: the ready graph, nothing captured here
    assert torch.equal(out, one[0] * 2) and len(built) == 2
    g = torch.Generator().manual_seed(5)
    two = [torch.cat([x, x + 0.01 * torch.randn(x.shape, generator=g)]) for x in one]
    assert torch.equal(rt(*two), two[0] * 2)  # a new size: two b1 replays, compiled after
    rt._thread.join(60)
    assert [(name, b) for name, b, _ in built[2:]] == [("lp-compile", 2)]
    assert torch.equal(rt(*two), two[0] * 2) and len(built) == 3
    assert rt._compiled_sizes == {1, 2}
    five = [torch.cat([x, x, x])[:5] for x in two]  # runs at 6: chunks of 2, 2, 2
    assert torch.equal(rt(*five), five[0] * 2)
    rt._thread.join(60)
    assert rt._compiled_sizes == {1, 2, 6}


def test_a_batch_size_that_fails_to_compile_is_served_by_the_compiled_ones(
        nets, fixtures, monkeypatch, caplog) -> None:
    """A compile that fails for a later batch size says so once; that size keeps being
    served in chunks of the sizes that did compile."""
    built: list = []
    _recording_runner(monkeypatch, built)

    def compiled_for_one(*args: torch.Tensor) -> torch.Tensor:
        if args[0].shape[0] != 1:
            raise RuntimeError("no kernel for this shape")
        return args[0] * 2

    rt, one = _graphed_background_runtime(nets, fixtures, compiled_for_one)
    _serve_until_compiled(rt, one)
    two = _rows(one, 2)
    with caplog.at_level("WARNING"):
        rt(*two)
        rt._thread.join(60)
        again = rt(*two)
    assert torch.equal(again, two[0] * 2)  # two b1 replays
    assert len([r for r in caplog.records if "failed for batch 2" in r.getMessage()]) == 1
    assert rt._compiled_sizes == {1} and torch.equal(rt(*one), one[0] * 2)


def test_the_compile_thread_starts_after_the_first_frame(nets, fixtures, monkeypatch) -> None:
    """The first frame is served (cuDNN benchmark, graph capture) before the compile thread
    exists: with Dynamo tracing beside it, that frame came 2-3x later on an H100."""
    built: list = []
    _recording_runner(monkeypatch, built)
    rt, one = _graphed_background_runtime(nets, fixtures, lambda *a: a[0] * 2)
    thread_at_eager: list[bool] = []
    eager = rt.eager_fn

    def eager_logged(*args: torch.Tensor) -> torch.Tensor:
        thread_at_eager.append(rt._thread is not None)
        return eager(*args)

    rt.eager_fn = eager_logged
    rt(*one)
    assert thread_at_eager == [False]
    assert rt._thread is not None  # started right after
    rt._thread.join(60)
    assert rt._compiled_sizes == {1}


def test_a_failed_first_frame_does_not_keep_the_compile_from_starting(
        nets, fixtures, monkeypatch) -> None:
    """The compile is requested after the first frame that was served, so a first call that
    raised (say, out of memory in its graph capture) does not leave the runtime eager."""
    built: list = []
    _recording_runner(monkeypatch, built)
    rt, one = _graphed_background_runtime(nets, fixtures, lambda *a: a[0] * 2)
    eager, calls = rt.eager_fn, []

    def fails_once(*args: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("CUDA out of memory")
        return eager(*args)

    rt.eager_fn = fails_once
    with pytest.raises(RuntimeError, match="out of memory"):
        rt(*one)
    assert rt._thread is None
    rt(*one)
    assert rt._thread is not None
    rt._thread.join(60)
    assert rt._compiled_sizes == {1}


def test_sizes_queued_behind_a_failed_one_are_still_compiled(nets, fixtures,
                                                             monkeypatch) -> None:
    """After a first success, one batch size failing to compile does not drop the sizes
    queued behind it in the compile thread."""
    import threading

    built: list = []
    _recording_runner(monkeypatch, built)
    three_queued = threading.Event()

    def fails_for_two(*args: torch.Tensor) -> torch.Tensor:
        if args[0].shape[0] == 2:
            assert three_queued.wait(30)  # 3 is queued while 2 compiles
            raise RuntimeError("no kernel for this shape")
        return args[0] * 2

    rt, one = _graphed_background_runtime(nets, fixtures, fails_for_two)
    _serve_until_compiled(rt, one)
    rt(*_rows(one, 2))
    worker = rt._thread
    rt(*_rows(one, 3))
    assert rt._thread is worker  # queued behind 2, not a second thread
    three_queued.set()
    worker.join(60)
    assert rt._compiled_sizes == {1, 3}
    assert torch.equal(rt(*_rows(one, 3)), _rows(one, 3)[0] * 2)


def test_batch_sizes_are_padded_to_ones_already_run(nets, fixtures, monkeypatch) -> None:
    """Graphs and compiles are per batch size: a call runs at a size already run when one
    lies in [b, 2b], else at the next of 1, 2, 3, 4, 6, 8, 12, ...; the padding rows are
    copies of the last row, and the caller gets exactly its own rows back."""
    built: list = []
    _recording_runner(monkeypatch, built)
    args = [fixtures[k][:1] for k in ("W_in_feature_3d", "W_in_kp_driving", "W_in_kp_source")]
    rt = WarpDecodeRuntime(nets.warping, nets.spade, args[0].shape[-1], "cpu")
    assert rt.batch_size_for(5) == 5  # plain eager on the CPU: never padded
    rt.use_graphs = True
    assert [rt.batch_size_for(b) for b in (8, 5, 3, 7, 9, 17)] == [8, 8, 3, 8, 12, 24]
    g = torch.Generator().manual_seed(4)
    kp = args[1].expand(5, -1, -1) + 0.01 * torch.randn(5, *args[1].shape[1:], generator=g)
    rows = (args[0].expand(5, -1, -1, -1, -1), kp, args[2].expand(5, -1, -1))
    out = rt(*rows)  # runs at 8
    assert out.shape[0] == 5 and built[-1][1] == 8
    assert rel_l2(out, rt.module(*rows)) < 1e-6


def test_eager_frames_can_skip_cudnns_benchmark_until_the_compile_starts(nets, fixtures,
                                                                         monkeypatch) -> None:
    """By default (``eager_benchmark=False``) the first (eager) frame is served with
    cuDNN's heuristic, and the compile thread turns benchmark mode on before it compiles
    (on an H100 the first frame came 2 s sooner: docs/benchmarks-history.md, run AU)."""
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)  # restored afterwards
    seen: list[bool] = []

    def fake_compiled(*args: torch.Tensor) -> torch.Tensor:
        seen.append(torch.backends.cudnn.benchmark)
        return args[0]

    f, kp_d, kp_s = (fixtures[k][:1] for k in ("W_in_feature_3d", "W_in_kp_driving",
                                                "W_in_kp_source"))
    rt = WarpDecodeRuntime(nets.warping, nets.spade, f.shape[-1], "cpu",
                           RuntimeOptions(compile=True, background_compile=True))
    rt._compile = lambda: fake_compiled
    assert torch.backends.cudnn.benchmark is False
    eager = rt.eager_fn
    rt.eager_fn = lambda *a: (seen.append(torch.backends.cudnn.benchmark), eager(*a))[1]
    rt(f, kp_d, kp_s)
    rt._thread.join(60)
    assert seen == [False, True] and torch.backends.cudnn.benchmark is True
