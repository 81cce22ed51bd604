"""``avatar preview``: contact sheet of presets and key channels, and an idle-life mp4."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from click.testing import CliRunner
from PIL import Image

from engine.avatar import load_avatar
from vcam.avatar_preview import KEY_CHANNELS, LEVELS, channel_rows, idle_motion
from vcam.cli.main import cli

AVATARS = Path(__file__).resolve().parents[1] / "avatars"
TILE, LABEL, COLS = 200, 14, 6


def tile(sheet: np.ndarray, k: int) -> np.ndarray:
    x, y = (k % COLS) * TILE, (k // COLS) * (TILE + LABEL) + LABEL
    return sheet[y:y + TILE, x:x + TILE].astype(int)


def test_preview_writes_sheet_and_idle_clip(tmp_path: Path) -> None:
    out, video = tmp_path / "sheet.png", tmp_path / "idle.mp4"
    res = CliRunner().invoke(cli, ["avatar", "preview", "leo", "--out", str(out), "--video",
                                   str(video), "--seconds", "3", "--size", "256"])
    assert res.exit_code == 0, res.output
    rows = channel_rows(load_avatar(AVATARS / "leo"))
    labels = [label for label, _ in rows]
    assert len(rows) == 9 + len(KEY_CHANNELS) * len(LEVELS)
    with Image.open(out) as im:
        sheet = np.asarray(im.convert("RGB"))
    assert sheet.shape == (-(-len(rows) // COLS) * (TILE + LABEL), COLS * TILE, 3)
    neutral = tile(sheet, labels.index("preset neutral"))
    # every channel at 0 is the neutral face; at 1 it differs from 0.5 and from 0
    for name in ("jawOpen", "eyeBlinkLeft", "browInnerUp", "yaw +20", "gaze up"):
        t0, t5, t1 = (tile(sheet, labels.index(f"{name} {lv:g}")) for lv in LEVELS)
        assert np.abs(t0 - neutral).max() <= 2, name
        assert np.abs(t1 - t0).max() > 40 and np.abs(t1 - t5).max() > 10, name
    smile = tile(sheet, labels.index("preset smile"))
    assert np.abs(smile - neutral).mean() > 0.5

    with av.open(str(video)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 75 and frames[0].shape == (256, 256, 3)
    motion_over_time = [np.abs(f.astype(int) - frames[0].astype(int)).mean() for f in frames]
    assert max(motion_over_time) > 0.5  # sway, breathing, blinks: it lives


def test_idle_clip_blinks_within_six_seconds() -> None:
    leo = load_avatar(AVATARS / "leo")
    from engine.motion import CHANNEL_INDEX

    m = idle_motion(leo, 8.0, 25)
    blink = m[:, CHANNEL_INDEX["eyeBlinkLeft"]]
    assert blink.max() == 1.0 and (blink[:150] > 0.9).any()
    assert np.abs(m[:, CHANNEL_INDEX["yaw"]]).max() > 0.1


def test_preview_of_unknown_avatar_is_one_line(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["avatar", "preview", "nobody", "--out",
                                   str(tmp_path / "x.png")])
    assert res.exit_code == 1 and "unknown avatar 'nobody'" in res.output
    assert "Traceback" not in res.output
