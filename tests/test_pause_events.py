"""Training's pause events (breaths, smacks, sniffs, knocks): inside pauses only, away from
the speech, below the voice's loudest 50 ms, and the targets stay a shut mouth there."""

from __future__ import annotations

import numpy as np

from engine.audio2motion.phones import target_curves
from engine.audio2motion.training.espeak import Phone
from engine.audio2motion.training.pause_events import MARGIN_S, add_pause_events

SR = 16000


def test_events_land_in_pauses_only_and_below_the_voice() -> None:
    phones = [Phone("_", 0.0, 1.0), Phone("A:", 1.0, 1.4), Phone("_", 1.4, 1.5),
              Phone("m", 1.5, 1.7), Phone("_", 1.7, 3.0)]
    x = np.zeros(3 * SR, np.float32)
    t = np.arange(round(0.4 * SR)) / SR
    x[SR:SR + len(t)] = 0.5 * np.sin(2 * np.pi * 150 * t)
    x[round(1.5 * SR):round(1.7 * SR)] = 0.2
    for seed in range(20):
        y = add_pause_events(x, SR, phones, np.random.default_rng(seed), p=1.0)
        added = np.abs(y - x)
        assert added[round((1.0 - MARGIN_S) * SR):round((1.7 + MARGIN_S) * SR)].max() == 0
        assert added.max() > 0  # the long pauses got something
        loud = np.sqrt(np.mean(x[SR:SR + len(t)] ** 2))
        for a, b in ((0, round((1.0 - MARGIN_S) * SR)), (round((1.7 + MARGIN_S) * SR), None)):
            seg = added[a:b]
            rms = np.sqrt(np.mean(seg[seg > 0] ** 2)) if (seg > 0).any() else 0.0
            assert rms < loud  # 6-35 dB under the voice
    tgt = target_curves(phones, 300)
    assert tgt[:95, 0].max() == 0 and tgt[180:, 0].max() == 0  # the mouth stays shut
