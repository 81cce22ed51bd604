"""DspAudio2Motion: mouth follows speech, closes in silence, streams exactly, any rate."""

from __future__ import annotations

import math
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import lfilter, resample_poly

from engine.audio.decode import decode_audio
from engine.audio2motion import DspAudio2Motion, make_audio2motion
from engine.motion import CHANNELS

sys.path.insert(0, str(Path(__file__).parent / "support"))
from speech import vowel  # noqa: E402

CLIP = Path(__file__).parents[1] / "vcam" / "assets" / "demo_speech.wav"
MOUTH = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthStretchLeft",
         "mouthStretchRight")


def utterance(sr: int, v: str = "a", pre: float = 0.5, dur: float = 0.6, post: float = 0.8
              ) -> np.ndarray:
    z = np.zeros
    return np.concatenate([z(round(pre * sr), np.float32), vowel(v, dur, sr),
                           z(round(post * sr), np.float32)])


def stream(m: DspAudio2Motion, x: np.ndarray, sr: int, blocks: list[int] | int = 320,
           t0: float = 0.0, step: float = 0.01, q0: float | None = None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Push ``x`` (from pts ``t0``) block by block; query every ``step`` s from ``q0``
    (default ``t0``) as soon as it is ready.

    Returns (t, mouth values (N, 6), speaking (N,)).
    """
    if isinstance(blocks, int):
        blocks = [blocks] * (len(x) // blocks + 1)
    ts, vals, speak = [], [], []
    k = math.ceil((t0 if q0 is None else q0) / step - 1e-9)
    i = 0
    for b in blocks:
        if i >= len(x):
            break
        m.push(x[i : i + b], t0 + i / sr, sr)
        i += b
        while k * step <= m.ready_until() + 1e-9:
            f = m.motion_at(k * step)
            ts.append(k * step)
            vals.append([f[c] for c in MOUTH])
            speak.append(f.speaking)
            k += 1
    return np.array(ts), np.array(vals), np.array(speak)


def at(t: np.ndarray, y: np.ndarray, when: float) -> float:
    return float(y[int(np.argmin(np.abs(t - when)))])


def test_factory() -> None:
    m = make_audio2motion("dsp", lookahead_ms=40)
    assert isinstance(m, DspAudio2Motion) and m.lookahead == pytest.approx(0.04)
    with pytest.raises(ValueError, match="dsp"):
        make_audio2motion("nope")


def test_silence_keeps_the_mouth_closed() -> None:
    m = DspAudio2Motion()
    t, v, s = stream(m, np.zeros(32000, np.float32), 16000)
    assert t[-1] > 1.8
    assert np.abs(v).max() < 1e-3 and not s.any()


def test_vowel_opens_then_closes() -> None:
    sr = 16000
    m = DspAudio2Motion(lookahead_ms=60)
    t, v, s = stream(m, utterance(sr), sr)
    jaw = v[:, 0]
    on, off = 0.5, 1.1
    inside = (t > on + 0.06) & (t < off - 0.02)
    assert jaw[inside].min() > 0.3
    assert s[inside].all()
    assert at(t, jaw, on + 0.06) > 0.3  # open within 60 ms of the onset
    assert at(t, jaw, on - 0.1) < 0.01  # ...but not long before it
    assert at(t, jaw, off + 0.15) < 0.05  # closed within 150 ms after the end
    assert jaw[t > off + 0.2].max() < 0.02  # and stays closed
    assert not s[t > off + 0.5].any()
    assert not s[t < on - 0.1].any()


def test_lookahead_anticipates_onset() -> None:
    sr = 16000
    x = utterance(sr)
    t60, v60, _ = stream(DspAudio2Motion(lookahead_ms=60), x, sr)
    t0, v0, _ = stream(DspAudio2Motion(lookahead_ms=0), x, sr)
    assert at(t60, v60[:, 0], 0.49) > 0.1  # the mouth starts opening before the sound
    assert at(t0, v0[:, 0], 0.49) < 0.01  # without look-ahead it cannot
    assert at(t0, v0[:, 0], 0.6) > 0.3  # ...but still opens promptly


@pytest.mark.parametrize("lookahead_ms", [0.0, 20.0, 60.0, 150.0])
def test_motion_uses_no_audio_beyond_lookahead(lookahead_ms: float) -> None:
    """Two streams that differ only after T give the same motion for pts <= T - L."""
    sr = 16000
    a = utterance(sr, pre=0.3, dur=1.5, post=0.3)
    b = a.copy()
    cut = round(1.0 * sr)
    b[cut:] = 0.0
    ta, va, _ = stream(DspAudio2Motion(lookahead_ms=lookahead_ms), a, sr)
    tb, vb, _ = stream(DspAudio2Motion(lookahead_ms=lookahead_ms), b, sr)
    before = ta <= 1.0 - lookahead_ms / 1000 + 1e-9
    assert before.sum() > 50
    np.testing.assert_allclose(va[before], vb[: before.sum()], atol=1e-6)
    later = (ta > 1.1) & (ta < 1.5)  # sanity: the streams do differ afterwards
    assert np.abs(va[later, 0] - vb[: len(va)][later, 0]).max() > 0.2


def test_ready_until_tracks_audio_minus_lookahead() -> None:
    sr = 48000
    m = DspAudio2Motion(lookahead_ms=60)
    assert m.ready_until() < 0
    m.push(np.zeros(sr, np.float32), 0.0, sr)
    assert 1.0 - 0.06 - 0.011 <= m.ready_until() <= 1.0 - 0.06 + 1e-9


def test_vowel_shapes() -> None:
    sr = 16000
    res = {}
    for v in "aiu":
        t, vals, _ = stream(DspAudio2Motion(), utterance(sr, v), sr)
        res[v] = vals[(t > 0.7) & (t < 1.0)].mean(axis=0)
    jaw, funnel, pucker, stretch = 0, 2, 3, 4
    assert res["i"][stretch] > 0.3 and res["i"][stretch] > 3 * res["i"][pucker]
    assert res["u"][pucker] > 0.3 and res["u"][funnel] > 0.2
    assert res["u"][pucker] > 3 * res["u"][stretch]
    assert res["a"][pucker] < 0.1 and res["a"][stretch] < 0.1
    assert res["a"][jaw] > res["i"][jaw] and res["a"][jaw] > res["u"][jaw]


def test_small_random_blocks_equal_one_push() -> None:
    sr = 22050
    x = np.concatenate([utterance(sr, "a"), utterance(sr, "i", pre=0.1)])
    _, whole, sw = stream(DspAudio2Motion(), x, sr, blocks=[len(x)])
    rng = np.random.default_rng(3)
    blocks = list(rng.integers(1, 1500, size=len(x)))
    _, parts, sp = stream(DspAudio2Motion(), x, sr, blocks=blocks)
    assert len(parts) == len(whole) > 150
    np.testing.assert_allclose(parts, whole, atol=1e-5)
    assert np.array_equal(sw, sp)


@pytest.mark.parametrize("sr", [8000, 11025, 22050, 44100, 48000, 96000])
def test_sample_rates_give_similar_curves(sr: int) -> None:
    base = 48000
    x = np.concatenate([utterance(base, "a", dur=0.4, post=0.3),
                        utterance(base, "u", pre=0.0, dur=0.4, post=0.3),
                        utterance(base, "i", pre=0.0, dur=0.4)])
    g = math.gcd(sr, base)
    y = resample_poly(x, sr // g, base // g).astype(np.float32)
    _, ref, _ = stream(DspAudio2Motion(), resample_poly(x, 1, 3).astype(np.float32), 16000)
    _, got, _ = stream(DspAudio2Motion(), y, sr, blocks=round(0.02 * sr))
    n = min(len(ref), len(got))
    assert n > 300
    err = np.abs(got[:n] - ref[:n]).max(axis=0)
    assert err[0] < 0.1, err  # jawOpen
    assert err.max() < 0.2, err
    assert np.corrcoef(got[:n, 0], ref[:n, 0])[0, 1] > 0.98


def test_rate_change_mid_stream() -> None:
    m = DspAudio2Motion()
    a = utterance(16000, pre=0.2, dur=0.5, post=0.3)  # 1.0 s at 16 kHz
    b = utterance(48000, pre=0.2, dur=0.5, post=0.3)  # next 1.0 s at 48 kHz
    t1, v1, _ = stream(m, a, 16000)
    t2, v2, _ = stream(m, b, 48000, blocks=960, t0=1.0)
    t, v = np.concatenate([t1, t2]), np.concatenate([v1, v2])
    assert np.all(np.diff(t) > 0) and t[-1] > 1.8
    assert at(t, v[:, 0], 0.45) > 0.3 and at(t, v[:, 0], 1.45) > 0.3
    assert at(t, v[:, 0], 1.1) < 0.02


def test_gaps_read_as_silence() -> None:
    sr = 16000
    x = vowel("a", 0.6, sr)
    m = DspAudio2Motion()
    t1, v1, s1 = stream(m, x, sr)  # 0 .. 0.6 s
    t2, v2, s2 = stream(m, x, sr, t0=1.6, q0=t1[-1] + 0.01)  # 1 s hole, then more speech
    t, v, s = np.concatenate([t1, t2]), np.concatenate([v1, v2]), np.concatenate([s1, s2])
    ref_t, ref_v, _ = stream(DspAudio2Motion(), np.concatenate(
        [x, np.zeros(sr, np.float32), x]), sr)
    assert np.abs(v[:, 0] - ref_v[: len(v), 0]).max() < 1e-5  # hole == explicit zeros
    assert np.allclose(t, ref_t[: len(t)])
    hole = (t > 0.8) & (t < 1.55)
    assert v[hole, 0].max() < 0.02 and not s[(t > 1.0) & (t < 1.5)].any()
    assert at(t, v[:, 0], 1.9) > 0.3


def test_long_gap_jumps_without_filling_memory() -> None:
    sr = 48000
    x = vowel("a", 0.5, sr)
    m = DspAudio2Motion()
    stream(m, x, sr)
    stream(m, x, sr, t0=3600.0)  # an hour later
    assert m.ready_until() > 3600.3
    assert m.motion_at(3600.3)["jawOpen"] > 0.3
    assert m.motion_at(3599.0)["jawOpen"] == 0.0 and not m.motion_at(3599.0).speaking
    assert m._buf.size < sr  # noqa: SLF001 - no hour of zeros was buffered


def test_repeated_and_out_of_order_queries() -> None:
    sr = 16000
    m = DspAudio2Motion()
    t, v, _ = stream(m, utterance(sr), sr, step=0.04)
    order = np.random.default_rng(0).permutation(len(t))
    for i in order:
        assert [m.motion_at(t[i])[c] for c in MOUTH] == pytest.approx(v[i], abs=1e-6)
    mid = m.motion_at(0.62)["jawOpen"]  # between frames: between their values
    lo, hi = sorted([m.motion_at(0.61)["jawOpen"], m.motion_at(0.63)["jawOpen"]])
    assert lo - 1e-6 <= mid <= hi + 1e-6


def _finite_in_range(v: np.ndarray) -> None:
    assert np.all(np.isfinite(v)) and v.min() >= 0.0 and v.max() <= 1.0


def test_clipping_dc_quiet_speech() -> None:
    sr = 16000
    x = utterance(sr)
    cases = {
        "clipped": np.clip(x * 30, -1, 1),
        "dc": x * 0.5 + 0.4,
        "quiet": x * 0.03,  # ~ -40 dBFS peaks
    }
    for name, y in cases.items():
        t, v, s = stream(DspAudio2Motion(), y.astype(np.float32), sr)
        _finite_in_range(v)
        assert at(t, v[:, 0], 0.8) > 0.3, name
        assert s[(t > 0.6) & (t < 1.0)].all(), name
        assert v[t > 1.3, 0].max() < 0.02, name


def test_constant_dc_and_nan_input_stay_closed() -> None:
    sr = 16000
    m = DspAudio2Motion()
    x = np.full(sr, 0.7, np.float32)
    x[1000:1100] = np.nan
    x[2000] = np.inf
    t, v, s = stream(m, x, sr)
    _finite_in_range(v)  # the NaN hole is a click, it may twitch the mouth: only finite
    assert v[t > 0.4, 0].max() < 0.02 and not s[t > 0.6].any()


def test_integer_pcm_is_accepted() -> None:
    sr = 16000
    x = utterance(sr)
    t, v, _ = stream(DspAudio2Motion(), (x * 32767).astype(np.int16), sr)
    t2, v2, _ = stream(DspAudio2Motion(), x, sr)
    np.testing.assert_allclose(v, v2, atol=1e-3)


@pytest.mark.parametrize("kind", ["white", "pink", "hum"])
def test_noise_only_does_not_hold_the_mouth_open(kind: str) -> None:
    sr = 48000
    rng = np.random.default_rng(7)
    n = 5 * sr
    if kind == "white":
        x = 0.1 * rng.standard_normal(n)
    elif kind == "pink":  # Kellet's pink filter
        x = lfilter([0.049922035, -0.095993537, 0.050612699, -0.004408786],
                    [1, -2.494956002, 2.017265875, -0.522189400], rng.standard_normal(n)) * 0.3
    else:  # mains hum with harmonics and a little hiss
        tt = np.arange(n) / sr
        x = sum(0.05 / h * np.sin(2 * np.pi * 50 * h * tt) for h in range(1, 6))
        x = x + 0.005 * rng.standard_normal(n)
    t, v, s = stream(DspAudio2Motion(), x.astype(np.float32), sr, blocks=960)
    _finite_in_range(v)
    late = t > 3.0
    assert v[late, 0].mean() < 0.05  # it may twitch at the noise's onset, then settles
    assert not s[late].any()


def test_speech_in_noise_still_moves() -> None:
    sr = 16000
    rng = np.random.default_rng(2)
    noise = 0.01 * rng.standard_normal(4 * sr).astype(np.float32)
    x = noise.copy()
    x[round(2.5 * sr) : round(3.1 * sr)] += vowel("a", 0.6, sr)
    t, v, s = stream(DspAudio2Motion(), x, sr)
    assert v[(t > 1.5) & (t < 2.4), 0].max() < 0.1
    assert v[(t > 2.6) & (t < 3.05), 0].min() > 0.3 and s[(t > 2.6) & (t < 3.05)].all()


def test_ten_minute_stream_has_bounded_memory() -> None:
    sr = 8000
    minute = np.concatenate([utterance(sr, v, pre=0.3, dur=0.7, post=0.5) for v in "aiu" * 4])
    minute = np.resize(minute, 60 * sr)
    m = DspAudio2Motion()
    block = 320
    tracemalloc.start()
    try:
        for minute_i in range(10):
            base = minute_i * 60 * sr
            for i in range(0, len(minute), block):
                m.push(minute[i : i + block], (base + i) / sr, sr)
            m.motion_at(m.ready_until())
            if minute_i == 0:
                after_first = tracemalloc.get_traced_memory()[0]
        grown = tracemalloc.get_traced_memory()[0] - after_first
    finally:
        tracemalloc.stop()
    assert m.ready_until() > 599.8
    assert grown < 200_000, grown


def test_demo_clip_follows_the_loudness_envelope() -> None:
    x, sr = decode_audio(CLIP)
    m = DspAudio2Motion()
    t, v, s = stream(m, np.concatenate([x, np.zeros(sr // 2, np.float32)]), sr)
    t, jaw, s = t[t < len(x) / sr], v[t < len(x) / sr, 0], s[t < len(x) / sr]
    # 50 ms RMS envelope in dB (floored at -60), sampled at the same instants
    c = np.round(t * sr).astype(int)
    h = round(0.025 * sr)
    sq = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
    lo, hi = np.clip(c - h, 0, len(x)), np.clip(c + h, 0, len(x))
    env = 10 * np.log10((sq[hi] - sq[lo]) / np.maximum(hi - lo, 1) + 1e-6)
    r = np.corrcoef(jaw, env)[0, 1]
    assert r > 0.8, r
    loud = env > env.max() - 20
    quiet = env < -55
    assert jaw[loud].mean() > 0.45 and jaw[quiet].mean() < 0.05
    assert s[loud].mean() > 0.95 and s[t < 0.4].sum() == 0
    assert np.diff(jaw).std() > 0.02  # it articulates, it is not a flat gate


def test_motion_frame_shape() -> None:
    m = DspAudio2Motion()
    stream(m, utterance(16000), 16000)
    f = m.motion_at(0.8)
    assert f.values.shape == (len(CHANNELS),) and f.values.dtype == np.float32
    assert set(f.as_dict()) <= set(MOUTH)
    assert f["mouthStretchLeft"] == f["mouthStretchRight"]
    assert f["mouthClose"] <= f["jawOpen"]
