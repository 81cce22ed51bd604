"""``avatar create``: any portrait photo -> a validated avatar package.

Steps: read the photo upright; find every face, on a reduced copy and, in a large photo,
over overlapping full-resolution tiles, so that a face a few percent of a group photo is
found too (refuse none, ask which one when there are several, refuse a face under 128 px;
see ``engine.landmarker.FaceLandmarker.find_faces``); rotate so the eyes are level and
crop a square with room for head motion (face = half the width, eyes 40 % down, edges
replicated where the crop leaves the photo), sampled from the full-resolution photo;
run the landmarker again on the crop for the 478 landmarks at the working resolution;
write source.png, landmarks.json, mask.png and avatar.json into a temporary folder,
validate it, then move it into place. mask.png is the photo's own alpha when it has
transparency, else a person matte computed once here (``engine.matte.segment_person``:
mediapipe's selfie segmentation refined on the photo, so hair edges stay soft); without
the segmentation model the avatar is still written, with one warning, and falls back to
the landmark matte at run time.

The photo's own blendshapes go into avatar.json (``face.neutral_blendshapes``); the
renderer makes a calm rest from them (``engine.neutral``) unless ``keep_expression`` is
set (``face.keep_expression``). A photo whose expression a rest cannot undo well (an
extreme grin, shut eyes, a wide-open mouth) gets a one-line warning.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from . import landmarks as L
from .avatar import FORMAT_VERSION, MAX_RESOLUTION, MIN_RESOLUTION, load_avatar
from .errors import AvatarError
from .landmarker import MODEL_SHA256, DetectedFace, FaceLandmarker, model_path
from .neutral import photo_warning
from .photo import Photo, load_photo

log = logging.getLogger(__name__)

MIN_FACE_PX = 128  # narrower faces (in the photo file) lack the detail to animate
FACE_FRACTION = 0.50  # face width / crop side: room for head motion and shoulders
EYES_FROM_TOP = 0.40  # eye line height in the crop, fraction of its side
DETECT_SIDE = 1280  # the whole-photo search runs on a copy this large at most
#: Faces this narrow (file pixels) are still searched for, so that they are counted and
#: refused by their size; in photos over 4000 px from 2 % of the longer side (at most
#: MIN_FACE_PX): the finest tiles then stay 500 px and more, which keeps an 8192 px photo
#: at ~320 tiles (1.5 s on 2 cores) instead of ~960; a 4000x3000 one takes 225 (about 1 s).
SEARCH_MIN_PX = 80
SEARCH_MIN_FRACTION = 0.02
MAX_FACES = 12  # faces one landmarker call returns (a tile, or the whole photo)
#: With no --face, faces too small to use and under this fraction of the width of the one
#: usable face (people in the background) do not make it ask which face.
BACKGROUND_RATIO = 0.5

STEPS = ("read photo", "load face model", "find the face", "align and crop",
         "landmarks", "person matte", "write package")


@dataclass
class CreateOptions:
    """What ``create_avatar`` makes; ``dest_root`` is the user's avatar folder by default."""

    name: str
    display_name: str | None = None
    face: int | None = None  # 1-based, faces counted left to right
    resolution: int = 512
    landmarker: Path | None = None
    dest_root: Path | None = None
    force: bool = False
    credits: str = ""
    keep_expression: bool = False  # render the photo's expression as is (no calm rest)
    matte: bool = True  # compute mask.png when the photo has no transparency of its own
    segmenter: Path | None = None  # selfie_segmentation.tflite (default: fetched, cached)


def search_floor(photo: Photo) -> float:
    """Narrowest face to search for, in the decoded photo's pixels."""
    longest = max(photo.rgb.shape[:2]) / photo.scale
    floor = min(MIN_FACE_PX, max(SEARCH_MIN_PX, SEARCH_MIN_FRACTION * longest))
    return floor * photo.scale


def _widths(faces: list[DetectedFace], photo: Photo) -> list[float]:
    """Face widths in pixels of the photo file (the decoded copy may be reduced)."""
    return [f.width / photo.scale for f in faces]


