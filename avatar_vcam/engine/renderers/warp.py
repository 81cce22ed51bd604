"""``warp``: the embedded renderer. One photo + 478 landmarks -> talking frames on the CPU.

How a batch is drawn (all torch, on the configured device, no per-pixel Python):

1. channel values -> basis coefficients (blendshapes clamped to 0..1, ``mouthClose`` capped
   by ``jawOpen``, pose angles as sin / cos-1 pairs);
2. one matmul with the precomputed basis fields (see ``warp_rig``) gives each frame's
   forward displacement on a coarse grid over the head;
3. a few damped fixed-point steps on that grid turn it into a backward field (where each
   output pixel comes from), which is upsampled and fed to ``grid_sample`` over the head
   region only; pixels outside it are the source, byte for byte;
4. where the lips part, a mouth interior (dark cavity, upper teeth, a hint of lower teeth
   and tongue) is painted between the two warped copies of the lower inner lip, with
   anti-aliased edges; the lower lip stays on top because the interior ends at it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as TF

from .. import landmarks as L
from ..avatar import Avatar
from ..motion import BLENDSHAPES, CHANNEL_INDEX, N_CHANNELS
from .warp_rig import BASIS_NAMES, Face, Rig, smoothstep

_I = CHANNEL_INDEX
_NB = len(BLENDSHAPES)
_MAX_DEG = 30.0


@dataclass
class WarpState:
    """Everything ``render`` needs for one avatar at one output size."""

    size: int
    device: torch.device
    src: torch.Tensor  # (1, 3, S, S) float32 0..255
    src_u8: torch.Tensor  # (S, S, 3) uint8
    roi: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) of the warped region
    grid_hw: tuple[int, int]
    bases: torch.Tensor  # (K, 2 * gh * gw) forward displacement, pixels
    nodes: torch.Tensor  # (1, gh, gw, 2) node positions, normalised for grid_sample
    lip_src: torch.Tensor  # (11, 2) lower inner lip, image-left -> right
    lip_up: torch.Tensor  # (K, 11, 2) its motion on the upper side of the cut
    lip_lo: torch.Tensor  # (K, 11, 2) its motion on the lower side of the cut
    lids_src: torch.Tensor  # (2, 2, 9, 2) eye (image-left, right) x lid (upper, lower)
    lids: torch.Tensor  # (K, 2, 2, 9, 2) motion of those lid points
    lid_open: torch.Tensor  # (2,) opening of each eye in the photo (pixels, centre)
    face_w: float
    teeth_h: float  # upper-teeth height to paint (pixels; 0 if the photo shows teeth)
    colors: dict[str, torch.Tensor]  # cavity / edge / teeth / tongue RGB


class WarpRenderer:
    """Dense landmark-driven warp of the avatar photo (see module docstring)."""

    name = "warp"

    def __init__(self, device: str | torch.device = "cpu", cell_px: float = 3.0,
                 inverse_steps: int = 4) -> None:
        self.device = torch.device(device)
        self.cell_px = cell_px
        self.inverse_steps = inverse_steps

    # ------------------------------------------------------------------ prepare
    def prepare(self, avatar: Avatar, size: int) -> WarpState:
        """Build the basis fields and colours for ``avatar`` at ``size`` x ``size``."""
        dev = self.device
        scale = size / avatar.resolution
        img = avatar.image
        if img.shape[0] != size:
            t = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float()
            t = TF.interpolate(t, size=(size, size), mode="bilinear", antialias=True,
                               align_corners=False)
            img = t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
        face = Face.from_landmarks(avatar.landmarks, scale)
        rig = Rig(face)

        # region that can move: bounding box of the head ellipse's support
        r = rig.support_radius()
        a, b = rig.head_a * r, rig.head_b * r
        ext = np.sqrt((a * face.ex) ** 2 + (b * face.ey) ** 2)  # half extents of the ellipse
        x0, y0 = np.floor(rig.head_c - ext).astype(int) - 1
        x1, y1 = np.ceil(rig.head_c + ext).astype(int) + 2
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, size), min(y1, size)
        gw = max(int(np.ceil((x1 - x0) / self.cell_px)) + 1, 8)
        gh = max(int(np.ceil((y1 - y0) / self.cell_px)) + 1, 8)
        xs = np.linspace(x0, x1 - 1, gw)
        ys = np.linspace(y0, y1 - 1, gh)
        X = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
        basis = rig.fields(X)  # (K, gh*gw, 2)
        bases = basis.reshape(len(BASIS_NAMES), gh, gw, 2).transpose(0, 3, 1, 2)
        nx = np.linspace(-1, 1, gw)
        ny = np.linspace(-1, 1, gh)
        nodes = np.stack(np.meshgrid(nx, ny), -1)[None]

        lip_idx = list(L.LIPS_INNER_LOWER)
        lip_src = face.P[lip_idx]
        lip_up = rig.fields(lip_src, side="upper")
        lip_lo = rig.fields(lip_src, side="lower")
        lid_idx = [L.RIGHT_EYE_UPPER, L.RIGHT_EYE_LOWER, L.LEFT_EYE_UPPER, L.LEFT_EYE_LOWER]
        lids_src = np.stack([face.P[list(i)] for i in lid_idx])  # (4, 9, 2)
        lids = rig.fields(lids_src.reshape(-1, 2)).reshape(len(BASIS_NAMES), 2, 2, 9, 2)
        lids_src = lids_src.reshape(2, 2, 9, 2)
        lid_open = np.linalg.norm(lids_src[:, 1, 4] - lids_src[:, 0, 4], axis=-1)

        # colours of the mouth interior, from the photo
        F = face.F
        gap = float(np.linalg.norm(face.P[L.LIP_CENTER[2]] - face.P[L.LIP_CENTER[1]]))
        teeth_h = max(0.0, 0.045 * F - gap)
        colors = _mouth_colors(img, face)
        lash = img[np.clip(face.P[list(L.RIGHT_EYE_UPPER + L.LEFT_EYE_UPPER)].round().astype(int)
                           [:, ::-1], 0, size - 1).T.tolist()].astype(np.float64)
        lum = lash @ [0.299, 0.587, 0.114]
        colors["lash"] = lash[lum <= np.quantile(lum, 0.35)].mean(0) * 0.9

        def t32(x: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32, device=dev)

        src_u8 = torch.as_tensor(np.array(img, dtype=np.uint8), device=dev)
        return WarpState(
            size=size, device=dev,
            src=src_u8.permute(2, 0, 1)[None].float().contiguous(), src_u8=src_u8,
            roi=(int(x0), int(y0), int(x1), int(y1)), grid_hw=(gh, gw),
            bases=t32(bases.reshape(len(BASIS_NAMES), -1)), nodes=t32(nodes),
            lip_src=t32(lip_src), lip_up=t32(lip_up), lip_lo=t32(lip_lo),
            lids_src=t32(lids_src), lids=t32(lids), lid_open=t32(lid_open),
            face_w=F, teeth_h=teeth_h, colors={k: t32(v) for k, v in colors.items()},
        )

    # ------------------------------------------------------------------ render
    def coefficients(self, motions: torch.Tensor) -> torch.Tensor:
        """(N, N_CHANNELS) channel values -> (N, K) basis coefficients."""
        m = motions
        bs = m[:, :_NB].clamp(0.0, 1.0)
        jaw = bs[:, _I["jawOpen"]]
        bs = bs.clone()
        bs[:, _I["mouthClose"]] = torch.minimum(bs[:, _I["mouthClose"]], jaw)
        ang = torch.deg2rad(m[:, [_I["yaw"], _I["pitch"], _I["roll"]]].clamp(-_MAX_DEG, _MAX_DEG))
        s, c = torch.sin(ang), torch.cos(ang) - 1.0
        t = m[:, [_I["tx"], _I["ty"]]].clamp(-0.5, 0.5)
        pose = torch.stack([s[:, 0], c[:, 0], s[:, 1], c[:, 1], s[:, 2], c[:, 2]], 1)
        return torch.cat([bs, pose, t], 1)

    def render(self, state: WarpState, motions: np.ndarray) -> np.ndarray:
        """``motions`` (N, N_CHANNELS) float32 -> (N, size, size, 3) uint8 RGB frames."""
        return self.render_tensor(state, motions).cpu().numpy()

    @torch.inference_mode()
    def render_tensor(self, state: WarpState, motions: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Like ``render`` but returns a (N, S, S, 3) uint8 tensor on the device."""
        m = torch.as_tensor(motions, dtype=torch.float32, device=state.device)
        if m.ndim != 2 or m.shape[1] != N_CHANNELS:
            raise ValueError(f"motions must be (N, {N_CHANNELS}), got {tuple(m.shape)}")
        n = m.shape[0]
        out = state.src_u8.expand(n, -1, -1, -1).clone()
        if n == 0:
            return out
        coef = self.coefficients(m)
        if not bool((coef.abs() > 1e-6).any()):
            return out
        gh, gw = state.grid_hw
        fwd = (coef @ state.bases).view(n, 2, gh, gw)
        bwd = self._invert(state, fwd)
        x0, y0, x1, y1 = state.roi
        h, w = y1 - y0, x1 - x0
        flow = TF.interpolate(bwd, size=(h, w), mode="bilinear", align_corners=True)
        S = state.size
        ys = torch.arange(y0, y1, device=state.device, dtype=torch.float32)
        xs = torch.arange(x0, x1, device=state.device, dtype=torch.float32)
        gx = (2.0 * (xs[None, None, :] + flow[:, 0]) + 1.0) / S - 1.0
        gy = (2.0 * (ys[None, :, None] + flow[:, 1]) + 1.0) / S - 1.0
        grid = torch.stack([gx, gy], -1).view(1, n * h, w, 2)
        roi = TF.grid_sample(state.src, grid, mode="bilinear", padding_mode="border",
                             align_corners=False)
        roi = roi.view(3, n, h, w).permute(1, 2, 3, 0)  # (N, h, w, 3)
        roi = self._mouth(state, coef, roi)
        roi = self._lids(state, coef, roi)
        out[:, y0:y1, x0:x1] = roi.add(0.5).clamp(0, 255).to(torch.uint8)
        return out

    def _invert(self, state: WarpState, fwd: torch.Tensor) -> torch.Tensor:
        """Backward field b with q + b(q) + fwd(q + b(q)) = q, by damped fixed-point steps
        on the coarse grid (exact 0 where fwd is 0, stable where the warp stretches)."""
        gh, gw = state.grid_hw
        x0, y0, x1, y1 = state.roi
        to_norm = torch.tensor([2.0 / max(x1 - 1 - x0, 1), 2.0 / max(y1 - 1 - y0, 1)],
                               device=fwd.device).view(1, 2, 1, 1)
        bwd = -fwd
        for _ in range(self.inverse_steps):
            pos = state.nodes + (bwd * to_norm).permute(0, 2, 3, 1)
            f_at = TF.grid_sample(fwd, pos, mode="bilinear", padding_mode="border",
                                  align_corners=True)
            bwd = bwd + 0.6 * (-bwd - f_at)
        return bwd

    def _mouth(self, state: WarpState, coef: torch.Tensor, roi: torch.Tensor) -> torch.Tensor:
        """Paint the mouth interior between the two warped copies of the lower inner lip."""
        A = state.lip_src + torch.einsum("nk,kpc->npc", coef, state.lip_up)
        B = state.lip_src + torch.einsum("nk,kpc->npc", coef, state.lip_lo)
        gap = ((B - A) ** 2).sum(-1).sqrt()
        sel = (gap.amax(1) >= 0.35).nonzero().squeeze(1)
        if len(sel) == 0:
            return roi
        for i in sel.tolist():  # per frame: tight boxes beat one box around the batch
            roi[i:i + 1] = self._paint_mouth(state, A[i:i + 1], B[i:i + 1], gap[i:i + 1],
                                             roi[i:i + 1])
        return roi

    def _paint_mouth(self, state: WarpState, A: torch.Tensor, B: torch.Tensor,
                     gap: torch.Tensor, roi: torch.Tensor) -> torch.Tensor:
        """Composite the interior for frames whose lips part (A above, B below)."""
        x0, y0, x1, y1 = state.roi
        both = torch.cat([A, B], 1)
        lo = both.amin((0, 1)).floor() - 2
        hi = both.amax((0, 1)).ceil() + 3
        bx0, by0 = max(int(lo[0]), x0), max(int(lo[1]), y0)
        bx1, by1 = min(int(hi[0]), x1), min(int(hi[1]), y1)
        if bx1 <= bx0 or by1 <= by0:
            return roi
        dev = roi.device
        ys = torch.arange(by0, by1, device=dev, dtype=torch.float32)
        xs = torch.arange(bx0, bx1, device=dev, dtype=torch.float32)
        p = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).view(1, -1, 2)
        sd_a = _signed_distance(p, A)  # > 0 below A
        sd_b = -_signed_distance(p, B)  # > 0 above B
        alpha = (torch.minimum(sd_a, sd_b) + 0.5).clamp(0, 1)
        F = state.face_w
        # mouth coordinates: u along the corners (-1..1), local opening height
        c0, c1 = A[:, :1], A[:, -1:]
        mid, axis = 0.5 * (c0 + c1), c1 - c0
        half = 0.5 * axis.norm(dim=-1, keepdim=True).clamp_min(1.0)
        u = ((p - mid) * axis).sum(-1) / (2 * half[..., 0] ** 2)
        opening = (sd_a + sd_b).clamp_min(1e-3)
        v = (sd_a / opening).clamp(0, 1)
        col = state.colors
        edge = torch.exp(-torch.minimum(sd_a, sd_b).clamp_min(0) / (0.012 * F))
        rgb = col["cavity"] + (col["edge"] - col["cavity"]) * edge[..., None]
        # deeper shadow under the upper teeth and towards the corners
        shade = 1 - 0.35 * torch.exp(-sd_a.clamp_min(0) / (0.02 * F)) * (1 - edge)
        rgb = rgb * (shade * (1 - 0.3 * u.abs().clamp(0, 1) ** 2))[..., None]
        # tongue: low and central, only when the mouth is well open
        tongue = smoothstep_t(0.55, 0.9, v) * (1 - u**2).clamp(0, 1) * smoothstep_t(
            0.04 * F, 0.1 * F, opening)
        rgb = rgb + (col["tongue"] - rgb) * (0.8 * tongue)[..., None]
        # lower teeth: a thin band above the lower lip in wide openings
        low_t = (0.016 * F - sd_b + 0.5).clamp(0, 1) * smoothstep_t(0.6, 0.3, u.abs())
        low_t = low_t * smoothstep_t(0.05 * F, 0.1 * F, opening)
        rgb = rgb + (0.7 * col["teeth"] - rgb) * (0.45 * low_t)[..., None]
        # upper teeth hanging from the upper edge, with faint gaps between teeth
        if state.teeth_h > 0.5:
            th = state.teeth_h * (1 - u**2).clamp(0, 1) ** 0.7
            up_t = (th - sd_a + 0.5).clamp(0, 1)
            gaps = torch.zeros_like(u)
            for b in (0.0, 0.33, -0.33, 0.56, -0.56, 0.73, -0.73, 0.86, -0.86):
                gaps = gaps + torch.exp(-(((u - b) * half[..., 0]) / 0.6) ** 2)
            open_c = gap.amax(1, keepdim=True)
            light = (0.55 + 0.45 * smoothstep_t(0.0, 0.07 * F, open_c)) * (
                0.45 + 0.55 * (1 - u**2).clamp(0, 1)) * (1 - 0.12 * gaps.clamp(0, 1)) * (
                0.82 + 0.18 * (sd_a / 3.0).clamp(0, 1))
            teeth = col["teeth"] * light[..., None]
            rgb = rgb + (teeth - rgb) * up_t[..., None]
        rgb = rgb.view(-1, by1 - by0, bx1 - bx0, 3)
        a = alpha.view(-1, by1 - by0, bx1 - bx0, 1)
        box = roi[:, by0 - y0:by1 - y0, bx0 - x0:bx1 - x0]
        roi[:, by0 - y0:by1 - y0, bx0 - x0:bx1 - x0] = box + (rgb - box) * a
        return roi


    def _lids(self, state: WarpState, coef: torch.Tensor, roi: torch.Tensor) -> torch.Tensor:
        """Draw the lash line where an eye is (nearly) shut: it hides the thin band of
        squeezed eye that the warp leaves between the lids."""
        lids = state.lids_src + torch.einsum("nk,kelpc->nelpc", coef, state.lids)
        opening = (lids[:, :, 1, 4] - lids[:, :, 0, 4]).norm(dim=-1) * torch.sign(
            lids[:, :, 1, 4, 1] - lids[:, :, 0, 4, 1])
        closure = smoothstep_t(0.45, 0.9, 1 - opening / state.lid_open.clamp_min(1.0))
        sel = (closure.amax(1) > 0).nonzero().squeeze(1)
        if len(sel) == 0:
            return roi
        for i in sel.tolist():
            roi[i:i + 1] = self._paint_lids(state, lids[i:i + 1], closure[i:i + 1],
                                            roi[i:i + 1])
        return roi

    def _paint_lids(self, state: WarpState, lids: torch.Tensor, closure: torch.Tensor,
                    roi: torch.Tensor) -> torch.Tensor:
        """Lash lines for frames with a closing eye."""
        x0, y0, x1, y1 = state.roi
        F = state.face_w
        for e in range(2):
            pts = lids[:, e].reshape(-1, 18, 2)
            lo = pts.amin((0, 1)).floor() - 3
            hi = pts.amax((0, 1)).ceil() + 4
            bx0, by0 = max(int(lo[0]), x0), max(int(lo[1]), y0)
            bx1, by1 = min(int(hi[0]), x1), min(int(hi[1]), y1)
            if bx1 <= bx0 or by1 <= by0:
                continue
            dev = roi.device
            ys = torch.arange(by0, by1, device=dev, dtype=torch.float32)
            xs = torch.arange(bx0, bx1, device=dev, dtype=torch.float32)
            p = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).view(1, -1, 2)
            up, low = lids[:, e, 0], lids[:, e, 1]
            sd = torch.minimum(_signed_distance(p, up), -_signed_distance(p, low))
            c0, c1 = up[:, :1], up[:, -1:]
            axis = c1 - c0
            u = ((p - 0.5 * (c0 + c1)) * axis).sum(-1) / (0.5 * (axis**2).sum(-1)).clamp_min(1)
            width = 0.0075 * F * (1 - u**2).clamp(0, 1).sqrt() + 0.3
            a = ((sd + width + 0.5).clamp(0, 1) * closure[:, e:e + 1]).view(-1, by1 - by0,
                                                                         bx1 - bx0, 1)
            box = roi[:, by0 - y0:by1 - y0, bx0 - x0:bx1 - x0]
            roi[:, by0 - y0:by1 - y0, bx0 - x0:bx1 - x0] = box + (state.colors["lash"] - box) * a
        return roi


