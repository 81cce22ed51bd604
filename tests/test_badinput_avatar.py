"""Bad input to the avatar commands: one clear line, exit status 1, and nothing lost.

Tests that run ``avatar create`` to the end use the face model of test_avatar_create.py
(its ``model`` fixture: $AVATAR_VCAM_LANDMARKER or the cached official model).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_avatar_create import portrait, save

from avatars import resolve
from engine.avatar import load_avatar
from engine.create import CreateOptions, _replace, create_avatar
from engine.errors import AvatarError
from vcam.avatar_preview import contact_sheet, idle_video
from vcam.cli.main import cli
from vcam.errors import DeviceError

AVATARS = Path(__file__).resolve().parents[1] / "avatars"
needs_proc = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")


@pytest.fixture(scope="module")
def face_model(request) -> Path:
    """The official face model, from test_avatar_create.py's ``model`` fixture."""
    return request.getfixturevalue("model")


def one_line_error(res, needle: str) -> None:
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output and needle in res.output, res.output
    assert res.output.strip().count("\n") == 0, res.output


# --- avatar create: --force replaces avatars, nothing else ------------------------------------

def test_force_keeps_a_folder_that_is_not_an_avatar(tmp_path, face_model) -> None:
    photo = save(tmp_path, portrait(), "face.png")
    victim = tmp_path / "od" / "victim2"
    victim.mkdir(parents=True)
    (victim / "notes.txt").write_text("keep me")
    res = CliRunner().invoke(cli, ["avatar", "create", str(photo), "--name", "victim2",
                                   "--out-dir", str(tmp_path / "od"), "--force",
                                   "--landmarker", str(face_model)])
    one_line_error(res, "not an avatar (no avatar.json); choose another --name or remove it")
    assert [p.name for p in victim.iterdir()] == ["notes.txt"]
    assert (victim / "notes.txt").read_text() == "keep me"


def test_force_on_a_file_or_link_is_one_line(tmp_path, face_model) -> None:
    photo = save(tmp_path, portrait(), "face.png")
    od = tmp_path / "od"
    od.mkdir()
    (od / "plain").write_text("keep me")
    (od / "lnk").symlink_to(AVATARS / "leo")
    for name, what in (("plain", "is a file"), ("lnk", "is a link")):
        res = CliRunner().invoke(cli, ["avatar", "create", str(photo), "--name", name,
                                       "--out-dir", str(od), "--force",
                                       "--landmarker", str(face_model)])
        one_line_error(res, what)
    assert (od / "plain").read_text() == "keep me"
    assert (od / "lnk").resolve() == AVATARS / "leo"
    assert sorted(p.name for p in od.iterdir()) == ["lnk", "plain"]  # no temp left


def test_failed_replace_keeps_the_old_avatar(tmp_path) -> None:
    dest = tmp_path / "me"
    shutil.copytree(AVATARS / "leo", dest)
    with pytest.raises(OSError):
        _replace(dest, tmp_path / ".me-tmp")  # the new package is gone: the move fails
    load_avatar(dest)
    assert [p.name for p in tmp_path.iterdir()] == ["me"]


def test_create_shadowing_a_bundled_name_warns_and_has_no_blank_line(
        tmp_path, face_model, monkeypatch) -> None:
    monkeypatch.setenv("AVATAR_VCAM_AVATARS", str(tmp_path / "avatars"))
    photo = save(tmp_path, portrait(), "face.png")
    runner = CliRunner()
    res = runner.invoke(cli, ["avatar", "create", str(photo), "--name", "leo",
                              "--landmarker", str(face_model)])
    assert res.exit_code == 0, res.output
    assert not res.stderr.startswith("\n"), repr(res.stderr)
    lines = res.stderr.splitlines()
    assert len(lines) == 2 and "hides the bundled avatar 'leo'" in lines[1], res.stderr
    res = runner.invoke(cli, ["avatar", "create", str(photo), "--name", "mine",
                              "--landmarker", str(face_model)])
    assert res.exit_code == 0 and "bundled" not in res.stderr, res.output
    res = runner.invoke(cli, ["avatar", "create", str(photo), "--name", "x",
                              "--out-dir", str(tmp_path / "nope"), "--landmarker", "/nowhere"])
    assert res.exit_code == 1 and res.stderr.startswith("Error:"), repr(res.stderr)


