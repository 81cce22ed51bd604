"""``avatar preview``: a contact sheet of every preset and key channel, and an idle clip.

The sheet shows each expression preset (with the avatar's overrides) and each key
channel at 0, 0.5 and 1 of its range, cropped around the face and labelled, so a new
avatar can be judged at a glance; the mp4 shows idle life (blinks, breathing, sway,
saccades) exactly as the engine mixes it when nobody speaks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from engine.avatar import Avatar
from engine.expressions import preset_table
from engine.frames import VideoFrame
from engine.idle import IdleLife, IdleSettings
from engine.motion import CHANNELS, N_CHANNELS, vector
from engine.renderers.base import Renderer

from .sinks.base import writing
from .sinks.mp4 import Mp4Sink
from .sinks.output_path import unwritable

#: Key channels of the sheet: label -> channel values at the top of the range.
KEY_CHANNELS: dict[str, dict[str, float]] = {
    "jawOpen": {"jawOpen": 1.0},
    "mouthClose (jaw .6)": {"mouthClose": 0.6},
    "mouthFunnel": {"mouthFunnel": 1.0},
    "mouthPucker": {"mouthPucker": 1.0},
    "mouthStretchLeft": {"mouthStretchLeft": 1.0},
    "mouthStretchRight": {"mouthStretchRight": 1.0},
    "mouthSmileLeft": {"mouthSmileLeft": 1.0},
    "mouthSmileRight": {"mouthSmileRight": 1.0},
    "mouthFrownLeft": {"mouthFrownLeft": 1.0},
    "mouthFrownRight": {"mouthFrownRight": 1.0},
    "eyeBlinkLeft": {"eyeBlinkLeft": 1.0},
    "eyeBlinkRight": {"eyeBlinkRight": 1.0},
    "eyeWideLeft": {"eyeWideLeft": 1.0},
    "eyeWideRight": {"eyeWideRight": 1.0},
    "browInnerUp": {"browInnerUp": 1.0},
    "browDownLeft": {"browDownLeft": 1.0},
    "browDownRight": {"browDownRight": 1.0},
    "browOuterUpLeft": {"browOuterUpLeft": 1.0},
    "browOuterUpRight": {"browOuterUpRight": 1.0},
    "cheekSquintLeft": {"cheekSquintLeft": 1.0},
    "cheekSquintRight": {"cheekSquintRight": 1.0},
    "gaze left": {"eyeLookOutRight": 1.0, "eyeLookInLeft": 1.0},
    "gaze right": {"eyeLookInRight": 1.0, "eyeLookOutLeft": 1.0},
    "gaze up": {"eyeLookUpLeft": 1.0, "eyeLookUpRight": 1.0},
    "gaze down": {"eyeLookDownLeft": 1.0, "eyeLookDownRight": 1.0},
    "yaw +20": {"yaw": 20.0},
    "yaw -20": {"yaw": -20.0},
    "pitch +15": {"pitch": 15.0},
    "pitch -15": {"pitch": -15.0},
    "roll +10": {"roll": 10.0},
    "roll -10": {"roll": -10.0},
    "tx +.1 ty -.05": {"tx": 0.1, "ty": -0.05},
}
LEVELS = (0.0, 0.5, 1.0)
_LABEL_H = 14
SHEET_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
VIDEO_SUFFIXES = Mp4Sink.SUFFIXES


def channel_rows(avatar: Avatar) -> list[tuple[str, np.ndarray]]:
    """(label, channel vector) of every tile: presets first, then channels x LEVELS."""
    rows = [(f"preset {n}", v) for n, v in sorted(preset_table(avatar.expressions).items())]
    for label, values in KEY_CHANNELS.items():
        for level in LEVELS:
            v = vector({k: x * level for k, x in values.items()})
            if label.startswith("mouthClose"):
                v[CHANNELS.index("jawOpen")] = 0.6  # mouthClose only acts on an open jaw
            rows.append((f"{label} {level:g}", v))
    return rows


def face_box(avatar: Avatar, size: int) -> tuple[int, int, int, int]:
    """Square crop around the face with room for head motion (output pixels)."""
    s = size / avatar.resolution
    x0, y0, x1, y1 = (v * s for v in avatar.bbox)
    half = 0.62 * max(x1 - x0, y1 - y0)
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    lo_x, lo_y = max(0, int(cx - half)), max(0, int(cy - half))
    side = min(int(2 * half), size - lo_x, size - lo_y)
    return lo_x, lo_y, lo_x + side, lo_y + side


def contact_sheet(renderer: Renderer, state: object, avatar: Avatar, size: int, path: Path,
                  tile: int = 200, batch: int = 8) -> int:
    """Render every tile of :func:`channel_rows` and save the labelled grid; returns tiles."""
    rows = channel_rows(avatar)
    box = face_box(avatar, size)
    cols = 6
    n_rows = (len(rows) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * tile, n_rows * (tile + _LABEL_H)), "white")
    draw = ImageDraw.Draw(sheet)
    motions = np.stack([v for _, v in rows]).astype(np.float32)
    for i in range(0, len(rows), batch):
        frames = renderer.render(state, motions[i:i + batch])
        for j, frame in enumerate(frames):
            k = i + j
            im = Image.fromarray(frame).crop(box).resize((tile, tile), Image.Resampling.LANCZOS)
            x, y = (k % cols) * tile, (k // cols) * (tile + _LABEL_H)
            sheet.paste(im, (x, y + _LABEL_H))
            draw.text((x + 3, y + 1), rows[k][0], fill="black")
    try:
        sheet.save(path)
    except (OSError, ValueError) as e:  # ValueError: an extension Pillow does not know
        raise unwritable(path, e) from None
    return len(rows)


def idle_motion(avatar: Avatar, seconds: float, fps: int, seed: int = 0) -> np.ndarray:
    """(N, N_CHANNELS) idle-life channels on the frame grid k / fps (idle forced on)."""
    settings = IdleSettings.from_dict(avatar.idle)
    settings.enabled = True
    idle = IdleLife(settings, seed=seed)
    n = max(1, round(seconds * fps))
    out = np.zeros((n, N_CHANNELS), np.float32)
    for k in range(n):
        out[k] = idle.value_at(k / fps)
    return out


def idle_video(renderer: Renderer, state: object, avatar: Avatar, size: int, path: Path,
               seconds: float = 6.0, fps: int = 25, seed: int = 0, batch: int = 8) -> int:
    """Write an mp4 of idle life; returns the number of frames."""
    motions = idle_motion(avatar, seconds, fps, seed)
    sink = Mp4Sink(path)  # its open, sends and close report write errors in one line
    sink.open(size, size, fps)
    with writing(sink):  # a failed or interrupted render keeps an existing file
        for i in range(0, len(motions), batch):
            for j, img in enumerate(renderer.render(state, motions[i:i + batch])):
                sink.send(VideoFrame((i + j) / fps, i + j, img))
    return len(motions)
