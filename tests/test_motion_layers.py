"""Idle life, expression blending and the mixer."""

from __future__ import annotations

import numpy as np
import pytest

from engine import motion
from engine.expressions import PRESETS, ExpressionBlender, preset_table
from engine.idle import IdleLife, IdleSettings
from engine.mixer import MotionMixer
from engine.motion import MotionFrame

FPS = 25


def _blink_onsets(idle: IdleLife, seconds: float) -> np.ndarray:
    curve = np.array([idle.blink_at(k / FPS) for k in range(int(seconds * FPS))])
    closed = curve > 0.5
    return np.flatnonzero(closed[1:] & ~closed[:-1]) / FPS


def test_blinks_are_random_2_to_6_s_apart_and_fully_close():
    idle = IdleLife(seed=3)
    onsets = _blink_onsets(idle, 300)
    gaps = np.diff(onsets)
    singles = gaps[gaps > 1.0]  # double blinks come ~0.35 s apart
    assert len(onsets) > 300 / 6
    assert singles.min() >= 1.9 and singles.max() <= 6.5
    assert singles.std() > 0.6, "blink intervals look mechanical"
    assert (gaps < 1.0).any(), "no double blink in 5 minutes"
    fresh = IdleLife(seed=3)  # (a long-running instance forgets blinks minutes old)
    assert max(fresh.blink_at(t) for t in onsets[0] + np.arange(0, 0.3, 0.005)) == 1.0


def test_idle_is_a_function_of_time_not_of_call_order():
    a, b = IdleLife(seed=1), IdleLife(seed=1)
    ts = np.arange(0, 20, 1 / FPS)
    forward = np.stack([a.value_at(t) for t in ts])
    b.value_at(19.0)  # asking ahead first must not change the past
    again = np.stack([b.value_at(t) for t in ts])
    np.testing.assert_allclose(forward, again)
    other = np.stack([IdleLife(seed=2).value_at(t) for t in ts])
    assert not np.allclose(forward, other)


def test_idle_sway_is_small_smooth_and_not_periodic():
    idle = IdleLife(IdleSettings(sway_deg=2.0), seed=0)
    yaw = np.array([idle.value_at(k / FPS)[motion.CHANNEL_INDEX["yaw"]] for k in range(60 * FPS)])
    assert np.abs(yaw).max() <= 2.0 and yaw.std() > 0.2
    assert np.abs(np.diff(yaw)).max() < 0.2  # degrees per frame: no jumps
    ac = np.correlate(yaw - yaw.mean(), yaw - yaw.mean(), "full")[len(yaw):]
    assert ac[2 * FPS:].max() < 0.8 * ac[0], "sway repeats itself"


def test_idle_off_is_neutral():
    idle = IdleLife(IdleSettings(enabled=False))
    assert not idle.value_at(3.3).any()


def test_expression_blends_over_the_configured_time():
    table = preset_table()
    blender = ExpressionBlender(table, blend_s=0.2)
    smile = motion.CHANNEL_INDEX["mouthSmileLeft"]
    blender.set("smile", 1.0)
    assert blender.value_at(1.0)[smile] == 0
    assert 0 < blender.value_at(1.1)[smile] < PRESETS["smile"]["mouthSmileLeft"]
    assert blender.value_at(1.2)[smile] == pytest.approx(PRESETS["smile"]["mouthSmileLeft"])
    blender.set("neutral", 1.25)  # leaving mid-way starts from where it is
    assert blender.value_at(1.25)[smile] == pytest.approx(0.8)
    assert blender.value_at(1.5)[smile] == 0
    with pytest.raises(KeyError, match="known:"):
        blender.set("smirk", 2.0)


def test_avatar_overrides_presets():
    table = preset_table({"smile": {"mouthSmileLeft": 0.2}, "away": {"eyeBlinkLeft": 1}})
    assert table["smile"][motion.CHANNEL_INDEX["mouthSmileLeft"]] == pytest.approx(0.2)
    assert "away" in table and "laugh" in table


