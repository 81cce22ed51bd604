"""Engine: audio in, frames out, for one avatar. The library face of avatar-vcam.

    with Engine("leo") as e:
        k = 0  # next frame index; frame k is at k / fps
        for i in range(0, len(pcm), 480):  # push blocks as they come (30 ms here) ...
            e.push_audio(pcm[i:i + 480], pts=i / 16000, sample_rate=16000)
            while k / e.config.fps <= e.ready_until():  # ... and take frames as they are ready
                frame = e.frame_at(k / e.config.fps)
                k += 1

No devices here: callers bring audio (any rate) and take frames. Time is the audio
sample clock: ``pts`` of a block = samples before it / its sample rate. Motion is kept
for the last few seconds only (``history_s``), so query frames while pushing: a frame
older than that raises ValueError.
"""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path

import numpy as np

from .audio.pcm import as_float_pcm
from .audio2motion import make_audio2motion
from .audio2motion.base import Audio2Motion
from .audio2motion.gestures import SpeechGestures
from .avatar import Avatar
from .config import EngineConfig
from .expressions import ExpressionBlender, preset_table
from .frames import VideoFrame
from .framing import Framer
from .idle import IdleLife, IdleSettings
from .mixer import MotionMixer
from .motion import CHANNELS, MotionFrame, finite_pts, stack
from .renderers import make_renderer
from .renderers.base import Renderer
from .switch import PreparedAvatar


def _load(avatar: Avatar | str | Path) -> Avatar:
    if isinstance(avatar, Avatar):
        return avatar
    from avatars import load  # name or folder; imported here to keep engine importable alone

    return load(avatar)


def _make_a2m(config: EngineConfig) -> Audio2Motion:
    """The configured Audio2Motion; with the onnx backend, the learned model's network runs
    on onnxruntime (the dsp model has no network)."""
    if config.backend == "onnx" and config.a2m != "dsp":
        from .onnx.a2m import OnnxLearnedAudio2Motion

        weights = None if config.a2m == "learned" else config.a2m
        return OnnxLearnedAudio2Motion(lookahead_ms=config.lookahead_ms, weights=weights)
    return make_audio2motion(config.a2m, lookahead_ms=config.lookahead_ms)


