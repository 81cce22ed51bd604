"""A large-kernel Conv3d with few outputs computed through the FFT (the dense-motion mask).

The mask conv (142 -> 22 channels, 7 x 7 x 7 taps over a 16 x 64 x 64 volume) is 140 GFLOP
per frame, the largest single conv of the warp + decode, and with 22 outputs the one that
fills tensor cores worst. Through the FFT the same linear map is a per-frequency 142 x 22
complex product: ~1.3 GFLOP per frame, plus the transforms, which only move memory.

- **Same sums, other rounding.** The zero padding of a "same" conv is kept exactly: the FFT
  size in each dimension is at least ``size + padding`` (and the kernel's size), so the
  circular convolution never wraps a real input onto an output. Transforms and products run
  in fp32, so on fp16 inputs the result is *closer* to the fp32 conv than the fp16 conv is.
- **The kernel's spectrum is computed once** at build time: (C, O, F) real and imaginary
  planes, fp32 or fp16 (half the bytes the product reads; each frequency's weights rounded
  like the conv's own fp16 weights are).
- **The per-frequency product** is one Triton kernel on CUDA (each program: one frame, a
  block of frequencies, all outputs; the blocks of one frequency range run one after the
  other over the frames, so the weights are read from L2), ``einsum`` elsewhere.

Reference: the convolution theorem; cuFFT through ``torch.fft``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

try:  # Triton ships with CUDA builds of torch; CPU builds use the einsum product
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the torch build
    triton = None


def fast_fft_size(n: int) -> int:
    """The smallest 2-3-5-smooth integer >= ``n`` (sizes cuFFT transforms fastest)."""
    m = n
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def kernel_spectrum(weight: Tensor, size: tuple[int, int, int]) -> Tensor:
    """rfft of a (O, C, kd, kh, kw) cross-correlation kernel placed for a "same" conv on a
    circular grid of ``size``: (O, C, Nd, Nh, Nw // 2 + 1) complex64.

    Circular convolution with this array equals the zero-padded conv on every output that
    lies inside the input, when each N >= input size + padding and N >= the kernel size."""
    o, c, *k = weight.shape
    w = torch.flip(weight.detach().float(), dims=(2, 3, 4))
    arr = w.new_zeros(o, c, *size)
    arr[..., :k[0], :k[1], :k[2]] = w
    arr = torch.roll(arr, shifts=tuple(-(kk // 2) for kk in k), dims=(2, 3, 4))
    return torch.fft.rfftn(arr, dim=(2, 3, 4))


if triton is not None:
    @triton.jit
    def _contract_kernel(x_ptr, wr_ptr, wi_ptr, y_ptr, n_in, n_freq,
                         N_OUT: tl.constexpr, N_OUT_PAD: tl.constexpr, BLOCK_F: tl.constexpr):
        """y[b, o, f] = sum_c x[b, c, f] * w[c, o, f] (complex; x and y interleaved re/im
        fp32, w planar)."""
        b = tl.program_id(0).to(tl.int64)
        f = tl.program_id(1) * BLOCK_F + tl.arange(0, BLOCK_F)
        o = tl.arange(0, N_OUT_PAD)
        fm = f < n_freq
        wm = (o[:, None] < N_OUT) & fm[None, :]
        acc_r = tl.zeros((N_OUT_PAD, BLOCK_F), dtype=tl.float32)
        acc_i = tl.zeros((N_OUT_PAD, BLOCK_F), dtype=tl.float32)
        x_row = x_ptr + b * n_in * n_freq * 2
        for c in range(n_in):
            xr = tl.load(x_row + (c * n_freq + f) * 2, mask=fm, other=0.0)[None, :]
            xi = tl.load(x_row + (c * n_freq + f) * 2 + 1, mask=fm, other=0.0)[None, :]
            w_off = (c * N_OUT + o[:, None]) * n_freq + f[None, :]
            wr = tl.load(wr_ptr + w_off, mask=wm, other=0.0).to(tl.float32)
            wi = tl.load(wi_ptr + w_off, mask=wm, other=0.0).to(tl.float32)
            acc_r += xr * wr - xi * wi
            acc_i += xr * wi + xi * wr
        y_off = ((b * N_OUT + o[:, None]) * n_freq + f[None, :]) * 2
        tl.store(y_ptr + y_off, acc_r, mask=wm)
        tl.store(y_ptr + y_off + 1, acc_i, mask=wm)


@torch.library.custom_op("avatar_vcam::spectral_contract", mutates_args=())
def spectral_contract(x: Tensor, wr: Tensor, wi: Tensor) -> Tensor:
    """(B, C, F) complex64 spectra times (C, O, F) planar weights, summed over C ->
    (B, O, F) complex64."""
    b, c, f = x.shape
    o = wr.shape[1]
    if x.is_cuda and triton is not None:
        y = torch.empty(b, o, f, dtype=torch.complex64, device=x.device)
        block = 128
        _contract_kernel[(b, triton.cdiv(f, block))](
            torch.view_as_real(x.contiguous()), wr, wi, torch.view_as_real(y), c, f,
            N_OUT=o, N_OUT_PAD=triton.next_power_of_2(o), BLOCK_F=block, num_warps=4)
        return y
    w = torch.complex(wr.float(), wi.float())
    return torch.einsum("bcf,cof->bof", x, w).contiguous()  # the layout the fake gives


@spectral_contract.register_fake
def _(x: Tensor, wr: Tensor, wi: Tensor) -> Tensor:
    return x.new_empty(x.shape[0], wr.shape[1], x.shape[2])


class FFTConv3d(nn.Module):
    """A stride-1, odd-kernel, "same"-padded Conv3d over inputs of a fixed (D, H, W),
    computed through the FFT in fp32; the output has the input's dtype.

    ``spectrum_dtype``: the dtype the kernel's spectrum is stored in (fp16 halves what the
    product reads; its rounding is that of an fp16 conv's weights)."""

    def __init__(self, conv: nn.Conv3d, input_size: tuple[int, int, int],
                 spectrum_dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        k, p = conv.kernel_size, conv.padding
        if (conv.stride != (1, 1, 1) or conv.dilation != (1, 1, 1) or conv.groups != 1
                or any(kk % 2 == 0 or pp != kk // 2 for kk, pp in zip(k, p, strict=True))):
            raise ValueError("FFTConv3d takes stride-1, ungrouped, odd-kernel 'same' convs")
        self.input_size = tuple(input_size)
        # N >= size + padding: no input wraps onto an output; N >= kernel: no tap onto a tap
        self.fft_size = tuple(fast_fft_size(max(n + pp, kk))
                              for n, pp, kk in zip(input_size, p, k, strict=True))
        self.n_in, self.n_out = conv.in_channels, conv.out_channels
        spec = kernel_spectrum(conv.weight, self.fft_size)  # (O, C, Nd, Nh, Nw2)
        spec = spec.permute(1, 0, 2, 3, 4).reshape(self.n_in, self.n_out, -1)  # (C, O, F)
        bias = conv.bias if conv.bias is not None else conv.weight.new_zeros(self.n_out)
        # held as integer views of their bits: ``module.to(torch.float16)`` (how the fast
        # path is cast) must not round the fp32 spectrum and bias this module computes with
        self.spectrum_dtype = spectrum_dtype
        bits = {torch.float32: torch.int32, torch.float16: torch.int16}[spectrum_dtype]
        self.register_buffer("wr_bits", spec.real.to(spectrum_dtype).contiguous().view(bits))
        self.register_buffer("wi_bits", spec.imag.to(spectrum_dtype).contiguous().view(bits))
        self.register_buffer("bias_bits", bias.detach().float().clone().view(torch.int32))

    def forward(self, x: Tensor) -> Tensor:
        b, c, d, h, w = x.shape
        if (d, h, w) != self.input_size or c != self.n_in:
            raise ValueError(f"FFTConv3d built for (C, D, H, W) = ({self.n_in}, "
                             f"{self.input_size}), got {tuple(x.shape[1:])}")
        pad = [0, self.fft_size[2] - w, 0, self.fft_size[1] - h, 0, self.fft_size[0] - d]
        # one dense NCDHW fp32 copy, zero-padded: the layout cuFFT reads without another copy
        spec = torch.fft.rfftn(F.pad(x.float(), pad).contiguous(), dim=(2, 3, 4))
        nd, nh, nw2 = spec.shape[2:]
        y = spectral_contract(spec.reshape(b, c, -1), self.wr_bits.view(self.spectrum_dtype),
                              self.wi_bits.view(self.spectrum_dtype))
        y = torch.fft.irfftn(y.reshape(b, self.n_out, nd, nh, nw2), s=self.fft_size,
                             dim=(2, 3, 4))
        y = y[:, :, :d, :h, :w] + self.bias_bits.view(torch.float32).reshape(1, -1, 1, 1, 1)
        return y.to(x.dtype)
