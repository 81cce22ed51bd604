"""The FFT form of the dense-motion mask conv computes the conv (CPU, fp32 and fp64)."""

from __future__ import annotations

import pytest
import torch
from lp_testdata import rel_l2

from avatar_vcam.engine.renderers.liveportrait.fast import FastWarpDecode
from avatar_vcam.engine.renderers.liveportrait.fftconv import (
    FFTConv3d,
    fast_fft_size,
    kernel_spectrum,
    spectral_contract,
)

TOL = 1e-4


def test_fast_fft_size_is_smooth_and_minimal() -> None:
    assert [fast_fft_size(n) for n in (1, 7, 11, 19, 67, 97)] == [1, 8, 12, 20, 72, 100]


@pytest.mark.parametrize("kernel", [(7, 7, 7), (3, 5, 7), (1, 3, 1)])
@pytest.mark.parametrize("size", [(16, 12, 12), (5, 9, 11), (1, 4, 6)])
@torch.no_grad()
def test_fft_conv_equals_zero_padded_conv(kernel: tuple[int, int, int],
                                          size: tuple[int, int, int]) -> None:
    """Every output, the borders' included: the FFT grid is large enough that the circular
    convolution never wraps an input onto an output (fp64: equal to rounding)."""
    g = torch.Generator().manual_seed(0)
    conv = torch.nn.Conv3d(6, 5, kernel, padding=tuple(k // 2 for k in kernel)).double()
    x = torch.randn(3, 6, *size, generator=g, dtype=torch.float64)
    fft = FFTConv3d(conv, size)
    assert all(n >= s + k // 2 for n, s, k in zip(fft.fft_size, size, kernel, strict=True))
    got = fft(x)
    assert got.dtype == x.dtype and got.shape == (3, 5, *size)
    # the spectrum and transforms are fp32 whatever the input: fp32 rounding, not fp64's
    assert rel_l2(got, conv(x)) < 1e-5


def test_kernel_spectrum_of_a_centre_tap_is_flat() -> None:
    """A kernel with only its centre tap is the identity: its spectrum is that tap at every
    frequency (the roll puts the centre at index 0)."""
    w = torch.zeros(1, 1, 3, 5, 7)
    w[0, 0, 1, 2, 3] = 2.5
    spec = kernel_spectrum(w, (4, 8, 8))
    assert torch.allclose(spec, torch.full_like(spec, 2.5))


@torch.no_grad()
def test_fft_conv_rejects_what_it_cannot_compute() -> None:
    with pytest.raises(ValueError, match="stride-1"):
        FFTConv3d(torch.nn.Conv3d(2, 2, 4, padding=2), (4, 4, 4))
    with pytest.raises(ValueError, match="stride-1"):
        FFTConv3d(torch.nn.Conv3d(2, 2, 3, padding=1, stride=2), (4, 4, 4))
    fft = FFTConv3d(torch.nn.Conv3d(2, 2, 3, padding=1), (4, 4, 4))
    with pytest.raises(ValueError, match=r"built for \(C, D, H, W\)"):
        fft(torch.zeros(1, 2, 4, 4, 5))


@torch.no_grad()
def test_half_cast_keeps_the_fp32_spectrum() -> None:
    """The fast path is cast with ``.to(torch.float16)``; the spectrum and bias this module
    computes with stay fp32 (an fp16 spectrum only when asked for), on fp16 inputs the
    output is fp16 and nearer the fp32 conv than fp16 rounding of the input allows more."""
    g = torch.Generator().manual_seed(1)
    conv = torch.nn.Conv3d(6, 4, 5, padding=2)
    x = torch.randn(2, 6, 6, 10, 10, generator=g)
    fft = FFTConv3d(conv, (6, 10, 10)).to(torch.float16)
    assert fft.wr_bits.view(fft.spectrum_dtype).dtype == torch.float32
    want = conv(x.half().float())
    got = fft(x.half())
    assert got.dtype == torch.float16
    assert rel_l2(got.float(), want) < 1e-3
    half = FFTConv3d(conv, (6, 10, 10), torch.float16).to(torch.float16)
    assert half.wr_bits.view(half.spectrum_dtype).dtype == torch.float16
    assert rel_l2(half(x.half()).float(), want) < 2e-3


@pytest.mark.parametrize("half", [False, True])
@torch.no_grad()
def test_fft_mask_in_the_fast_path_matches_reference(nets, fixtures, half: bool) -> None:
    """The mask through the FFT, with the other round-19 rewrites: W -> G still equals the
    plain networks' chain; below ``mask_fft`` the tap conv runs."""
    args = (fixtures["W_in_feature_3d"], fixtures["W_in_kp_driving"],
            fixtures["W_in_kp_source"])
    want = nets.spade(nets.warping(*args)["out"])
    kw = {"pad8": True, "depth_taps": True, "mask_width_taps": True, "mask_packed": True,
          "nhwc_tap_weights": True, "channels_last": True, "mask_fft_half": half}
    fast = FastWarpDecode(nets.warping, nets.spade, feature_hw=args[0].shape[-1],
                          mask_fft=1, **kw)
    mask_fft = fast.warp.mask_fft
    assert mask_fft.n_in == 142 and mask_fft.n_out == 22
    calls: list[int] = []
    mask_fft.register_forward_hook(lambda *_: calls.append(1))
    assert rel_l2(fast(*args), want) < (3e-4 if half else TOL)
    assert calls == [1]
    taps_only = FastWarpDecode(nets.warping, nets.spade, feature_hw=args[0].shape[-1],
                               mask_fft=2, **kw)
    taps_only.warp.mask_fft.register_forward_hook(lambda *_: calls.append(2))
    assert rel_l2(taps_only(*args), want) < TOL
    assert calls == [1]


def test_spectral_contract_is_a_well_formed_custom_op() -> None:
    """Its fake (what torch.compile traces) agrees with the real op: shapes, strides."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 10, dtype=torch.complex64, generator=g)
    wr, wi = torch.randn(3, 4, 10, generator=g), torch.randn(3, 4, 10, generator=g)
    torch.library.opcheck(spectral_contract, (x, wr, wi))
    want = torch.einsum("bcf,cof->bof", x, torch.complex(wr, wi))
    assert torch.allclose(spectral_contract(x, wr, wi), want)
