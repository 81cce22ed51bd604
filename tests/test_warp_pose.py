"""Head pose of the warp renderer: about +-20 deg yaw, +-15 pitch, +-10 roll without tearing.

A warp tears where its forward field folds (Jacobian determinant <= 0: two source points
land on one output pixel) or where the backward field cannot be found; both are checked
on the renderer's own grid, for both bundled faces and combined poses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from engine import landmarks as L
from engine.avatar import load_avatar
from engine.motion import vector
from engine.renderers.warp import WarpRenderer

AVATARS = Path(__file__).resolve().parents[1] / "avatars"
POSES = [{"yaw": 20.0}, {"yaw": -20.0}, {"pitch": 15.0}, {"pitch": -15.0}, {"roll": 10.0},
         {"roll": -10.0}, {"yaw": 20.0, "pitch": 15.0}, {"yaw": -20.0, "pitch": -15.0},
         {"yaw": 12.0, "pitch": -8.0, "roll": 6.0}]


@pytest.fixture(scope="module", params=["leo", "grace"])
def rig(request):
    av = load_avatar(AVATARS / request.param)
    r = WarpRenderer("cpu")
    return av, r, r.prepare(av, 512)


def forward(r: WarpRenderer, state, values: dict[str, float]) -> torch.Tensor:
    coef = r.coefficients(torch.as_tensor(vector(values)[None]))
    gh, gw = state.grid_hw
    return (coef @ state.bases).view(1, 2, gh, gw)


@pytest.mark.parametrize("values", POSES, ids=lambda v: "_".join(f"{k}{x:+g}" for k, x in
                                                                  v.items()))
def test_pose_is_fold_free_and_invertible(rig, values) -> None:
    av, r, state = rig
    fwd = forward(r, state, values)
    x0, y0, x1, y1 = state.roi
    gh, gw = state.grid_hw
    dx, dy = (x1 - 1 - x0) / (gw - 1), (y1 - 1 - y0) / (gh - 1)
    f = fwd[0].numpy()
    jxx = 1 + np.gradient(f[0], dx, axis=1)
    jyy = 1 + np.gradient(f[1], dy, axis=0)
    det = jxx * jyy - np.gradient(f[0], dy, axis=0) * np.gradient(f[1], dx, axis=1)
    assert det.min() > 0.03, f"warp folds (det {det.min():.3f}) at {values}"
    # the backward field (where each output pixel samples the photo) is fold-free too,
    # and on the face it inverts the forward one to 2.5 px at worst: q + b + fwd(q + b) = q
    bwd = r._invert(state, fwd, r.coefficients(torch.as_tensor(vector(values)[None])))
    b = bwd[0].numpy()
    det_b = (1 + np.gradient(b[0], dx, axis=1)) * (1 + np.gradient(b[1], dy, axis=0)) - (
        np.gradient(b[0], dy, axis=0) * np.gradient(b[1], dx, axis=1))
    assert det_b.min() > 0.03, f"output tears (det {det_b.min():.3f}) at {values}"
    pos = torch.addcmul(state.nodes, bwd, state.grid_norm).permute(0, 2, 3, 1)
    f_at = TF.grid_sample(fwd, pos, mode="bilinear", padding_mode="border", align_corners=True)
    resid = (bwd + f_at).abs().amax(1)[0].numpy()
    fx0, fy0, fx1, fy1 = av.bbox  # the face (landmarks' box)
    cols = slice(int((fx0 - x0) / dx), int(np.ceil((fx1 - x0) / dx)) + 1)
    rows = slice(int((fy0 - y0) / dy), int(np.ceil((fy1 - y0) / dy)) + 1)
    assert resid[rows, cols].max() < 2.5, (values, float(resid[rows, cols].max()))


def test_yaw_turns_the_nose_more_than_the_cheeks(rig) -> None:
    """Pseudo-3D: points in front (nose tip) move further than the face's sides."""
    av, r, state = rig
    fwd = forward(r, state, {"yaw": 20.0})[0]
    x0, y0, x1, y1 = state.roi
    gh, gw = state.grid_hw

    def shift_at(p) -> float:
        gx = (p[0] - x0) / (x1 - 1 - x0) * (gw - 1)
        gy = (p[1] - y0) / (y1 - 1 - y0) * (gh - 1)
        return float(fwd[0, int(round(gy)), int(round(gx))])

    P = av.landmarks[:, :2]
    nose = shift_at(P[L.NOSE_TIP])
    sides = [shift_at(P[i]) for i in L.FACE_SIDES]
    assert nose > 0.1 * state.face_w  # a real turn, scaled to the face
    assert nose > 1.5 * max(sides)