def test_speech_owns_the_mouth_on_top_of_a_preset():
    blender = ExpressionBlender(preset_table(), blend_s=0.0)
    blender.set("laugh", 0.0)
    mixer = MotionMixer(None, blender)
    speech = MotionFrame(1.0, motion.vector({"mouthClose": 0.9}), speaking=True)
    out = mixer.mix(speech)
    assert out["jawOpen"] == 0 and out["mouthClose"] == pytest.approx(0.9)  # lips close: /m/
    assert out["mouthSmileLeft"] == 1.0  # the preset's smile stays
    silent = mixer.mix(MotionFrame(1.0, motion.zeros(), speaking=False))
    assert silent["jawOpen"] == pytest.approx(PRESETS["laugh"]["jawOpen"])


def test_mixer_adds_idle_blinks_to_speech_and_clips():
    blender = ExpressionBlender(preset_table(), blend_s=0.0)
    blender.set("wink", 0.0)  # eyeBlinkLeft 1 + an idle blink must stay <= 1
    idle = IdleLife(seed=3)
    mixer = MotionMixer(idle, blender)
    onset = _blink_onsets(IdleLife(seed=3), 30)[0]
    out = mixer.mix(MotionFrame(onset + 0.08, motion.vector({"jawOpen": 0.5}), True))
    assert out["eyeBlinkRight"] > 0.5 and out["eyeBlinkLeft"] == 1.0 and out["jawOpen"] == 0.5


@pytest.mark.parametrize("start", [0.0, 600.0, 3600.0])
def test_breathing_keeps_a_human_rate_on_long_runs(start):
    idle = IdleLife(seed=0)
    ty = motion.CHANNEL_INDEX["ty"]
    v = np.array([idle.value_at(start + k / FPS)[ty] for k in range(60 * FPS)])
    breaths = int((np.sign(v[1:]) != np.sign(v[:-1])).sum()) / 2
    assert 8 <= breaths <= 25, (start, breaths)  # per minute
    assert np.abs(v).max() <= 1.3 * IdleSettings().breathing


def test_bad_avatar_expression_or_idle_settings_are_one_clear_line():
    from engine.errors import AvatarError

    with pytest.raises(AvatarError, match="expression 'smirk'.*unknown motion channel"):
        preset_table({"smirk": {"mouthSmirkLeft": 0.5}})
    with pytest.raises(AvatarError, match="expression 'smile'.*numbers"):
        preset_table({"smile": {"mouthSmileLeft": "lots"}})
    with pytest.raises(AvatarError, match="unknown key 'blink_rate'; known: blink_min_s"):
        IdleSettings.from_dict({"blink_rate": 3})
    with pytest.raises(AvatarError, match="'enabled' must be true or false"):
        IdleSettings.from_dict({"enabled": "no"})
    with pytest.raises(AvatarError, match="blink_min_s <= blink_max_s"):
        IdleSettings.from_dict({"blink_min_s": 5, "blink_max_s": 2})
    assert IdleSettings.from_dict({"sway_deg": 1, "enabled": False}).sway_deg == 1


def test_saccades_jump_at_irregular_times():
    idle = IdleLife(IdleSettings(saccade_amount=0.3), seed=4)
    gaze = np.array([idle.value_at(k / 100)[[motion.CHANNEL_INDEX["eyeLookOutLeft"],
                                             motion.CHANNEL_INDEX["eyeLookInLeft"]]]
                     for k in range(60 * 100)])
    jumps = np.flatnonzero(np.abs(np.diff(gaze, axis=0)).sum(1) > 1e-6) / 100
    gaps = np.diff(jumps)
    assert 15 < len(jumps) < 60  # ~0.35 per 0.6 s slot, horizontal changes only
    assert gaps.min() > 0.05 and gaps.std() > 0.3
    phase = (jumps % 0.6) / 0.6  # not locked to the 0.6 s slots
    assert phase.std() > 0.2
