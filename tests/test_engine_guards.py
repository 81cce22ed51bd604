"""Engine API boundary: non-finite pts and motion values raise a clear ValueError."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from engine import Engine, EngineConfig

BAD = [math.inf, -math.inf, math.nan]


@pytest.fixture(scope="module")
def engine():
    with Engine("leo", EngineConfig(size=128)) as e:
        yield e


@pytest.mark.parametrize("bad", BAD)
def test_non_finite_pts_raise(engine, bad):
    with pytest.raises(ValueError, match="finite"):
        engine.motion_at(bad)
    with pytest.raises(ValueError, match="finite"):
        engine.push_audio(np.zeros(160, np.float32), bad, 16000)
    with pytest.raises(ValueError, match="finite"):
        engine.set_expression("smile", bad)
    assert np.isfinite(engine.motion_at(1.0).values).all()


def test_motion_at_a_huge_pts_is_quick(engine):
    t0 = time.perf_counter()
    m = engine.motion_at(1.7e9)
    assert time.perf_counter() - t0 < 1.0
    assert np.isfinite(m.values).all()


def test_nan_expression_pts_does_not_poison_later_expressions():
    from engine.expressions import ExpressionBlender, preset_table

    b = ExpressionBlender(preset_table(), 0.2)
    with pytest.raises(ValueError, match="finite"):
        b.set("smile", math.nan)
    b.set("neutral", 10.0)
    assert np.isfinite(b.value_at(100.0)).all()


@pytest.mark.parametrize("bad", BAD)
def test_render_rejects_non_finite_channels_by_name(engine, bad):
    good = engine.motion_at(0.5)
    m = engine.motion_at(0.5)
    m["roll"] = bad
    with pytest.raises(ValueError, match="'roll'"):
        engine.render([good, m])
    m = engine.motion_at(0.5)
    m.pts = bad
    with pytest.raises(ValueError, match="finite"):
        engine.render([m])
    assert engine.render([good])[0].image.shape[:2] == (128, 128)


def test_query_older_than_history_raises_and_docstring_example_runs():
    from engine import engine as engine_mod

    sr = 16000
    t = np.arange(6 * sr) / sr
    pcm = (0.3 * np.sin(2 * np.pi * 150 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype(
        np.float32)
    with Engine("leo", EngineConfig(size=64)) as e:
        e.push_audio(pcm, 0.0, sr)  # 6 s at once: the first seconds are gone
        with pytest.raises(ValueError, match="older than the kept motion history"):
            e.frame_at(0.04)
        assert e.frame_at(e.ready_until()).image.shape[:2] == (64, 64)
    # The module docstring's example queries while pushing and reaches every frame.
    src = engine_mod.__doc__.split("\n\n")[1]
    code = "\n".join(line[4:] for line in src.splitlines())
    scope = {"Engine": lambda name: Engine(name, EngineConfig(size=64)), "pcm": pcm}
    exec(code, scope)
    assert scope["k"] >= round(5.9 * 25)
