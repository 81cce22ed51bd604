"""EngineConfig: every number of the engine (fps, sizes, rates, delays) in one place."""

from __future__ import annotations

from dataclasses import dataclass

from .audio2motion import A2M_MODELS, DEFAULT_A2M, DEFAULT_LOOKAHEAD_MS, is_weights_file

#: What moves the head: speech gestures + idle sway, idle sway only, or nothing.
HEAD_MOTIONS = ("speech", "idle", "off")


@dataclass
class EngineConfig:
    """Settings of an :class:`~engine.Engine`.

    fps: video frame rate; frames live on the grid ``k / fps``.
    size: output frame width and height in pixels.
    renderer: ``"auto"`` (LivePortrait when its weights and a GPU are there, else warp),
        ``"warp"`` (embedded, no weights) or ``"liveportrait"``.
    device: torch device for rendering: ``"auto"`` (the CUDA GPU if any, else the CPU),
        ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    lookahead_ms: Audio2Motion may use audio up to ``pts + lookahead`` for the motion at pts.
    a2m: Audio2Motion model, ``"learned"`` (causal TCN), ``"dsp"`` (signal features) or a
        weights file (``.npz``) of the learned model from ``avatar-vcam train-a2m``.
    idle: idle life (blinks, breathing, sway, saccades) on or off.
    head_motion: ``"speech"`` (head beats, brow raises and blinks follow the prosody of
        speech, idle sway in silence), ``"idle"`` (idle sway only) or ``"off"`` (the head
        stays still; blinks and gaze go on).
    seed: random seed of idle life and speech gestures; None (the default) draws a fresh one
        per engine, so two avatars never blink together; a number reproduces a run.
    expression_blend_ms: time to blend from one expression preset to the next.
    """

    fps: int = 25
    size: int = 512
    renderer: str = "auto"
    device: str = "auto"
    lookahead_ms: float = DEFAULT_LOOKAHEAD_MS
    a2m: str = DEFAULT_A2M
    idle: bool = True
    head_motion: str = "speech"
    seed: int | None = None
    expression_blend_ms: float = 200.0

    def __post_init__(self) -> None:
        if not 1 <= self.fps <= 120:
            raise ValueError(f"fps must be between 1 and 120, got {self.fps}")
        if not 64 <= self.size <= 2048 or self.size % 2:
            raise ValueError(f"size must be an even number of pixels in 64..2048, got {self.size}")
        if not 0 <= self.lookahead_ms <= 500:
            raise ValueError(f"lookahead_ms must be in 0..500, got {self.lookahead_ms}")
        if self.seed is not None and not 0 <= self.seed < 2**31:
            raise ValueError(f"seed must be in 0..{2**31 - 1}, got {self.seed}")
        if self.head_motion not in HEAD_MOTIONS:
            raise ValueError(f"head_motion must be one of {', '.join(HEAD_MOTIONS)}, got "
                             f"{self.head_motion!r}")
        if self.a2m not in A2M_MODELS and not is_weights_file(self.a2m):
            raise ValueError(f"a2m must be one of {', '.join(A2M_MODELS)} or a .npz weights "
                             f"file, got {self.a2m!r}")

    @property
    def frame_duration(self) -> float:
        return 1.0 / self.fps
