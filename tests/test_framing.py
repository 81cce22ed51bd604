"""16:9 framing for calls: the avatar square in a 1280x720 frame, backgrounds, every sink."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from engine import Engine, EngineConfig
from engine.framing import Framing, parse_framing, parse_size
from engine.motion import vector

sys.path.insert(0, str(Path(__file__).parent / "support"))
from mouth import i420_frames  # noqa: E402

EXE = str(Path(sys.executable).parent / "avatar-vcam")


def frames(cfg: EngineConfig, motions: list[dict[str, float]], avatar: str = "leo"
           ) -> np.ndarray:
    e = Engine(avatar, cfg)
    mf = [e.motion_at(0.0) for _ in motions]
    for m, values in zip(mf, motions, strict=True):
        m.values[:] = vector(values)
    return np.stack([f.image for f in e.render(mf)])


def test_sizes_and_framing_parse_with_one_line_errors():
    assert parse_size(512) == (512, 512) and parse_size("1280x720") == (1280, 720)
    assert parse_size("640X360") == (640, 360)
    for bad in ("1280x721", "32x32", "4096x2160", "wide", "1x2x3"):
        with pytest.raises(ValueError, match="size"):
            parse_size(bad)
    assert parse_framing("1.2") == (1.2, 0.0, 0.0)
    assert parse_framing("1.5,0.1,-0.05") == (1.5, 0.1, -0.05)
    for bad in ("0.5", "4", "1,0.9,0", "1,2", "nan", "x"):
        with pytest.raises(ValueError, match="framing"):
            parse_framing(bad)
    assert Framing(512, 512).identity and not Framing(1280, 720).identity


def test_a_wide_frame_shows_the_face_in_the_middle_and_the_photo_around_it():
    cfg = EngineConfig(size="1280x720", idle=False, head_motion="off", seed=1)
    img = frames(cfg, [{}, {"jawOpen": 0.8}])
    assert img.shape == (2, 720, 1280, 3)
    e = Engine("leo", cfg)
    x0, y0, S = e.framer.x0, e.framer.y0, e.framer.square
    assert S == 720 and y0 == 0 and abs((x0 + S / 2) - 640) < 0.1 * S  # face near the centre
    # the mouth moves inside the square only: the sides are the same in both frames
    diff = np.abs(img[0].astype(int) - img[1].astype(int)).sum(axis=2)
    assert diff[:, x0 + S // 4: x0 + 3 * S // 4].max() > 100
    assert diff[:, : x0 - 2].max() == 0 and diff[:, x0 + S + 2:].max() == 0
    # no seam: the step across the square's edge is no larger than steps nearby
    g = np.abs(np.diff(img[0].astype(float), axis=1)).sum(axis=2)
    for edge in (x0, x0 + S - 1):
        at = g[:, edge - 2:edge + 2].mean()
        near = g[:, edge + 10:edge + 30].mean() if edge == x0 else g[:, edge - 30:edge - 10].mean()
        assert at < 2.0 * near + 3.0, f"seam at x={edge}: {at:.1f} against {near:.1f} nearby"


def test_zoom_and_offset_move_the_face():
    base = Engine("leo", EngineConfig(size=(1280, 720), seed=1)).framer
    moved = Engine("leo", EngineConfig(size=(1280, 720), framing="1.5,0.1,0", seed=1)).framer
    assert moved.square == 1080
    face_x = [f.x0 + 0.5 * f.square for f in (base, moved)]  # leo's face is near the middle
    assert moved.x0 + moved.square * 0.5 > base.x0 + base.square * 0.5 + 0.05 * 1280
    assert moved.y0 + moved.square >= 720  # never a gap under the body
    assert face_x[1] - face_x[0] > 100


def test_colour_blur_and_image_backgrounds(tmp_path):
    rest = [{}]
    green = frames(EngineConfig(size="640x360", background="#00ff00", seed=1), rest)[0]
    assert (green[:, :40] == [0, 255, 0]).all() and (green[:20, 500:540] == [0, 255, 0]).all()
    mid = green[200:300, 300:340].astype(int)  # the face stays
    assert np.abs(mid - [0, 255, 0]).sum(axis=2).mean() > 150
    photo = frames(EngineConfig(size="640x360", seed=1), rest)[0]
    blur = frames(EngineConfig(size="640x360", background="blur", seed=1), rest)[0]

    def detail(x: np.ndarray) -> float:
        return float(np.abs(np.diff(x.astype(float), axis=1)).mean())

    # around the head (top corners of the square) the blurred background has less detail
    assert detail(blur[:60, 190:260]) < detail(photo[:60, 190:260])
    pic = tmp_path / "bg.png"
    Image.fromarray(np.tile(np.array([[200, 40, 40]], np.uint8), (90, 160, 1))).save(pic)
    red = frames(EngineConfig(size="640x360", background=str(pic), seed=1), rest)[0]
    assert (np.abs(red[:30, :30].astype(int) - [200, 40, 40]) <= 2).all()


def test_every_sink_takes_1280x720(tmp_path, fake_v4l2):
    """mp4 and the virtual camera (pyvirtualcam's own v4l2 code through the shim) get
    1280x720 frames; a virtual camera gets 1280x720 when no --size is given."""
    out = tmp_path / "wide.mp4"
    r = subprocess.run([EXE, "--source", "demo", "--duration", "0.4", "--size", "1280x720",
                        "--sink", f"file:{out}"], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    with av.open(str(out)) as c:
        f = next(c.decode(video=0))
        assert (f.width, f.height) == (1280, 720)
    cam = tmp_path / "cam.yuv"
    r = subprocess.run([EXE, "--source", "demo", "--duration", "0.4", "--sink",
                        "vcam:/dev/video10"], capture_output=True, text=True, timeout=180,
                       env=fake_v4l2("/dev/video10", cam))
    assert r.returncode == 0, r.stderr
    assert "1280x720" in r.stdout + r.stderr
    y = i420_frames(cam, 1280, 720)
    assert len(y) == 10 and y[-1, 300:420, 560:720].std() > 10  # a face, not a flat frame


def test_window_takes_1280x720(xvfb_display):
    """The preview window on a real X server (Xvfb, started by the suite)."""
    env = {**os.environ, "DISPLAY": xvfb_display}
    r = subprocess.run([EXE, "--source", "demo", "--duration", "0.3", "--size", "1280x720",
                        "--sink", "window", "--background", "blur"], capture_output=True,
                       text=True, timeout=180, env=env)
    assert r.returncode == 0, r.stderr
    assert "1280x720" in r.stdout + r.stderr


def test_size_framing_and_background_keys_match_their_flags(tmp_path):
    from click.testing import CliRunner

    from vcam.cli.main import cli
    from vcam.control.settings import ConfigError, validate

    for good in ({"size": "1280x720"}, {"size": 512}, {"framing": "1.2,0,0.05"},
                 {"background": "blur"}, {"background": "#123456"}):
        validate(good)
    for bad, flag in (({"size": "1280x721"}, "--size"), ({"size": 7}, "--size"),
                      ({"framing": "9"}, "--framing"), ({"background": "nope"}, "--background")):
        with pytest.raises(ConfigError):
            validate(bad)
        r = CliRunner().invoke(cli, [flag, str(next(iter(bad.values()))), "--duration", "0.1"])
        assert r.exit_code == 2
