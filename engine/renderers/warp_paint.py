"""What the warp alone cannot show: the mouth interior, and the lid and lash line of a
closing eye.

Both are painted in output space between two warped polylines that run corner to corner
(the two copies of the lower inner lip for the mouth, the upper and lower lid for an
eye). Instead of a point-to-polyline distance for every pixel (a (segments x pixels)
tensor per op, the old hot spot), each polyline is evaluated once per *column* of the
paint box; a pixel's signed distance is its vertical offset from the curve times the
curve's cosine, which is exact for straight segments and good to first order elsewhere;
the polylines are first resampled as Catmull-Rom curves, so no facets show. Images here
are planar float (3, H, W) boxes, 0..255 plus the renderer's +0.5 rounding offset, painted
in place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as TF

_BIG = 1e6


def smoothstep_t(e0: float, e1: float, x: torch.Tensor) -> torch.Tensor:
    """Hermite ramp 0 -> 1 between e0 and e1 on tensors (e0 > e1 gives a falling ramp)."""
    t = ((x - e0) / (e1 - e0)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def column_curve(line: torch.Tensor, xs: torch.Tensor, pick: str) -> tuple[torch.Tensor,
                                                                             torch.Tensor]:
    """Height of polyline ``line`` (..., V, 2) at pixel columns ``xs`` (..., W) and its
    cosine (leading dimensions: a batch of lines, each with its own columns).

    Where the line folds over a column, ``pick`` ("max" or "min") keeps the lower or the
    upper crossing. Columns the line does not cover get y = +-1e6 ("max" -> +, so the
    region below it is empty; "min" -> -, the region above it is empty) and cosine 1.
    """
    a, b = line[..., :-1, :, None], line[..., 1:, :, None]  # (..., V-1, 2, 1)
    ax, ay, bx, by = a[..., 0, :], a[..., 1, :], b[..., 0, :], b[..., 1, :]  # (..., V-1, 1)
    xs = xs[..., None, :]  # (..., 1, W)
    dx = bx - ax
    dx = torch.where(dx.abs() < 1e-3, torch.full_like(dx, 1e-3), dx)
    slope = (by - ay) / dx
    y = ay + ((xs - ax) / dx).clamp(0, 1) * (by - ay)  # (..., V-1, W)
    inside = (xs >= torch.minimum(ax, bx)) & (xs <= torch.maximum(ax, bx))
    fill = _BIG if pick == "max" else -_BIG
    masked = torch.where(inside, y, torch.full_like(y, -fill))
    yy, k = masked.max(-2) if pick == "max" else masked.min(-2)
    cos = torch.rsqrt(1 + slope.expand_as(y).gather(-2, k.unsqueeze(-2)).squeeze(-2) ** 2)
    covered = inside.any(-2)
    return torch.where(covered, yy, torch.full_like(yy, fill)), torch.where(
        covered, cos, torch.ones_like(cos))


def smooth_line(line: torch.Tensor, k: int = 2) -> torch.Tensor:
    """Catmull-Rom resampling of polylines (..., V, 2) to k (V - 1) + 1 points through the
    same vertices: a curve without facets, whose per-segment slope would otherwise show
    as bands in the shading."""
    v = line.shape[-2]
    if v < 3 or k < 2:
        return line
    pad = torch.cat([2 * line[..., :1, :] - line[..., 1:2, :], line,
                     2 * line[..., -1:, :] - line[..., -2:-1, :]], -2)
    t = torch.arange(k, device=line.device, dtype=line.dtype) / k
    t2, t3 = t * t, t * t * t
    w = 0.5 * torch.stack([-t3 + 2 * t2 - t, 3 * t3 - 5 * t2 + 2, -3 * t3 + 4 * t2 + t,
                           t3 - t2], 1)  # (k, 4)
    segs = torch.stack([pad[..., i:i + v - 1, :] for i in range(4)], -2)  # (..., V-1, 4, 2)
    pts = torch.einsum("tj,...sjc->...stc", w, segs)
    pts = pts.reshape(*pts.shape[:-3], -1, 2)
    return torch.cat([pts, line[..., -1:, :]], -2)


def _box(pts: torch.Tensor, bounds: tuple[int, int, int, int], pad: int) -> tuple[int, ...]:
    """Integer pixel box around points (.., 2), padded and clipped to ``bounds``."""
    x0, y0, x1, y1 = bounds
    flat = pts.reshape(-1, 2)
    lo = flat.amin(0).floor() - pad
    hi = flat.amax(0).ceil() + pad + 1
    return max(int(lo[0]), x0), max(int(lo[1]), y0), min(int(hi[0]), x1), min(int(hi[1]), y1)


def paint_mouth(img: torch.Tensor, origin: tuple[int, int], bounds: tuple[int, int, int, int],
                A: torch.Tensor, B: torch.Tensor, colors: dict[str, torch.Tensor], F: float,
                teeth_h: float, gum: torch.Tensor | None = None, jaw: float = 0.0) -> None:
    """Mouth interior between the upper-side lip line A and the lower-side one B (11, 2).

    Back to front: a cavity lit near the lips and dark towards the back and the corners;
    a rounded tongue low in it once the jaw opens past ~0.25 (``jaw``: the eased jawOpen);
    lower teeth rising from B in wide openings, shadowed; upper teeth of height
    ``teeth_h`` hanging from ``gum`` (A as it would be without the jaw: the teeth are
    fixed to the skull, so where an open jaw pulls the lip corners down they end above the
    opening instead of following the lip), one tooth after another around the arch; and
    the inner rim of both lips (lips have thickness), which joins the interior to the
    lip's own colour so that no band shows where the lips barely part. The colours come
    from the photo (``_mouth_colors``); ``colors["light"]`` tilts them like the light
    across the face. The interior ends at B, so the lower lip stays in front of it.
    """
    bx0, by0, bx1, by1 = _box(torch.stack([A, B]), bounds, 2)
    if bx1 <= bx0 or by1 <= by0:
        return
    dev = img.device
    xs = torch.arange(bx0, bx1, device=dev, dtype=torch.float32)
    ys = torch.arange(by0, by1, device=dev, dtype=torch.float32)[:, None]
    up = torch.stack([A, A if gum is None else gum])
    sm = smooth_line(torch.cat([up, B[None]]))
    y_up, c_up = column_curve(sm[:2], xs.expand(2, -1), "max")
    yb, cb = column_curve(sm[2], xs, "min")
    va, vb = ys - y_up[0], yb - ys  # vertical offsets below A and above B: smooth across
    sd_a, sd_b = va * c_up[0], vb * cb  # columns; with the cosine, distances at the edges
    near = torch.minimum(sd_a, sd_b)
    alpha = (near + 0.5).clamp(0, 1)
    # mouth coordinates: u along the corners (-1..1)
    c0, c1 = A[0].tolist(), A[-1].tolist()
    ax, ay = c1[0] - c0[0], c1[1] - c0[1]
    half = max(0.5 * (ax * ax + ay * ay) ** 0.5, 1.0)
    mx, my = 0.5 * (c0[0] + c1[0]), 0.5 * (c0[1] + c1[1])
    k = 1.0 / (2 * half * half)
    u = (xs - mx) * (ax * k) + (ys - my) * (ay * k)
    u2 = (u * u).clamp(0, 1)
    open_c = float((B - A).norm(dim=-1).amax())
    col = {n: c[:, None, None] for n, c in colors.items()}
    # cavity: the walls near the lips catch some light, the back and the corners do not
    lit = (0.5 * torch.exp(va.clamp_min(0) * (-1 / (0.015 * F)))
           + torch.exp(vb.clamp_min(0) * (-1 / (0.03 * F)))).clamp(max=1) * (1 - 0.7 * u2)
    rgb = col["cavity"] + (col["wall"] - col["cavity"]) * lit
    # tongue: a rounded hump low in the cavity, darker where it curves away at the top
    vis_t = _ramp(0.25, 0.5, jaw)
    if vis_t > 0:
        th = vis_t * 0.35 * open_c
        top = th * (1 - u2 * (1 / 0.45)).clamp_min(0).sqrt()
        a_t = ((top - vb) * (1 / 1.5) + 0.5).clamp(0, 1)
        groove = torch.exp(-(u * (half / (0.02 * F))) ** 2)
        shade = (0.55 + 0.45 * ((top - vb) * (1 / (0.5 * th + 1))).clamp(0, 1)) * (
            1 - 0.15 * groove) * (1 - 0.5 * u2)
        rgb = rgb + (col["tongue"] * shade - rgb) * a_t
    # lower teeth: their tips above the lower lip in wide openings, in the lip's shadow
    vis_l = _ramp(0.55, 0.85, jaw)
    if vis_l > 0 and teeth_h > 0.5:
        lh = (0.25 + 0.25 * vis_l) * teeth_h
        gap = _gap_px(u, half, 0.2)
        a_l = ((lh * (1 - u2 * (1 / 0.4)).clamp_min(0).sqrt() - vb) * (1 / 1.0) + 0.5
               ).clamp(0, 1) * min(4 * vis_l, 1.0)
        shade = (0.7 + 0.3 * (vb * (1 / lh)).clamp(0, 1)) * (
            1 - 0.06 * torch.exp(-(gap * (1 / 0.8)) ** 2)) * (1 - 0.6 * u2)
        rgb = rgb + (col["teeth_low"] * shade - rgb) * a_l
    # upper teeth hanging from the gum line, around the arch (``_upper_teeth``)
    if teeth_h > 0.5:
        vt = ys - torch.minimum(y_up[1], y_up[0])
        a_u, shade = _upper_teeth(u, vt, va, half, teeth_h, F)
        light = 0.75 + 0.25 * min(open_c / (0.06 * F), 1.0)  # a narrow gap is in shadow
        teeth = col["teeth"] * (light * shade) + col["wall"] * (0.5 * (1 - light))
        rgb = rgb + (teeth - rgb) * a_u
    # the inner rim of both lips: the lip's colour, darker, over the first pixels
    rim = torch.exp(near.clamp_min(0) * (-1 / (0.006 * F)))
    rgb = rgb + (col["rim"] - rgb) * rim
    rgb = rgb * (1 + colors["light"][0] * u)  # the light across the face
    ox, oy = origin
    box = img[:, by0 - oy:by1 - oy, bx0 - ox:bx1 - ox]
    box.add_((rgb.clamp(0, 255) + 0.5 - box) * alpha)


def _ramp(e0: float, e1: float, x: float) -> float:
    """``smoothstep_t`` on a Python float."""
    t = min(max((x - e0) / (e1 - e0), 0.0), 1.0)
    return t * t * (3 - 2 * t)


def _gap_px(u: torch.Tensor, half: float, step: float) -> torch.Tensor:
    """Distance in pixels to the nearest line between teeth, around a round arch seen from
    the front: a tooth every ``step`` radians from the middle (u = sin of the angle), so
    the teeth narrow towards the corners; ``half``: half the mouth width in pixels."""
    s = torch.asin(u.clamp(-0.98, 0.98)) * (1 / step)
    return (s - s.round()).abs() * (step * half) * (1 - u * u).clamp_min(0.04).sqrt()



#: Upper teeth from the midline out, as angles around the arch (radians; u = sin of the
#: angle): central and lateral incisors, canine, two premolars. The cumulative edges.
_TOOTH_EDGES = (0.0, 0.34, 0.62, 0.9, 1.16, 1.42)
#: Per tooth: length (x teeth_h), how much the incisal edge rounds off towards the
#: tooth's sides (a canine's is a blunt cusp), a slight unevenness of the edge (x
#: teeth_h; left and right teeth differ a little too) and brightness.
_TOOTH_LEN = (1.0, 0.9, 0.86, 0.7, 0.62)
_TOOTH_ROUND = (0.1, 0.16, 0.4, 0.3, 0.3)
_TOOTH_EDGE = ((0.0, 0.015), (-0.035, -0.01), (0.02, -0.02), (0.0, 0.0), (0.0, 0.0))
_TOOTH_LIGHT = (1.0, 0.97, 0.93, 0.85, 0.8)


def _upper_teeth(u: torch.Tensor, vt: torch.Tensor, va: torch.Tensor, half: float,
                 teeth_h: float, F: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Coverage and shading of the upper teeth at mouth coordinate ``u`` (-1..1), ``vt``
    pixels below the gum line and ``va`` below the upper lip.

    Real front teeth at a call's scale: two central incisors meeting at the midline, the
    laterals a little shorter, the canines shorter still with a rounded cusp, then
    premolars; the incisal edge slightly uneven, rounded at each tooth's sides (that
    rounding is what shows the separations, as small notches); the lines between teeth
    soft and faint; the arch turning away into the shadow of the cheeks towards the
    corners, so that only the front four to six read.
    """
    ang = torch.asin(u.clamp(-0.98, 0.98))
    a = ang.abs()
    e = _TOOTH_EDGES
    k = sum(((a > e[i]).float() for i in range(1, len(e) - 1)), torch.zeros_like(a))
    ki = k.long()
    lo = _table(e[:-1], a)[ki]
    width = _table([e[i + 1] - e[i] for i in range(len(e) - 1)], a)[ki]
    f = ((a - lo) / width).clamp(0, 1)  # 0..1 across the tooth, from the midline out
    side = (ang > 0).long()
    edge = _table(_TOOTH_EDGE, a)[ki, side]
    c = 2 * f - 1
    length = (_table(_TOOTH_LEN, a)[ki] + edge) * (1 - _table(_TOOTH_ROUND, a)[ki] * c * c * c * c)
    tip = teeth_h * length * (1 - u * u).clamp_min(0).sqrt()
    alpha = ((tip - vt) * (1 / 1.2) + 0.5).clamp(0, 1)
    # the separations: px to the nearest tooth edge, darker only over ~1 px and faint
    d = torch.minimum(f, 1 - f) * width * half * (1 - u * u).clamp_min(0.04).sqrt()
    gap = torch.exp(-(d * (1 / 0.8)) ** 2)
    near_tip = (vt * (1 / teeth_h)).clamp(0, 1)
    shade = _table(_TOOTH_LIGHT, a)[ki] * (1 - (0.025 + 0.03 * near_tip) * gap)
    # into the shadow of the cheeks beyond the laterals; under the upper lip's shadow
    shade = shade * (1 - 0.75 * smoothstep_t(0.55, 1.2, a)) * (
        0.82 + 0.18 * (va * (1 / (0.012 * F))).clamp(0, 1))
    # the incisal third is a little translucent (greyer, darker)
    shade = shade * (1 - 0.08 * smoothstep_t(0.7, 1.0, vt / tip.clamp_min(1.0)))
    return alpha, shade


