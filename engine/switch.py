"""Switching a running Engine to another avatar without a gap in its frames.

:func:`prepare_avatar` does the slow part (load the package, the renderer's ``prepare``,
the framer, one warm-up render) and touches nothing the engine's render thread reads, so it
runs on any thread. :meth:`Engine.use_avatar <engine.engine.Engine.use_avatar>` hands the
result over; the engine takes it at its next frame boundary (the start of the next
``motion_at``), on the render thread itself: every frame is wholly of one avatar, and no
frame is ever missing. Motion, time, audio and the voice delay are untouched by a switch;
the current expression blends to the new avatar's own preset of it (or to neutral when it
has none).

    prepared = prepare_avatar(engine, "grace")   # worker thread, seconds at most
    engine.use_avatar(prepared)                  # any thread, instant
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .avatar import Avatar
from .config import EngineConfig
from .expressions import preset_table
from .framing import Framer
from .idle import IdleSettings
from .motion import MotionFrame, stack

if TYPE_CHECKING:
    from .engine import Engine


@dataclass
class PreparedAvatar:
    """Everything the render thread needs to show ``avatar`` (built off that thread)."""

    avatar: Avatar
    state: Any  # the renderer's per-avatar state
    framer: Framer | None
    render_px: int
    idle: IdleSettings
    presets: dict[str, np.ndarray]
    renderer: str  # name of the renderer that prepared ``state``
    prepare_s: float = 0.0  # wall seconds of load + prepare + warm-up
    applied_at: float | None = None  # time.monotonic() when the engine took it
    applied_pts: float | None = None  # pts of the first frame rendered with it
    extra: dict[str, Any] = field(default_factory=dict)


def idle_settings(avatar: Avatar, config: EngineConfig) -> IdleSettings:
    """The avatar's idle life as the engine config allows it (idle off, head still)."""
    s = IdleSettings.from_dict(avatar.idle)
    s.enabled = s.enabled and config.idle
    if config.head_motion == "off":
        s.sway_deg = s.breathing = 0.0
    return s


def render_px(avatar: Avatar, config: EngineConfig) -> int:
    """Side of the rendered square for ``avatar`` (as :class:`~engine.engine.Engine`)."""
    framing = config.framing_spec
    if framing.identity:
        return framing.width
    return min(framing.square_px, avatar.resolution // 2 * 2)


def prepare_avatar(engine: Engine, avatar: Avatar | str | Path,
                   warm_up: bool | None = None) -> PreparedAvatar:
    """Load and prepare ``avatar`` for ``engine`` without changing the engine.

    ``warm_up``: render one frame with the new state here, so the render thread's first
    frame of it costs what any frame costs. Default: on unless the renderer runs on CUDA
    (graph capture there must stay on the render thread's stream).
    """
    from .engine import _load

    t0 = time.perf_counter()
    av = _load(avatar)
    config = engine.config
    px = render_px(av, config)
    framing = config.framing_spec
    framer = None if framing.identity else Framer(av, framing)
    state = engine.renderer.prepare(av, px)
    device = str(getattr(engine.renderer, "device", "cpu"))
    if warm_up is None:
        warm_up = not device.startswith("cuda")
    if warm_up:
        images = engine.renderer.render(state, stack([MotionFrame(0.0)]))
        if framer is not None:
            framer.compose(images)
    extra: dict[str, Any] = {}
    matte = getattr(engine, "matte", None)  # transparent output / new background: the
    if matte is not None:  # new avatar's matte is made here too, not on the render thread
        from .matte import Matte

        extra["matte"] = Matte(av, engine.renderer, state, framer, matte.overlay)
    return PreparedAvatar(avatar=av, state=state, framer=framer, render_px=px,
                          idle=idle_settings(av, config),
                          presets=preset_table(av.expressions),
                          renderer=str(getattr(engine.renderer, "name", "")),
                          prepare_s=time.perf_counter() - t0, extra=extra)
