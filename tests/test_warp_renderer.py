"""The ``warp`` renderer moves what each channel names, and nothing else."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine import landmarks as L
from engine.avatar import Avatar, load_avatar
from engine.motion import N_CHANNELS, vector
from engine.renderers.warp import WarpRenderer, WarpState, rest_avatar

AVATARS = Path(__file__).resolve().parents[1] / "avatars"
SIZE = 512


@pytest.fixture(scope="module")
def renderer() -> WarpRenderer:
    return WarpRenderer("cpu")


@pytest.fixture(scope="module")
def leo(renderer: WarpRenderer) -> tuple[Avatar, WarpState]:
    # the channels act on the calm rest (leo's grin relaxed): compare with that
    av = rest_avatar(load_avatar(AVATARS / "leo"))
    return av, renderer.prepare(av, SIZE)


def render1(renderer: WarpRenderer, state: WarpState, **values: float) -> np.ndarray:
    return renderer.render(state, vector(values)[None])[0]


def lum(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def box(p: np.ndarray, r: float) -> tuple[slice, slice]:
    """(rows, cols) slices of a square of half-size r around point p."""
    x, y = int(round(p[0])), int(round(p[1]))
    r = int(r)
    return slice(max(y - r, 0), y + r + 1), slice(max(x - r, 0), x + r + 1)


def eye_boxes(av: Avatar) -> list[tuple[slice, slice]]:
    P = av.landmarks[:, :2]
    out = []
    for upper, lower in ((L.RIGHT_EYE_UPPER, L.RIGHT_EYE_LOWER),
                         (L.LEFT_EYE_UPPER, L.LEFT_EYE_LOWER)):
        pts = P[list(upper + lower)]
        x0, y0 = pts.min(0) - 3
        x1, y1 = pts.max(0) + 3
        out.append((slice(int(y0), int(y1)), slice(int(x0), int(x1))))
    return out


def mouth_box(av: Avatar, margin: float = 0.0) -> tuple[slice, slice]:
    P = av.landmarks[:, :2]
    pts = P[list(L.LIPS_OUTER_UPPER + L.LIPS_OUTER_LOWER)]
    x0, y0 = pts.min(0) - margin
    x1, y1 = pts.max(0) + margin
    return slice(int(y0), int(y1)), slice(int(x0), int(x1))


def far_from_face(img: np.ndarray, av: Avatar) -> list[np.ndarray]:
    """Image corners, the bottom rows at the sides (shoulders), a strip left of the hair."""
    s = img.shape[0]
    return [img[:24, :24], img[:24, -24:], img[-24:, :24], img[-24:, -24:],
            img[-40:, : s // 5], img[-40:, -s // 5:]]


# --- basics ---------------------------------------------------------------------------------

def test_output_shape_dtype_and_name(renderer: WarpRenderer, leo) -> None:
    av, state = leo
    assert renderer.name == "warp"
    frames = renderer.render(state, np.zeros((3, N_CHANNELS), np.float32))
    assert frames.shape == (3, SIZE, SIZE, 3) and frames.dtype == np.uint8
    assert renderer.render(state, np.zeros((0, N_CHANNELS), np.float32)).shape == (
        0, SIZE, SIZE, 3)
    with pytest.raises(ValueError):
        renderer.render(state, np.zeros((1, 5), np.float32))


def test_neutral_reproduces_source(renderer: WarpRenderer, leo) -> None:
    av, state = leo
    assert np.array_equal(render1(renderer, state), av.image)


def test_tiny_motion_goes_through_the_warp_and_stays_faithful(renderer) -> None:
    # on the photo itself: the calm rest's lip seam is a sharp edge right on the lip cut,
    # where a 0.07 px tear (jawOpen 1e-3) shows as up to 7 levels
    av = load_avatar(AVATARS / "leo")
    av.keep_expression = True
    state = renderer.prepare(av, SIZE)
    out = render1(renderer, state, jawOpen=1e-3, yaw=0.01)
    diff = np.abs(out.astype(int) - av.image.astype(int))
    assert diff.max() <= 3 and diff.mean() < 0.05


def test_other_size(renderer: WarpRenderer, leo) -> None:
    av, _ = leo
    state = renderer.prepare(av, 256)
    out = render1(renderer, state, jawOpen=0.6)
    assert out.shape == (256, 256, 3)
    mouth = mouth_box(av)
    half = tuple(slice(s.start // 2, s.stop // 2) for s in mouth)
    ref = renderer.render(state, np.zeros((1, N_CHANNELS), np.float32))[0]
    assert np.abs(out[half].astype(int) - ref[half].astype(int)).mean() > 5


# --- mouth ----------------------------------------------------------------------------------

def _interior_point(state: WarpState, jaw: float) -> np.ndarray:
    """Output position in the opening at the mouth centre, below where teeth are painted."""
    k = 24  # jawOpen is blendshape 24
    a = state.lip_src[5] + jaw * state.lip_up[k, 5]
    b = state.lip_src[5] + jaw * state.lip_lo[k, 5]
    return (0.35 * a + 0.65 * b).numpy()


def test_jaw_open_shows_dark_interior_and_keeps_far_pixels(renderer, leo) -> None:
    av, state = leo
    out = render1(renderer, state, jawOpen=1.0)
    rows, cols = mouth_box(av, margin=10)
    assert np.abs(out[rows, cols].astype(int) - av.image[rows, cols].astype(int)).mean() > 10
    # chin moved
    chin = box(av.landmarks[L.CHIN], 12)
    assert np.abs(out[chin].astype(int) - av.image[chin].astype(int)).mean() > 3
    # interior is dark, much darker than the lips of the photo
    inner = lum(out[box(_interior_point(state, 1.0), 3)]).mean()
    lower_lip = av.landmarks[[L.LIP_CENTER[2], L.LIP_CENTER[3]], :2].mean(0)
    lip = lum(av.image[box(lower_lip, 2)]).mean()
    assert inner < 0.5 * lip, (inner, lip)
    # not a hole: the interior has some shading (not one flat colour)
    region = out[box(_interior_point(state, 1.0), 6)]
    assert lum(region).std() > 1.0
    for a, b in zip(far_from_face(out, av), far_from_face(av.image, av), strict=True):
        assert np.array_equal(a, b)


def test_jaw_zero_leaves_the_mouth_as_in_the_photo(renderer, leo) -> None:
    av, state = leo
    out = render1(renderer, state, mouthClose=1.0)  # capped by jawOpen = 0: no motion
    rows, cols = mouth_box(av, margin=6)
    assert np.array_equal(out[rows, cols], av.image[rows, cols])


def test_mouth_close_closes_the_lips(renderer, leo) -> None:
    av, state = leo
    open_ = lum(render1(renderer, state, jawOpen=0.6)[box(_interior_point(state, 0.6), 2)])
    closed = render1(renderer, state, jawOpen=0.6, mouthClose=0.6)
    assert lum(closed[box(_interior_point(state, 0.6), 2)]).mean() > open_.mean() + 30


@pytest.mark.parametrize("channel", [
    "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileLeft",
    "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft",
    "mouthLowerDownRight", "mouthFrownLeft", "mouthRollLower", "jawLeft",
])
def test_mouth_channels_move_the_mouth_not_the_eyes(renderer, leo, channel: str) -> None:
    av, state = leo
    values = {channel: 1.0}
    if channel == "mouthClose":
        values["jawOpen"] = 1.0
    out = render1(renderer, state, **values)
    rows, cols = mouth_box(av, margin=4)
    assert np.abs(out[rows, cols].astype(int) - av.image[rows, cols].astype(int)).mean() > 1.0
    for eye in eye_boxes(av):
        assert np.abs(out[eye].astype(int) - av.image[eye].astype(int)).max() <= 2, channel


def test_smile_moves_corners_up_and_stretch_moves_them_out(renderer, leo) -> None:
    av, state = leo
    k_smile, k_stretch = 43, 45  # mouthSmileLeft, mouthStretchLeft
    corner = 10  # image-right corner of the lower inner lip = subject's left
    assert float(state.lip_up[k_smile, corner, 1]) < -1.0  # up
    assert float(state.lip_lo[k_stretch, corner, 0]) > 1.0  # out (image right)
    out = render1(renderer, state, mouthSmileLeft=1.0)
    c = av.landmarks[L.LIP_CORNERS_OUTER[1], :2]
    assert np.abs(out[box(c, 6)].astype(int) - av.image[box(c, 6)].astype(int)).mean() > 3


# --- eyes and brows -------------------------------------------------------------------------

def test_blink_closes_the_eye_and_leaves_mouth_and_brows(renderer, leo) -> None:
    av, state = leo
    out = render1(renderer, state, eyeBlinkLeft=1.0, eyeBlinkRight=1.0)
    for iris in (L.RIGHT_IRIS[0], L.LEFT_IRIS[0]):
        p = av.landmarks[iris, :2] + [0, -3]  # the iris, above its centre highlight
        before, after = lum(av.image[box(p, 2)]).mean(), lum(out[box(p, 2)]).mean()
        assert after > before + 25, (before, after)  # dark iris -> lid skin
    rows, cols = mouth_box(av, margin=10)
    assert np.array_equal(out[rows, cols], av.image[rows, cols])
    for brow in (L.RIGHT_BROW_UPPER, L.LEFT_BROW_UPPER):
        b = box(av.landmarks[list(brow), :2].mean(0), 4)
        assert np.abs(out[b].astype(int) - av.image[b].astype(int)).max() <= 3


def test_wink_closes_one_eye_only(renderer, leo) -> None:
    av, state = leo
    out = render1(renderer, state, eyeBlinkLeft=1.0)  # subject's left = image right
    right_eye, left_eye = eye_boxes(av)
    assert np.abs(out[left_eye].astype(int) - av.image[left_eye].astype(int)).mean() > 5
    assert np.abs(out[right_eye].astype(int) - av.image[right_eye].astype(int)).max() <= 2


def test_brows_move(renderer, leo) -> None:
    av, state = leo
    for values in ({"browInnerUp": 1.0}, {"browDownLeft": 1.0, "browDownRight": 1.0}):
        out = render1(renderer, state, **values)
        b = box(av.landmarks[L.RIGHT_BROW_LOWER[-1], :2], 8)
        assert np.abs(out[b].astype(int) - av.image[b].astype(int)).mean() > 2, values
        rows, cols = mouth_box(av)
        assert np.array_equal(out[rows, cols], av.image[rows, cols])


# --- head pose ------------------------------------------------------------------------------

@pytest.mark.parametrize("values", [{"yaw": 8.0}, {"pitch": -6.0}, {"roll": 6.0},
                                    {"tx": 0.05, "ty": -0.03}])
def test_head_pose_moves_face_not_corners(renderer, leo, values) -> None:
    av, state = leo
    out = render1(renderer, state, **values)
    nose = box(av.landmarks[L.NOSE_TIP, :2], 15)
    assert np.abs(out[nose].astype(int) - av.image[nose].astype(int)).mean() > 3
    pairs = zip(far_from_face(out, av)[:4], far_from_face(av.image, av)[:4], strict=True)
    for a, b in pairs:
        assert np.array_equal(a, b)


def test_yaw_direction(renderer, leo) -> None:
    _, state = leo
    k = 52  # yaw_sin basis: nose (in front of the axis) moves right for yaw > 0
    coef = renderer.coefficients(__import__("torch").as_tensor(vector({"yaw": 5.0})[None]))
    assert float(coef[0, k]) > 0
    gh, gw = state.grid_hw
    field = state.bases[k].view(2, gh, gw)
    assert float(field[0].max()) > 0.3 * state.face_w * 0.5


# --- batches and other avatars --------------------------------------------------------------

def test_batch_equals_single_frames(renderer, leo) -> None:
    _, state = leo
    rng = np.random.default_rng(1)
    m = np.zeros((4, N_CHANNELS), np.float32)
    m[:, :52] = rng.uniform(0, 0.7, (4, 52))
    m[:, 52:55] = rng.uniform(-5, 5, (4, 3))
    m[2] = 0.0
    batch = renderer.render(state, m)
    for i in range(4):
        single = renderer.render(state, m[i:i + 1])[0]
        assert np.abs(batch[i].astype(int) - single.astype(int)).max() <= 1


def test_grace_renders(renderer) -> None:
    av = load_avatar(AVATARS / "grace")
    state = renderer.prepare(av, SIZE)
    out = render1(renderer, state, jawOpen=0.8)
    inner = lum(out[box(_interior_point(state, 0.8), 2)]).mean()
    lips = lum(av.image[box(av.landmarks[L.LIP_CENTER[3], :2], 2)]).mean()
    assert inner < 0.6 * lips
    assert np.array_equal(out[:24, :24], av.image[:24, :24])
    blink = render1(renderer, state, eyeBlinkRight=1.0)
    right_eye, left_eye = eye_boxes(av)
    assert np.abs(blink[right_eye].astype(int) - av.image[right_eye].astype(int)).mean() > 3
    assert np.abs(blink[left_eye].astype(int) - av.image[left_eye].astype(int)).max() <= 2