def smoothstep_t(e0: float, e1: float, x: torch.Tensor) -> torch.Tensor:
    """Hermite ramp 0 -> 1 between e0 and e1 on tensors."""
    t = ((x - e0) / (e1 - e0)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def _signed_distance(p: torch.Tensor, line: torch.Tensor) -> torch.Tensor:
    """Distance of points p (1, P, 2) to polylines (N, V, 2), positive on the side below
    a left-to-right line (y down); sign taken from the nearest segment."""
    a, b = line[:, :-1, None], line[:, 1:, None]  # (N, V-1, 1, 2)
    ab = b - a
    ap = p[:, None] - a  # (N, V-1, P, 2)
    apx, apy, abx, aby = ap[..., 0], ap[..., 1], ab[..., 0], ab[..., 1]
    t = ((apx * abx + apy * aby) / (abx * abx + aby * aby).clamp_min(1e-6)).clamp(0, 1)
    d2 = (apx - t * abx) ** 2 + (apy - t * aby) ** 2  # (N, V-1, P)
    d2min, k = d2.min(1)
    cross = abx * apy - aby * apx
    sign = torch.where(cross.gather(1, k[:, None]).squeeze(1) >= 0, 1.0, -1.0)
    return d2min.sqrt() * sign


def _mouth_colors(img: np.ndarray, face: Face) -> dict[str, np.ndarray]:
    """Cavity, edge, teeth and tongue colours adapted to the photo's lips and lighting."""
    P = face.P
    poly = np.concatenate([P[list(L.LIPS_OUTER_UPPER)], P[list(L.LIPS_OUTER_LOWER)][::-1]])
    inner = np.concatenate([P[list(L.LIPS_INNER_UPPER)], P[list(L.LIPS_INNER_LOWER)][::-1]])
    x0, y0 = np.floor(poly.min(0)).astype(int)
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 1
    yy, xx = np.mgrid[y0:y1, x0:x1]
    q = np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], 1)
    in_lips = _inside(q, poly) & ~_inside(q, inner)
    pix = img[yy.ravel()[in_lips].clip(0, img.shape[0] - 1),
              xx.ravel()[in_lips].clip(0, img.shape[1] - 1)].astype(np.float64)
    lip = np.median(pix, 0) if len(pix) else np.array([170.0, 90.0, 90.0])
    c = P[L.CHEEKS[0]].astype(int)
    skin = img[max(c[1] - 6, 0):c[1] + 6, max(c[0] - 6, 0):c[0] + 6].reshape(-1, 3)
    lum = float(np.median(skin.astype(np.float64) @ [0.299, 0.587, 0.114]))
    k = float(np.clip(lum / 165.0, 0.55, 1.1))
    return {
        "cavity": lip * np.array([0.2, 0.1, 0.11]),
        "edge": lip * np.array([0.55, 0.38, 0.4]),
        "teeth": np.array([228.0, 216.0, 192.0]) * k,
        "tongue": lip * np.array([0.78, 0.5, 0.52]),
    }


def _inside(q: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test (vectorised over points)."""
    x, y = q[:, 0:1], q[:, 1:2]
    a, b = poly, np.roll(poly, -1, axis=0)
    cond = (a[:, 1] > y) != (b[:, 1] > y)
    xint = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / np.where(
        b[:, 1] == a[:, 1], 1e-9, b[:, 1] - a[:, 1])
    return (cond & (x < xint)).sum(1) % 2 == 1


__all__ = ["WarpRenderer", "WarpState", "smoothstep"]
