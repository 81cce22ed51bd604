"""Silence is silence: no mouth opening on a room's sound at a stream's start, and the jaw
closed within 80 ms of the end of speech, for both Audio2Motion models."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from engine.audio2motion import A2M_MODELS, make_audio2motion
from engine.audio2motion.training.evaluation import stream_clip

sys.path.insert(0, str(Path(__file__).parent / "support"))
from needs import require  # noqa: E402
from speech import phrases  # noqa: E402

SR = 16000
START = 1.0


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, float]:
    require("espeak-ng", "speaks the test phrase")
    pcm, spans = phrases(SR, [(START, "Hello there, how are you today?")], 4.0)
    return pcm, spans[-1][1]


def pink(n: int, seed: int) -> np.ndarray:
    f = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    x = np.fft.irfft(f / np.sqrt(np.arange(1, len(f) + 1)), n)
    return (x / x.std()).astype(np.float32)


def rooms(n: int) -> dict[str, np.ndarray]:
    t = np.arange(n) / SR
    hum = 0.01 * np.sin(2 * np.pi * 50 * t) + 0.004 * np.sin(2 * np.pi * 150 * t)
    return {
        "pink -50 dBFS": 10 ** (-50 / 20) * pink(n, 1),
        "pink -42 dBFS": 10 ** (-42 / 20) * pink(n, 2),
        "pink -35 dBFS": 10 ** (-35 / 20) * pink(n, 3),
        "hum + DC offset": (hum + 0.05).astype(np.float32),
    }


@pytest.mark.parametrize("model", A2M_MODELS)
def test_room_sound_at_stream_start_keeps_the_mouth_shut(speech, model):
    pcm, _ = speech
    for name, room in rooms(len(pcm)).items():
        out = stream_clip(make_audio2motion(model, 40), pcm + room, SR, 380)
        t = np.arange(len(out)) / 100
        before = out[t < START - 0.1, 0]
        assert before.max() < 0.1, f"{model}, {name}: jaw {before.max():.2f} before any speech"
        assert out[(t > START) & (t < START + 1.5), 0].max() > 0.4, f"{model}, {name}: no speech"


@pytest.mark.parametrize("model", A2M_MODELS)
def test_jaw_closes_within_80_ms_of_the_end_of_speech(speech, model):
    pcm, end = speech
    room = rooms(len(pcm))["pink -50 dBFS"]
    for name, x in (("clean", pcm), ("room", pcm + room)):
        out = stream_clip(make_audio2motion(model, 40), x, SR, 380)
        k = int(round((end + 0.08) * 100))
        assert out[k:, 0].max() < 0.1, f"{model}, {name}: jaw {out[k:, 0].max():.2f} after speech"
