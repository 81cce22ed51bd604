"""Each key channel of the warp renderer changes pixels only in its own region of the face,
and every expression preset renders with speech working on top of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine import landmarks as L
from engine import motion
from engine.avatar import Avatar, load_avatar
from engine.expressions import ExpressionBlender, preset_table
from engine.mixer import SPEECH_CHANNELS, MotionMixer
from engine.motion import MotionFrame, vector
from engine.renderers.warp import WarpRenderer, WarpState, rest_avatar

AVATARS = Path(__file__).resolve().parents[1] / "avatars"
Box = tuple[slice, slice]


@pytest.fixture(scope="module", params=["leo", "grace"])
def rig(request) -> tuple[Avatar, WarpRenderer, WarpState, dict[str, Box]]:
    # the channels act on the calm rest (leo's grin relaxed): compare with that
    av = rest_avatar(load_avatar(AVATARS / request.param))
    r = WarpRenderer("cpu")
    return av, r, r.prepare(av, av.resolution), regions(av)


def regions(av: Avatar) -> dict[str, Box]:
    """Boxes (output pixels) of the face parts, from the avatar's landmarks."""
    P = av.landmarks[:, :2]

    def box(idx, m: float) -> Box:
        pts = P[list(idx)]
        x0, y0 = np.floor(pts.min(0) - m).astype(int)
        x1, y1 = np.ceil(pts.max(0) + m).astype(int)
        return slice(max(y0, 0), y1), slice(max(x0, 0), x1)

    return {
        "eyeR": box(L.RIGHT_EYE_UPPER + L.RIGHT_EYE_LOWER + L.RIGHT_IRIS, 3),
        "eyeL": box(L.LEFT_EYE_UPPER + L.LEFT_EYE_LOWER + L.LEFT_IRIS, 3),
        "browR": box(L.RIGHT_BROW_UPPER + L.RIGHT_BROW_LOWER, 3),
        "browL": box(L.LEFT_BROW_UPPER + L.LEFT_BROW_LOWER, 3),
        "mouth": box(L.LIPS_OUTER_UPPER + L.LIPS_OUTER_LOWER, 3),
        "cornerR": box(L.LIP_CORNERS_OUTER[:1], 8),
        "cornerL": box(L.LIP_CORNERS_OUTER[1:], 8),
        "cheekR": box(L.CHEEKS[:1], 10),
        "cheekL": box(L.CHEEKS[1:], 10),
        "chin": box((L.CHIN,), 10),
    }


def brow_line_change(d: np.ndarray, av: Avatar, side: str) -> int:
    """Largest change in 5x5 patches on the upper brow line (the brow hair itself)."""
    idx = L.RIGHT_BROW_UPPER if side == "R" else L.LEFT_BROW_UPPER
    pts = np.rint(av.landmarks[list(idx), :2]).astype(int)
    return max(int(d[y - 2:y + 3, x - 2:x + 3].max()) for x, y in pts)


def diff_map(rig, values: dict[str, float]) -> np.ndarray:
    av, r, state, _ = rig
    out = r.render(state, vector(values)[None])[0]
    return np.abs(out.astype(int) - av.image.astype(int)).max(-1)


def other(side: str) -> str:
    return "L" if side == "R" else "R"


def side_of(channel: str) -> str:
    """Box suffix of a channel's side: subject's Left is the image-right box 'L'."""
    return "L" if channel.endswith("Left") else "R"


MOUTH = ["jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthStretchLeft",
         "mouthStretchRight", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft",
         "mouthFrownRight"]


@pytest.mark.parametrize("channel", MOUTH)
def test_mouth_channels_stay_in_the_mouth(rig, channel: str) -> None:
    values = {channel: 1.0}
    if channel == "mouthClose":
        values["jawOpen"] = 0.6  # closes an open jaw; compared with the photo it still moves
    d = diff_map(rig, values)
    R = rig[3]
    assert d[R["mouth"]].mean() > 5, channel
    for part in ("eyeR", "eyeL", "browR", "browL"):
        assert d[R[part]].max() <= 2, (channel, part)
    if channel.endswith(("Left", "Right")):  # one corner only
        s = side_of(channel)
        assert d[R["corner" + s]].mean() > 5 * max(d[R["corner" + other(s)]].mean(), 0.5)
        assert d[R["corner" + other(s)]].max() <= 2, channel


@pytest.mark.parametrize("channel", ["eyeBlinkLeft", "eyeBlinkRight", "eyeWideLeft",
                                     "eyeWideRight"])
