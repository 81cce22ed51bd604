"""Engine API boundary: non-finite pts and motion values raise a clear ValueError."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from avatar_vcam.engine import Engine, EngineConfig

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
    from avatar_vcam.engine.expressions import ExpressionBlender, preset_table

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
