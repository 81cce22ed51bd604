"""The LivePortrait renderer on onnxruntime (``--backend onnx``).

The seven networks run from their ONNX exports (batch 1; a batch of frames is run row by
row); the glue around them (crop, motion mapping, paste) is the torch renderer's own, on the
CPU. onnxruntime uses the CUDA execution provider when it has one and the device is not
``cpu``, else the CPU provider. The exports are made once from the installed torch weights
into ``<models>/onnx/liveportrait-<size>-<fingerprint>/`` and reused while the weights stay
the same.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import EngineError
from .export import (
    LP_FILES,
    MLPS,
    WARP_OUTPUTS,
    export_liveportrait,
    lp_shapes,
    manifest_ok,
    weights_fingerprint,
)
from .session import OnnxNet, require_onnxruntime

log = logging.getLogger(__name__)


def _rows(x: Tensor) -> list[np.ndarray]:
    """A (B, ...) tensor as B float32 arrays of shape (1, ...)."""
    a = x.detach().to("cpu", torch.float32).numpy()
    return [a[i:i + 1] for i in range(a.shape[0])]


class _Net:
    """Base of the torch-shaped wrappers: ``.to()`` / ``.eval()`` are no-ops (ORT places
    the work), so the renderer can treat them like its torch modules."""

    def to(self, *args: object, **kwargs: object) -> _Net:
        return self

    def eval(self) -> _Net:
        return self


class OnnxAppearance(_Net):
    """image (B, 3, n, n) -> feature volume (B, 32, 16, n/4, n/4)."""

    def __init__(self, net: OnnxNet) -> None:
        self.net = net

    def __call__(self, image: Tensor) -> Tensor:
        return torch.from_numpy(np.concatenate([self.net(image=r)["feature"]
                                                for r in _rows(image)]))


class OnnxMotion(_Net):
    """image (B, 3, n, n) -> dict of kp, exp, pitch, yaw, roll, t, scale, as the torch
    ``MotionExtractor`` gives."""

    def __init__(self, net: OnnxNet) -> None:
        self.net = net

    def __call__(self, image: Tensor) -> dict[str, Tensor]:
        outs = [self.net(image=r) for r in _rows(image)]
        return {k: torch.from_numpy(np.concatenate([o[k] for o in outs])) for k in outs[0]}


class OnnxMLP(_Net):
    """(B, n_in) -> (B, n_out): one retargeting MLP."""

    def __init__(self, net: OnnxNet) -> None:
        self.net = net

    def __call__(self, x: Tensor) -> Tensor:
        return torch.from_numpy(np.concatenate([self.net(x=r)["y"] for r in _rows(x)]))


class OnnxRetargeting(_Net):
    """``stitch`` / ``lip_delta`` / ``eye_delta`` of :class:`Retargeting` over ONNX MLPs."""

    from ..renderers.liveportrait.stitching import Retargeting as _R

    stitch = _R.stitch
    lip_delta = _R.lip_delta
    eye_delta = _R.eye_delta
    del _R

    def __init__(self, stitching: OnnxMLP, lip: OnnxMLP, eye: OnnxMLP) -> None:
        self.stitching, self.lip, self.eye = stitching, lip, eye


class OnnxWarpDecode:
    """``(feature_3d, kp_driving, kp_source) -> frames (B, 3, 2n, 2n)``: warping then SPADE,
    per row; stands in for the renderer's ``WarpDecodeRuntime`` (float32, no graphs)."""

    dtype = torch.float32

    def __init__(self, warping: OnnxNet, spade: OnnxNet) -> None:
        from ..renderers.liveportrait.runtime import RuntimeOptions

        self.warping, self.spade = warping, spade
        self.opts = RuntimeOptions(dtype=torch.float32, cuda_graphs=False)
        self.compile_seconds = 0.0

    def warp(self, feature: np.ndarray, kp_d: np.ndarray, kp_s: np.ndarray) -> dict:
        """One row through the warping network: out, occlusion_map, deformation."""
        return self.warping(feature_3d=feature, kp_driving=kp_d, kp_source=kp_s)

    def __call__(self, feature: Tensor, kp_driving: Tensor, kp_source: Tensor) -> Tensor:
        b = max(feature.shape[0], kp_driving.shape[0], kp_source.shape[0])
        f, d, s = (_rows(x.expand(b, *x.shape[1:])) for x in (feature, kp_driving, kp_source))
        frames = [self.spade(feature=self.warp(*row)[WARP_OUTPUTS[0]])["image"]
                  for row in zip(f, d, s, strict=True)]
        return torch.from_numpy(np.concatenate(frames))


