"""What the warp alone cannot show: the mouth interior and the lash line of a closed eye.

Both are painted in output space between two warped polylines that run corner to corner
(the two copies of the lower inner lip for the mouth, the upper and lower lid for an
eye). Instead of a point-to-polyline distance for every pixel (a (segments x pixels)
tensor per op, the old hot spot), each polyline is evaluated once per *column* of the
paint box; a pixel's signed distance is its vertical offset from the curve times the
curve's cosine, which is exact for straight segments and good to first order elsewhere.
Images here are planar float (3, H, W) boxes, 0..255 plus the renderer's +0.5 rounding
offset, painted in place.
"""

from __future__ import annotations

import torch

_BIG = 1e6


def smoothstep_t(e0: float, e1: float, x: torch.Tensor) -> torch.Tensor:
    """Hermite ramp 0 -> 1 between e0 and e1 on tensors (e0 > e1 gives a falling ramp)."""
    t = ((x - e0) / (e1 - e0)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def column_curve(line: torch.Tensor, xs: torch.Tensor, pick: str) -> tuple[torch.Tensor,
                                                                             torch.Tensor]:
    """Height of polyline ``line`` (V, 2) at pixel columns ``xs`` (W,) and its cosine.

    Where the line folds over a column, ``pick`` ("max" or "min") keeps the lower or the
    upper crossing. Columns the line does not cover get y = +-1e6 ("max" -> +, so the
    region below it is empty; "min" -> -, the region above it is empty) and cosine 1.
    """
    a, b = line[:-1, :, None], line[1:, :, None]  # (V-1, 2, 1)
    ax, ay, bx, by = a[:, 0], a[:, 1], b[:, 0], b[:, 1]  # (V-1, 1)
    dx = bx - ax
    dx = torch.where(dx.abs() < 1e-3, torch.full_like(dx, 1e-3), dx)
    slope = (by - ay) / dx
    y = ay + ((xs - ax) / dx).clamp(0, 1) * (by - ay)  # (V-1, W)
    inside = (xs >= torch.minimum(ax, bx)) & (xs <= torch.maximum(ax, bx))
    fill = _BIG if pick == "max" else -_BIG
    masked = torch.where(inside, y, torch.full_like(y, -fill))
    yy, k = masked.max(0) if pick == "max" else masked.min(0)
    cos = torch.rsqrt(1 + slope.expand_as(y).gather(0, k[None])[0] ** 2)
    covered = inside.any(0)
    return torch.where(covered, yy, torch.full_like(yy, fill)), torch.where(
        covered, cos, torch.ones_like(cos))


def _box(pts: torch.Tensor, bounds: tuple[int, int, int, int], pad: int) -> tuple[int, ...]:
    """Integer pixel box around points (.., 2), padded and clipped to ``bounds``."""
    x0, y0, x1, y1 = bounds
    flat = pts.reshape(-1, 2)
    lo = flat.amin(0).floor() - pad
    hi = flat.amax(0).ceil() + pad + 1
    return max(int(lo[0]), x0), max(int(lo[1]), y0), min(int(hi[0]), x1), min(int(hi[1]), y1)


def paint_mouth(img: torch.Tensor, origin: tuple[int, int], bounds: tuple[int, int, int, int],
                A: torch.Tensor, B: torch.Tensor, colors: dict[str, torch.Tensor], F: float,
                teeth_h: float) -> None:
    """Mouth interior between the upper-side lip line A and the lower-side one B (11, 2).

    Dark cavity shaded towards the corners and under the upper lip, upper teeth hanging
    from A (when the photo shows none), a hint of lower teeth and tongue in wide openings;
    the interior ends at B, so the lower lip stays in front of it.
    """
    bx0, by0, bx1, by1 = _box(torch.stack([A, B]), bounds, 2)
    if bx1 <= bx0 or by1 <= by0:
        return
    dev = img.device
    xs = torch.arange(bx0, bx1, device=dev, dtype=torch.float32)
    ys = torch.arange(by0, by1, device=dev, dtype=torch.float32)[:, None]
    ya, ca = column_curve(A, xs, "max")
    yb, cb = column_curve(B, xs, "min")
    sd_a = (ys - ya) * ca  # > 0 below A
    sd_b = (yb - ys) * cb  # > 0 above B
    near = torch.minimum(sd_a, sd_b)
    alpha = (near + 0.5).clamp(0, 1)
    # mouth coordinates: u along the corners (-1..1), local opening height
    c0, c1 = A[0], A[-1]
    axis = c1 - c0
    half = 0.5 * float(axis.norm().clamp_min(1.0))
    mid = 0.5 * (c0 + c1)
    u = ((xs - mid[0]) * axis[0] + (ys - mid[1]) * axis[1]) / (2 * half * half)
    u2 = (u * u).clamp(0, 1)
    opening = (sd_a + sd_b).clamp_min(1e-3)
    v = (sd_a / opening).clamp(0, 1)
    cav, edge_c = colors["cavity"][:, None, None], colors["edge"][:, None, None]
    edge = torch.exp(-near.clamp_min(0) / (0.012 * F))
    shade = (1 - 0.35 * torch.exp(-sd_a.clamp_min(0) / (0.02 * F)) * (1 - edge)) * (1 - 0.3 * u2)
    rgb = (cav + (edge_c - cav) * edge) * shade
    # tongue: low and central, only when the mouth is well open
    wide = smoothstep_t(0.04 * F, 0.1 * F, opening)
    tongue = 0.8 * smoothstep_t(0.55, 0.9, v) * (1 - u2) * wide
    rgb = rgb + (colors["tongue"][:, None, None] - rgb) * tongue
    # lower teeth: a thin band above the lower lip in wide openings
    low_t = (0.016 * F - sd_b + 0.5).clamp(0, 1) * smoothstep_t(0.6, 0.3, u.abs())
    low_t = 0.45 * low_t * smoothstep_t(0.05 * F, 0.1 * F, opening)
    rgb = rgb + (0.7 * colors["teeth"][:, None, None] - rgb) * low_t
    # upper teeth hanging from the upper edge, faint gaps between teeth
    if teeth_h > 0.5:
        up_t = (teeth_h * (1 - u2) ** 0.7 - sd_a + 0.5).clamp(0, 1)
        gaps = torch.zeros_like(u)
        for c in (0.0, 0.33, -0.33, 0.56, -0.56, 0.73, -0.73, 0.86, -0.86):
            gaps = gaps + torch.exp(-(((u - c) * half) / 0.6) ** 2)
        open_c = float((B - A).norm(dim=-1).amax())
        light = (0.55 + 0.45 * min(max(open_c / (0.07 * F), 0.0), 1.0)) * (
            0.45 + 0.55 * (1 - u2)) * (1 - 0.12 * gaps.clamp(0, 1)) * (
            0.82 + 0.18 * (sd_a / 3.0).clamp(0, 1))
        rgb = rgb + (colors["teeth"][:, None, None] * light - rgb) * up_t
    ox, oy = origin
    box = img[:, by0 - oy:by1 - oy, bx0 - ox:bx1 - ox]
    box.add_((rgb.clamp(0, 255) + 0.5 - box) * alpha)


def paint_lash(img: torch.Tensor, origin: tuple[int, int], bounds: tuple[int, int, int, int],
               up: torch.Tensor, low: torch.Tensor, closure: float, lash: torch.Tensor,
               F: float) -> None:
    """Lash line of one closing eye: covers the band between the lids (9, 2) plus a line
    as thick as a lash, so no squeezed sliver of eye shows through a blink."""
    bx0, by0, bx1, by1 = _box(torch.stack([up, low]), bounds, 3)
    if bx1 <= bx0 or by1 <= by0:
        return
    dev = img.device
    xs = torch.arange(bx0, bx1, device=dev, dtype=torch.float32)
    ys = torch.arange(by0, by1, device=dev, dtype=torch.float32)[:, None]
    yu, cu = column_curve(up, xs, "max")
    yl, cl = column_curve(low, xs, "min")
    sd = torch.minimum((ys - yu) * cu, (yl - ys) * cl)
    c0, c1 = up[0], up[-1]
    axis = c1 - c0
    u = ((xs - 0.5 * (c0[0] + c1[0])) * axis[0] + (ys - 0.5 * (c0[1] + c1[1])) * axis[1]) / (
        0.5 * float((axis * axis).sum().clamp_min(1)))
    width = 0.0075 * F * (1 - u * u).clamp(0, 1).sqrt() + 0.3
    a = (sd + width + 0.5).clamp(0, 1) * closure
    ox, oy = origin
    box = img[:, by0 - oy:by1 - oy, bx0 - ox:bx1 - ox]
    box.add_((lash[:, None, None] + 0.5 - box) * a)