class Engine:
    """Turns streaming audio and commands into frames of one avatar."""

    def __init__(
        self,
        avatar: Avatar | str | Path,
        config: EngineConfig | None = None,
        *,
        renderer: Renderer | None = None,
        audio2motion: Audio2Motion | None = None,
    ) -> None:
        self.config = config or EngineConfig()
        self.avatar = _load(avatar)
        self.renderer = renderer or make_renderer(self.config.renderer, self.config.device,
                                                  backend=self.config.backend)
        self.a2m = audio2motion or _make_a2m(self.config)
        idle_settings = IdleSettings.from_dict(self.avatar.idle)
        idle_settings.enabled = idle_settings.enabled and self.config.idle
        if self.config.head_motion == "off":  # blinks and gaze stay, the head holds still
            idle_settings.sway_deg = idle_settings.breathing = 0.0
        #: the seed of idle life and gestures (drawn afresh when the config leaves it None)
        self.seed = (secrets.randbelow(2**31) if self.config.seed is None
                     else self.config.seed)
        self.gestures = (SpeechGestures(self.a2m.lookahead * 1000.0, seed=self.seed)
                         if self.config.head_motion == "speech" else None)
        self.mixer = MotionMixer(
            IdleLife(idle_settings, seed=self.seed),
            ExpressionBlender(preset_table(self.avatar.expressions),
                              self.config.expression_blend_ms / 1000.0),
            self.gestures,
        )
        framing = self.config.framing_spec
        if framing.identity:  # the rendered square is the frame
            self.framer = None
            render_px = framing.width
        else:  # render the square no larger than the photo, then frame it for the call
            render_px = min(framing.square_px, self.avatar.resolution // 2 * 2)
            self.framer = Framer(self.avatar, framing)
        self._state = self.renderer.prepare(self.avatar, render_px)
        self._lock = threading.Lock()  # control commands may come from other threads
        self.matte = None  # engine.matte.Matte: the person's matte, warped with the head
        if (self.framer is not None and framing.background != "photo"
                and hasattr(self.renderer, "render_tensor")):
            self.enable_matte(overlay=False)  # a new background follows the moving head
        self.last_pts = 0.0
        self._pending: PreparedAvatar | None = None  # next avatar, taken at a frame boundary

    def enable_matte(self, overlay: bool = True) -> None:
        """Warp the avatar's matte with the head; with ``overlay`` every frame also carries
        the avatar over transparency (``VideoFrame.rgba``), for the browser source."""
        from .matte import Matte

        if self.matte is None or (overlay and not self.matte.overlay):
            self.matte = Matte(self.avatar, self.renderer, self._state, self.framer, overlay)

    # -- context manager, pyvirtualcam-style -------------------------------------------
    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release renderer state."""
        self._state = None

    # -- audio in ------------------------------------------------------------------------
    def push_audio(self, pcm: np.ndarray, pts: float, sample_rate: int) -> None:
        """Append captured audio whose first sample is at ``pts`` seconds."""
        pcm, pts = as_float_pcm(pcm), finite_pts(pts)
        self.a2m.push(pcm, pts, sample_rate)
        if self.gestures is not None:
            with self._lock:  # motion_at reads the gesture events from other threads
                self.gestures.push(pcm, pts, sample_rate)

    def ready_until(self) -> float:
        """Latest pts whose motion is final (audio up to pts + look-ahead has arrived)."""
        ready = self.a2m.ready_until()
        if self.gestures is not None:
            ready = min(ready, self.gestures.ready_until())
        return ready

    # -- control ---------------------------------------------------------------------------
    def set_expression(self, name: str, pts: float | None = None) -> None:
        """Blend to expression preset ``name`` starting at ``pts`` (default: now)."""
        at = None if pts is None else finite_pts(pts)
        with self._lock:
            self.mixer.expressions.set(name, self.last_pts if at is None else at)

    def prepare_avatar(self, avatar: Avatar | str | Path) -> PreparedAvatar:
        """Load and prepare another avatar for :meth:`use_avatar`; changes nothing here and
        may run on any thread (see :mod:`engine.switch`)."""
        from .switch import prepare_avatar

        return prepare_avatar(self, avatar)

    def use_avatar(self, prepared: PreparedAvatar) -> None:
        """Show ``prepared`` from the next frame on (taken at the start of the next
        :meth:`motion_at`); a later call before then replaces it."""
        if prepared.renderer and prepared.renderer != getattr(self.renderer, "name", ""):
            raise ValueError(f"avatar prepared by {prepared.renderer!r}, not by this "
                             f"engine's {self.renderer.name!r}")
        with self._lock:
            self._pending = prepared

    @property
    def pending_avatar(self) -> PreparedAvatar | None:
        """The avatar handed to :meth:`use_avatar` and not yet shown, if any."""
        return self._pending

    def _take_pending(self, pts: float) -> None:
        """Switch to the pending avatar (under the lock, on the render thread)."""
        from .idle import IdleLife

        p, self._pending = self._pending, None
        self.avatar, self._state, self.framer = p.avatar, p.state, p.framer
        if "matte" in p.extra:  # made with the avatar (maybe in the prepare helper process,
            self.matte = p.extra["matte"]  # whose renderer came along): render it with ours
            self.matte.renderer = self.renderer
        if self.mixer.idle is None or self.mixer.idle.settings != p.idle:
            self.mixer.idle = IdleLife(p.idle, seed=self.seed)
        blender = self.mixer.expressions
        blender.presets = p.presets
        name = blender.name if blender.name in p.presets else "neutral"
        if name in p.presets:  # blend from the face shown now to this avatar's preset
            blender.set(name, min(self.last_pts, pts))
        p.applied_pts, p.applied_at = pts, time.monotonic()

    @property
    def expression(self) -> str:
        return self.mixer.expressions.name

    @property
    def expressions(self) -> list[str]:
        return sorted(self.mixer.expressions.presets)

    # -- frames out ------------------------------------------------------------------------
    def motion_at(self, pts: float) -> MotionFrame:
        """All motion layers mixed at ``pts``."""
        pts = finite_pts(pts)
        with self._lock:
            if self._pending is not None:  # a frame boundary: the next avatar takes over
                self._take_pending(pts)
            return self.mixer.mix(self.a2m.motion_at(pts))

    def render(self, motions: list[MotionFrame]) -> list[VideoFrame]:
        """Render a batch of motion frames (one renderer call).

        A NaN or infinite channel value (or pts) raises ValueError naming the channel
        rather than corrupting the frame."""
        if self._state is None:
            raise RuntimeError("engine is closed")
        batch = stack(motions)
        bad = ~np.isfinite(batch)
        if bad.any():
            i, c = (int(x) for x in np.argwhere(bad)[0])
            raise ValueError(f"motion channel {CHANNELS[c]!r} of frame {i} (pts "
                             f"{motions[i].pts!r}) must be finite, got {batch[i, c]!r}")
        for m in motions:
            finite_pts(m.pts, "motion frame pts")
        if self.matte is not None:
            if self.matte.state is not self._state:  # another avatar since: its own matte
                self.matte = type(self.matte)(self.avatar, self.renderer, self._state,
                                              self.framer, self.matte.overlay)
            made = self.matte.render(batch)
            images, cutouts, box = made.images, made.rgba, made.box
        else:
            images, cutouts, box = self.renderer.render(self._state, batch), None, (0, 0, 0)
            if self.framer is not None:
                images = self.framer.compose(images)
        fps = self.config.fps
        if motions:
            self.last_pts = max(self.last_pts, motions[-1].pts)
        if cutouts is not None:
            return [VideoFrame(m.pts, round(m.pts * fps), img, c, box)
                    for m, img, c in zip(motions, images, cutouts, strict=True)]
        pairs = zip(motions, images, strict=True)
        return [VideoFrame(m.pts, round(m.pts * fps), img) for m, img in pairs]

    def frames_at(self, pts: list[float]) -> list[VideoFrame]:
        """Frames at several instants, rendered as one batch."""
        return self.render([self.motion_at(p) for p in pts])

    def frame_at(self, pts: float) -> VideoFrame:
        """The frame at ``pts``."""
        return self.frames_at([pts])[0]

    def pull_frame(self, pts: float) -> VideoFrame:
        """The frame at ``pts`` (same as :meth:`frame_at`; the name the C ABI uses)."""
        return self.frame_at(pts)