class OnnxLivePortrait:
    """The seven LivePortrait sessions of an exported folder, at one input size."""

    def __init__(self, folder: str | Path, input_size: int = 256, device: str = "auto") -> None:
        require_onnxruntime()
        folder = Path(folder)
        shapes = lp_shapes(input_size)
        s = {n: OnnxNet(folder / f"{n}.onnx", device, shapes[n]["inputs"]) for n in LP_FILES}
        self.sessions = s
        self.providers = s["warping"].providers
        self.appearance = OnnxAppearance(s["appearance"])
        self.motion = OnnxMotion(s["motion"])
        self.retargeting = OnnxRetargeting(*(OnnxMLP(s[k]) for k in MLPS))
        self.runtime = OnnxWarpDecode(s["warping"], s["spade"])

    def networks(self) -> object:
        """A ``LivePortraitNetworks`` whose F, M and MLPs are the ONNX ones (W and G run in
        :attr:`runtime`)."""
        from ..renderers.liveportrait.loader import LivePortraitNetworks

        return LivePortraitNetworks(appearance=self.appearance, motion=self.motion,
                                    warping=None, spade=None, retargeting=self.retargeting)


def cache_folder(weights: Path, input_size: int, root: Path | None = None) -> tuple[Path, str]:
    """Where the exports of the weights in ``weights`` live, and their fingerprint."""
    from ..renderers.liveportrait.loader import NETWORKS, find_checkpoint
    from ..renderers.liveportrait.weights import models_root

    fp = weights_fingerprint(find_checkpoint(weights, n) for n in NETWORKS)
    root = Path(root) if root is not None else models_root() / "onnx"
    return root / f"liveportrait-{input_size}-{fp}", fp


def ensure_exported(weights: str | Path | None = None, input_size: int = 256,
                    root: Path | None = None) -> Path:
    """The folder of ONNX exports of the installed (or ``weights``) LivePortrait weights,
    exporting them first when they are missing or stale (about half a minute)."""
    from ..renderers.liveportrait.loader import load_networks
    from ..renderers.liveportrait.weights import default_dir

    weights = Path(weights) if weights is not None else default_dir()
    folder, fp = cache_folder(weights, input_size, root)
    if not manifest_ok(folder, input_size, fp):
        log.warning("exporting the LivePortrait networks to ONNX in %s (once)", folder)
        export_liveportrait(load_networks(weights), folder, input_size, source=fp)
    return folder


def make_onnx_renderer(device: str = "auto", weights: str | Path | None = None,
                       input_size: int = 256, folder: str | Path | None = None) -> object:
    """A ``LivePortraitRenderer`` whose networks run on onnxruntime (see module docstring).
    ``folder``: exported files to use as they are (else the cache, exported when needed)."""
    require_onnxruntime()
    from ..renderers.liveportrait.renderer import LivePortraitRenderer

    if input_size % 32:
        raise EngineError(f"input size must be a multiple of 32, got {input_size}")
    folder = Path(folder) if folder is not None else ensure_exported(weights, input_size)
    ort_nets = OnnxLivePortrait(folder, input_size, device)
    renderer = LivePortraitRenderer(device="cpu", nets=ort_nets.networks(),
                                    input_size=input_size, runtime=ort_nets.runtime)
    renderer.backend = "onnx"
    renderer.providers = ort_nets.providers
    return renderer
