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