def _only_usable(widths: list[float]) -> int | None:
    """Index of the one face wide enough to use when all others are clearly background."""
    usable = [i for i, w in enumerate(widths) if w >= MIN_FACE_PX]
    if len(usable) != 1:
        return None
    top = widths[usable[0]]
    others = (w for i, w in enumerate(widths) if i != usable[0])
    return usable[0] if all(w <= BACKGROUND_RATIO * top for w in others) else None


def pick_face(faces: list[DetectedFace], photo: Photo, choice: int | None) -> DetectedFace:
    """The face to use, or a one-line refusal saying why and what to do.

    ``faces`` run left to right and ``choice`` counts from 1; with several faces and no
    choice it asks, unless only one of them is large enough and the others are far smaller."""
    where = photo.path.name
    if not faces:
        raise AvatarError(f"no face found in {where}; use a photo with one clearly visible, "
                          f"roughly frontal face at least {MIN_FACE_PX} px wide")
    widths = _widths(faces, photo)
    k = choice
    if k is None:
        only = 0 if len(faces) == 1 else _only_usable(widths)
        if only is None:
            listed = ", ".join(f"{w:.0f}" for w in widths[:12]) + (", …" if len(faces) > 12
                                                                    else "")
            raise AvatarError(f"{len(faces)} faces found in {where} (widths from the left: "
                              f"{listed} px); choose one with --face N "
                              f"(1 = leftmost … {len(faces)} = rightmost)")
        k = only + 1
    if not 1 <= k <= len(faces):
        raise AvatarError(f"--face {k} is out of range: {where} has {len(faces)} "
                          f"face{'s' if len(faces) > 1 else ''}")
    width = widths[k - 1]
    if width < MIN_FACE_PX:
        which = f"face {k}" if len(faces) > 1 else "the face"
        raise AvatarError(f"{which} in {where} is only {width:.0f} px wide; at least "
                          f"{MIN_FACE_PX} px are needed: use a higher-resolution photo or one "
                          "taken closer")
    return faces[k - 1]


def crop_transform(points: np.ndarray, resolution: int) -> tuple[np.ndarray, float, float]:
    """Affine map output pixel (x, y, 1) -> photo pixel for an eyes-level square crop.

    Returns the 2x3 matrix, the crop side (photo pixels) and the roll angle (degrees)."""
    P = points[:, :2]
    eye_r = P[list(L.RIGHT_EYE_CORNERS)].mean(0)
    eye_l = P[list(L.LEFT_EYE_CORNERS)].mean(0)
    ex = (eye_l - eye_r) / max(float(np.linalg.norm(eye_l - eye_r)), 1e-6)
    ey = np.array([-ex[1], ex[0]])
    face_w = float(np.linalg.norm(P[L.FACE_SIDES[1]] - P[L.FACE_SIDES[0]]))
    side = face_w / FACE_FRACTION
    eyes = 0.5 * (eye_r + eye_l)
    centre = 0.5 * (P[L.FACE_SIDES[0]] + P[L.FACE_SIDES[1]])
    mid = eyes + float((centre - eyes) @ ex) * ex  # on the eye line, face-centred
    origin = mid - 0.5 * side * ex - EYES_FROM_TOP * side * ey
    k = side / resolution
    # photo = origin + (x + 0.5) * k * ex + (y + 0.5) * k * ey - 0.5 (pixel centres)
    M = np.array([[k * ex[0], k * ey[0], 0.0], [k * ex[1], k * ey[1], 0.0]])
    M[:, 2] = origin + 0.5 * k * (ex + ey) - 0.5
    return M, side, math.degrees(math.atan2(ex[1], ex[0]))


