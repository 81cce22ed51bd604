"""Measure A/V sync of a live run from what a viewer got: camera frames vs recorded audio.

Camera frames carry the monotonic time at which the camera received them (v4l2 shim);
recordings carry the monotonic time of their first sample (:class:`pulse_server.Recorder`).
The lips' openness per frame is cross-correlated with the loudness of the audio around
the moment that frame reached the camera, over a range of time shifts: the best shift is
how much later the audio arrives than the lips. The lips themselves follow the voice with
a small lag of their own (Audio2Motion's attack), so :func:`offline_lag` measures the
same thing on a file render, where transport is perfect; the difference is what the live
path adds.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from mouth import i420_frames, mouth_box, mouth_openness  # noqa: E402


def camera_frames(yuv: Path, times: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(Y planes (N, size, size), monotonic receive time of each (N,))."""
    y = i420_frames(yuv, size, size)
    rows = [line.split() for line in times.read_text().splitlines() if line.strip()]
    t = np.array([float(r[0]) for r in rows if int(r[1]) == size * size * 3 // 2])
    n = min(len(y), len(t))
    return y[:n], t[:n]


def loudness_at(pcm: np.ndarray, t0: float, rate: int, times: np.ndarray,
                window: float) -> np.ndarray:
    """RMS of ``pcm`` over [t - window/2, t + window/2) for each monotonic time t."""
    starts = np.round((times - window / 2 - t0) * rate).astype(int)
    n = round(window * rate)
    sq = np.concatenate([[0.0], np.cumsum(pcm.astype(np.float64) ** 2)])
    a = np.clip(starts, 0, len(pcm))
    b = np.clip(starts + n, 0, len(pcm))
    return np.sqrt((sq[b] - sq[a]) / n)


@dataclass
class SyncResult:
    lag_s: float  # audio later than lips by this much (best shift)
    corr: float  # correlation at the best shift
    frames: int
    spread_s: float  # width of the correlation peak above 95% of its height, in seconds


def av_lag(openness: np.ndarray, frame_times: np.ndarray, pcm: np.ndarray, t0: float,
           rate: int, fps: int, max_lag: float = 0.4, step: float = 0.001) -> SyncResult:
    """Shift of the audio (s) that best lines its loudness up with the lips."""
    o = (openness - openness.mean()) / (openness.std() + 1e-9)
    lags = np.arange(-max_lag, max_lag + step / 2, step)
    scores = []
    for lag in lags:
        env = loudness_at(pcm, t0, rate, frame_times + lag, 1.0 / fps)
        e = (env - env.mean()) / (env.std() + 1e-9)
        scores.append(float(np.mean(o * e)))
    scores_a = np.array(scores)
    best = int(np.argmax(scores_a))
    near = lags[scores_a >= 0.95 * scores_a[best]]
    return SyncResult(float(lags[best]), float(scores_a[best]), len(openness),
                      float(near.max() - near.min()))


def offline_lag(pcm: np.ndarray, rate: int, fps: int, size: int,
                avatar: str = "leo") -> SyncResult:
    """The same measurement on an offline render of ``pcm``: frame k at exactly k / fps."""
    from engine import Engine, EngineConfig
    from engine.frames import AudioChunk
    from vcam.render_loop import run

    class Keep:
        name = "keep"

        def __init__(self) -> None:
            self.frames: list[np.ndarray] = []

        def send(self, frame) -> None:
            self.frames.append(frame.image)

        def audio(self, chunk) -> None:
            pass

    keep = Keep()
    block = rate // 100
    chunks = (AudioChunk(i / rate, pcm[i:i + block], rate) for i in range(0, len(pcm), block))
    with Engine(avatar, EngineConfig(fps=fps, size=size)) as engine:
        run(engine, chunks, [keep])
    openness = lips(np.stack(keep.frames), size, avatar)
    return av_lag(openness, np.arange(len(openness)) / fps, pcm, 0.0, rate, fps)


def lips(frames: np.ndarray, size: int, avatar: str = "leo") -> np.ndarray:
    box = mouth_box(avatar, size)
    return np.array([mouth_openness(f, box) for f in frames])
