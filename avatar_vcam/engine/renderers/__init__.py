"""Renderers: ``warp`` (embedded, no weights, CPU) and ``liveportrait`` (GPU, weights)."""

from __future__ import annotations

from ..errors import EngineError
from .base import Renderer

RENDERERS = ("warp",)


def make_renderer(name: str, device: str = "cpu") -> Renderer:
    """Build the renderer called ``name`` on torch ``device``."""
    if name == "warp":
        from .warp import WarpRenderer

        return WarpRenderer(device=device)
    raise EngineError(f"unknown renderer {name!r}; available: {', '.join(RENDERERS)}")


__all__ = ["RENDERERS", "Renderer", "make_renderer"]
