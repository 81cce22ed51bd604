"""The warp renderer's jaw, lids, brows and frown move far enough to be read (issue 19): an
open jaw lowers the chin over the neck, a blink draws lid skin over the eye, brows and mouth
corners move by a visible share of the face. bench/perception.py measures what mediapipe
reads in such frames; these tests pin the geometry behind it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine import landmarks as L
from engine.avatar import Avatar, load_avatar
from engine.motion import vector
from engine.renderers.warp import WarpRenderer, WarpState
from engine.renderers.warp_rig import (
    BASIS_NAMES,
    BROW_INNER_UP,
    FROWN_DROP,
    JAW_DROP,
    Face,
    Rig,
)

AVATARS = Path(__file__).resolve().parents[1] / "avatars"
SIZE = 512


@pytest.fixture(scope="module")
def renderer() -> WarpRenderer:
    return WarpRenderer("cpu")


@pytest.fixture(scope="module")
def leo(renderer: WarpRenderer) -> tuple[Avatar, WarpState, Rig]:
    av = load_avatar(AVATARS / "leo")
    rig = Rig(Face.from_landmarks(av.landmarks, SIZE / av.resolution))
    return av, renderer.prepare(av, SIZE), rig


def lum(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def field(rig: Rig, name: str, idx: list[int]) -> np.ndarray:
    """(len(idx), 2) displacement of basis ``name`` at value 1 on landmarks ``idx``."""
    return rig.fields(rig.f.P[idx])[BASIS_NAMES.index(name)]


def test_jaw_drops_the_mandible_not_the_jaw_angles(leo) -> None:
    _, _, rig = leo
    F, ey = rig.f.F, rig.f.ey
    chin, lip = (field(rig, "jawOpen", [i])[0] @ ey for i in (L.CHIN, L.LIP_CENTER[3]))
    assert chin == pytest.approx(JAW_DROP * F, rel=0.05)  # the chin goes with the lower lip
    assert lip == pytest.approx(JAW_DROP * F, rel=0.05)
    angles = field(rig, "jawOpen", [172, 397]) @ ey  # near the jaw angles: the hinge
    assert (angles < 0.5 * chin).all()
    upper = field(rig, "jawOpen", [L.LIP_CENTER[0], L.NOSE_TIP]) @ ey
    assert (np.abs(upper) < 0.01 * F).all()


def test_open_jaw_lowers_the_chin_over_the_neck(renderer, leo) -> None:
    av, state, rig = leo
    out = renderer.render(state, vector({"jawOpen": 1.0})[None])[0]
    c = rig.f.P[L.CHIN] + 0.8 * JAW_DROP * rig.f.F * rig.f.ey  # under the chin: leo's collar
    x, y = int(round(c[0])), int(round(c[1]))
    before = lum(av.image[y - 2:y + 3, x - 2:x + 3]).mean()
    after = lum(out[y - 2:y + 3, x - 2:x + 3]).mean()
    assert before < 60 < after  # black collar -> the chin's skin
    # the chin ends in a sharp edge (drawn per pixel), not a smear over the coarse grid
    col = lum(out[y - 40:y + 60, x])
    assert np.abs(np.diff(col)).max() > 30


def test_small_openings_show(renderer, leo) -> None:
    """jawOpen is eased: a third of the way opens more than a third of the drop."""
    _, state, _ = leo
    coef = renderer.coefficients(torch.as_tensor(np.stack([vector({"jawOpen": v})
                                                           for v in (0.3, 1.0)])))
    k = BASIS_NAMES.index("jawOpen")
    assert float(coef[0, k]) > 0.32 and float(coef[1, k]) == pytest.approx(1.0)


def test_blink_paints_lid_skin_down_to_the_lower_lid(renderer, leo) -> None:
    av, state, _ = leo
    out = renderer.render(state, vector({"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0})[None])[0]
    P = av.landmarks[:, :2] * SIZE / av.resolution
    cheek = lum(av.image[tuple(np.round(P[L.CHEEKS[0], ::-1]).astype(int))])
    for up, lo in ((L.RIGHT_EYE_UPPER, L.RIGHT_EYE_LOWER), (L.LEFT_EYE_UPPER, L.LEFT_EYE_LOWER)):
        mid = 0.6 * P[up[4]] + 0.4 * P[lo[4]]  # inside the open eye, above its middle
        x, y = np.round(mid).astype(int)
        patch = lum(out[y - 1:y + 2, x - 3:x + 4])
        assert patch.mean() > 0.75 * cheek  # skin, not iris or a dark lash band


def test_brows_and_frown_move_a_visible_share_of_the_face(leo) -> None:
    _, _, rig = leo
    F, ey = rig.f.F, rig.f.ey
    inner = field(rig, "browInnerUp", [L.RIGHT_BROW_UPPER[-1], L.LEFT_BROW_UPPER[0]]) @ ey
    assert (inner < -0.8 * BROW_INNER_UP * F).all()  # up
    frown = field(rig, "mouthFrownLeft", [L.LIP_CORNERS_OUTER[1]])[0] @ ey
    frown += field(rig, "mouthFrownRight", [L.LIP_CORNERS_OUTER[1]])[0] @ ey
    centre = (field(rig, "mouthFrownLeft", [L.LIP_CENTER[3]])
              + field(rig, "mouthFrownRight", [L.LIP_CENTER[3]]))[0] @ ey
    assert frown > 0.6 * FROWN_DROP * F and abs(centre) < 0.1 * frown  # an arch, not a shift