def warp_crop(img: np.ndarray, M: np.ndarray, resolution: int, side: float) -> np.ndarray:
    """Sample the crop from ``img`` (H, W[, C]) uint8 with edge replication outside it.

    The covered region is cut out and box-reduced first, so that bicubic sampling never
    shrinks by more than 2x (no aliasing from huge photos)."""
    h, w = img.shape[:2]
    corners = np.array([[0, 0, 1], [resolution, 0, 1], [0, resolution, 1],
                        [resolution, resolution, 1]], np.float64) @ M.T
    bx0, by0 = np.floor(corners.min(0)).astype(int) - 3
    bx1, by1 = np.ceil(corners.max(0)).astype(int) + 4
    sub = img[max(by0, 0):min(by1, h), max(bx0, 0):min(bx1, w)]
    if sub.size == 0:
        raise AvatarError("the face lies outside the photo; use another photo")
    f = max(1, int(side / resolution / 2))
    im = Image.fromarray(sub)
    if f > 1:
        im = im.reduce(f)
    before = np.array([-(-max(0, -bx0) // f), -(-max(0, -by0) // f)])  # x, y (reduced px)
    after = np.array([-(-max(0, bx1 - w) // f), -(-max(0, by1 - h) // f)])
    arr = np.asarray(im)
    pads = [(before[1], after[1]), (before[0], after[0])] + [(0, 0)] * (arr.ndim - 2)
    arr = np.pad(arr, pads, mode="edge")
    # photo pixel p -> padded reduced pixel (centres): (p - s0 - (f - 1) / 2) / f + before
    s0 = np.array([max(bx0, 0), max(by0, 0)], np.float64)
    A = M / f
    A[:, 2] = (M[:, 2] - s0 - 0.5 * (f - 1)) / f + before
    # PIL's affine maps output pixel *corners*; shift by half a pixel on both sides
    coeffs = (A[0, 0], A[0, 1], A[0, 2] + 0.5 - 0.5 * (A[0, 0] + A[0, 1]),
              A[1, 0], A[1, 1], A[1, 2] + 0.5 - 0.5 * (A[1, 0] + A[1, 1]))
    out = Image.fromarray(arr).transform((resolution, resolution), Image.Transform.AFFINE,
                                         coeffs, resample=Image.Resampling.BICUBIC)
    return np.asarray(out)


def _nearest_centre(faces: list[DetectedFace], resolution: int) -> DetectedFace | None:
    if not faces:
        return None
    c = np.array([resolution / 2, EYES_FROM_TOP * resolution])
    return min(faces, key=lambda f: float(np.linalg.norm(f.points[:, :2].mean(0) - c)))


def check_dest(dest: Path, force: bool) -> None:
    """Refuse to replace anything but an avatar package, and that only with ``force``."""
    if not (dest.exists() or dest.is_symlink()):
        return
    if dest.is_symlink() or not (dest / "avatar.json").is_file():
        what = ("a link, not an avatar folder" if dest.is_symlink() else
                "a folder but not an avatar (no avatar.json)" if dest.is_dir() else
                "a file, not an avatar folder")
        raise AvatarError(f"{dest} is {what}; choose another --name or remove it first")
    if not force:
        raise AvatarError(f"avatar {dest.name!r} already exists at {dest}; choose another "
                          "--name or pass --force to replace it")


def create_avatar(photo_path: str | Path, opts: CreateOptions,
                  progress: Callable[[str], None] | None = None,
                  warn: Callable[[str], None] | None = None) -> Path:
    """Build the package ``opts.name`` from a photo; returns its folder.

    ``warn`` gets one line when the photo's expression will not neutralise well (see
    ``engine.neutral.photo_warning``); by default it is logged as a warning."""
    from avatars import user_avatar_dir, valid_name

    step = progress or (lambda _s: None)
    name = opts.name
    if not valid_name(name):
        raise AvatarError(f"invalid --name {name!r}: use up to 64 letters, digits, '-', '_' or "
                          "'.', starting with a letter or digit (choose the folder with --out-dir)")
    res = opts.resolution
    if not MIN_RESOLUTION <= res <= MAX_RESOLUTION or res % 2:
        raise AvatarError(f"--resolution must be even and in {MIN_RESOLUTION}..{MAX_RESOLUTION}"
                          f", got {res}")
    root = Path(opts.dest_root).expanduser() if opts.dest_root else user_avatar_dir()
    dest = root / name
    check_dest(dest, opts.force)

    step(STEPS[0])
    photo = load_photo(photo_path)
    step(STEPS[1])
    detector = FaceLandmarker(model_path(opts.landmarker), max_faces=MAX_FACES)
    try:
        step(STEPS[2])
        faces = detector.find_faces(photo.rgb, search_floor(photo), DETECT_SIDE)
        face = pick_face(faces, photo, opts.face)
        step(STEPS[3])
        M, side, roll = crop_transform(face.points, res)
        crop = warp_crop(photo.rgb, M, res, side)
        matte = warp_crop(photo.alpha, M, res, side) if photo.alpha is not None else None
        step(STEPS[4])
        final = _nearest_centre(detector.detect(crop), res)
        if final is None:
            raise AvatarError(f"the face in {photo.path.name} was lost after aligning it; "
                              "use a sharper, more frontal photo")
    finally:
        detector.close()

    if not opts.keep_expression:
        line = photo_warning(final.blendshapes, photo.path.name)
        if line:
            (warn or log.warning)(line)
    step(STEPS[5])
    if matte is None and opts.matte:
        matte = person_matte(crop, opts.segmenter, warn)
    step(STEPS[6])
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp's 0700 would hide the avatar from OBS, others
    except OSError as e:
        raise AvatarError(f"cannot write to {root}: {e.strerror or e}; choose a writable "
                          "--out-dir") from None
    try:
        _write_package(tmp, name, opts, crop, matte, final, photo, M, side, roll)
        load_avatar(tmp)  # validate before it replaces anything
        check_dest(dest, opts.force)  # again: the folder may have changed meanwhile
        _replace(dest, tmp)
    except OSError as e:
        raise AvatarError(f"cannot write avatar {dest}: {e.strerror or e}; choose a writable "
                          "--out-dir") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def person_matte(crop: np.ndarray, segmenter: Path | None = None,
                 warn: Callable[[str], None] | None = None) -> np.ndarray | None:
    """(res, res) uint8 person matte of the aligned crop (``engine.matte.segment_person``);
    None, with one warning, when the segmentation model cannot be had (offline)."""
    from .matte import MatteError, segment_person, segmenter_model

    try:
        alpha = segment_person(crop, segmenter_model(segmenter))
    except MatteError as e:
        if segmenter is not None:  # asked for by name: that is an error, not a fallback
            raise AvatarError(str(e)) from None
        (warn or log.warning)(f"no mask.png: {e}; the avatar's outline will be estimated "
                              "from its landmarks")
        return None
    return (np.clip(alpha, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def _replace(dest: Path, new: Path) -> None:
    """Move package ``new`` to ``dest``; an old package there is kept if the move fails."""
    old = new.with_name(new.name + "-old")
    if dest.exists():
        dest.rename(old)
    try:
        new.rename(dest)
    except OSError:
        if old.exists():
            old.rename(dest)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _write_package(out: Path, name: str, opts: CreateOptions, crop: np.ndarray,
                   matte: np.ndarray | None, face: DetectedFace, photo: Photo, M: np.ndarray,
                   side: float, roll: float) -> None:
    res = opts.resolution
    Image.fromarray(crop).save(out / "source.png", optimize=True)
    points = [[round(float(v), 3) for v in p] for p in face.points]
    (out / "landmarks.json").write_text(json.dumps(
        {"format": 1, "width": res, "height": res, "points": points},
        separators=(",", ":")) + "\n", encoding="utf-8")
    lo = np.clip(face.points[:, :2].min(0), 0, res)
    hi = np.clip(face.points[:, :2].max(0), 0, res)
    meta: dict = {
        "format": FORMAT_VERSION,
        "name": name,
        "display_name": opts.display_name or name,
        "resolution": res,
        "image": "source.png",
        "renderer": {"warp": {}},
        "face": {"bbox": [round(float(v), 2) for v in (*lo, *hi)],
                 "landmarks": "landmarks.json", "neutral_blendshapes": face.blendshapes,
                 "keep_expression": opts.keep_expression},
        "expressions": {},
        "idle": {},
        "credits": opts.credits,
        "build": {"tool": "avatar-vcam avatar create",
                  # a file name need not be valid UTF-8 (bytes on Linux): keep it printable
                  "photo": photo.path.name.encode("utf-8", "replace").decode("utf-8"),
                  "landmarker": f"mediapipe face_landmarker.task sha256 {MODEL_SHA256[:16]}…",
                  "crop_in_photo": {"origin": [round(float(v) / photo.scale, 2)
                                               for v in M[:, 2]],
                                    "side": round(side / photo.scale, 2),
                                    "roll_deg": round(roll, 2)}},
    }
    if matte is not None:
        Image.fromarray(matte, "L").save(out / "mask.png", optimize=True)
        meta["mask"] = "mask.png"
    (out / "avatar.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n",
                                     encoding="utf-8")  # load_avatar reads UTF-8 on every OS
