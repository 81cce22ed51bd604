"""``liveportrait``: the LivePortrait networks behind the Renderer protocol.

``prepare`` crops a square around the avatar's face (``crop_scale`` x the face box, shifted
up by ``crop_shift`` of the side, as LivePortrait's cropper does; parts outside the photo
are edge-padded), resizes it to the networks' input (256), runs the appearance extractor F
and the motion extractor M once, and keeps the feature volume and source motion on the
device. ``render`` maps MotionFrame vectors to driving keypoints (``motion_map``), warps and
decodes (``runtime``: fp16 + CUDA graphs on a GPU) to 512x512 crops, and pastes them over the
avatar frame through a feathered square mask. ``render_native`` replays native motion.

On CUDA a frame is one copy of the motion vectors in, three graph replays (mapping, warp +
decode, paste) and one copy of the uint8 frames out to pinned memory: no host round trip in
between, so the host's work for a frame is a few launches, not ~60 kernels and syncs.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...avatar import Avatar
from .fast import GraphRunner
from .keypoints import pose_to_degrees, rotation_matrix, transform_keypoints
from .loader import LivePortraitNetworks, load_networks
from .motion_map import MotionMapper, SourceMotion, ratios_from_mesh
from .native import NativeMotion
from .runtime import RuntimeOptions, WarpDecodeRuntime

log = logging.getLogger(__name__)

CROP_SCALE = 2.0  # crop side / face-box side (the face box includes the forehead)
CROP_SHIFT = -0.06  # crop centre shift, fraction of the side (negative: up)
FEATHER = 0.08  # width of the mask's soft edge, fraction of the crop side


@dataclass
class LivePortraitState:
    """Everything ``render`` needs for one avatar at one output size."""

    size: int
    input_size: int
    background: Tensor  # (1, 3, S, S) float32 0..1, the avatar at the output size
    f_s: Tensor  # (1, 32, 16, h, w) feature volume, in the runtime's dtype
    source: SourceMotion
    mapper: MotionMapper
    paste_grid: Tensor  # (1, y1-y0, x1-x0, 2): output pixel -> crop coordinates
    paste_mask: Tensor  # (1, 1, y1-y0, x1-x0) 0..1
    roi: tuple[int, int, int, int]  # x0, y0, x1, y1 of the pasted region in the output
    graphs: dict[tuple[str, int], GraphRunner] = field(default_factory=dict, repr=False)


class LivePortraitRenderer:
    """Photoreal talking head from the LivePortrait networks (see module docstring)."""

    name = "liveportrait"

    def __init__(self, device: str | torch.device = "cuda", weights: str | Path | None = None,
                 nets: LivePortraitNetworks | None = None, input_size: int = 256,
                 options: RuntimeOptions | None = None,
                 runtime: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None) -> None:
        """``runtime``: the warp + decode to use instead of building a
        :class:`WarpDecodeRuntime` (the onnx backend's, :mod:`engine.onnx.liveportrait`)."""
        self.device = torch.device(device)
        if nets is None:
            from .weights import default_dir

            nets = load_networks(weights or default_dir(), device="cpu")
        self.nets = nets
        self.input_size = input_size
        for net in (nets.appearance, nets.motion, nets.retargeting):
            net.to(self.device)
        if runtime is not None:
            self.runtime = runtime
        elif options is None and self.device.type == "cuda":
            from .weights import models_root

            # channels_last: compiled W+G b1 3.21 -> 3.09-3.13 ms on an H100
            # (docs/benchmarks-history.md, round 13); the eager frames served while it
            # compiles get ~1 ms slower
            options = RuntimeOptions(channels_last=True, compile=True, background_compile=True,
                                     cache_dir=models_root() / "compile-cache")
        if runtime is None:
            self.runtime = WarpDecodeRuntime(nets.warping, nets.spade, input_size // 4,
                                             self.device, options)
        # mapping and paste captured per state and batch size, like the runtime's W+G
        self.use_graphs = self.device.type == "cuda" and self.runtime.opts.cuda_graphs

    # ------------------------------------------------------------------ prepare
    @torch.no_grad()
    def prepare(self, avatar: Avatar, size: int) -> LivePortraitState:
        """Crop, extract the feature volume and source motion, build the paste mapping."""
        cfg = avatar.renderer.get("liveportrait", {}) if isinstance(avatar.renderer, dict) else {}
        dev, n = self.device, self.input_size
        img = torch.from_numpy(np.array(avatar.image)).permute(2, 0, 1)[None].float() / 255
        r = avatar.resolution
        x0, y0, x1, y1 = avatar.bbox
        side = float(cfg.get("crop_scale", CROP_SCALE)) * max(x1 - x0, y1 - y0)
        cx = (x0 + x1) / 2
        cy = (y0 + y1) / 2 + float(cfg.get("crop_shift", CROP_SHIFT)) * side
        box = (cx - side / 2, cy - side / 2, side)  # in avatar pixels
        src = _sample_square(img, box, n).to(dev)
        f_s = self.nets.appearance(src)
        m = self.nets.motion(src)
        deg = [float(pose_to_degrees(m[k])[0]) for k in ("pitch", "yaw", "roll")]
        kp, exp = m["kp"].reshape(1, -1, 3), m["exp"].reshape(1, -1, 3)
        rot = rotation_matrix(*(torch.tensor([d], device=dev) for d in deg))
        x_s = transform_keypoints(kp, exp, rot, m["t"], m["scale"])
        eye_l, eye_r, lip = ratios_from_mesh(avatar.landmarks)
        source = SourceMotion(kp=kp, exp=exp, pitch=deg[0], yaw=deg[1], roll=deg[2], t=m["t"],
                              scale=m["scale"], x_s=x_s, eye_ratios=(eye_l, eye_r),
                              lip_ratio=lip, face_frac=(x1 - x0) / side)
        background = img if r == size else F.interpolate(
            img, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        k = size / r
        grid, mask, roi = _paste_mapping(tuple(v * k for v in box), size, FEATHER)
        return LivePortraitState(size, n, background.to(dev), f_s.to(self.runtime.dtype),
                                 source, MotionMapper(source, self.nets.retargeting),
                                 grid.to(dev), mask.to(dev), roi)

    # ------------------------------------------------------------------ render
    @torch.no_grad()
    def render(self, state: LivePortraitState, motions: np.ndarray) -> np.ndarray:
        """(N, N_CHANNELS) MotionFrame values -> (N, size, size, 3) uint8 RGB."""
        motions = np.asarray(motions, np.float32)
        if len(motions) == 0:
            return np.zeros((0, state.size, state.size, 3), np.uint8)
        return self._frames(state, self._map(state, motions))

    @torch.no_grad()
    def render_native(self, state: LivePortraitState, motion: NativeMotion) -> np.ndarray:
        """Native LivePortrait motion (codes or driving keypoints) -> uint8 frames."""
        motion = motion.to(self.device)
        x_d = motion.keypoints(state.source.kp)
        if motion.stitch:
            x_d = self.nets.retargeting.stitch(state.source.x_s.expand(len(x_d), -1, -1), x_d)
        return self._frames(state, x_d)

    @torch.no_grad()
    def render_streams(self, jobs: Sequence[tuple[LivePortraitState, np.ndarray]]
                       ) -> list[np.ndarray]:
        """Several streams (avatars) in one warp + decode call: ``[(state, motions)]`` ->
        one ``(N_i, size_i, size_i, 3)`` uint8 array per job, as ``render`` gives each.

        The GPU's throughput comes from batching (docs/benchmarks-history.md: ~3.2 ms per frame at
        batch 1, ~2.6 at batch 32 on an H100), and one stream at 25-30 frames/s never
        fills a batch; a server feeding many streams gathers their frames into one call.
        """
        if not jobs:
            return []
        if any(st.input_size != self.input_size for st, _ in jobs):
            raise ValueError("render_streams: every state must come from this renderer's "
                             "prepare()")
        # cloned: a state listed twice would otherwise share (and overwrite) one graph buffer
        x_ds = [self._map(st, m).clone() if len(m) else None for st, m in jobs]
        live = [(st, x) for (st, _), x in zip(jobs, x_ds, strict=True) if x is not None]
        crops = iter(torch.split(self._crops([st for st, _ in live], [x for _, x in live]),
                                 [len(x) for _, x in live]) if live else ())
        return [self._paste(st, next(crops)) if x is not None
                else np.zeros((0, st.size, st.size, 3), np.uint8)
                for (st, _), x in zip(jobs, x_ds, strict=True)]

    def crops(self, state: LivePortraitState, x_d: Tensor) -> Tensor:
        """Driving keypoints (B, 21, 3) -> decoded crops (B, 3, 2n, 2n) float 0..1."""
        return self._crops([state], [x_d]).float()

    def _map(self, state: LivePortraitState, motions: np.ndarray) -> Tensor:
        """MotionFrame vectors -> driving keypoints (B, 21, 3) on the device."""
        m = torch.from_numpy(np.ascontiguousarray(motions, np.float32)).reshape(len(motions), -1)
        return self._graphed(state, "map", state.mapper.map, m.to(self.device))

    def _graphed(self, state: LivePortraitState, name: str, fn: Callable[..., Tensor],
                 *inputs: Tensor) -> Tensor:
        """``fn(*inputs)``, replayed from a graph captured per state and batch size on CUDA.
        The result is the graph's buffer: use it before the next call with the same key."""
        if not self.use_graphs:
            return fn(*inputs)
        key = (name, inputs[0].shape[0])
        runner = state.graphs.get(key)
        if runner is None:
            runner = state.graphs[key] = GraphRunner(fn, inputs)
        return runner(*inputs)

    def _crops(self, states: Sequence[LivePortraitState], x_ds: Sequence[Tensor]) -> Tensor:
        """One runtime call for the rows of all ``x_ds``, each row with its state's source;
        crops in the runtime's dtype."""
        f_s = [st.f_s.expand(len(x), -1, -1, -1, -1) for st, x in zip(states, x_ds, strict=True)]
        x_s = [st.source.x_s.expand(len(x), -1, -1) for st, x in zip(states, x_ds, strict=True)]
        if len(states) == 1:  # one source: broadcast views, no copies
            return self.runtime(f_s[0], x_ds[0], x_s[0])
        x_d = torch.cat([x.to(x_s[0].device, x_s[0].dtype) for x in x_ds])
        return self.runtime(torch.cat(f_s), x_d, torch.cat(x_s))

    def _frames(self, state: LivePortraitState, x_d: Tensor) -> np.ndarray:
        return self._paste(state, self._crops([state], [x_d]))  # cast to fp32 in the paste

    def _paste(self, state: LivePortraitState, crops: Tensor) -> np.ndarray:
        """Decoded crops (B, 3, 2n, 2n) -> uint8 frames of the avatar with them pasted in."""
        out = self._graphed(state, "paste", functools.partial(_composite, state), crops)
        if self.device.type != "cuda":  # a graph's output buffer is reused: copy it out
            return (out.clone() if self.use_graphs else out).numpy()
        host = torch.empty(out.shape, dtype=torch.uint8, pin_memory=True)
        host.copy_(out, non_blocking=True)
        torch.cuda.current_stream(self.device).synchronize()
        return host.numpy()


def _composite(state: LivePortraitState, crops: Tensor) -> Tensor:
    """Crops (B, 3, 2n, 2n) -> (B, S, S, 3) uint8 avatar frames with them pasted in, on the
    crops' device; torch ops only (graph-captured on CUDA)."""
    b = crops.shape[0]
    x0, y0, x1, y1 = state.roi
    frames = state.background.expand(b, -1, -1, -1).clone()
    pasted = F.grid_sample(crops.float(), state.paste_grid.expand(b, -1, -1, -1),
                           mode="bilinear", padding_mode="border", align_corners=False)
    region = frames[:, :, y0:y1, x0:x1]
    frames[:, :, y0:y1, x0:x1] = region + state.paste_mask * (pasted - region)
    out = (frames * 255).round_().clamp_(0, 255).to(torch.uint8)
    return out.permute(0, 2, 3, 1).contiguous()


def _sample_square(img: Tensor, box: tuple[float, float, float], n: int) -> Tensor:
    """The square ``box`` = (left, top, side) of ``img`` (1, 3, H, W), resampled to n x n,
    edge-padded outside the image; antialiased when shrinking."""
    left, top, side = box
    h, w = img.shape[-2:]
    if side > 2 * n:  # prefilter so bilinear sampling does not alias
        f = side / (2 * n)
        img = F.interpolate(img, size=(max(1, round(h / f)), max(1, round(w / f))),
                            mode="bilinear", antialias=True, align_corners=False)
        left, top, side = left / f, top / f, side / f
        h, w = img.shape[-2:]
    px = left + (torch.arange(n, dtype=torch.float32) + 0.5) * side / n
    py = top + (torch.arange(n, dtype=torch.float32) + 0.5) * side / n
    gx = (2 * px / w - 1).expand(n, n)
    gy = (2 * py / h - 1)[:, None].expand(n, n)
    grid = torch.stack([gx, gy], -1)[None]
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _paste_mapping(box: tuple[float, float, float], size: int, feather: float
                   ) -> tuple[Tensor, Tensor, tuple[int, int, int, int]]:
    """For the output pixels covered by ``box`` (left, top, side; output pixels): where
    they sample the crop (grid_sample coordinates) and the feathered blend weight."""
    left, top, side = box
    x0, y0 = max(0, int(np.floor(left))), max(0, int(np.floor(top)))
    x1, y1 = min(size, int(np.ceil(left + side))), min(size, int(np.ceil(top + side)))
    xs = (torch.arange(x0, x1, dtype=torch.float32) + 0.5 - left) / side  # 0..1 in the crop
    ys = (torch.arange(y0, y1, dtype=torch.float32) + 0.5 - top) / side
    grid = torch.stack([(2 * xs - 1).expand(len(ys), -1),
                        (2 * ys - 1)[:, None].expand(-1, len(xs))], -1)[None]

    def ramp(u: Tensor, lo_edge: bool, hi_edge: bool) -> Tensor:
        # only edges of the crop that lie inside the frame need a soft border
        r = torch.ones_like(u)
        if lo_edge:
            r = r * (u / feather).clamp(0, 1)
        if hi_edge:
            r = r * ((1 - u) / feather).clamp(0, 1)
        return r * r * (3 - 2 * r)

    wx = ramp(xs, left > 0, left + side < size)
    wy = ramp(ys, top > 0, top + side < size)
    mask = (wy[:, None] * wx[None, :])[None, None]
    return grid, mask, (x0, y0, x1, y1)
