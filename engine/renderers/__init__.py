"""Renderers: ``warp`` (embedded, no weights, CPU) and ``liveportrait`` (GPU, weights).

``auto`` (the default) picks ``liveportrait`` when its weights are installed and a CUDA GPU
is there, else ``warp``. Asking for ``liveportrait`` without either falls back to ``warp``
with a logged warning that says what is missing and how to get it. Device ``auto`` (the
default) is the CUDA GPU when torch sees one, else the CPU.
"""

from __future__ import annotations

import logging

from ..errors import EngineError
from .base import Renderer

RENDERERS = ("warp", "liveportrait", "auto")
log = logging.getLogger(__name__)


def liveportrait_weights_missing() -> str | None:
    """Why the LivePortrait weights cannot be used (None when they are installed)."""
    from .liveportrait.weights import default_dir, installed

    if not installed():
        return (f"LivePortrait weights are not installed in {default_dir()}; run "
                f"`avatar-vcam models fetch liveportrait`")
    return None


def liveportrait_unavailable(device: str = "cuda") -> str | None:
    """Why the liveportrait renderer cannot run here (None when it can)."""
    import torch

    missing = liveportrait_weights_missing()
    if missing:
        return missing
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        return "LivePortrait needs a CUDA GPU and torch sees none"
    return None


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a CUDA GPU, else ``cpu``; others unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str, need_present: bool = True) -> str:
    """``device`` if torch knows it (and, with ``need_present``, it is there); else a
    one-line EngineError with the fix."""
    import torch

    device = resolve_device(device)
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise EngineError(f"unknown device {device!r}: use --device auto, cpu, cuda or cuda:N"
                          ) from None
    if need_present and dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise EngineError(f"--device {device}: torch sees no CUDA GPU here; use "
                              "--device cpu")
        if dev.index is not None and dev.index >= count:
            raise EngineError(f"--device {device}: there are only {count} CUDA GPU(s) "
                              f"(cuda:0..cuda:{count - 1})")
    if need_present and dev.type == "mps" and not torch.backends.mps.is_available():
        raise EngineError(f"--device {device}: no Apple GPU (MPS) here; use --device cpu")
    return device


def make_renderer(name: str, device: str = "auto", backend: str = "torch") -> Renderer:
    """Build the renderer called ``name`` on torch ``device``.

    liveportrait/auto run on CUDA when the device is ``cpu`` or ``auto`` and a GPU exists;
    the warp renderer runs on ``device`` (``auto``: the GPU when there is one).
    ``backend="onnx"``: LivePortrait's networks run on onnxruntime (see :mod:`engine.onnx`);
    the warp renderer has no trained network and runs in torch either way.
    """
    if name not in RENDERERS:
        raise EngineError(f"unknown renderer {name!r}; available: {', '.join(RENDERERS)}")
    check_device(device, need_present=False)
    if backend == "onnx":
        return _make_onnx_renderer(name, device)
    if backend != "torch":
        raise EngineError(f"unknown backend {backend!r}; use torch or onnx")
    device = resolve_device(device)
    if name in ("liveportrait", "auto"):
        lp_device = "cuda" if device == "cpu" else device
        reason = liveportrait_unavailable(lp_device)
        if reason is None:
            from .liveportrait.renderer import LivePortraitRenderer

            return LivePortraitRenderer(device=lp_device)
        if name == "liveportrait":
            log.warning("%s; falling back to the warp renderer", reason)
        device = "cpu" if lp_device.startswith("cuda") and "GPU" in reason else device
    from .warp import WarpRenderer

    return WarpRenderer(device=check_device(device))


def _make_onnx_renderer(name: str, device: str) -> Renderer:
    """``make_renderer`` for the onnx backend: LivePortrait on onnxruntime when its weights
    are installed (``auto``: and onnxruntime has the CUDA provider; ``liveportrait`` also
    on onnxruntime's CPU provider), else the warp renderer."""
    from ..onnx.session import providers_for, require_onnxruntime

    require_onnxruntime()
    providers = providers_for(device)
    missing = liveportrait_weights_missing()
    on_gpu = "CUDAExecutionProvider" in providers
    if name == "liveportrait" or (name == "auto" and on_gpu):
        if missing is None:
            from ..onnx.liveportrait import make_onnx_renderer

            return make_onnx_renderer(device=device)
        if name == "liveportrait":
            log.warning("%s; falling back to the warp renderer", missing)
    from .warp import WarpRenderer

    return WarpRenderer(device=check_device(resolve_device(device)))


__all__ = ["RENDERERS", "Renderer", "check_device", "liveportrait_unavailable",
           "liveportrait_weights_missing", "make_renderer", "resolve_device"]
