"""dsp audio2motion: a huge single push is analysed in chunks (bounded memory) and gives
exactly what block-by-block pushes give."""

from __future__ import annotations

import tracemalloc

import numpy as np

from engine.audio2motion import make_audio2motion


def _speech(sr: int, dur: float) -> np.ndarray:
    t = np.arange(int(sr * dur)) / sr
    ph = 2 * np.pi * np.cumsum(120 + 20 * np.sin(2 * np.pi * 0.7 * t)) / sr
    x = sum(np.sin(k * ph) / k for k in range(1, 12))
    env = np.clip(np.sin(2 * np.pi * 3 * t), 0, None) ** 0.5
    noise = 0.001 * np.random.default_rng(0).standard_normal(len(t))
    return (0.2 * env * x + noise).astype(np.float32)


def test_whole_file_push_equals_block_pushes():
    sr = 16000
    x = _speech(sr, 12.0)  # > one chunk of analysis frames
    whole = make_audio2motion("dsp", 40)
    whole.push(x, 0.0, sr)
    blocks = make_audio2motion("dsp", 40)
    for i in range(0, len(x), 480):
        blocks.push(x[i:i + 480], i / sr, sr)
    assert whole.ready_until() == blocks.ready_until()
    t1 = whole.ready_until()
    # Only the kept history can be compared; query the tail both hold.
    a = np.array([whole.motion_at(t).values for t in np.arange(t1 - 3.0, t1, 0.01)])
    b = np.array([blocks.motion_at(t).values for t in np.arange(t1 - 3.0, t1, 0.01)])
    np.testing.assert_array_equal(a, b)


def test_one_minute_push_at_48k_keeps_memory_flat():
    sr = 48000
    x = np.tile(_speech(sr, 3.0), 20)  # 60 s, 11.5 MB of float32
    m = make_audio2motion("dsp", 40)
    m.push(x[:480], 0.0, sr)
    tracemalloc.start()
    m.push(x[480:], 480 / sr, sr)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 120e6, f"peak {peak / 1e6:.0f} MB"  # was ~420 MB (7 MB per second)
