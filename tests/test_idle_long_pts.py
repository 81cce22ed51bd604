"""Idle life at large pts: blinks jump ahead instead of being drawn one by one from 0."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from engine.idle import IdleLife, IdleSettings


@pytest.mark.parametrize("pts", [1e7, 1.7e9])
def test_large_pts_is_fast_and_deterministic(pts):
    a = IdleLife(seed=5)
    t0 = time.perf_counter()
    va = a.value_at(pts)
    assert time.perf_counter() - t0 < 0.5
    assert np.isfinite(va).all()
    b = IdleLife(seed=5)
    b.value_at(pts / 3)  # another history must not change the answer
    assert np.array_equal(b.value_at(pts), va)


def test_blinks_keep_coming_far_from_zero():
    idle = IdleLife(seed=2)
    ts = 1.7e9 + np.arange(0, 60, 0.01)
    curve = np.array([idle.blink_at(t) for t in ts])
    closed = np.flatnonzero((curve[1:] > 0.5) & (curve[:-1] <= 0.5))
    assert len(closed) >= 60 / 6 - 1  # one blink per 2-6 s
    assert curve.max() == pytest.approx(1.0)


def test_first_epoch_is_unchanged_and_order_free():
    a, b = IdleLife(seed=3), IdleLife(seed=3)
    ts = np.arange(590, 610, 0.05)  # across the first epoch boundary
    fwd = [a.blink_at(t) for t in ts]
    b.blink_at(5000.0)
    back = [b.blink_at(t) for t in ts[::-1]][::-1]
    assert fwd == back


def test_blink_gaps_stay_in_range_across_epochs():
    idle = IdleLife(IdleSettings(double_blink_p=0.0), seed=1)
    ts = np.arange(0, 1300, 0.02)
    curve = np.array([idle.blink_at(t) for t in ts])
    onsets = ts[1:][(curve[1:] > 0) & (curve[:-1] == 0)]
    gaps = np.diff(onsets)
    assert gaps.max() < 6.0 + 2.5 + 0.1
    assert gaps.min() > 0.5


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_non_finite_pts_raise(bad):
    with pytest.raises(ValueError, match="finite"):
        IdleLife().value_at(bad)
