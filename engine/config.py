"""EngineConfig: every number of the engine (fps, sizes, rates, delays) in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

from .audio2motion import A2M_MODELS, DEFAULT_A2M, DEFAULT_LOOKAHEAD_MS, is_weights_file
from .framing import Framing, check_background, parse_framing, parse_size
from .onnx import BACKENDS

#: What moves the head: speech gestures + idle sway, idle sway only, or nothing.
HEAD_MOTIONS = ("speech", "idle", "off")


@dataclass
class EngineConfig:
    """Settings of an :class:`~engine.Engine`.

    fps: video frame rate; frames live on the grid ``k / fps``.
    size: output frame size: ``512`` (a square) or ``(1280, 720)`` / ``"1280x720"``; a
        frame that is not the rendered square is composed by :mod:`.framing`.
    framing: zoom (1..3) and x/y offsets (fractions of the frame) of the avatar in it,
        ``(1.2, 0.0, 0.05)`` or ``"1.2,0,0.05"``.
    background: what surrounds the avatar: ``"photo"`` (its photo's background, extended),
        ``"blur"``, a colour (``"#00ff00"``) or an image file.
    renderer: ``"auto"`` (LivePortrait when its weights and a GPU are there, else warp),
        ``"warp"`` (embedded, no weights) or ``"liveportrait"``.
    device: torch device for rendering: ``"auto"`` (the CUDA GPU if any, else the CPU),
        ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    backend: ``"torch"`` (networks in PyTorch, the learned Audio2Motion in numpy) or
        ``"onnx"`` (LivePortrait and the learned Audio2Motion on onnxruntime from their ONNX
        exports; needs the ``onnx`` extra). The warp renderer runs in torch either way.
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
    size: int | tuple[int, int] | str = 512
    framing: tuple[float, float, float] | str = (1.0, 0.0, 0.0)
    background: str = "photo"
    frame_size: tuple[int, int] = field(init=False)
    renderer: str = "auto"
    device: str = "auto"
    lookahead_ms: float = DEFAULT_LOOKAHEAD_MS
    a2m: str = DEFAULT_A2M
    idle: bool = True
    head_motion: str = "speech"
    seed: int | None = None
    expression_blend_ms: float = 200.0
    backend: str = "torch"

    def __post_init__(self) -> None:
        if not 1 <= self.fps <= 120:
            raise ValueError(f"fps must be between 1 and 120, got {self.fps}")
        self.frame_size = parse_size(self.size)
        if isinstance(self.framing, str):
            self.framing = parse_framing(self.framing)
        else:
            self.framing = parse_framing(",".join(str(float(v)) for v in self.framing))
        check_background(self.background)
        if not 0 <= self.lookahead_ms <= 500:
            raise ValueError(f"lookahead_ms must be in 0..500, got {self.lookahead_ms}")
        if self.seed is not None and not 0 <= self.seed < 2**31:
            raise ValueError(f"seed must be in 0..{2**31 - 1}, got {self.seed}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got "
                             f"{self.backend!r}")
        if self.head_motion not in HEAD_MOTIONS:
            raise ValueError(f"head_motion must be one of {', '.join(HEAD_MOTIONS)}, got "
                             f"{self.head_motion!r}")
        if self.a2m not in A2M_MODELS and not is_weights_file(self.a2m):
            raise ValueError(f"a2m must be one of {', '.join(A2M_MODELS)} or a .npz weights "
                             f"file, got {self.a2m!r}")

    @property
    def framing_spec(self) -> Framing:
        """Output size, zoom, offsets and background as one :class:`.framing.Framing`."""
        zoom, x, y = self.framing
        return Framing(*self.frame_size, zoom, x, y, self.background)

    @property
    def frame_duration(self) -> float:
        return 1.0 / self.fps
