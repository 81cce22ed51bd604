"""Warp + decode with the decoder's SPADE modulations on a second CUDA stream.

Every SPADE layer's ``(1 + gamma, beta)`` depends only on the warped feature (the segmap),
not on the decoder's main path. At batch 1 neither path fills an H100 alone (a 512-channel
3x3 conv at 64^2 is ~64 output tiles for 132 SMs), so the modulations of block ``i + 1``
and of the up blocks are computed on a side stream while block ``i`` runs on the main one.
Events order each block after its own modulations; the streams join before returning,
so the whole call can be captured as one CUDA graph (capture records the fork as
parallel branches).

Measured on an H100 (docs/benchmarks-history.md, rounds 7a and 16): slower than compiling
W+G as one module. The overlap bought 0.11 ms at batch 1, but splitting the compile into
pieces cost 0.26 ms (and 23% at batch 32: fusions across the pieces are lost). Not used
by the renderer; the script that timed it is in the git history.

The pieces are the same modules as :class:`~.fast.FastWarpDecode` (weights shared, not
copied), each compiled on its own when a ``compile_fn`` is given: the sums are the same
ones, in the same order, so the output equals the one-module forward (to the last bit on
the CPU, where the streams are not used).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .fast import FastSPADE, FastWarpDecode, _block, _Stage

Mods = list[tuple[Tensor, Tensor]]


class _Head(nn.Module):
    """W: the warped, occluded feature that is the decoder's input and its segmap."""

    def __init__(self, module: FastWarpDecode) -> None:
        super().__init__()
        self.warp, self.channels_last = module.warp, module.channels_last

    def forward(self, feature_3d: Tensor, kp_driving: Tensor, kp_source: Tensor) -> Tensor:
        out = self.warp(feature_3d, kp_driving, kp_source)
        return out.contiguous(memory_format=torch.channels_last) if self.channels_last else out


class _Hidden(nn.Module):
    def __init__(self, stage: _Stage) -> None:
        super().__init__()
        self.stage = stage

    def forward(self, seg: Tensor) -> Tensor:
        return self.stage.hidden_of(seg)


class _MidMods(nn.Module):
    """The two modulations of one middle block from the shared activations."""

    def __init__(self, stage: _Stage, block: int) -> None:
        super().__init__()
        self.stage, self.layers = stage, range(2 * block, 2 * block + 2)

    def forward(self, actv: Tensor) -> Mods:
        return self.stage.mods_of(actv, self.layers)


class _MidBlock(nn.Module):
    def __init__(self, blk: nn.Module) -> None:
        super().__init__()
        self.blk = blk

    def forward(self, x: Tensor, mods: Mods) -> Tensor:
        return _block(self.blk, x, mods)


class _UpBlock(nn.Module):
    """Upsample x2 then an up block; the last one also makes the image."""

    def __init__(self, blk: nn.Module, composed: bool, conv_img: nn.Conv2d | None = None
                 ) -> None:
        super().__init__()
        self.blk, self.composed, self.conv_img = blk, composed, conv_img

    def forward(self, x: Tensor, mods: Mods) -> Tensor:
        x = _block(self.blk, F.interpolate(x, scale_factor=2.0), mods, self.composed)
        if self.conv_img is None:
            return x
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 0.2)))


class StreamedWarpDecode:
    """``(feature_3d, kp_driving, kp_source) -> frames``, like ``module``'s forward, with the
    SPADE modulations on a side stream (CUDA) and each piece compiled by ``compile_fn``.

    Needs the decoder built with ``phase_up`` (the up stages read the 64^2 segmap) and not
    ``grouped`` (the middle modulations come a block at a time).
    """

    def __init__(self, module: FastWarpDecode,
                 compile_fn: Callable[[nn.Module], Callable] | None = None,
                 streams: bool = True) -> None:
        sp: FastSPADE = module.spade
        if not sp.phase_up or sp.stage_mid.grouped:
            raise ValueError("the streamed decoder needs phase_up and no grouped convs")
        wrap = compile_fn or (lambda m: m)
        self.module = module
        self.head = wrap(_Head(module))
        self.fc = sp.fc  # one conv: cuDNN either way
        self.hidden = wrap(_Hidden(sp.stage_mid))
        self.mid_mods = [wrap(_MidMods(sp.stage_mid, i)) for i in range(len(sp.middle))]
        self.mid_blocks = [wrap(_MidBlock(b)) for b in sp.middle]
        self.up_stages = [wrap(sp.stage_0), wrap(sp.stage_1)]
        self.up_blocks = [wrap(_UpBlock(sp.up_0, sp.stage_0.composed)),
                          wrap(_UpBlock(sp.up_1, sp.stage_1.composed, sp.conv_img))]
        dev = next(module.parameters()).device
        self.side = torch.cuda.Stream(dev) if streams and dev.type == "cuda" else None

    def __call__(self, feature_3d: Tensor, kp_driving: Tensor, kp_source: Tensor) -> Tensor:
        seg = self.head(feature_3d, kp_driving, kp_source)
        side = self.side
        main = torch.cuda.current_stream(seg.device) if side is not None else None
        ready: list[torch.cuda.Event | None] = []

        def mark() -> None:  # the side stream's work so far is needed by the next block
            if side is not None:
                ev = torch.cuda.Event()
                ev.record(side)
                ready.append(ev)
            else:
                ready.append(None)

        if side is not None:
            side.wait_stream(main)
        with torch.cuda.stream(side) if side is not None else contextlib.nullcontext():
            actv = self.hidden(seg)
            mid = []
            for mods in self.mid_mods:
                mid.append(mods(actv))
                mark()
            up = []
            for stage in self.up_stages:
                up.append(stage(seg))
                mark()
        x = self.fc(seg)
        for blk, mods, ev in zip([*self.mid_blocks, *self.up_blocks], [*mid, *up], ready,
                                 strict=True):
            if ev is not None:
                main.wait_event(ev)
            x = blk(x, mods)
        if side is not None:
            main.wait_stream(side)  # join: capture needs it, and the next call reuses buffers
        return x


