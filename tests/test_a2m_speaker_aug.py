"""Speaker/channel augmentation keeps the targets valid and does what it says."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from engine.audio2motion.training.corpus import Clip, augment
from engine.audio2motion.training.espeak import Phone
from engine.audio2motion.training.speaker_aug import (
    breath,
    flutter,
    mu_law,
    random_eq,
    telephone,
    vtl_warp,
)

SR = 16000


def _tone_burst() -> tuple[np.ndarray, list[Phone]]:
    """0.5 s silence, 1 s of a 200 Hz harmonic tone, 0.5 s silence."""
    t = np.arange(SR) / SR
    tone = sum(np.sin(2 * np.pi * 200 * h * t) / h for h in range(1, 20)) * 0.3
    x = np.concatenate([np.zeros(SR // 2), tone, np.zeros(SR // 2)]).astype(np.float32)
    return x, [Phone("_", 0.0, 0.5), Phone("A:", 0.5, 1.5), Phone("_", 1.5, 2.0)]


def _band_share(x: np.ndarray, sr: int, lo: float, hi: float) -> float:
    p = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return float(p[(f >= lo) & (f < hi)].sum() / p.sum())


def test_vtl_warp_moves_phones_with_the_audio():
    x, phones = _tone_burst()
    rng = np.random.default_rng(0)
    for _ in range(5):
        sr, ph = vtl_warp(x, SR, phones, rng)
        a = sr / SR
        assert 0.85 <= a <= 1.2
        assert abs(ph[-1].end - len(x) / sr) < 1e-6  # phones still span the clip
        assert abs(ph[1].start - 0.5 / a) < 1e-9


def test_augment_with_speaker_keeps_targets_on_the_speech():
    x, phones = _tone_burst()
    rng = np.random.default_rng(1)
    for _ in range(8):
        a = augment(Clip(x, SR, phones), rng, speaker=1.0)
        y = a.targets()
        assert np.isfinite(a.pcm).all() and np.abs(a.pcm).max() <= 1.0
        assert abs(len(y) - len(a.pcm) / a.sr * 100) <= 2
        open_frames = np.flatnonzero(y[:, 0] > 0.5) / 100
        loud = np.abs(a.pcm) > 0.5 * np.abs(a.pcm).max()
        t_loud = np.flatnonzero(loud) / a.sr
        # the open-jaw target starts where the tone starts in the augmented audio
        assert abs(open_frames[0] - t_loud[0]) < 0.05


def test_random_eq_keeps_rms_and_changes_the_spectrum():
    x, _ = _tone_burst()
    rng = np.random.default_rng(2)
    ys = [random_eq(x, SR, rng) for _ in range(4)]
    for y in ys:
        assert abs(np.sqrt(np.mean(y**2)) / np.sqrt(np.mean(x**2)) - 1) < 1e-3
    shares = [_band_share(y, SR, 1000, 4000) for y in ys]
    assert max(shares) - min(shares) > 0.05


def test_breath_only_where_there_is_voice():
    x, _ = _tone_burst()
    y = breath(x, SR, np.random.default_rng(3))
    assert np.abs(y[: SR // 3]).max() < 1e-6  # silence stays silent
    mid = slice(SR // 2 + 1000, SR + SR // 2 - 1000)
    assert np.abs(y[mid] - x[mid]).mean() > 1e-4


def test_telephone_is_band_limited_and_quantised():
    x, _ = _tone_burst()
    y, sr = telephone(x, SR, np.random.default_rng(4))
    assert sr == 8000
    assert _band_share(y, sr, 0, 150) < 0.02
    assert len(np.unique(mu_law(y))) <= 256


def test_flutter_keeps_length_and_timing():
    x, _ = _tone_burst()
    y = flutter(x, np.random.default_rng(5))
    assert len(y) == len(x)
    on_x = np.flatnonzero(np.abs(x) > 0.01)[[0, -1]]
    on_y = np.flatnonzero(np.abs(y) > 0.01)[[0, -1]]
    assert np.abs(on_x - on_y).max() < 0.01 * SR


def test_jaw_gain_from_the_weights_meta_scales_the_opening(tmp_path):
    import shutil

    from engine.audio2motion.learned import WEIGHTS, LearnedAudio2Motion
    from engine.audio2motion.training.calibrate import write_gain
    from engine.audio2motion.training.evaluation import stream_clip

    sys.path.insert(0, str(Path(__file__).parent / "support"))
    from speech import syllables

    plain_w, gained_w = tmp_path / "plain.npz", tmp_path / "gained.npz"
    for w, gain in ((plain_w, 1.0), (gained_w, 1.5)):  # the shipped weights carry their own
        shutil.copy(WEIGHTS, w)
        write_gain(w, gain)
    x = syllables(SR, [(0.5, 0.6)], 2.0, v="a")  # a vowel (a bare tone is not speech)
    plain = LearnedAudio2Motion(40, plain_w)
    gained = LearnedAudio2Motion(40, gained_w)
    assert plain.jaw_gain == 1.0 and gained.jaw_gain == 1.5
    a = stream_clip(plain, x, SR, 200)[:, 0]
    b = stream_clip(gained, x, SR, 200)[:, 0]
    assert a.max() > 0.1  # the vowel opens the mouth
    np.testing.assert_allclose(b, np.minimum(a * 1.5, 1.0), atol=1e-5)
