"""Read any portrait photo as 8-bit RGB (+ alpha): EXIF rotation, palette, RGBA, 16-bit,
grayscale, CMYK and very large files, with one clear line when the file is not an image.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import AvatarError

#: Largest photo side kept in memory; bigger JPEGs are decoded at a reduced scale.
MAX_SIDE = 8192
#: Pixel count above which Pillow would refuse a file as a "decompression bomb".
MAX_PIXELS = 400_000_000


@dataclass
class Photo:
    """A decoded photo: RGB (composited over white where transparent) and its alpha."""

    rgb: np.ndarray  # (H, W, 3) uint8
    alpha: np.ndarray | None  # (H, W) uint8, None if the photo is opaque
    scale: float  # pixels here per pixel of the file (< 1 when decoded reduced)
    path: Path


def _to_8bit(im: Image.Image) -> Image.Image:
    """16-bit and float single-channel images -> 8-bit L, scaled by their range."""
    arr = np.asarray(im)
    if im.mode == "F":
        top = float(np.nanmax(arr)) if arr.size else 1.0
        arr = np.nan_to_num(arr) / (top if top > 1.0 else 1.0) * 255.0
    else:  # I;16, I;16B, I (16-bit PNG/TIFF grayscale arrive as these)
        arr = arr.astype(np.float64) / (257.0 if arr.max(initial=0) > 255 else 1.0)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")


def load_photo(path: str | Path) -> Photo:
    """Decode ``path`` upright (EXIF orientation applied) as RGB uint8 plus alpha."""
    path = Path(path)
    if not path.is_file():
        raise AvatarError(f"photo {path} does not exist")
    old_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                # Pillow itself only refuses twice MAX_IMAGE_PIXELS: check before decoding
                if im.size[0] * im.size[1] > MAX_PIXELS:
                    raise Image.DecompressionBombError(f"{im.size} pixels")
                full = max(im.size)
                if im.format == "JPEG" and full > MAX_SIDE:
                    im.draft(im.mode, (im.size[0] * MAX_SIDE // full,
                                       im.size[1] * MAX_SIDE // full))
                im.load()
                scale = max(im.size) / full
                im = ImageOps.exif_transpose(im)
    except Image.DecompressionBombError:
        raise AvatarError(f"photo {path} has more than {MAX_PIXELS // 1_000_000} million pixels;"
                          " scale it down first") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise AvatarError(f"cannot read photo {path}: {e}; use a JPEG, PNG, WebP or TIFF "
                          "image") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit
    if max(im.size) > MAX_SIDE:  # non-JPEG giants: downscale once
        k = max(im.size) / MAX_SIDE
        im = im.resize((max(1, round(im.size[0] / k)), max(1, round(im.size[1] / k))),
                       Image.Resampling.BOX)
        scale /= k
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        im = _to_8bit(im)
    if "transparency" in im.info and im.mode in ("P", "L", "RGB", "I"):
        im = im.convert("RGBA")  # one transparent colour (tRNS) is transparency too
    elif im.mode == "P":
        im = im.convert("RGB")
    alpha = None
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(im.convert("RGBA"))
        a = rgba[..., 3]
        if (a < 255).any():
            alpha = a.copy()
            w = a[..., None].astype(np.float32) / 255.0
            rgb = np.rint(rgba[..., :3] * w + 255.0 * (1 - w)).astype(np.uint8)
        else:
            rgb = np.ascontiguousarray(rgba[..., :3])
    else:
        rgb = np.asarray(im.convert("RGB"))
    if min(rgb.shape[:2]) < 16:
        raise AvatarError(f"photo {path} is only {rgb.shape[1]}x{rgb.shape[0]} pixels; "
                          "use a real portrait photo")
    return Photo(rgb=rgb, alpha=alpha, scale=scale, path=path)
