"""Speech gestures: the head and brows move with speech, and only with speech."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from engine import Engine, EngineConfig
from engine.audio2motion.gestures import SpeechGestures
from engine.motion import CHANNEL_INDEX, POSE_LIMITS

sys.path.insert(0, str(Path(__file__).parent / "support"))
from needs import require  # noqa: E402
from speech import phrases, syllables  # noqa: E402

SR = 16000
SCRIPT = [(1.0, "Well, I really do not think that is the point."),
          (4.6, "But tomorrow we can talk about it again.")]
TOTAL = 9.0
POSE = [CHANNEL_INDEX[n] for n in ("yaw", "pitch", "roll")]
BROWS = [CHANNEL_INDEX[n] for n in ("browInnerUp", "browOuterUpLeft", "browOuterUpRight")]


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, list[tuple[float, float]]]:
    require("espeak-ng", "speaks the test phrases")
    return phrases(SR, SCRIPT, TOTAL)


def stream(pcm: np.ndarray, block: int = 320, **kw) -> SpeechGestures:
    g = SpeechGestures(history_s=30.0, **kw)  # the tests ask after the whole clip
    for i in range(0, len(pcm), block):
        g.push(pcm[i:i + block], i / SR, SR)
    g.push(np.zeros(SR // 5, np.float32), len(pcm) / SR, SR)  # the look-ahead's silence
    return g


def series(g: SpeechGestures, t: np.ndarray) -> np.ndarray:
    return np.stack([g.value_at(float(x)) for x in t])


def test_head_and_brows_move_in_speech_and_rest_in_silence(speech):
    pcm, spans = speech
    g = stream(pcm)
    t = np.arange(0, TOTAL, 0.04)
    v = series(g, t)
    inside = np.zeros(len(t), bool)
    for a, b in spans:
        inside |= (t >= a) & (t <= b)
    before = t < spans[0][0] - 0.1
    long_after = t > spans[-1][1] + 1.5  # a phrase end's settling nod has died out
    pitch = v[:, CHANNEL_INDEX["pitch"]]
    assert np.ptp(pitch[inside]) > 2.0, "the head does not nod while speaking"
    assert np.abs(v[:, POSE][inside]).max(axis=0).min() > 0.3, "yaw, pitch or roll never moves"
    assert v[:, BROWS][inside].max() > 0.15, "the brows never rise on a pitch accent"
    # nothing before speech; 1.5 s after it, under 0.02 degrees (invisible): idle sway only
    assert np.abs(v[before]).max() == 0.0 and np.abs(v[long_after]).max() < 0.02
    for name in ("yaw", "pitch", "roll"):
        assert np.abs(v[:, CHANNEL_INDEX[name]]).max() < 0.5 * POSE_LIMITS[name]
    kinds = {k for k, _, _ in g.events}
    assert {"beat", "accent", "end"} <= kinds


def test_beats_fall_on_syllable_onsets():
    """Vowels at irregular times: every beat is within 60 ms after a vowel onset, most
    onsets get one, and the nod's peak follows its beat."""
    onsets = [0.8, 1.15, 1.62, 1.9, 2.45, 2.7, 3.3, 3.55, 4.1]
    pcm = syllables(SR, [(s, 0.16) for s in onsets], 5.5)
    g = stream(pcm)
    beats = [t for k, t, _ in g.events if k == "beat"]
    for b in beats:
        assert min(abs(b - o) for o in onsets) < 0.06, f"beat at {b:.2f} s is not at an onset"
    hit = sum(any(0 <= b - o < 0.06 for b in beats) for o in onsets)
    assert hit >= len(onsets) - 1, f"only {hit} of {len(onsets)} syllables got a beat"


def test_motion_is_final_once_ready_and_independent_of_block_size(speech):
    pcm, _ = speech
    t = np.arange(0.5, 7.0, 0.04)
    whole = series(stream(pcm, block=len(pcm)), t)
    small = series(stream(pcm, block=160), t)
    assert np.allclose(whole, small, atol=1e-6)
    # a value asked for as soon as it is ready does not change when more audio comes
    g = SpeechGestures(history_s=30.0)
    cut = int(3.0 * SR)
    g.push(pcm[:cut], 0.0, SR)
    ready = g.ready_until()
    assert 2.9 < ready <= 3.0
    early = series(g, t[t <= ready])
    g.push(pcm[cut:], cut / SR, SR)
    assert np.allclose(early, series(g, t[t <= ready]), atol=1e-9)


