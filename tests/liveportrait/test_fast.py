"""The fast warp + decode path computes the reference function (fixtures, fp32, CPU)."""

from __future__ import annotations

import pytest
import torch

from avatar_vcam.engine.renderers.liveportrait.fast import (
    DepthTapConv3d,
    FastSPADE,
    FastWarpDecode,
    FastWarping,
    fold_bn,
)

TOL = 1e-4


def rel_l2(got: torch.Tensor, want: torch.Tensor) -> float:
    assert got.shape == want.shape, (tuple(got.shape), tuple(want.shape))
    return float((got.double() - want.double()).norm() / want.double().norm())


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
def test_fast_warp_decode_channels_last(nets, fixtures) -> None:
    """The whole W -> G chain in channels_last equals the plain networks' chain."""
    args = (fixtures["W_in_feature_3d"], fixtures["W_in_kp_driving"],
            fixtures["W_in_kp_source"])
    want = nets.spade(nets.warping(*args)["out"])
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


@torch.no_grad()
def test_depth_tap_conv3d_equals_conv3d() -> None:
    """Odd depths, both layouts, a 7-deep kernel: the shift-add covers the depth padding."""
    g = torch.Generator().manual_seed(1)
    conv = torch.nn.Conv3d(5, 3, (7, 3, 1), padding=(3, 1, 0))
    x = torch.randn(2, 5, 5, 6, 4, generator=g)
    tap = DepthTapConv3d(conv)
    assert rel_l2(tap(x), conv(x)) < 1e-6
    assert rel_l2(tap(x.contiguous(memory_format=torch.channels_last_3d)), conv(x)) < 1e-6
