"""The streamed warp + decode (SPADE modulations a block at a time, on a side stream on
CUDA) computes what the one-module forward computes (fixtures, fp32, CPU)."""

from __future__ import annotations

import pytest
import torch
from lp_testdata import rel_l2

from engine.renderers.liveportrait.fast import FastWarpDecode
from engine.renderers.liveportrait.streams import (
    SplitStreamWarpDecode,
    StreamedWarpDecode,
)

TOL = 1e-4


def _args(fixtures) -> tuple[torch.Tensor, ...]:
    return (fixtures["W_in_feature_3d"], fixtures["W_in_kp_driving"],
            fixtures["W_in_kp_source"])


@pytest.mark.parametrize("channels_last", [False, True])
@torch.no_grad()
def test_streamed_equals_one_module_and_reference(nets, fixtures, channels_last: bool) -> None:
    args = _args(fixtures)
    module = FastWarpDecode(nets.warping, nets.spade, args[0].shape[-1], channels_last,
                            pad8=True, depth_taps=True, occlusion_taps=True, phase_up=True,
                            compose_shortcut=True).eval()
    calls: list[str] = []

    def compile_fn(m: torch.nn.Module):  # records that every piece goes through it
        calls.append(type(m).__name__)
        return m

    streamed = StreamedWarpDecode(module, compile_fn)
    assert streamed.side is None  # CPU: one stream
    got = streamed(*args)
    assert torch.equal(got, module(*args))  # same ops in the same order
    assert rel_l2(got, nets.spade(nets.warping(*args)["out"])) < TOL
    n_mid = len(module.spade.middle)
    assert calls.count("_MidMods") == n_mid and calls.count("_MidBlock") == n_mid
    assert calls.count("_UpBlock") == 2 and calls.count("_Stage") == 2


def test_streamed_needs_phase_up_and_ungrouped(nets) -> None:
    for kw in ({"phase_up": False}, {"phase_up": True, "grouped": True}):
        module = FastWarpDecode(nets.warping, nets.spade, 16, **kw)
        with pytest.raises(ValueError, match="phase_up"):
            StreamedWarpDecode(module)



@pytest.mark.parametrize("front_blocks", [0, 3, 6])
@pytest.mark.parametrize("channels_last", [False, True])
@torch.no_grad()
def test_split_stream_equals_one_module_and_reference(nets, fixtures, channels_last: bool,
                                                      front_blocks: int) -> None:
    """Four pieces (W + shared activations, front blocks, side modulations, back): the
    same ops as the one-module forward, whatever the cut."""
    args = _args(fixtures)
    module = FastWarpDecode(nets.warping, nets.spade, args[0].shape[-1], channels_last,
                            pad8=True, depth_taps=True, occlusion_taps=True, phase_up=True,
                            compose_shortcut=True, split_hidden=True).eval()
    calls: list[str] = []

    def compile_fn(m: torch.nn.Module):
        calls.append(type(m).__name__)
        return m

    split = SplitStreamWarpDecode(module, compile_fn, front_blocks=front_blocks)
    assert split.side is None  # CPU: one stream
    got = split(*args)
    assert torch.equal(got, module(*args))
    assert rel_l2(got, nets.spade(nets.warping(*args)["out"])) < TOL
    assert sorted(calls) == ["_Back", "_Front", "_HeadHidden", "_SideMods"]


def test_split_stream_refuses_a_cut_past_the_middle_blocks(nets) -> None:
    module = FastWarpDecode(nets.warping, nets.spade, 16, phase_up=True)
    with pytest.raises(ValueError, match="front_blocks must be 0..6"):
        SplitStreamWarpDecode(module, front_blocks=7)