def test_the_seed_changes_the_gestures_not_their_timing(speech):
    pcm, _ = speech
    a, b = stream(pcm, seed=1), stream(pcm, seed=2)
    assert [e[1] for e in a.events] == [e[1] for e in b.events]
    t = np.arange(0.5, 7.0, 0.04)
    assert not np.allclose(series(a, t), series(b, t))
    assert np.allclose(series(a, t), series(stream(pcm, seed=1), t))


def test_steady_noise_and_clicks_make_no_gestures():
    rng = np.random.default_rng(0)
    x = (0.01 * rng.standard_normal(6 * SR)).astype(np.float32)  # a fan at -40 dBFS
    x[int(3 * SR)] += 0.5  # one click
    g = stream(x)
    assert [e for e in g.events if e[0] != "beat"] == []
    assert len(g.events) <= 1  # the click may read as one onset, never a stream of them


@pytest.mark.parametrize("head", ["speech", "idle", "off"])
def test_engine_head_motion_switch(speech, head):
    pcm, spans = speech
    e = Engine("leo", EngineConfig(size=128, head_motion=head, seed=3))
    t = np.arange(0.2, TOTAL - 0.1, 0.04)
    rows: list[np.ndarray] = []
    for i in range(0, len(pcm) + SR // 2, 480):  # ask for motion while pushing, as live
        block = pcm[i:i + 480]
        e.push_audio(block if len(block) else np.zeros(480, np.float32), i / SR, SR)
        while len(rows) < len(t) and t[len(rows)] <= e.ready_until():
            rows.append(e.motion_at(float(t[len(rows)])).values)
    v = np.stack(rows)
    pose = v[:, POSE]
    inside = np.zeros(len(t), bool)
    for a, b in spans:
        inside |= (t >= a) & (t <= b)
    if head == "off":
        assert np.abs(pose).max() == 0.0 and np.abs(v[:, CHANNEL_INDEX["ty"]]).max() == 0.0
        assert v[:, CHANNEL_INDEX["eyeBlinkLeft"]].max() > 0.5  # the eyes still blink
    else:
        speed = np.abs(np.diff(pose, axis=0)).sum(axis=1)
        ratio = speed[inside[1:]].mean() / speed[~inside[1:]].mean()
        if head == "speech":
            assert e.gestures is not None and ratio > 1.8, ratio
        else:
            assert e.gestures is None and ratio < 1.5, ratio


def test_bad_head_motion_is_refused():
    with pytest.raises(ValueError, match="head_motion must be one of speech, idle, off"):
        EngineConfig(head_motion="wild")


def test_head_motion_in_the_config_file_is_checked_like_the_flag(tmp_path):
    """A bad value in config.toml is one line naming the key (it was a traceback from
    EngineConfig), and the file accepts exactly what --head-motion accepts."""
    import os
    import subprocess

    from vcam.control.settings import ConfigError, validate

    for good in ("speech", "idle", "off"):
        assert validate({"head_motion": good}) == {"head_motion": good}
    with pytest.raises(ConfigError, match="head_motion must be speech, idle or off"):
        validate({"head_motion": "wild"})
    cfg = tmp_path / "config.toml"
    cfg.write_text('head_motion = "wild"\n')
    exe = Path(sys.executable).parent / "avatar-vcam"
    r = subprocess.run([str(exe), "--source", "demo", "--duration", "0.2", "--size", "64",
                        "--sink", f"file:{tmp_path / 'o.mp4'}"], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "AVATAR_VCAM_CONFIG": str(cfg)})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert [ln for ln in r.stderr.splitlines() if ln.strip()] == [
        ln for ln in r.stderr.splitlines() if ln.startswith("Error:") and "head_motion" in ln]
