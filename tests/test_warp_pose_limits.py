"""Head poses at the validation limits render cleanly; beyond them the warp clamps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from engine import Engine, EngineConfig
from engine.expressions import WEIGHT_LIMITS
from engine.idle import IDLE_RANGES
from engine.motion import CHANNEL_INDEX, N_CHANNELS, POSE_LIMITS


@pytest.fixture(scope="module")
def engine():
    with Engine("leo", EngineConfig(size=256)) as e:
        yield e


def _inversion_error(engine, motions: np.ndarray) -> torch.Tensor:
    """Per grid node |bwd + fwd(bwd)| in px: how far the inverse warp misses."""
    st, r = engine._state, engine.renderer
    coef = r.coefficients(torch.as_tensor(motions))
    gh, gw = st.grid_hw
    fwd = (coef @ st.bases).view(len(motions), 2, gh, gw)
    bwd = r._invert(st, fwd, coef)
    pos = torch.addcmul(st.nodes, bwd, st.grid_norm).permute(0, 2, 3, 1)
    f_at = TF.grid_sample(fwd, pos, mode="bilinear", padding_mode="border", align_corners=True)
    return (bwd + f_at).abs().amax(1)


def _pose(**values: float) -> np.ndarray:
    m = np.zeros(N_CHANNELS, np.float32)
    for k, v in values.items():
        m[CHANNEL_INDEX[k]] = v
    return m


def test_each_pose_channel_is_clean_at_its_limit(engine):
    ms = np.stack([_pose(**{ch: sign * lim}) for ch, lim in POSE_LIMITS.items()
                   for sign in (1, -1)])
    err = _inversion_error(engine, ms)
    frac = (err > 5.0 * engine._state.size / 512).float().mean(dim=(1, 2))
    assert frac.max().item() < 0.002, frac.tolist()


def test_beyond_the_limit_renders_as_the_limit(engine):
    far = np.stack([_pose(yaw=30, pitch=-30, roll=30, tx=0.5, ty=-0.5)])
    at = np.stack([_pose(yaw=20, pitch=-15, roll=10, tx=0.15, ty=-0.15)])
    np.testing.assert_array_equal(engine.renderer.render(engine._state, far),
                                  engine.renderer.render(engine._state, at))


def test_validation_limits_match_the_renderer():
    for ch, lim in POSE_LIMITS.items():
        assert WEIGHT_LIMITS[ch][0] == lim
    assert IDLE_RANGES["sway_deg"][1] <= min(POSE_LIMITS["yaw"], 2 * POSE_LIMITS["roll"])
    assert IDLE_RANGES["breathing"][1] * 1.25 <= POSE_LIMITS["ty"]
