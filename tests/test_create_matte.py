"""``avatar create`` computes the person matte (mask.png) once, from a real photo.

The photo is one of the perception set (face_recognition 1.3.0's sdist, fetched once into
.pytest_cache); the segmentation model is mediapipe's selfie_segmentation.tflite from the
PyPI wheel mediapipe==0.10.21 (pinned sha256). Without mediapipe, the photos or the models
these tests skip on a developer machine and fail in CI (CI=true).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from engine.avatar import load_avatar
from engine.create import CreateOptions, create_avatar
from engine.landmarker import LandmarkerError
from engine.matte import MatteError, segmenter_model
from engine.perception import REAL_PHOTOS, real_photo

IN_CI = os.environ.get("CI", "").lower() == "true"
OBAMA = next(p for p in REAL_PHOTOS if p.avatar == "obama-smile")


def _unavailable(msg: str) -> None:
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def segmenter(landmarker_cache) -> Path:
    """selfie_segmentation.tflite, fetched once into the pytest cache."""
    try:
        return segmenter_model(cache=landmarker_cache)
    except MatteError as e:
        _unavailable(str(e))
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def photo(landmarker_cache) -> Path:
    try:
        return real_photo(OBAMA, landmarker_cache)
    except LandmarkerError as e:
        _unavailable(str(e))
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def created(photo, model, segmenter, tmp_path_factory) -> Path:
    """The real photo made into an avatar with the default options."""
    root = tmp_path_factory.mktemp("avatars")
    return create_avatar(photo, CreateOptions(name="obama", landmarker=model,
                                              segmenter=segmenter, dest_root=root))


def _mask(root: Path) -> np.ndarray:
    with Image.open(root / "mask.png") as im:
        assert im.mode == "L"
        return np.asarray(im).astype(np.float32) / 255.0


def _inner_face(root: Path) -> np.ndarray:
    """Landmark pixels (x, y) in the middle 70 % of the face's box: surely the person."""
    pts = np.array(json.loads((root / "landmarks.json").read_text())["points"])[:, :2]
    lo, hi = pts.min(0), pts.max(0)
    mid, half = (lo + hi) / 2, (hi - lo) / 2 * 0.7
    keep = np.all(np.abs(pts - mid) <= half, axis=1)
    return np.round(pts[keep]).astype(int)


def _outline_widths(m: np.ndarray, x0: int, x1: int) -> np.ndarray:
    """Per column x0..x1, how many pixels the top outline (of the head) takes to go from
    alpha 0.1 to 0.9, scanning down from the top edge."""
    out = []
    for x in range(x0, x1):
        col = m[:, x]
        if col[0] > 0.1 or col.max() < 0.9:
            continue
        a = int(np.argmax(col > 0.1))
        b = int(np.argmax(col >= 0.9))
        out.append(b - a)
    return np.array(out)


def test_created_avatar_has_a_soft_person_matte(created) -> None:
    av = load_avatar(created)
    assert av.meta["mask"] == "mask.png" and av.mask is not None
    m = _mask(created)
    assert m.shape == (512, 512)
    face = _inner_face(created)
    assert len(face) > 100
    assert m[face[:, 1], face[:, 0]].min() > 0.98, "face pixels are not opaque"
    for corner in (m[:12, :12], m[:12, -12:]):  # the top corners: backdrop (window, drapes)
        assert corner.max() < 0.02, "a top corner is not transparent"
    soft = (m > 0.1) & (m < 0.9)
    assert soft.sum() > 2000, f"only {soft.sum()} pixels of partial alpha"
    # the head's top outline ramps over a few pixels (soft), not a cut nor a blur
    pts = _inner_face(created)
    widths = _outline_widths(m, int(pts[:, 0].min()), int(pts[:, 0].max()))
    assert len(widths) > 50
    med = float(np.median(widths))
    print(f"\n[create matte] partial-alpha pixels {soft.sum()}, top outline 0.1 -> 0.9 in "
          f"median {med:.0f} px (p10 {np.percentile(widths, 10):.0f}, "
          f"p90 {np.percentile(widths, 90):.0f})")
    assert 1 <= med <= 24, med
    assert np.mean(widths >= 1) > 0.8, "most of the outline is a hard cut"


def test_options_are_unaffected_by_the_matte(photo, model, segmenter, created,
                                             tmp_path) -> None:
    """--keep-expression and --resolution still do what they did; the matte follows the
    resolution and is the same person as at 512."""
    root = create_avatar(photo, CreateOptions(name="kept", landmarker=model,
                                              segmenter=segmenter, dest_root=tmp_path,
                                              keep_expression=True, resolution=256))
    av = load_avatar(root)
    assert av.meta["face"]["keep_expression"] is True and av.resolution == 256
    m = _mask(root)
    assert m.shape == (256, 256)
    big = np.asarray(Image.fromarray((_mask(created) * 255).astype(np.uint8)).resize(
        (256, 256), Image.BILINEAR)).astype(np.float32) / 255.0
    assert np.abs(m - big).mean() < 0.03
    assert not load_avatar(created).meta["face"]["keep_expression"]
    # matte=False writes no mask.png (the landmark approximation is used at run time)
    none = create_avatar(photo, CreateOptions(name="nomatte", landmarker=model,
                                              dest_root=tmp_path, matte=False))
    assert not (none / "mask.png").exists() and load_avatar(none).mask is None


def test_photo_alpha_wins_over_segmentation(photo, model, segmenter, tmp_path) -> None:
    """A photo with transparency keeps its own alpha: a hard-edged ellipse stays one."""
    with Image.open(photo) as im:
        rgb = np.asarray(im.convert("RGB"))
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    alpha = ((((xx - w / 2) / (0.45 * w)) ** 2 + ((yy - h * 0.55) / (0.6 * h)) ** 2) < 1)
    path = tmp_path / "cutout.png"
    Image.fromarray(np.dstack([rgb, alpha.astype(np.uint8) * 255])).save(path)
    root = create_avatar(path, CreateOptions(name="cut", landmarker=model,
                                             segmenter=segmenter, dest_root=tmp_path))
    m = _mask(root)
    assert ((m > 0.1) & (m < 0.9)).mean() < 0.01  # a hard ellipse, not the soft person


def test_missing_segmenter_is_one_line(photo, model, tmp_path) -> None:
    from vcam.cli.main import cli

    r = CliRunner().invoke(cli, ["avatar", "create", str(photo), "--name", "x",
                                 "--out-dir", str(tmp_path), "--landmarker", str(model),
                                 "--segmenter", str(tmp_path / "none.tflite")])
    assert r.exit_code != 0
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and "none.tflite" in lines[0], \
        r.output
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("name", ["leo", "grace"])
def test_bundled_masks_are_what_create_makes(name, segmenter) -> None:
    """tools/build_bundled_avatars.py and ``avatar create`` make the same matte: the shipped
    mask.png is person_matte of the shipped source.png."""
    from engine.create import person_matte

    root = Path(__file__).resolve().parents[1] / "avatars" / name
    with Image.open(root / "source.png") as im:
        crop = np.asarray(im.convert("RGB"))
    made = person_matte(crop, segmenter)
    assert made is not None
    shipped = (_mask(root) * 255).round().astype(int)
    assert np.abs(made.astype(int) - shipped).max() <= 2