def test_create_with_a_path_as_name_says_what_a_name_is(tmp_path) -> None:
    res = CliRunner().invoke(cli, ["avatar", "create", str(tmp_path / "face.png"),
                                   "--name", "a/b", "--out-dir", str(tmp_path)])
    one_line_error(res, "invalid --name 'a/b'")
    assert "folder path that exists" not in res.output
    assert list(tmp_path.iterdir()) == []


def test_out_dir_tilde_is_expanded(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "od" / "me").mkdir(parents=True)
    with pytest.raises(AvatarError, match=re.escape(str(tmp_path / "od" / "me"))):
        create_avatar(tmp_path / "face.png",
                      CreateOptions(name="me", dest_root=Path("~/od"), force=True))


# --- avatar folders given by path ------------------------------------------------------------

def test_a_folder_without_avatar_json_says_so(tmp_path) -> None:
    empty = tmp_path / "emptydir"
    empty.mkdir()
    with pytest.raises(AvatarError, match=r"has no avatar\.json.*avatar-vcam avatar create PHOTO"):
        resolve(str(empty))
    res = CliRunner().invoke(cli, ["avatar", "show", str(empty)])
    one_line_error(res, f"folder {empty} has no avatar.json")
    with pytest.raises(AvatarError, match="does not exist"):
        resolve(str(tmp_path / "missing"))


def test_tilde_in_an_avatar_path_is_expanded(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copytree(AVATARS / "leo", tmp_path / "x")
    assert resolve("~/x") == tmp_path / "x"
    res = CliRunner().invoke(cli, ["avatar", "show", "~/x"])
    assert res.exit_code == 0 and str(tmp_path / "x") in res.output, res.output


def test_neutral_blendshapes_must_be_numbers(tmp_path) -> None:
    pkg = tmp_path / "pkg"
    shutil.copytree(AVATARS / "leo", pkg)
    meta = json.loads((pkg / "avatar.json").read_text())
    for bad in ({"jawOpen": "x"}, {"jawOpen": True}, ["jawOpen"]):
        meta["face"]["neutral_blendshapes"] = bad
        (pkg / "avatar.json").write_text(json.dumps(meta))
        with pytest.raises(AvatarError, match="'neutral_blendshapes'") as info:
            load_avatar(pkg)
        assert "\n" not in str(info.value) and str(pkg) in str(info.value)


# --- avatar preview: outputs checked before rendering -----------------------------------------

def preview(*args: str):
    return CliRunner().invoke(cli, ["avatar", "preview", "leo", "--size", "128",
                                    "--seconds", "0.2", *args])


def test_preview_refuses_an_unknown_extension(tmp_path) -> None:
    one_line_error(preview("--out", str(tmp_path / "x.txt"), "--no-video"),
                   "use a .png, .jpg, .jpeg or .webp file name")
    one_line_error(preview("--out", str(tmp_path / "x.png"), "--video", str(tmp_path / "v.gif")),
                   "use a .mp4, .m4v, .mov or .mkv file name")
    assert list(tmp_path.iterdir()) == []


def test_preview_refuses_a_missing_folder(tmp_path) -> None:
    one_line_error(preview("--out", str(tmp_path / "no" / "x.png"), "--no-video"),
                   f"folder {tmp_path / 'no'} does not exist")
    one_line_error(preview("--out", str(tmp_path / "x.png"), "--video",
                           str(tmp_path / "no" / "v.mp4")),
                   f"folder {tmp_path / 'no'} does not exist")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor the sheet was made


@needs_proc
def test_preview_unwritable_outputs_are_one_line(tmp_path) -> None:
    one_line_error(preview("--out", "/proc/x.png", "--no-video"), "cannot write /proc/x.png")
    one_line_error(preview("--out", str(tmp_path / "x.png"), "--video", "/proc/v.mp4"),
                   "cannot write /proc/v.mp4")
    assert list(tmp_path.iterdir()) == []


class _Blank:
    """A renderer that draws grey frames."""

    def render(self, state: object, motions: np.ndarray) -> np.ndarray:
        return np.full((len(motions), 64, 64, 3), 128, np.uint8)


@needs_proc
def test_preview_write_errors_are_device_errors() -> None:
    leo = load_avatar(AVATARS / "leo")
    with pytest.raises(DeviceError, match="cannot write /proc/x.png"):
        contact_sheet(_Blank(), None, leo, 64, Path("/proc/x.png"))
    with pytest.raises(DeviceError, match="cannot write /proc/v.mp4"):
        idle_video(_Blank(), None, leo, 64, Path("/proc/v.mp4"), seconds=0.2)