def _table(values, like: torch.Tensor) -> torch.Tensor:
    """A small constant table as a tensor on ``like``'s device (float32)."""
    return torch.tensor(values, dtype=torch.float32, device=like.device)


def paint_eyes(roi: torch.Tensor, origin: tuple[int, int], bounds: tuple[int, int, int, int],
               frame: torch.Tensor, top: torch.Tensor, up: torch.Tensor, low: torch.Tensor,
               shift: torch.Tensor, cover: torch.Tensor, closure: torch.Tensor,
               src: torch.Tensor, gain: torch.Tensor, lash: torch.Tensor, F: float) -> None:
    """The lids of P closing eyes at once (eye p in frame ``frame[p]`` of ``roi``), drawn
    on the warped lid lines (P, 9, 2) ``up`` / ``low``, each in a box of the same size.

    ``cover`` (P,) > 0 paints skin between ``top`` (above the photo's upper lashes) and
    ``up``, the lid's edge, with that opacity. The skin is the photo's skin under the lower
    lid (``shift`` (P, 2): how far the warp moved it), mirrored up from the edge and
    scaled by ``gain`` (P, 3) towards the skin above the eye: it has the face's grain and
    light even where the photo shows no lid (deep-set eyes, heavy brows, a spectacle rim
    over the lid), a little darker towards the edge. ``closure`` (P,) > 0 draws the lash
    line: it covers the band between the lids plus a line as thick as a lash, so no
    squeezed sliver of eye shows through a blink.
    """
    x0, y0, x1, y1 = bounds
    pts = torch.cat([top, up, low], 1)
    lo = pts.amin(1).floor() - 3
    w, h = ((pts.amax(1).ceil() + 4 - lo).amax(0)).long().tolist()
    w, h = min(w, x1 - x0), min(h, y1 - y0)
    if w < 2 or h < 2:
        return
    dev = roi.device
    bx0 = lo[:, 0].clamp(x0, x1 - w)
    by0 = lo[:, 1].clamp(y0, y1 - h)
    xs = bx0[:, None] + torch.arange(w, device=dev, dtype=torch.float32)  # (P, W)
    ys = (by0[:, None] + torch.arange(h, device=dev, dtype=torch.float32))[:, :, None]
    p = len(frame)
    lines = smooth_line(torch.cat([up, top, low]))  # one pass for the three lines
    y_up, c_up = column_curve(lines[:2 * p], xs.repeat(2, 1), "max")
    yl, cl = column_curve(lines[2 * p:], xs, "min")
    yu, yt, cu = y_up[:p, None], y_up[p:, None], c_up[:p, None]  # (P, 1, W)
    yl, cl = yl[:, None], cl[:, None]
    ox, oy = origin
    at = [(f, int(y) - oy, int(x) - ox) for f, y, x in zip(frame.tolist(), by0.tolist(),
                                                         bx0.tolist(), strict=True)]
    views = [roi[f, :, y:y + h, x:x + w] for f, y, x in at]
    box = torch.stack(views)  # (P, 3, H, W)
    # lid skin
    covered = ((yt.abs() < _BIG / 2) & (yu.abs() < _BIG / 2) & (yl.abs() < _BIG / 2)).float()
    yt0 = torch.where(covered > 0, yt, torch.zeros_like(yt))
    ye = torch.where(covered > 0, torch.maximum(yu, yt0), yt0)
    ylc = torch.where(covered > 0, torch.maximum(yl, ye), ye)
    lid = ((ys - yt0) / (0.02 * F) + 0.5).clamp(0, 1) * (ye - ys + 0.5).clamp(0, 1)
    lid = lid * covered * cover[:, None, None]
    above = (ye - ys).clamp_min(0)  # (P, H, W)
    sx = (xs - shift[:, :1])[:, None, :].expand_as(above)
    sy = ylc - shift[:, 1:, None] + 0.012 * F + above
    size = src.shape[-1]
    grid = torch.stack([(2 * sx + 1) / size - 1, (2 * sy + 1) / size - 1], -1)
    skin = TF.grid_sample(src.expand(p, -1, -1, -1), grid, mode="bilinear",
                          padding_mode="border", align_corners=False)
    shade = 0.8 + 0.2 * smoothstep_t(0.0, 0.015 * F, above)
    box = box + (skin * shade[:, None] * gain[:, :, None, None] - box) * lid[:, None]
    # lash line
    c0, c1 = up[:, :1, 0], up[:, -1:, 0]  # corners' x (P, 1)
    u = ((2 * xs - c0 - c1) / (c1 - c0).abs().clamp_min(1.0))[:, None]  # (P, 1, W)
    sd = torch.minimum((ys - yu) * cu, (yl - ys) * cl)
    width = 0.0075 * F * (1 - u * u).clamp(0, 1).sqrt() + 0.3
    a = (sd + width + 0.5).clamp(0, 1) * closure[:, None, None]
    box = box + (lash[None, :, None, None] + 0.5 - box) * a[:, None]
    for view, new in zip(views, box, strict=True):
        view.copy_(new)
