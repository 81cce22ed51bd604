"""The fast warp + decode path computes the reference function (fixtures, fp32, CPU)."""

from __future__ import annotations

import pytest
import torch

from avatar_vcam.engine.renderers.liveportrait.fast import (
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
