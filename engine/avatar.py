"""Avatar package format v1: load, validate, and explain every failure in one line.

A package is a folder::

    avatar.json      {"format": 1, "name", "display_name", "resolution", "image",
                      "renderer": {...}, "face": {"bbox": [x0, y0, x1, y1],
                      "landmarks": "landmarks.json", "neutral_blendshapes": {name: number}
                      (optional), "keep_expression": true|false (optional, default
                      false)}, "mask": "mask.png" (optional),
                      "expressions": {...}, "idle": {...}, "credits": "..."}
    source.png       aligned portrait, resolution x resolution, RGB
    landmarks.json   {"format": 1, "width", "height", "points": [[x, y, z] * 478]}
                     mediapipe face-mesh landmarks of source.png in pixels (z in pixels,
                     relative to the face centre, smaller = closer to the camera)
    mask.png         optional foreground matte (L, same size)

``face.neutral_blendshapes`` are mediapipe's blendshape scores of the photo itself (what
``avatar create`` measured). Unless ``face.keep_expression`` is true, the renderer starts
from a calm rest made from them: a grin relaxed, an open mouth closed, half-shut eyes
opened (``engine.neutral``); with it true the photo is shown as it is.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from . import jsonfile
from .errors import AvatarError
from .expressions import preset_table
from .idle import IdleSettings

FORMAT_VERSION = 1
N_LANDMARKS = 478
MIN_RESOLUTION, MAX_RESOLUTION = 128, 2048
#: ``renderer.liveportrait`` settings: key -> (lowest, highest). crop_scale is the crop
#: side over the face box side (default 2.0): below 1 the crop cuts the face, above 4 the
#: face is under a quarter of the network's 256 px input. crop_shift moves the crop centre
#: by a fraction of its side (default -0.06); beyond +-0.5 the face leaves the crop.
LIVEPORTRAIT_RANGES = {"crop_scale": (1.0, 4.0), "crop_shift": (-0.5, 0.5)}


@dataclass
class Avatar:
    """A loaded, validated avatar package."""

    name: str
    display_name: str
    root: Path
    resolution: int
    image: np.ndarray  # (R, R, 3) uint8 RGB
    landmarks: np.ndarray  # (478, 3) float32, pixels
    bbox: tuple[float, float, float, float]
    mask: np.ndarray | None = None  # (R, R) float32 0..1
    neutral_blendshapes: dict[str, float] = field(default_factory=dict)  # the photo's own
    keep_expression: bool = False  # True: render the photo's expression, do not neutralise
    renderer: dict[str, Any] = field(default_factory=dict)
    expressions: dict[str, dict[str, float]] = field(default_factory=dict)
    idle: dict[str, Any] = field(default_factory=dict)
    credits: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def face_width(self) -> float:
        x0, _, x1, _ = self.bbox
        return float(x1 - x0)


def _fail(root: Path, msg: str) -> AvatarError:
    return AvatarError(f"avatar package {root}: {msg}")


def _number(v: Any) -> bool:
    """A finite JSON number (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _member(root: Path, rel: Any, what: str) -> Path:
    """Resolve a file named inside avatar.json, refusing paths that leave the package."""
    if not isinstance(rel, str) or not rel:
        raise _fail(root, f"'{what}' must be a file name inside the package, got {rel!r}")
    path = (root / rel).resolve()
    if root.resolve() not in path.parents:
        raise _fail(root, f"'{what}' path {rel!r} escapes the package folder; use a file inside it")
    shown = rel if len(rel) <= 80 else rel[:77] + "..."
    try:
        found = path.is_file()
    except OSError as e:  # a name too long, or one the filesystem refuses
        raise _fail(root, f"'{what}' names {shown!r}, which cannot be a file here "
                          f"({e.strerror or e}); fix avatar.json or re-create the avatar"
                    ) from None
    if not found:
        raise _fail(root, f"missing file {shown!r} (named by '{what}' in avatar.json)")
    return path


def _read_image(root: Path, path: Path, mode: str, res: int, what: str) -> np.ndarray:
    """Read an image that must be ``res`` x ``res``; the size is checked from the header,
    before the pixels are decoded, so a huge image is refused without a decompression bomb
    (PIL refuses over ~179 Mpixel at open and only warns from ~89 Mpixel)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(path)
        with opened as im:
            if im.size != (res, res):
                raise _fail(root, f"{what} is {im.size[0]}x{im.size[1]}, but 'resolution' says "
                                  f"{res}x{res}; re-create the avatar")
            im.load()
            return np.asarray(im.convert(mode))
    except Image.DecompressionBombError:
        raise _fail(root, f"image {path.name} is far larger than 'resolution' ({res}x{res}) "
                          "allows; re-create the avatar") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise _fail(root, f"cannot read image {path.name}: {e}; re-create the avatar") from None


def _read_json(root: Path, path: Path) -> Any:
    """``path`` parsed within :mod:`engine.jsonfile`'s size and depth limits."""
    try:
        return jsonfile.read(path)
    except OSError as e:
        raise _fail(root, f"cannot read {path.name}: {e.strerror or e}") from None
    except jsonfile.JsonError as e:
        raise _fail(root, f"{path.name} is {e}; fix or re-create it") from None


def load_landmarks(root: Path, path: Path, resolution: int) -> np.ndarray:
    """Read and check landmarks.json: 478 finite (x, y, z) points inside the image."""
    data = _read_json(root, path)
    points = data.get("points") if isinstance(data, dict) else data
    try:
        arr = np.asarray(points, dtype=np.float32)
    except (TypeError, ValueError):
        raise _fail(root, f"{path.name}: 'points' must be a list of [x, y, z] numbers") from None
    if arr.shape != (N_LANDMARKS, 3):
        raise _fail(root, f"{path.name}: expected {N_LANDMARKS} points of [x, y, z], "
                          f"got shape {arr.shape}; re-create the avatar")
    if not np.isfinite(arr).all():
        raise _fail(root, f"{path.name}: landmarks contain NaN or infinity")
    xy = arr[:, :2]
    if (xy < -0.5 * resolution).any() or (xy > 1.5 * resolution).any():
        raise _fail(root, f"{path.name}: landmarks lie far outside the {resolution}px image; "
                          "they must be in pixels of source.png")
    return arr


def _check_liveportrait(root: Path, cfg: Any) -> None:
    if not isinstance(cfg, dict):
        raise _fail(root, "avatar.json 'renderer.liveportrait' must be a JSON object")
    for key, value in cfg.items():
        if key not in LIVEPORTRAIT_RANGES:
            raise _fail(root, f"avatar.json 'renderer.liveportrait': unknown key {key!r}; "
                              f"known: {', '.join(LIVEPORTRAIT_RANGES)}")
        lo, hi = LIVEPORTRAIT_RANGES[key]
        if not _number(value) or not lo <= value <= hi:
            raise _fail(root, f"avatar.json 'renderer.liveportrait': {key!r} must be a number "
                              f"in {lo:g}..{hi:g}, got {value!r}")


def load_avatar(root: str | Path) -> Avatar:
    """Load and validate the avatar package in folder ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise AvatarError(f"avatar package {root}: no such folder")
    meta_path = root / "avatar.json"
    if not meta_path.is_file():
        raise _fail(root, "missing avatar.json; is this an avatar package?")
    meta = _read_json(root, meta_path)
    if not isinstance(meta, dict):
        raise _fail(root, "avatar.json must hold a JSON object")

    fmt = meta.get("format")
    if fmt != FORMAT_VERSION:
        raise _fail(root, f"avatar.json 'format' is {fmt!r}; this version of avatar-vcam reads "
                          f"format {FORMAT_VERSION} (upgrade avatar-vcam or re-create the avatar)")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise _fail(root, "avatar.json needs a non-empty 'name'")
    from avatars import valid_name  # here: avatars imports this module

    if not valid_name(name):
        raise _fail(root, f"avatar.json 'name' {name!r} is not a plain avatar name; use 1-64 "
                          "letters, digits, '-', '_' or '.' starting with a letter or digit")

    res = meta.get("resolution")
    if isinstance(res, bool) or not isinstance(res, int) or not (
        MIN_RESOLUTION <= res <= MAX_RESOLUTION
    ):
        raise _fail(root, f"'resolution' must be an integer in {MIN_RESOLUTION}..{MAX_RESOLUTION},"
                          f" got {res!r}")

    image = _read_image(root, _member(root, meta.get("image", "source.png"), "image"), "RGB",
                        res, "source image")

    face = meta.get("face")
    if not isinstance(face, dict):
        raise _fail(root, "avatar.json needs a 'face' object with 'bbox' and 'landmarks'")
    bbox = face.get("bbox")
    if (not isinstance(bbox, list) or len(bbox) != 4
            or not all(_number(v) for v in bbox)
            or not (0 <= bbox[0] < bbox[2] <= res and 0 <= bbox[1] < bbox[3] <= res)):
        raise _fail(root, f"face 'bbox' must be [x0, y0, x1, y1] inside the image, got {bbox!r}")
    landmarks = load_landmarks(root, _member(root, face.get("landmarks"), "face.landmarks"), res)
    shapes = face.get("neutral_blendshapes", {})
    if not isinstance(shapes, dict):
        raise _fail(root, "face 'neutral_blendshapes' must map blendshape names to numbers")
    for key, value in shapes.items():
        if not _number(value):
            raise _fail(root, f"face 'neutral_blendshapes' {key!r} must be a number, got "
                              f"{value!r}; fix or re-create the avatar")
    keep = face.get("keep_expression", False)
    if not isinstance(keep, bool):
        raise _fail(root, f"face 'keep_expression' must be true or false, got {keep!r}")

    mask = None
    if meta.get("mask") is not None:
        m = _read_image(root, _member(root, meta["mask"], "mask"), "L", res, "mask")
        mask = m.astype(np.float32) / 255.0

    expressions = meta.get("expressions", {})
    if not isinstance(expressions, dict) or not all(
        isinstance(k, str) and isinstance(v, dict) for k, v in expressions.items()
    ):
        raise _fail(root, "'expressions' must map preset names to {channel: weight} objects")
    for section in ("renderer", "idle"):
        if not isinstance(meta.get(section, {}), dict):
            raise _fail(root, f"'{section}' must be a JSON object")
    try:  # the engine builds these at start; a bad value must not wait for the render loop
        preset_table(expressions)
        IdleSettings.from_dict(meta.get("idle", {}))
    except AvatarError as e:
        raise _fail(root, str(e)) from None
    _check_liveportrait(root, meta.get("renderer", {}).get("liveportrait", {}))

    return Avatar(
        name=name,
        display_name=str(meta.get("display_name", name)),
        root=root,
        resolution=res,
        image=image,
        landmarks=landmarks,
        bbox=tuple(float(v) for v in bbox),
        mask=mask,
        neutral_blendshapes={str(k): float(v) for k, v in shapes.items()},
        keep_expression=keep,
        renderer=meta.get("renderer", {}),
        expressions=expressions,
        idle=meta.get("idle", {}),
        credits=str(meta.get("credits", "")),
        meta=meta,
    )
