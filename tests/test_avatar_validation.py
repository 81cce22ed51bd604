"""avatar.json values are checked at load: one AvatarError line naming the key and what is
allowed, never a traceback, a hang or corrupt frames later in the render loop."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.avatar import load_avatar
from engine.errors import AvatarError
from engine.expressions import PRESETS, WEIGHT_LIMITS
from vcam.cli.main import cli

sys.path.insert(0, str(Path(__file__).parent / "support"))
from images import png_claiming  # noqa: E402

AVATARS = Path(__file__).resolve().parents[1] / "avatars"


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "pkg"
    shutil.copytree(AVATARS / "leo", dst)
    return dst


def _edit(pkg: Path, **changes: object) -> None:
    meta = json.loads((pkg / "avatar.json").read_text())
    meta.update(changes)
    # json.dumps writes NaN / Infinity, as a hand-edited avatar.json may hold them
    (pkg / "avatar.json").write_text(json.dumps(meta))


def _error(pkg: Path) -> str:
    with pytest.raises(AvatarError) as info:
        load_avatar(pkg)
    msg = str(info.value)
    assert "\n" not in msg and str(pkg) in msg, msg
    return msg


def _one_line_cli_error(args: list[str], needle: str) -> None:
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output and needle in res.output, res.output
    assert res.output.strip().count("\n") == 0, res.output


@pytest.mark.parametrize("name", ["leo", "grace"])
def test_bundled_avatars_pass_every_check(name: str) -> None:
    assert load_avatar(AVATARS / name).name == name


def test_builtin_presets_are_inside_the_weight_limits() -> None:
    for weights in PRESETS.values():
        for channel, w in weights.items():
            assert abs(w) <= WEIGHT_LIMITS[channel][0] / 2, (channel, w)


# --- 1. expression weights --------------------------------------------------------------------

@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), 1e30, 2.5])
def test_expression_weight_must_be_finite_and_in_range(tmp_path: Path, bad: float) -> None:
    pkg = _copy(tmp_path)
    _edit(pkg, expressions={"smile": {"mouthSmileLeft": bad}})
    msg = _error(pkg)
    assert "expression 'smile' in avatar.json: 'mouthSmileLeft' must be a finite number in " \
           "-2..2" in msg, msg


@pytest.mark.parametrize("channel, bad, allowed", [("yaw", 21, "-20..20 (degrees)"),
                                                   ("pitch", 16, "-15..15 (degrees)"),
                                                   ("roll", -11, "-10..10 (degrees)"),
                                                   ("ty", -0.2, "-0.15..0.15 (face widths)")])
def test_expression_pose_weight_range(tmp_path: Path, channel: str, bad: float,
                                      allowed: str) -> None:
    pkg = _copy(tmp_path)
    _edit(pkg, expressions={"away": {channel: bad}})
    assert f"'{channel}' must be a finite number in {allowed}" in _error(pkg)


def test_expression_weights_at_the_limits_load(tmp_path: Path) -> None:
    pkg = _copy(tmp_path)
    _edit(pkg, expressions={"big": {"yaw": -20, "pitch": 15, "roll": -10, "tx": 0.15,
                                     "ty": -0.15, "jawOpen": 2, "mouthClose": -2}})
    assert load_avatar(pkg).expressions["big"]["yaw"] == -20


def test_expression_error_from_the_cli_is_one_line(tmp_path: Path) -> None:
    pkg = _copy(tmp_path)
    _edit(pkg, expressions={"smile": {"jawOpen": float("nan")}})
    _one_line_cli_error(["avatar", "show", str(pkg)], "'jawOpen' must be a finite number")


# --- 2. idle settings -------------------------------------------------------------------------

@pytest.mark.parametrize("idle, needle", [
    ({"blink_max_s": float("inf")}, "'blink_max_s' must be a finite number in 0.1..3600"),
    ({"blink_min_s": 1e-6, "blink_max_s": 1e-6, "double_blink_p": 0},
     "'blink_min_s' must be a finite number in 0.1..3600"),
    ({"blink_min_s": 1e-9, "blink_max_s": 1e-9}, "'blink_min_s' must be a finite number"),
    ({"sway_deg": float("nan")}, "'sway_deg' must be a finite number in 0..20"),
    ({"sway_deg": -1}, "'sway_deg' must be a finite number in 0..20"),
    ({"sway_deg": 25}, "'sway_deg' must be a finite number in 0..20"),
    ({"double_blink_p": 1.5}, "'double_blink_p' must be a finite number in 0..1"),
    ({"breathing": 1e30}, "'breathing' must be a finite number in 0..0.12"),
    ({"breathing": 0.3}, "'breathing' must be a finite number in 0..0.12"),
    ({"saccade_amount": -0.1}, "'saccade_amount' must be a finite number in 0..1"),
    ({"blink_min_s": 5, "blink_max_s": 2}, "need blink_min_s <= blink_max_s"),
])
def test_idle_settings_are_checked_at_load(tmp_path: Path, idle: dict, needle: str) -> None:
    pkg = _copy(tmp_path)
    _edit(pkg, idle=idle)
    msg = _error(pkg)
    assert "avatar.json 'idle': " in msg and needle in msg, msg


def test_idle_typo_is_refused_at_load(tmp_path: Path) -> None:
    pkg = _copy(tmp_path)
    _edit(pkg, idle={"blink_rate": 3})
    assert "unknown key 'blink_rate'" in _error(pkg)


def test_idle_error_from_the_cli_is_one_line(tmp_path: Path) -> None:
    pkg = _copy(tmp_path)
    _edit(pkg, idle={"blink_max_s": float("inf")})
    _one_line_cli_error(["avatar", "show", str(pkg)], "'blink_max_s' must be a finite number")


# --- 3. oversized source.png ------------------------------------------------------------------


@pytest.mark.parametrize("side, needle", [
    (30000, "image source.png is far larger than 'resolution' (512x512) allows"),  # PIL error
    # PIL only warns; the header size is refused before ~300 MB of pixels are decoded
    (10000, "source image is 10000x10000, but 'resolution' says 512x512"),
])
def test_oversized_source_png_is_one_line(tmp_path: Path, side: int, needle: str) -> None:
    pkg = _copy(tmp_path)
    png_claiming(pkg / "source.png", side, side)
    msg = _error(pkg)
    assert needle in msg and "re-create the avatar" in msg, msg
    _one_line_cli_error(["avatar", "show", str(pkg)], needle)


def test_oversized_mask_is_one_line(tmp_path: Path) -> None:
    pkg = _copy(tmp_path)
    png_claiming(pkg / "mask.png", 30000, 30000)
    _edit(pkg, mask="mask.png")
    assert "mask.png" in _error(pkg)


# --- 4. name ----------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["../../x", "a/b", "..", ".hidden", "x" * 65, "my avatar"])
def test_name_must_be_a_plain_avatar_name(tmp_path: Path, bad: str) -> None:
    pkg = _copy(tmp_path)
    _edit(pkg, name=bad)
    msg = _error(pkg)
    assert f"avatar.json 'name' {bad!r} is not a plain avatar name" in msg, msg


def test_preview_with_a_path_as_name_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    pkg = _copy(tmp_path)
    _edit(pkg, name="../../x")
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    _one_line_cli_error(["avatar", "preview", str(pkg), "--size", "64", "--seconds", "0.2",
                         "--no-video"], "is not a plain avatar name")
    assert not list(tmp_path.glob("x-*")) and not list(work.iterdir())


# --- 5. renderer.liveportrait -----------------------------------------------------------------

@pytest.mark.parametrize("cfg, needle", [
    ({"crop_scale": 0}, "'crop_scale' must be a number in 1..4, got 0"),
    ({"crop_scale": "big"}, "'crop_scale' must be a number in 1..4"),
    ({"crop_scale": float("nan")}, "'crop_scale' must be a number in 1..4"),
    ({"crop_shift": 2}, "'crop_shift' must be a number in -0.5..0.5"),
    ({"crop_shift": True}, "'crop_shift' must be a number"),
    ({"crop_scal": 2}, "unknown key 'crop_scal'; known: crop_scale, crop_shift"),
    ([], "'renderer.liveportrait' must be a JSON object"),
])
def test_liveportrait_settings_are_checked(tmp_path: Path, cfg: object, needle: str) -> None:
    pkg = _copy(tmp_path)
    _edit(pkg, renderer={"warp": {}, "liveportrait": cfg})
    msg = _error(pkg)
    assert needle in msg, msg


def test_good_liveportrait_settings_load(tmp_path: Path) -> None:
    pkg = _copy(tmp_path)
    _edit(pkg, renderer={"liveportrait": {"crop_scale": 2.2, "crop_shift": -0.1}})
    assert load_avatar(pkg).renderer["liveportrait"]["crop_scale"] == 2.2


def _face(pkg: Path, **changes: object) -> None:
    face = json.loads((pkg / "avatar.json").read_text())["face"]
    face.update(changes)
    _edit(pkg, face=face)


@pytest.mark.parametrize("bad", ["yes", 1, 0, None, [True], {"on": True}])
def test_keep_expression_must_be_a_boolean(tmp_path: Path, bad: object) -> None:
    pkg = _copy(tmp_path)
    _face(pkg, keep_expression=bad)
    msg = _error(pkg)
    assert "face 'keep_expression' must be true or false" in msg and repr(bad) in msg


def test_keep_expression_loads_and_defaults_to_neutralising(tmp_path: Path) -> None:
    pkg = _copy(tmp_path)
    _face(pkg, keep_expression=True)
    av = load_avatar(pkg)
    assert av.keep_expression is True
    assert av.neutral_blendshapes["mouthSmileLeft"] > 0.5  # leo's photo smiles
    face = json.loads((pkg / "avatar.json").read_text())["face"]
    del face["keep_expression"]
    _edit(pkg, face=face)
    assert load_avatar(pkg).keep_expression is False
    del face["neutral_blendshapes"]  # older packages: no measured expression, nothing to undo
    _edit(pkg, face=face)
    av = load_avatar(pkg)
    assert av.neutral_blendshapes == {} and av.keep_expression is False


def test_keep_expression_error_from_the_cli_is_one_line(tmp_path: Path) -> None:
    pkg = _copy(tmp_path)
    _face(pkg, keep_expression="no")
    _one_line_cli_error(["avatar", "show", str(pkg)], "face 'keep_expression' must be")


@pytest.mark.parametrize("key", ["mask", "image"])
def test_a_file_name_the_filesystem_refuses_is_one_line(tmp_path: Path, key: str) -> None:
    """A name longer than the filesystem allows (found by the fuzz test on 'mask') is an
    AvatarError naming the key, not an OSError from the stat."""
    pkg = _copy(tmp_path)
    _edit(pkg, **{key: "x" * 5000})
    msg = _error(pkg)
    assert f"'{key}'" in msg and "cannot be a file here" in msg and len(msg) < 400, msg
