"""Green screen and transparency at the matte's edge (issue 22): de-spilled, no halo.

leo is rendered by the Engine with ``--background '#00ff00'`` (its matte warped with the
head) and, for the browser source, cut out as RGBA and sent through the browser sink's
encoder. Two checks, each also run on the naive composite (the photo's own colours under
the matte's alpha, computed here) to show it would fail:

- **spill**: what a keyer recovers under the soft edge of the green-screen frame,
  F = (frame - (1 - a) key) / a, has no green cast (g - max(r, b));
- **halo**: over black and over white, the cut-out's soft edge is neither lighter nor
  darker than the person's own colours (premultiplied a * F against a * F_true).

The ground truth comes from leo photographed again, in the test, in front of a known
backdrop: photo = m F + (1 - m) B with leo's mask m and her photo as F, B a studio green,
a white wall or a black one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.config import EngineConfig
from engine.engine import Engine
from engine.matte import KEY_SQUEEZE
from vcam.sinks.browser import HEADER, encode

LEO = Path(__file__).resolve().parents[1] / "avatars" / "leo"
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
KEY = np.array([0, 255, 0], np.float32)
SIZE = 512


def _load(name: str) -> np.ndarray:
    with Image.open(LEO / name) as im:
        return np.asarray(im).astype(np.float32)


LEO_RGB = _load("source.png")[..., :3]
LEO_MASK = _load("mask.png")[..., None] / 255.0


def shot_on(backdrop: tuple[int, int, int], folder: Path) -> tuple[Path, np.ndarray]:
    """leo photographed in front of ``backdrop``: a package and its photo (float)."""
    shutil.copytree(LEO, folder)
    photo = LEO_MASK * LEO_RGB + (1.0 - LEO_MASK) * np.asarray(backdrop, np.float32)
    Image.fromarray((photo + 0.5).astype(np.uint8)).save(folder / "source.png")
    return folder, photo


def render(avatar: Path | str, pts: float = 0.0):
    """One frame over green, with its RGBA cut-out as the browser page receives it."""
    e = Engine(avatar, EngineConfig(size=SIZE, background="#00ff00", a2m="dsp", idle=False,
                                    head_motion="off"))
    try:
        e.enable_matte(overlay=True)
        frame = e.frame_at(pts)
    finally:
        e.close()
    return frame, page_rgba(encode(frame, (SIZE, SIZE), 1, 0.0))


def page_rgba(msg: bytes) -> np.ndarray:
    """The square cut-out the page draws, decoded from one browser-sink message."""
    (_m, _seq, _due, _w, _h, _bx, _by, _side, sq, x0, y0, w, h) = \
        HEADER.unpack(msg[:HEADER.size])
    out = np.zeros((sq, sq, 4), np.uint8)
    out[y0:y0 + h, x0:x0 + w] = np.frombuffer(msg[HEADER.size:], np.uint8).reshape(h, w, 4)
    return out


def in_square(frame) -> np.ndarray:
    """The camera frame's pixels at the cut-out's coordinates (its box may be offset)."""
    bx, by, side = frame.rgba_box
    assert side == SIZE
    img = frame.image
    ys, xs = np.mgrid[:side, :side]
    fy, fx = ys + by, xs + bx
    ok = (fy >= 0) & (fy < img.shape[0]) & (fx >= 0) & (fx < img.shape[1])
    out = np.zeros((side, side, 3), np.float32)
    out[ok] = img[fy[ok], fx[ok]]
    return out


def key_alpha(rgba: np.ndarray) -> np.ndarray:
    """The alpha the camera frame mixes with a keying colour (its soft band narrowed)."""
    lo, hi = KEY_SQUEEZE
    return np.clip((rgba[..., 3].astype(np.float32) / 255.0 - lo) / (hi - lo), 0.0, 1.0)


def spill(frame_rgb: np.ndarray, alpha: np.ndarray) -> tuple[float, float]:
    """Green cast of the colours a keyer recovers under the soft edge: mean of the positive
    g - max(r, b), and the share of pixels over 12 levels."""
    soft = (alpha >= 0.25) & (alpha < 0.999)
    f = (frame_rgb - (1.0 - alpha[..., None]) * KEY) / np.maximum(alpha, 1e-3)[..., None]
    cast = (f[..., 1] - np.maximum(f[..., 0], f[..., 2]))[soft]
    assert soft.sum() > 3000, "no soft edge to look at"
    return float(np.maximum(cast, 0).mean()), float((cast > 12).mean())


def halo(colour: np.ndarray, alpha: np.ndarray) -> tuple[float, float]:
    """Over black, how much lighter; over white, how much darker the soft edge is than
    leo's own colours would be (mean luma levels of a F against a F_true)."""
    soft = (alpha > 0.1) & (alpha < 0.9)
    assert soft.sum() > 3000
    err = alpha * ((colour - LEO_RGB) @ LUMA)
    return float(np.maximum(err, 0)[soft].mean()), float(np.maximum(-err, 0)[soft].mean())


def test_green_screen_edges_have_no_green_cast(tmp_path) -> None:
    # leo as shipped (her backdrop is not green) and leo shot on a studio green screen
    frame, rgba = render("leo", 0.5)
    own = spill(in_square(frame), key_alpha(rgba))
    green, photo = shot_on((50, 190, 70), tmp_path / "leo-green")
    frame, rgba = render(green)
    done = spill(in_square(frame), key_alpha(rgba))
    a = rgba[..., 3].astype(np.float32) / 255.0
    naive = spill(a[..., None] * photo + (1 - a[..., None]) * KEY, a)
    print(f"\n[green screen] keyer's green cast at the edge (mean levels, share > 12): leo "
          f"{own[0]:.1f}/{own[1]:.3f}; leo shot on green {done[0]:.1f}/{done[1]:.3f}, "
          f"naive composite {naive[0]:.1f}/{naive[1]:.3f}")
    for mean, share in (own, done):
        assert mean <= 3.0 and share <= 0.02
    assert naive[0] > 3.0 and naive[1] > 0.02, "the check would not catch a naive composite"


@pytest.mark.parametrize("backdrop,side", [((240, 240, 240), "light"), ((15, 15, 15), "dark")])
def test_browser_cutout_has_no_halo(tmp_path, backdrop, side) -> None:
    """A light old backdrop would show as a light ring over black, a dark one as a dark
    ring over white; the cut-out the page gets shows neither."""
    folder, photo = shot_on(backdrop, tmp_path / f"leo-{side}")
    _frame, rgba = render(folder)
    a = rgba[..., 3].astype(np.float32) / 255.0
    light, dark = halo(rgba[..., :3].astype(np.float32), a)
    n_light, n_dark = halo(photo, a)
    print(f"\n[halo] {side} backdrop: lighter over black {light:.1f} levels, darker over "
          f"white {dark:.1f} (naive straight-alpha photo: {n_light:.1f} / {n_dark:.1f})")
    assert light <= 8.0 and dark <= 16.0
    naive = n_light if side == "light" else n_dark
    assert naive > (8.0 if side == "light" else 16.0), "would not catch a naive cut-out"