def test_lid_channels_move_one_eye_and_not_the_brow_or_mouth(rig, channel: str) -> None:
    d = diff_map(rig, {channel: 1.0})
    R = rig[3]
    s = side_of(channel)
    assert d[R["eye" + s]].mean() > 5
    for part in ("eye" + other(s), "brow" + other(s), "mouth", "chin", "cheekR", "cheekL"):
        assert d[R[part]].max() <= 3, (channel, part)
    assert brow_line_change(d, rig[0], s) <= 3, channel  # no smeared brow


@pytest.mark.parametrize("channel", ["browInnerUp", "browDownLeft", "browDownRight",
                                     "browOuterUpLeft", "browOuterUpRight"])
def test_brow_channels_move_brows_only(rig, channel: str) -> None:
    d = diff_map(rig, {channel: 1.0})
    R = rig[3]
    sides = ["R", "L"] if channel == "browInnerUp" else [side_of(channel)]
    for s in sides:
        assert d[R["brow" + s]].mean() > 5, (channel, s)
    for part in ("mouth", "chin", "cheekR", "cheekL"):
        assert d[R[part]].max() == 0, (channel, part)
    if len(sides) == 1:
        s = other(sides[0])
        assert d[R["brow" + s]].max() <= 2 and d[R["eye" + s]].max() <= 2, channel


@pytest.mark.parametrize("channel", ["cheekSquintLeft", "cheekSquintRight"])
def test_cheek_squint_raises_one_cheek(rig, channel: str) -> None:
    d = diff_map(rig, {channel: 1.0})
    R = rig[3]
    s = side_of(channel)
    assert d[R["cheek" + s]].mean() > 3
    for part in ("cheek" + other(s), "corner" + other(s), "eyeR", "eyeL", "browR", "browL",
                 "chin"):
        assert d[R[part]].max() <= 4, (channel, part)


@pytest.mark.parametrize("channel", ["eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
                                     "eyeLookDownLeft", "eyeLookInRight", "eyeLookOutRight",
                                     "eyeLookUpRight", "eyeLookDownRight"])
def test_gaze_moves_the_iris_inside_its_eye_only(rig, channel: str) -> None:
    d = diff_map(rig, {channel: 1.0})
    R = rig[3]
    rows, cols = R["eye" + side_of(channel)]
    assert d[rows, cols].mean() > 3
    m = int(round(0.02 * rig[2].face_w))  # the eye's region: its lids' box, 2 % of F around
    outside = d.copy()
    outside[rows.start - m:rows.stop + m, cols.start - m:cols.stop + m] = 0
    assert outside.max() <= 2, channel


def test_fields_scale_with_the_face(rig) -> None:
    av, r, state, _ = rig
    half = r.prepare(av, av.resolution // 2)
    k = motion.CHANNEL_INDEX["jawOpen"]
    full_drop = float(state.lip_lo[k, :, 1].max())
    assert full_drop > 0.08 * state.face_w  # the chin drops by a share of the face width
    assert float(half.lip_lo[k, :, 1].max()) == pytest.approx(full_drop / 2, rel=0.03)


PRESET_NAMES = ["neutral", "smile", "laugh", "surprised", "sad", "angry", "wink", "thinking",
                "skeptical"]


def test_every_preset_renders_and_speech_works_on_top(rig) -> None:
    av, r, state, R = rig
    table = preset_table(av.expressions)
    assert set(PRESET_NAMES) <= set(table)
    blender = ExpressionBlender(table, blend_s=0.0)
    mixer = MotionMixer(None, blender)
    speech = motion.vector({"jawOpen": 0.7})
    frames = []
    for name in PRESET_NAMES:
        blender.set(name, 0.0)
        silent = mixer.mix(MotionFrame(1.0, motion.zeros(), speaking=False))
        talking = mixer.mix(MotionFrame(1.0, speech.copy(), speaking=True))
        assert talking["jawOpen"] == pytest.approx(0.7), name
        keep = [i for i, c in enumerate(motion.CHANNELS) if c not in SPEECH_CHANNELS]
        np.testing.assert_array_equal(talking.values[keep], silent.values[keep])  # preset stays
        frames.append((silent.values, talking.values))
    out = r.render(state, np.stack([v for pair in frames for v in pair]))
    neutral = out[0]
    for i, name in enumerate(PRESET_NAMES):
        silent, talking = out[2 * i], out[2 * i + 1]
        if name != "neutral":
            assert np.abs(silent.astype(int) - neutral.astype(int)).mean() > 0.3, name
        mouth_change = np.abs(talking[R["mouth"]].astype(int) - silent[R["mouth"]].astype(int))
        assert mouth_change.mean() > 5, name  # the voice opens the mouth under every preset
