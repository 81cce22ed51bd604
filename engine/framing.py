"""Framing for calls: the rendered square avatar placed in a 16:9 (or any) frame.

Meeting apps expect 1280x720. The renderers draw a square around the head; this module
puts that square into a ``width x height`` frame the way a webcam frames a person, head
and shoulders, and fills the rest with a background:

- ``photo``: the avatar photo's own background, extended past the square's sides by
  mirroring it, blurred more and more with distance from the square so the mirror does
  not read as one, and feathered into the live frame's edge (no visible seam);
- ``blur``: the photo's background blurred like the meeting apps' own background blur,
  the person kept sharp through a matte;
- a colour (``#00ff00``, ``green``) or an image file: behind the person, through the matte.

The matte is the avatar's ``mask.png`` when it has one, else an approximation built from
the face landmarks (head and hair as an ellipse, shoulders below the chin), feathered
softly; it follows the photo, not the moving head, so a mask.png is better.

Geometry: the square is ``zoom * height`` pixels (zoom >= 1; more crops in closer), the face
centre keeps its height in the frame and sits on the vertical centre line, shifted by
``offset`` (fractions of the frame); the square never lifts off the frame's bottom edge,
since the body continues below it. Everything static (background, matte) is computed once;
per frame a resize of the rendered square, one paste and a blend of the seams or the matte.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFilter

from .avatar import Avatar

SIZE_LIMITS = (64, 2048)
ZOOM_LIMITS = (1.0, 3.0)
OFFSET_LIMIT = 0.5
FEATHER = 0.035  # seam feather, fraction of the square


def parse_size(value: int | str | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``512`` / ``"512"`` (a square) or ``"1280x720"`` -> (width, height); ValueError
    saying what is allowed otherwise (even numbers in 64..2048)."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        w, h = (int(v) for v in value)
    elif isinstance(value, int) and not isinstance(value, bool):
        w = h = value
    elif isinstance(value, str):
        parts = value.lower().replace("×", "x").split("x")
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            nums = []
        if len(nums) not in (1, 2):
            raise ValueError(f"size must be N (a square) or WIDTHxHEIGHT, e.g. 1280x720; "
                             f"got {value!r}")
        w, h = (nums[0], nums[0]) if len(nums) == 1 else nums
    else:
        raise ValueError(f"size must be N or WIDTHxHEIGHT, got {value!r}")
    lo, hi = SIZE_LIMITS
    for n in (w, h):
        if not lo <= n <= hi or n % 2:
            raise ValueError(f"size {w}x{h}: width and height must be even numbers in "
                             f"{lo}..{hi}")
    return w, h


def parse_framing(value: str | float) -> tuple[float, float, float]:
    """``"1.2"`` or ``"1.2,0.1,-0.05"`` -> (zoom, x offset, y offset)."""
    try:
        nums = [float(v) for v in str(value).split(",")]
    except ValueError:
        nums = []
    if len(nums) not in (1, 3) or not all(np.isfinite(nums)):
        raise ValueError(f"framing must be ZOOM or ZOOM,X,Y (e.g. 1.2,0,0.05), got {value!r}")
    zoom, x, y = (nums + [0.0, 0.0])[:3]
    if not ZOOM_LIMITS[0] <= zoom <= ZOOM_LIMITS[1]:
        raise ValueError(f"framing zoom must be in {ZOOM_LIMITS[0]:g}..{ZOOM_LIMITS[1]:g}, "
                         f"got {zoom:g}")
    if abs(x) > OFFSET_LIMIT or abs(y) > OFFSET_LIMIT:
        raise ValueError(f"framing offsets must be within +-{OFFSET_LIMIT:g} of the frame, "
                         f"got {x:g},{y:g}")
    return zoom, x, y


def check_background(value: str) -> str:
    """``photo``, ``blur``, a colour or an existing image file; ValueError otherwise."""
    if value in ("photo", "blur") or _colour(value) is not None:
        return value
    path = Path(value).expanduser()
    if path.is_file():
        return value
    raise ValueError(f"background must be photo, blur, a colour (#00ff00, green) or an image "
                     f"file; {value!r} is none of these")


def _colour(value: str) -> tuple[int, int, int] | None:
    try:
        return ImageColor.getrgb(value)[:3]
    except ValueError:
        return None


@dataclass(frozen=True)
class Framing:
    """Output frame size, zoom/offset of the avatar square and the background."""

    width: int
    height: int
    zoom: float = 1.0
    offset_x: float = 0.0
    offset_y: float = 0.0
    background: str = "photo"

    @property
    def identity(self) -> bool:
        """A square frame showing the rendered square as it is: nothing to compose."""
        return (self.width == self.height and self.zoom == 1.0 and self.offset_x == 0.0
                and self.offset_y == 0.0 and self.background == "photo")

    @property
    def square_px(self) -> int:
        """Side of the avatar square in the output frame."""
        return int(round(self.height * self.zoom / 2)) * 2


class Framer:
    """Composes rendered squares (N, r, r, 3) into frames (N, height, width, 3)."""

    def __init__(self, avatar: Avatar, framing: Framing) -> None:
        self.framing = framing
        W, H, S = framing.width, framing.height, framing.square_px
        self.square = S
        fx, fy = _face_centre(avatar)
        x0 = int(round(W / 2 + framing.offset_x * W - fx * S))
        y0 = int(round(fy * H - fy * S + framing.offset_y * H))
        y0 = max(y0, H - S)  # the body continues below the frame: never a gap at the bottom
        self.x0, self.y0 = x0, y0
        bg = framing.background
        if bg in ("photo", "blur"):  # the photo's backdrop, extended past the square
            self.canvas = _extend(_resize(avatar.image, S), W, H, x0, y0)
        if bg == "photo":
            alpha = _edge_feather(S, x0, y0, W, H)  # live frame weight at the seams
        else:
            if bg == "blur":
                self.canvas = np.asarray(Image.fromarray(self.canvas).filter(
                    ImageFilter.GaussianBlur(max(2.0, H / 45))))
            elif _colour(bg) is not None:
                self.canvas = np.empty((H, W, 3), np.uint8)
                self.canvas[:] = _colour(bg)
            else:
                self.canvas = _cover(np.asarray(Image.open(Path(bg).expanduser())
                                                .convert("RGB")), W, H)
            alpha = _person_matte(avatar, S)
        # the part of the square inside the frame
        self.sx0, self.sy0 = max(0, -x0), max(0, -y0)
        self.sx1, self.sy1 = min(S, W - x0), min(S, H - y0)
        self.fx0, self.fy0 = x0 + self.sx0, y0 + self.sy0
        q = np.round(alpha[self.sy0:self.sy1, self.sx0:self.sx1] * 256).astype(np.uint16)
        # Per row, the span where the live frame shows alone (copied), and the pixels
        # where it mixes with the background (blended): only the thin band costs maths.
        solid = q == 256
        has = solid.any(axis=1)
        first = np.where(has, solid.argmax(axis=1), q.shape[1])
        last = np.where(has, q.shape[1] - solid[:, ::-1].argmax(axis=1), 0)
        self._spans = [(int(y), int(first[y]), int(last[y])) for y in np.flatnonzero(has)]
        cols = np.arange(q.shape[1])[None, :]
        mix = (q > 0) & ~((cols >= first[:, None]) & (cols < last[:, None]))
        flat_mix = np.flatnonzero(mix)
        self._mix_rows, self._mix_cols = np.divmod(flat_mix, q.shape[1])
        self._mix_a = q[self._mix_rows, self._mix_cols][:, None]
        under = self.canvas[self.fy0:self.fy0 + q.shape[0], self.fx0:self.fx0 + q.shape[1]]
        self._mix_under = (under[self._mix_rows, self._mix_cols].astype(np.uint16)
                           * (256 - self._mix_a))

    def compose(self, squares: np.ndarray) -> np.ndarray:
        """(N, r, r, 3) uint8 rendered squares -> (N, height, width, 3) uint8 frames."""
        H, W = self.framing.height, self.framing.width
        h, w = self.sy1 - self.sy0, self.sx1 - self.sx0
        out = np.empty((len(squares), H, W, 3), np.uint8)
        rows, cols = self._mix_rows, self._mix_cols
        for i, sq in enumerate(squares):
            o = out[i]
            o[:] = self.canvas
            live = _resize(sq, self.square)[self.sy0:self.sy1, self.sx0:self.sx1]
            region = o[self.fy0:self.fy0 + h, self.fx0:self.fx0 + w]
            for y, lo, hi in self._spans:
                region[y, lo:hi] = live[y, lo:hi]
            if len(rows):
                mixed = (live[rows, cols].astype(np.uint16) * self._mix_a + self._mix_under) >> 8
                region[rows, cols] = mixed.astype(np.uint8)
        return out


def _face_centre(avatar: Avatar) -> tuple[float, float]:
    x0, y0, x1, y1 = avatar.bbox
    r = float(avatar.resolution)
    return (x0 + x1) / 2 / r, (y0 + y1) / 2 / r


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    if img.shape[0] == size and img.shape[1] == size:
        return img
    return np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))


def _extend(photo: np.ndarray, W: int, H: int, x0: int, y0: int) -> np.ndarray:
    """The photo at (x0, y0) in a W x H canvas; the rest continues the photo's border rows
    and columns outward (a backdrop, not a mirror image of the person), blurred more with
    distance from the square, so the seam does not show."""
    S = photo.shape[0]
    pad = ((max(0, y0), max(0, H - y0 - S)), (max(0, x0), max(0, W - x0 - S)), (0, 0))
    # the border band averaged over a few pixels, so one noisy column does not streak
    band = max(2, S // 64)
    base = photo.astype(np.float32)
    edges = base.copy()
    edges[:, :band] = base[:, :band].mean(axis=1, keepdims=True)
    edges[:, -band:] = base[:, -band:].mean(axis=1, keepdims=True)
    edges[:band] = edges[:band].mean(axis=0, keepdims=True)
    edges[-band:] = edges[-band:].mean(axis=0, keepdims=True)
    big = np.pad(edges, pad, mode="edge")
    cy, cx = max(0, -y0), max(0, -x0)
    canvas = big[cy:cy + H, cx:cx + W]
    img = Image.fromarray(np.clip(canvas + 0.5, 0, 255).astype(np.uint8))
    soft = np.asarray(img.filter(ImageFilter.GaussianBlur(S / 50))).astype(np.float32)
    blurred = np.asarray(img.filter(ImageFilter.GaussianBlur(S / 12))).astype(np.float32)
    yy, xx = np.mgrid[0:H, 0:W]
    dx = np.maximum(np.maximum(x0 - xx, xx - (x0 + S - 1)), 0)
    dy = np.maximum(np.maximum(y0 - yy, yy - (y0 + S - 1)), 0)
    d = np.hypot(dx, dy)[..., None] / S
    w1 = np.clip(d / 0.04, 0, 1)  # the photo's own pixels at the seam -> softened
    w2 = np.clip((d - 0.04) / 0.2, 0, 1)  # -> a smooth backdrop
    out = canvas * (1 - w1) + soft * w1
    out = out * (1 - w2) + blurred * w2
    inside = (dx == 0) & (dy == 0)
    out[inside] = base[np.clip(yy[inside] - y0, 0, S - 1), np.clip(xx[inside] - x0, 0, S - 1)]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _edge_feather(S: int, x0: int, y0: int, W: int, H: int) -> np.ndarray:
    """Weight of the live square: 1 inside, easing to 0 over a thin band along each edge
    that borders the extended background (edges on the frame border stay 1)."""
    f = max(2, int(round(FEATHER * S)))
    ramp = np.clip((np.arange(S) + 0.5) / f, 0, 1)
    ax = np.ones(S)
    ay = np.ones(S)
    if x0 > 0:
        ax = np.minimum(ax, ramp)
    if x0 + S < W:
        ax = np.minimum(ax, ramp[::-1])
    if y0 > 0:
        ay = np.minimum(ay, ramp)
    if y0 + S < H:
        ay = np.minimum(ay, ramp[::-1])
    a = np.minimum(ay[:, None], ax[None, :])
    return (a * a * (3 - 2 * a)).astype(np.float32)


def _person_matte(avatar: Avatar, S: int) -> np.ndarray:
    """Soft person matte at S x S: the avatar's mask, else head, hair and shoulders from
    the landmarks."""
    if avatar.mask is not None:
        m = Image.fromarray((np.clip(avatar.mask, 0, 1) * 255).astype(np.uint8))
        return np.asarray(m.resize((S, S), Image.BILINEAR)).astype(np.float32) / 255.0
    r = float(avatar.resolution)
    k = S / r
    x0, y0, x1, y1 = (v * k for v in avatar.bbox)
    pts = avatar.landmarks[:, :2] * k
    cx, fw = (x0 + x1) / 2, (x1 - x0)
    chin = float(pts[152, 1])
    top = float(pts[10, 1])
    fh = chin - top
    img = Image.new("L", (S, S), 0)
    d = ImageDraw.Draw(img)
    # head and hair: an ellipse around the face, taller above (hair) than below
    d.ellipse([cx - 0.82 * fw, top - 0.6 * fh, cx + 0.82 * fw, chin + 0.12 * fh], fill=255)
    # neck and shoulders: from under the jaw, widening to the bottom edge
    neck_y = chin - 0.1 * fh
    d.polygon([(cx - 0.33 * fw, neck_y), (cx + 0.33 * fw, neck_y),
               (cx + 0.42 * fw, chin + 0.35 * fh), (cx + 1.45 * fw, chin + 0.75 * fh),
               (cx + 1.7 * fw, S), (cx - 1.7 * fw, S), (cx - 1.45 * fw, chin + 0.75 * fh),
               (cx - 0.42 * fw, chin + 0.35 * fh)], fill=255)
    soft = img.filter(ImageFilter.GaussianBlur(max(1.0, 0.02 * S)))
    return np.asarray(soft).astype(np.float32) / 255.0


def _cover(img: np.ndarray, W: int, H: int) -> np.ndarray:
    """``img`` scaled to cover W x H and centre-cropped."""
    h, w = img.shape[:2]
    k = max(W / w, H / h)
    nw, nh = max(W, int(round(w * k))), max(H, int(round(h * k)))
    big = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BILINEAR))
    ox, oy = (nw - W) // 2, (nh - H) // 2
    return np.ascontiguousarray(big[oy:oy + H, ox:ox + W])
