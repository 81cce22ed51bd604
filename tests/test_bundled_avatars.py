"""The bundled avatars load and are sane; broken packages fail with one-line AvatarErrors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine import landmarks as L
from engine.avatar import load_avatar
from engine.errors import AvatarError
from engine.motion import BLENDSHAPES

AVATARS = Path(__file__).resolve().parents[1] / "avatars"
NAMES = ("leo", "grace")


@pytest.mark.parametrize("name", NAMES)
def test_bundled_avatar_loads(name: str) -> None:
    av = load_avatar(AVATARS / name)
    assert av.name == name
    assert av.display_name == name.capitalize()
    assert av.resolution == 512
    assert av.image.shape == (512, 512, 3) and av.image.dtype == np.uint8
    assert av.landmarks.shape == (478, 3)
    assert av.renderer == {"warp": {}}
    assert "public domain" in av.credits
    shapes = av.meta["face"]["neutral_blendshapes"]
    # mediapipe's 52 scores: "_neutral" plus every ARKit name but tongueOut
    assert len(shapes) == 52
    assert set(shapes) - {"_neutral"} == set(BLENDSHAPES) - {"tongueOut"}
    assert all(0.0 <= v <= 1.0 for v in shapes.values())


@pytest.mark.parametrize("name", NAMES)
def test_bundled_landmarks_are_sane(name: str) -> None:
    av = load_avatar(AVATARS / name)
    p = av.landmarks[:, :2]
    x0, y0, x1, y1 = av.bbox
    assert (p[:, 0] >= x0 - 1).all() and (p[:, 0] <= x1 + 1).all()
    assert (p[:, 1] >= y0 - 1).all() and (p[:, 1] <= y1 + 1).all()
    face_w = np.linalg.norm(p[L.FACE_SIDES[1]] - p[L.FACE_SIDES[0]])
    assert 0.40 * 512 < face_w < 0.60 * 512  # framing: face ~half the crop
    right_eye = p[list(L.RIGHT_EYE_UPPER + L.RIGHT_EYE_LOWER)].mean(axis=0)
    left_eye = p[list(L.LEFT_EYE_UPPER + L.LEFT_EYE_LOWER)].mean(axis=0)
    eyes_y = 0.5 * (right_eye[1] + left_eye[1])
    assert 0.33 * 512 < eyes_y < 0.47 * 512  # eye line ~40% from the top
    assert right_eye[0] < p[L.NOSE_TIP, 0] < left_eye[0]  # subject's right eye on image left
    assert eyes_y < p[L.NOSE_TIP, 1] < p[L.LIP_CENTER[0], 1] < p[L.CHIN, 1]
    assert p[L.FOREHEAD, 1] < eyes_y
    # lips: upper outer above upper inner above lower inner above lower outer
    up_o, up_i, lo_i, lo_o = (p[i, 1] for i in L.LIP_CENTER)
    assert up_o < up_i <= lo_i + 0.5 < lo_o
    c0, c1 = (p[i] for i in L.LIP_CORNERS_OUTER)
    assert c0[0] < p[L.NOSE_TIP, 0] < c1[0]
    # mouth narrower than the face, eyes ~ a third of the face apart
    assert 0.25 * face_w < c1[0] - c0[0] < 0.7 * face_w
    assert 0.25 * face_w < left_eye[0] - right_eye[0] < 0.6 * face_w
    # the nose tip is the closest point to the camera among these
    z = av.landmarks[:, 2]
    assert z[L.NOSE_TIP] < z[list(L.FACE_SIDES)].min()


def test_leo_is_smiling_in_the_photo() -> None:
    shapes = load_avatar(AVATARS / "leo").meta["face"]["neutral_blendshapes"]
    assert shapes["mouthSmileLeft"] > 0.5 and shapes["mouthSmileRight"] > 0.5
    assert shapes["jawOpen"] < 0.2


# --- broken packages -----------------------------------------------------------------------

def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "pkg"
    shutil.copytree(AVATARS / "leo", dst)
    return dst


def _edit_meta(pkg: Path, **changes: object) -> None:
    meta = json.loads((pkg / "avatar.json").read_text())
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    (pkg / "avatar.json").write_text(json.dumps(meta))


def _break_missing_image(pkg: Path) -> None:
    (pkg / "source.png").unlink()


def _break_missing_meta(pkg: Path) -> None:
    (pkg / "avatar.json").unlink()


def _break_missing_landmarks(pkg: Path) -> None:
    (pkg / "landmarks.json").unlink()


def _break_format(pkg: Path) -> None:
    _edit_meta(pkg, format=2)


def _break_resolution(pkg: Path) -> None:
    _edit_meta(pkg, resolution=64)


def _break_resolution_mismatch(pkg: Path) -> None:
    _edit_meta(pkg, resolution=256)


def _break_landmark_shape(pkg: Path) -> None:
    data = json.loads((pkg / "landmarks.json").read_text())
    data["points"] = data["points"][:468]
    (pkg / "landmarks.json").write_text(json.dumps(data))


def _break_landmark_xy_only(pkg: Path) -> None:
    data = json.loads((pkg / "landmarks.json").read_text())
    data["points"] = [p[:2] for p in data["points"]]
    (pkg / "landmarks.json").write_text(json.dumps(data))


def _break_escape(pkg: Path) -> None:
    shutil.copy(pkg / "source.png", pkg.parent / "x.png")
    _edit_meta(pkg, image="../x.png")


def _break_unreadable_image(pkg: Path) -> None:
    (pkg / "source.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")


def _break_json(pkg: Path) -> None:
    text = (pkg / "avatar.json").read_text()
    (pkg / "avatar.json").write_text(text[: len(text) // 2])


def _break_landmarks_json(pkg: Path) -> None:
    (pkg / "landmarks.json").write_text('{"format": 1, "points": [[1, 2, 3],')


def _break_bbox(pkg: Path) -> None:
    face = json.loads((pkg / "avatar.json").read_text())["face"]
    face["bbox"] = [300, 10, 100, 400]
    _edit_meta(pkg, face=face)


BREAKERS = {
    "missing image": (_break_missing_image, "missing file"),
    "missing avatar.json": (_break_missing_meta, "missing avatar.json"),
    "missing landmarks": (_break_missing_landmarks, "missing file"),
    "wrong format": (_break_format, "'format' is 2"),
    "bad resolution": (_break_resolution, "'resolution' must be"),
    "resolution vs image": (_break_resolution_mismatch, "source image is 512x512"),
    "landmark count": (_break_landmark_shape, "expected 478 points"),
    "landmarks without z": (_break_landmark_xy_only, "expected 478 points"),
    "path escapes": (_break_escape, "escapes the package"),
    "unreadable image": (_break_unreadable_image, "cannot read image"),
    "broken avatar.json": (_break_json, "not valid JSON"),
    "broken landmarks.json": (_break_landmarks_json, "not valid JSON"),
    "bad bbox": (_break_bbox, "'bbox' must be"),
}


@pytest.mark.parametrize("case", sorted(BREAKERS))
def test_broken_package_raises_one_line_error(tmp_path: Path, case: str) -> None:
    pkg = _copy(tmp_path)
    load_avatar(pkg)  # the untouched copy loads
    breaker, needle = BREAKERS[case]
    breaker(pkg)
    with pytest.raises(AvatarError) as info:
        load_avatar(pkg)
    msg = str(info.value)
    assert "\n" not in msg
    assert needle in msg, msg
    assert str(pkg) in msg


def test_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(AvatarError, match="no such folder"):
        load_avatar(tmp_path / "nope")