class _HeadHidden(nn.Module):
    """W, then the middle SPADE layers' shared activations: what both streams read."""

    def __init__(self, module: FastWarpDecode) -> None:
        super().__init__()
        self.head, self.stage = _Head(module), module.spade.stage_mid

    def forward(self, feature_3d: Tensor, kp_driving: Tensor,
                kp_source: Tensor) -> tuple[Tensor, Tensor]:
        seg = self.head(feature_3d, kp_driving, kp_source)
        return seg, self.stage.hidden_of(seg)


class _Front(nn.Module):
    """Main stream, first part: fc, then the first ``n`` middle blocks with their own
    modulations computed here."""

    def __init__(self, spade: FastSPADE, n: int) -> None:
        super().__init__()
        self.spade, self.n = spade, n

    def forward(self, seg: Tensor, actv: Tensor) -> Tensor:
        sp = self.spade
        mods = sp.stage_mid.mods_of(actv, range(0, 2 * self.n))
        x = sp.fc(seg)
        for i in range(self.n):
            x = _block(sp.middle[i], x, mods[2 * i:2 * i + 2])
        return x


class _SideMods(nn.Module):
    """Side stream: the modulations of the other middle blocks and of both up blocks."""

    def __init__(self, spade: FastSPADE, n: int) -> None:
        super().__init__()
        self.spade, self.n = spade, n

    def forward(self, seg: Tensor, actv: Tensor) -> tuple[Mods, Mods, Mods]:
        sp = self.spade
        mid = sp.stage_mid.mods_of(actv, range(2 * self.n, 2 * len(sp.middle)))
        return mid, sp.stage_0(seg), sp.stage_1(seg)


class _Back(nn.Module):
    """Main stream, second part: the other middle blocks, both up blocks, the image."""

    def __init__(self, spade: FastSPADE, n: int) -> None:
        super().__init__()
        self.spade, self.n = spade, n
        self.up_0 = _UpBlock(spade.up_0, spade.stage_0.composed)
        self.up_1 = _UpBlock(spade.up_1, spade.stage_1.composed, spade.conv_img)

    def forward(self, x: Tensor, mods: tuple[Mods, Mods, Mods]) -> Tensor:
        mid, up0, up1 = mods
        for i, blk in enumerate(self.spade.middle[self.n:]):
            x = _block(blk, x, mid[2 * i:2 * i + 2])
        return self.up_1(self.up_0(x, up0), up1)


class SplitStreamWarpDecode:
    """``module``'s forward in four compiled pieces, two of them side by side: while the
    main stream runs fc and the first ``front_blocks`` middle blocks, a side stream
    computes the modulations of the rest (the other middle blocks, both up blocks).

    The coarse form of :class:`StreamedWarpDecode`: that one cut the compile into ~18
    pieces and lost more to the fusions across them (0.26 ms at batch 1) than the overlap
    won (0.11 ms). Here there are four cuts: W + the shared activations | front | side
    modulations | back. Needs ``phase_up`` and not ``grouped``, like that class.
    """

    def __init__(self, module: FastWarpDecode,
                 compile_fn: Callable[[nn.Module], Callable] | None = None,
                 streams: bool = True, front_blocks: int = 3) -> None:
        sp: FastSPADE = module.spade
        if not sp.phase_up or sp.stage_mid.grouped:
            raise ValueError("the split decoder needs phase_up and no grouped convs")
        if not 0 <= front_blocks <= len(sp.middle):
            raise ValueError(f"front_blocks must be 0..{len(sp.middle)}, not {front_blocks}")
        wrap = compile_fn or (lambda m: m)
        self.module = module
        self.head = wrap(_HeadHidden(module))
        self.front = wrap(_Front(sp, front_blocks))
        self.side_mods = wrap(_SideMods(sp, front_blocks))
        self.back = wrap(_Back(sp, front_blocks))
        dev = next(module.parameters()).device
        self.side = torch.cuda.Stream(dev) if streams and dev.type == "cuda" else None

    def __call__(self, feature_3d: Tensor, kp_driving: Tensor, kp_source: Tensor) -> Tensor:
        seg, actv = self.head(feature_3d, kp_driving, kp_source)
        side = self.side
        if side is None:
            mods = self.side_mods(seg, actv)
            return self.back(self.front(seg, actv), mods)
        main = torch.cuda.current_stream(seg.device)
        side.wait_stream(main)
        with torch.cuda.stream(side):
            mods = self.side_mods(seg, actv)
        x = self.front(seg, actv)
        main.wait_stream(side)  # join: capture needs it, and the next call reuses buffers
        return self.back(x, mods)
