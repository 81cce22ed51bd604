"""Ten minutes through the live loop (faster than real time): no offset walk, no memory growth.

The same phrase is spoken in the first and in the last minute; the lips' lag behind the
voice must be the same both times (to the millisecond), and the process may not keep
growing between minute 2 and minute 10.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "support"))
from avsync import av_lag  # noqa: E402
from mouth import mouth_box, mouth_openness  # noqa: E402
from needs import require  # noqa: E402
from speech import espeak  # noqa: E402

from engine import Engine, EngineConfig  # noqa: E402
from engine.frames import AudioChunk  # noqa: E402
from vcam.live.presenter import run_live  # noqa: E402

FPS, SIZE, RATE, MINUTES = 25, 64, 16000, 10


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


class Probe:
    """A sink that keeps mouth openness per frame and the memory over time."""

    name = "probe"

    def __init__(self) -> None:
        self.box = mouth_box("leo", SIZE)
        self.openness: list[float] = []
        self.rss: dict[int, float] = {}

    def send(self, frame) -> None:
        assert frame.index == len(self.openness), "a frame was skipped or repeated"
        self.openness.append(mouth_openness(frame.image, self.box))
        if frame.index % (60 * FPS) == 0:
            self.rss[frame.index // (60 * FPS)] = rss_mb()

    def audio(self, chunk) -> None:
        pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ten_minutes_no_offset_walk_no_memory_growth():
    require("espeak-ng", "speaks the test phrase")
    phrase = espeak("hello there, papa", RATE)
    pcm = np.zeros(MINUTES * 60 * RATE, np.float32)
    starts = (20.0, MINUTES * 60 - 40.0)
    for s in starts:
        pcm[round(s * RATE):round(s * RATE) + len(phrase)] = phrase
    block = RATE // 50
    chunks = (AudioChunk(i / RATE, pcm[i:i + block], RATE) for i in range(0, len(pcm), block))
    probe = Probe()
    # timing is measured on the mouth box: the head holds still (no gestures, no sway) so
    # that only the lips move in it; a fixed seed keeps the blinks the same each run
    with Engine("leo", EngineConfig(fps=FPS, size=SIZE, head_motion="off", seed=0)) as engine:
        stats = run_live(engine, chunks, [probe])
    assert stats.frames == MINUTES * 60 * FPS and stats.skipped == 0
    openness = np.array(probe.openness)
    lags = []
    for s in starts:
        k0, k1 = round((s - 2) * FPS), round((s + 8) * FPS)
        seg = openness[k0:k1]
        assert seg.max() > 0.1, f"the mouth did not move for the phrase at {s} s"
        t = np.arange(k0, k1) / FPS
        lags.append(av_lag(seg, t, pcm, 0.0, RATE, FPS).lag_s)
    assert abs(lags[0] - lags[1]) <= 0.002 + 1e-9, f"lag walked from {lags[0]} to {lags[1]} s"
    growth = probe.rss[MINUTES - 1] - probe.rss[2]
    assert growth < 20, f"memory grew {growth:.1f} MB between minute 2 and {MINUTES - 1}"
