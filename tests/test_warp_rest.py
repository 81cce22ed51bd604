"""The warp renderer's calm rest (issue 19): a grinning or speaking photo is warped once,
at prepare, to a neutral face, and everything else acts on top of it. No mediapipe here:
the perception check (tests/test_perception.py) judges how the rest reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import landmarks as L
from engine.avatar import load_avatar
from engine.motion import vector
from engine.neutral import photo_problems, photo_warning, rest_offset
from engine.renderers.warp import WarpRenderer, neutralise
from engine.renderers.warp_rig import REST_LIP_OVERLAP, Face, Rig

AVATARS = Path(__file__).resolve().parents[1] / "avatars"
CALM = {"jawOpen": 0.01, "mouthSmileLeft": 0.05, "mouthSmileRight": 0.04,
        "eyeBlinkLeft": 0.06, "eyeBlinkRight": 0.05, "eyeSquintLeft": 0.4,
        "eyeSquintRight": 0.35, "mouthUpperUpLeft": 0.01, "mouthUpperUpRight": 0.0}


@pytest.fixture(scope="module")
def renderer() -> WarpRenderer:
    return WarpRenderer("cpu")


def _keep(tmp_path: Path, keep: bool) -> Path:
    pkg = tmp_path / "leo"
    shutil.copytree(AVATARS / "leo", pkg)
    meta = json.loads((pkg / "avatar.json").read_text())
    meta["face"]["keep_expression"] = keep
    (pkg / "avatar.json").write_text(json.dumps(meta))
    return pkg


def _gap(face: Face) -> np.ndarray:
    """Inner-lip opening along the mouth (pixels, down the face)."""
    up, lo = face.P[list(L.LIPS_INNER_UPPER)], face.P[list(L.LIPS_INNER_LOWER)]
    return (lo - up) @ face.ey


# --- the rest offset from the photo's blendshapes -------------------------------------------

def test_a_calm_photo_gets_no_rest_offset() -> None:
    assert rest_offset(CALM) == {}
    assert rest_offset({}) == {}
    assert photo_problems(CALM) == [] and photo_warning(CALM, "me.jpg") is None


def test_rest_offset_relaxes_a_grin_closes_a_mouth_and_opens_eyes() -> None:
    leo = load_avatar(AVATARS / "leo").neutral_blendshapes
    off = rest_offset(leo)
    assert all(v < 0 for v in off.values())
    assert off["mouthSmileLeft"] < -0.6 and off["mouthSmileRight"] < -0.6
    assert off["mouthUpperUpLeft"] == pytest.approx(-leo["mouthUpperUpLeft"], abs=1e-3)
    speaking = {**CALM, "jawOpen": 0.47, "mouthSmileLeft": 0.71, "eyeBlinkLeft": 0.45}
    off = rest_offset(speaking)
    assert off["jawOpen"] == pytest.approx(-0.47)
    # part of an open mouth's "smile" is its stretched corners: 0.71 - 0.47 - 0.15
    assert off["mouthSmileLeft"] == pytest.approx(-0.09)
    assert off["eyeBlinkLeft"] == pytest.approx(-0.30) and "eyeBlinkRight" not in off


@pytest.mark.parametrize(("shapes", "why"), [
    ({"mouthSmileLeft": 0.97, "mouthSmileRight": 0.9}, "extreme grin (mouthSmile 0.97)"),
    ({"eyeBlinkLeft": 0.8, "eyeBlinkRight": 0.7}, "eyes are shut (eyeBlink 0.75)"),
    ({"jawOpen": 0.72}, "mouth is wide open (jawOpen 0.72)"),
])
def test_photos_a_rest_cannot_undo_get_one_warning_line(shapes, why) -> None:
    line = photo_warning({**CALM, **shapes}, "me.jpg")
    assert line is not None and "\n" not in line
    assert line.startswith("me.jpg shows ") and why in line
    assert "--keep-expression" in line
    assert "pick a photo with a calmer expression" in line


# --- the renderer ----------------------------------------------------------------------------

def test_leo_is_rendered_from_a_closed_calm_rest(renderer) -> None:
    av = load_avatar(AVATARS / "leo")
    assert not av.keep_expression
    state = renderer.prepare(av, 512)
    assert state.rest == rest_offset(av.neutral_blendshapes) and state.rest
    # the rest is what zero motion shows: not the photo, but the photo around the face
    rest = renderer.render(state, vector({})[None])[0]
    diff = np.abs(rest.astype(int) - av.image.astype(int)).max(-1)
    assert diff.max() > 40
    ys, xs = np.nonzero(diff > 8)
    face = Face.from_landmarks(av.landmarks, 1.0)
    assert face.P[:, 1].min() - 10 < ys.min() and ys.max() < face.P[:, 1].max() + 10
    assert face.P[:, 0].min() - 10 < xs.min() and xs.max() < face.P[:, 0].max() + 10
    # the photo shows teeth between the lips; the rest has them closed (teeth then come
    # from the painted interior when the jaw opens)
    assert _gap(face).max() > 8
    img, moved = neutralise(av.image, face, state.rest)
    assert np.abs(_gap(moved)).max() < 1.0
    assert np.array_equal(img, rest)
    assert state.teeth_h > 0


def test_commanded_motion_acts_on_top_of_the_rest(renderer) -> None:
    """jawOpen 0 is the closed rest; an opening then tears the lips where they now meet."""
    av = load_avatar(AVATARS / "leo")
    state = renderer.prepare(av, 512)
    frames = renderer.render(state, np.stack([vector({}), vector({"jawOpen": 1.0})]))
    A, B = renderer.lip_lines(state, renderer.coefficients(
        torch.as_tensor(np.stack([vector({}), vector({"jawOpen": 1.0})]))))
    gap = (B - A).norm(dim=-1).amax(1)
    assert float(gap[0]) < 0.35 and float(gap[1]) > 0.15 * state.face_w
    assert not np.array_equal(frames[0], frames[1])


def test_keep_expression_renders_the_photo_as_is(renderer, tmp_path) -> None:
    av = load_avatar(_keep(tmp_path, True))
    assert av.keep_expression
    state = renderer.prepare(av, 512)
    assert state.rest == {}
    rest = renderer.render(state, vector({})[None])[0]
    assert np.array_equal(rest, av.image)
    grace = load_avatar(AVATARS / "grace")  # bundled, already calm: kept as photographed
    assert grace.keep_expression
    assert np.array_equal(renderer.render(renderer.prepare(grace, 512), vector({})[None])[0],
                          grace.image)


def test_the_closing_field_is_continuous_across_the_lip_cut() -> None:
    """The rest's lip closure tears nothing: the upper and the lower versions agree at the
    lower inner lip, and each branch used for sampling agrees with it where it is valid."""
    av = load_avatar(AVATARS / "leo")
    face = Face.from_landmarks(av.landmarks, 1.0)
    rig = Rig(face)
    off = {"jawOpen": -0.4, "mouthUpperUpLeft": -0.3, "mouthUpperUpRight": -0.3}
    lip = face.P[list(L.LIPS_INNER_LOWER)[2:-2]]
    eps = 0.05 * face.ey
    above, below = rig.rest_field(lip - eps, off), rig.rest_field(lip + eps, off)
    assert np.abs(above - below).max() < 0.5
    # on the upper lip the upper branch is the field, below the lower lip the lower one
    # (each lip goes on past the meeting line by the overlap that hides its inner edge)
    tol = REST_LIP_OVERLAP * face.F + 0.1
    up_pts = face.P[list(L.LIPS_OUTER_UPPER)[3:-3]]
    lo_pts = face.P[list(L.LIPS_OUTER_LOWER)[3:-3]]
    assert np.allclose(rig.rest_field(up_pts, off, "upper"), rig.rest_field(up_pts, off),
                       atol=tol)
    assert np.allclose(rig.rest_field(lo_pts, off, "lower"), rig.rest_field(lo_pts, off),
                       atol=tol)
