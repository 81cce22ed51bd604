"""``warp``: the embedded renderer. One photo + 478 landmarks -> talking frames on the CPU.

How a batch is drawn (all torch, on the configured device, no per-pixel Python):

1. channel values -> basis coefficients (blendshapes clamped to 0..1, ``jawOpen`` eased,
   ``mouthClose`` capped by ``jawOpen``, pose angles as sin / cos-1 pairs);
2. one matmul with the precomputed basis fields (see ``warp_rig``) gives each frame's
   forward displacement on a coarse grid over the head;
3. a few damped fixed-point steps on that grid turn it into a backward field (where each
   output pixel comes from), which is upsampled and fed to ``grid_sample`` over the head
   region only; pixels outside it are the source, byte for byte;
4. where an open jaw's chin covers the neck (the forward field folds there), that band is
   drawn again from the chin's side of the fold and blended by a per-pixel cut mask;
5. where the lips part, a mouth interior (a cavity shaded from the lips back, upper teeth,
   lower teeth and a tongue in wide openings, the lips' inner rim; colours measured in the
   photo) is painted between the two warped copies of the lower inner lip, with
   anti-aliased edges; the lower lip stays on top because the interior ends at it;
6. a blinking eye gets lid skin painted over it and, nearly shut, a lash line.

At prepare, unless the avatar keeps its photo's expression, the photo is first warped once
to a calm rest (``engine.neutral``: the grin relaxed, an open mouth closed, half-shut eyes
opened; fields in ``Rig.rest_field``), and its landmarks moved with it. Everything above
then works on that rest image as if it were the photo, so commanded channels act on top
of the rest (jawOpen 0 is a closed mouth) and the per-frame cost is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as TF

from .. import landmarks as L
from ..avatar import Avatar
from ..motion import BLENDSHAPES, CHANNEL_INDEX, N_CHANNELS, POSE_LIMITS
from ..neutral import rest_offset
from .warp_paint import paint_eyes, paint_mouth, smoothstep_t
from .warp_rig import BASIS_NAMES, Face, Rig, smoothstep

_I = CHANNEL_INDEX
_NB = len(BLENDSHAPES)
_POSE = ["yaw", "pitch", "roll", "tx", "ty"]
_POSE_IX = [CHANNEL_INDEX[n] for n in _POSE]
_POSE_MAX = [POSE_LIMITS[n] for n in _POSE]  # clean range of the warp (motion.py)
_EVEN = [BASIS_NAMES.index(n) for n in ("yaw_cos", "pitch_cos", "roll_cos")]
_JAW = BASIS_NAMES.index("jawOpen")
_BLINK = [BASIS_NAMES.index("eyeBlinkRight"), BASIS_NAMES.index("eyeBlinkLeft")]  # image L, R
JAW_EASE = 0.15  # jawOpen x -> x (1 + e (1 - x)): small openings show a little more
LID_COVER = 0.8  # opacity of the painted lid over a fully closed eye
TEETH_H = 0.05  # height of the painted upper teeth (face widths; 0 if the photo shows teeth)
LIP_LINE = 0.35  # darkening of the line where a neutralised photo's lips meet


@dataclass
class WarpState:
    """Everything ``render`` needs for one avatar at one output size."""

    size: int
    device: torch.device
    src_half: torch.Tensor  # (1, 3, S, S) float32 photo + 0.5 (so truncation rounds)
    src_u8: torch.Tensor  # (S, S, 3) uint8
    roi: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) of the warped region
    grid_hw: tuple[int, int]
    bases: torch.Tensor  # (K, 2 * gh * gw) forward displacement, pixels
    bases_even: torch.Tensor  # (3, 2 * gh * gw) the pose (cos - 1) rows of ``bases``
    jaw_cover: torch.Tensor  # (1, 2, gh, gw) jawOpen's drop continued over the neck
    bases_max: torch.Tensor  # (K,) largest displacement of each basis (pixels)
    src_alpha: torch.Tensor  # (1, 4, S, S) src_half and 1 on the face side of the chin cut
    jaw_src: torch.Tensor  # (J, 2) lower face outline (ear -> chin -> ear)
    jaw_mov: torch.Tensor  # (K, J, 2) its motion
    jaw_normal: torch.Tensor  # (J, 2) its unit normal, pointing out of the face
    nodes: torch.Tensor  # (1, 2, gh, gw) node positions, normalised over the grid
    grid_norm: torch.Tensor  # (1, 2, 1, 1) pixels -> grid-normalised units
    base_norm: torch.Tensor  # (1, 2, gh, gw) node positions, normalised over the image
    px_norm: torch.Tensor  # (1, 2, 1, 1) pixels -> image-normalised units
    lip_src: torch.Tensor  # (11, 2) lower inner lip, image-left -> right
    lip_up: torch.Tensor  # (K, 11, 2) its motion on the upper side of the cut
    lip_lo: torch.Tensor  # (K, 11, 2) its motion on the lower side of the cut
    lids_src: torch.Tensor  # (2, 2, 9, 2) eye (image-left, right) x lid (upper, lower)
    lids: torch.Tensor  # (K, 2, 2, 9, 2) motion of those lid points
    lid_open: torch.Tensor  # (2,) opening of each eye in the photo (pixels, centre)
    blink_up: torch.Tensor  # (2, 9, 2) each upper lid's motion under its own eyeBlink
    lid_taper: torch.Tensor  # (9, 1) 1 mid-lid, 0 at the corners
    up_dir: torch.Tensor  # (2,) image direction of "up" on the face
    lid_gain: torch.Tensor  # (2, 3) colour of the painted lid relative to the skin it copies
    face_w: float
    teeth_h: float  # upper-teeth height to paint (pixels; 0 if the photo shows teeth)
    colors: dict[str, torch.Tensor]  # mouth interior RGB (``_mouth_colors``), lash RGB
    rest: dict[str, float] = field(default_factory=dict)  # rest offset applied at prepare


class WarpRenderer:
    """Dense landmark-driven warp of the avatar photo (see module docstring).

    device: torch device; cell_px: spacing of the coarse displacement grid (pixels);
    inverse_steps: fixed-point steps that turn the forward field into a backward one;
    cpu_threads: on a CPU device, torch's intra-op threads (process-wide: torch has one
    pool). 1 by default: the warp is many small memory-bound ops, which a second thread
    barely speeds up on an idle machine and slows down ~10x when other processes share
    the cores (each op waits for a descheduled worker; see docs/benchmarks-history.md). None keeps
    torch's setting.
    """

    name = "warp"

    def __init__(self, device: str | torch.device = "cpu", cell_px: float = 3.0,
                 inverse_steps: int = 8, cpu_threads: int | None = 1) -> None:
        self.device = torch.device(device)
        self.cell_px = cell_px
        self.inverse_steps = inverse_steps
        if self.device.type == "cpu" and cpu_threads and torch.get_num_threads() != cpu_threads:
            torch.set_num_threads(cpu_threads)

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
        rest = {} if avatar.keep_expression else rest_offset(avatar.neutral_blendshapes)
        if rest:
            img, face = neutralise(img, face, rest)
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
        basis = rig.fields(X) * _border_fade(X, size)  # (K, gh*gw, 2)
        bases = basis.reshape(len(BASIS_NAMES), gh, gw, 2).transpose(0, 3, 1, 2)
        cover = (rig.jaw_cover(X) * _border_fade(X, size)).reshape(1, gh, gw, 2)
        cover = cover.transpose(0, 3, 1, 2)
        px = np.stack(np.meshgrid(np.arange(size) + 0.0, np.arange(size) + 0.0), -1)
        chin_alpha = rig.chin_alpha(px.reshape(-1, 2)).reshape(1, 1, size, size)
        jaw_src = rig.jaw_pts
        jaw_mov = rig.fields(jaw_src) * _border_fade(jaw_src, size)[None]
        nx = np.linspace(-1, 1, gw)
        ny = np.linspace(-1, 1, gh)
        nodes = np.stack(np.meshgrid(nx, ny), 0)[None]
        grid_norm = np.array([2.0 / max(x1 - 1 - x0, 1), 2.0 / max(y1 - 1 - y0, 1)])
        base_norm = (2.0 * np.stack(np.meshgrid(xs, ys), 0)[None] + 1.0) / size - 1.0

        lip_idx = list(L.LIPS_INNER_LOWER)
        lip_src = face.P[lip_idx]
        lip_up = rig.fields(lip_src, side="upper")
        lip_lo = rig.fields(lip_src, side="lower")
        lid_idx = [L.RIGHT_EYE_UPPER, L.RIGHT_EYE_LOWER, L.LEFT_EYE_UPPER, L.LEFT_EYE_LOWER]
        lids_src = np.stack([face.P[list(i)] for i in lid_idx])  # (4, 9, 2)
        lids = rig.fields(lids_src.reshape(-1, 2)).reshape(len(BASIS_NAMES), 2, 2, 9, 2)
        lids_src = lids_src.reshape(2, 2, 9, 2)
        lid_open = np.linalg.norm(lids_src[:, 1, 4] - lids_src[:, 0, 4], axis=-1)
        blink_up = np.stack([lids[_BLINK[e], e, 0] for e in range(2)])
        lid_taper = np.sqrt(1 - np.linspace(-1, 1, 9) ** 2)[:, None]

        # colours of the mouth interior, from the photo
        F = face.F
        gap = float(np.linalg.norm(face.P[L.LIP_CENTER[2]] - face.P[L.LIP_CENTER[1]]))
        teeth_h = TEETH_H * F * float(np.clip((0.045 * F - gap) / (0.02 * F), 0.0, 1.0))
        colors = _mouth_colors(img, face)
        lash = img[np.clip(face.P[list(L.RIGHT_EYE_UPPER + L.LEFT_EYE_UPPER)].round().astype(int)
                           [:, ::-1], 0, size - 1).T.tolist()].astype(np.float64)
        lum = lash @ [0.299, 0.587, 0.114]
        colors["lash"] = lash[lum <= np.quantile(lum, 0.35)].mean(0) * 0.75

        def t32(x: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32, device=dev)

        src_u8 = torch.as_tensor(np.array(img, dtype=np.uint8), device=dev)
        return WarpState(
            size=size, device=dev,
            src_half=src_u8.permute(2, 0, 1)[None].float().add(0.5).contiguous(),
            src_u8=src_u8,
            roi=(int(x0), int(y0), int(x1), int(y1)), grid_hw=(gh, gw),
            bases=t32(bases.reshape(len(BASIS_NAMES), -1)),
            bases_even=t32(bases.reshape(len(BASIS_NAMES), -1)[_EVEN]), jaw_cover=t32(cover),
            src_alpha=torch.cat([src_u8.permute(2, 0, 1)[None].float().add(0.5),
                                 t32(chin_alpha)], 1).contiguous(),
            jaw_src=t32(jaw_src), jaw_mov=t32(jaw_mov), jaw_normal=t32(_normals(jaw_src, face)),
            bases_max=t32(np.abs(bases).reshape(len(BASIS_NAMES), -1).max(1)
                          + np.abs(cover).max() * (np.arange(len(BASIS_NAMES)) == _JAW)),
            nodes=t32(nodes),
            grid_norm=t32(grid_norm.reshape(1, 2, 1, 1)), base_norm=t32(base_norm),
            px_norm=t32(np.full((1, 2, 1, 1), 2.0 / size)),
            lip_src=t32(lip_src), lip_up=t32(lip_up), lip_lo=t32(lip_lo),
            lids_src=t32(lids_src), lids=t32(lids), lid_open=t32(lid_open),
            blink_up=t32(blink_up), lid_taper=t32(lid_taper), up_dir=t32(-face.ey),
            lid_gain=t32(_lid_gain(img, face, lids_src)),
            face_w=F, teeth_h=teeth_h, colors={k: t32(v) for k, v in colors.items()},
            rest=rest,
        )

    # ------------------------------------------------------------------ render
    def coefficients(self, motions: torch.Tensor) -> torch.Tensor:
        """(N, N_CHANNELS) channel values -> (N, K) basis coefficients."""
        m = motions
        bs = m[:, :_NB].clamp(0.0, 1.0)
        jaw = bs[:, _I["jawOpen"]]
        bs = bs.clone()
        # ease-out: mediapipe (and a viewer) barely notices the first part of an opening;
        # mouthClose, which closes what the jaw opened, follows the same curve
        ease = 1.0 + JAW_EASE * (1.0 - jaw)
        bs[:, _I["mouthClose"]] = torch.minimum(bs[:, _I["mouthClose"]], jaw) * ease
        bs[:, _I["jawOpen"]] = jaw * ease
        lim = torch.tensor(_POSE_MAX, dtype=m.dtype, device=m.device)
        pose_v = torch.maximum(torch.minimum(m[:, _POSE_IX], lim), -lim)
        ang = torch.deg2rad(pose_v[:, :3])
        s, c = torch.sin(ang), torch.cos(ang) - 1.0
        t = pose_v[:, 3:]
        pose = torch.stack([s[:, 0], c[:, 0], s[:, 1], c[:, 1], s[:, 2], c[:, 2]], 1)
        return torch.cat([bs, pose, t], 1)

    def render(self, state: WarpState, motions: np.ndarray) -> np.ndarray:
        """``motions`` (N, N_CHANNELS) float32 -> (N, size, size, 3) uint8 RGB frames."""
        return self.render_tensor(state, motions).cpu().numpy()

    @torch.inference_mode()
    def render_tensor(self, state: WarpState, motions: np.ndarray | torch.Tensor,
                      planes: torch.Tensor | None = None) -> Any:
        """Like ``render`` but returns a (N, S, S, 3) uint8 tensor on the device.

        ``planes`` (1, C, S, S) float: more source planes (a matte, edge colours) warped
        with the same field as the photo; then returns (frames, warped) where ``warped``
        is (N, C, h, w) over ``state.roi`` (elsewhere they are the source), or None when
        nothing moved."""
        m = torch.as_tensor(motions, dtype=torch.float32, device=state.device)
        if m.ndim != 2 or m.shape[1] != N_CHANNELS:
            raise ValueError(f"motions must be (N, {N_CHANNELS}), got {tuple(m.shape)}")
        n = m.shape[0]
        out = state.src_u8.expand(n, -1, -1, -1).clone()
        if n == 0:
            return out if planes is None else (out, None)
        coef = self.coefficients(m)
        if not bool((coef.abs() > 1e-6).any()):
            return out if planes is None else (out, None)
        gh, gw = state.grid_hw
        fwd = (coef @ state.bases).view(n, 2, gh, gw)
        bwd = self._invert(state, fwd, coef)
        # Sampling positions, normalised for grid_sample, built on the coarse grid (the
        # pixel position is linear in the node index, so upsampling it is exact); the
        # permuted (N, h, w, 2) view goes to grid_sample without a copy, and so does the
        # photo, expanded over the batch.
        pos = torch.addcmul(state.base_norm, bwd, state.px_norm)
        x0, y0, x1, y1 = state.roi
        h, w = y1 - y0, x1 - x0
        grid = TF.interpolate(pos, size=(h, w), mode="bilinear", align_corners=True)
        # src_half holds the photo + 0.5: bilinear weights are convex, so the samples stay
        # in [0.5, 255.5] and the uint8 cast below (truncation) rounds without a clamp.
        roi = TF.grid_sample(state.src_half.expand(n, -1, -1, -1), grid.permute(0, 2, 3, 1),
                             mode="bilinear", padding_mode="border", align_corners=False)
        self._chin(state, coef, fwd, roi)
        self._mouth(state, coef, roi)
        self._lids(state, coef, roi)
        out[:, y0:y1, x0:x1].copy_(roi.permute(0, 2, 3, 1))
        if planes is not None:  # the same lookup as the photo's, over the same region
            return out, TF.grid_sample(planes.expand(n, -1, -1, -1), grid.permute(0, 2, 3, 1),
                                       mode="bilinear", padding_mode="border",
                                       align_corners=False)
        return out

    def _invert(self, state: WarpState, fwd: torch.Tensor,
                coef: torch.Tensor | None = None) -> torch.Tensor:
        """Backward field b with q + b(q) + fwd(q + b(q)) = q, by damped fixed-point steps
        on the coarse grid (exact 0 where fwd is 0, stable where the warp stretches).

        The start is the motion played backwards: every term negated except the pose
        (cos - 1) terms, which are even in the angle, so a rotation starts from its exact
        inverse (plain -fwd converges slowly for roll, whose Jacobian is a rotation), and
        an open jaw's drop is continued over the neck, so that where the lowered chin
        covers the neck (two solutions) the steps mostly settle on the chin (``_chin``
        redraws the band where it folds most, with a sharp edge)."""
        bwd = -fwd
        if coef is not None:
            gh, gw = state.grid_hw
            even = coef[:, _EVEN] @ state.bases_even
            even = torch.addmm(even, coef[:, _JAW:_JAW + 1], state.jaw_cover.view(1, -1),
                               alpha=-0.5)
            bwd = bwd + 2.0 * even.view(-1, 2, gh, gw)
        for _ in range(self.inverse_steps):
            pos = torch.addcmul(state.nodes, bwd, state.grid_norm).permute(0, 2, 3, 1)
            f_at = TF.grid_sample(fwd, pos, mode="bilinear", padding_mode="border",
                                  align_corners=True)
            bwd = bwd.mul(0.4).sub_(f_at, alpha=0.6)  # b + 0.6 * (-b - f_at)
        return bwd

    def _chin(self, state: WarpState, coef: torch.Tensor, fwd: torch.Tensor,
              roi: torch.Tensor) -> None:
        """Redraw the band where an open jaw's chin covers the neck, frame by frame.

        The forward field folds there (the chin drops, the neck barely moves), so the
        backward field has two solutions a few pixels apart on the coarse grid. Here the
        band is sampled twice: the neck as ``render_tensor`` drew it, and the lower face
        from the inverse of the field with the jaw's drop continued over the neck (no
        fold); a per-pixel cut mask, looked up where each pixel comes from, blends them,
        so the chin's edge is sharp and anti-aliased instead of following the grid.
        """
        jaw = coef[:, _JAW]
        # how far the drop crosses each point of the outline (along the steep sides the
        # chin slides down its own edge and nothing folds)
        fold = jaw[:, None] * (state.jaw_mov[_JAW] * state.jaw_normal).sum(-1)  # (N, J)
        sel = fold > 1.0
        for i in sel.any(1).nonzero().flatten().tolist():
            self._chin_band(state, coef[i], fwd[i:i + 1], roi[i], sel[i])

    def _chin_band(self, state: WarpState, c: torch.Tensor, fwd: torch.Tensor,
                   img: torch.Tensor, sel: torch.Tensor) -> None:
        """``_chin`` for one frame: coefficients (K,), field (1, 2, gh, gw), region image
        (3, h, w), the outline points (J,) that fold."""
        gh, gw = state.grid_hw
        X0, Y0, X1, Y1 = state.roi
        h, w = Y1 - Y0, X1 - X0
        sx, sy = (gw - 1) / max(w - 1, 1), (gh - 1) / max(h - 1, 1)  # pixel -> node
        line = state.jaw_src[sel]
        pts = torch.cat([line, line + torch.einsum("k,kjc->jc", c, state.jaw_mov[:, sel])])
        bx0, by0 = (pts.amin(0).floor() - 4).tolist()
        bx1, by1 = (pts.amax(0).ceil() + 5).tolist()
        bx0, by0 = max(int(bx0), X0), max(int(by0), Y0)
        bx1, by1 = min(int(bx1), X1), min(int(by1), Y1)
        if bx1 - bx0 < 2 or by1 - by0 < 2:
            return
        c0 = max(int((bx0 - X0) * sx) - 1, 0)
        c1 = min(int((bx1 - 1 - X0) * sx) + 3, gw)
        r0 = max(int((by0 - Y0) * sy) - 1, 0)
        r1 = min(int((by1 - 1 - Y0) * sy) + 3, gh)
        dev = img.device
        # the field with the drop continued, on the nodes the steps can reach (up to the
        # largest displacement away from the band), in coordinates of that crop
        reach = float(c.abs() @ state.bases_max) + 2.0
        mr, mc = int(reach * sy) + 2, int(reach * sx) + 2
        rr0, rr1, cc0, cc1 = max(r0 - mr, 0), min(r1 + mr, gh), max(c0 - mc, 0), min(c1 + mc, gw)
        ext = fwd[:, :, rr0:rr1, cc0:cc1] + c[_JAW] * state.jaw_cover[:, :, rr0:rr1, cc0:cc1]
        full = torch.tensor([gw - 1.0, gh - 1.0], device=dev)
        ka = full / torch.tensor([max(cc1 - cc0 - 1, 1), max(rr1 - rr0 - 1, 1)], device=dev)
        kb = ka - 2.0 * torch.tensor([cc0, rr0], device=dev) * ka / full - 1.0
        even = torch.einsum("k,kchw->chw", c[_EVEN],
                            state.bases_even.view(3, 2, gh, gw)[:, :, r0:r1, c0:c1])
        b = 2.0 * even[None] - ext[:, :, r0 - rr0:r1 - rr0, c0 - cc0:c1 - cc0]
        nodes = state.nodes[:, :, r0:r1, c0:c1] * ka.view(1, 2, 1, 1) + kb.view(1, 2, 1, 1)
        gnorm = state.grid_norm * ka.view(1, 2, 1, 1)
        for _ in range(self.inverse_steps):
            p = torch.addcmul(nodes, b, gnorm).permute(0, 2, 3, 1)
            f_at = TF.grid_sample(ext, p, mode="bilinear", padding_mode="border",
                                  align_corners=True)
            b = b.mul(0.4).sub_(f_at, alpha=0.6)
        pos = torch.addcmul(state.base_norm[:, :, r0:r1, c0:c1], b, state.px_norm)
        # each band pixel: where it comes from (the coarse field, upsampled like the main
        # pass), then the photo and the cut mask there, in one lookup
        gx = (torch.arange(bx0, bx1, device=dev, dtype=torch.float32) - X0) * sx - c0
        gy = (torch.arange(by0, by1, device=dev, dtype=torch.float32) - Y0) * sy - r0
        gx = gx * (2.0 / max(c1 - c0 - 1, 1)) - 1.0
        gy = gy * (2.0 / max(r1 - r0 - 1, 1)) - 1.0
        g = torch.stack(torch.broadcast_tensors(gx[None, :], gy[:, None]), -1)[None]
        src = TF.grid_sample(pos, g, mode="bilinear", padding_mode="border",
                             align_corners=True).permute(0, 2, 3, 1)
        rgba = TF.grid_sample(state.src_alpha, src, mode="bilinear", padding_mode="border",
                              align_corners=False)[0]
        box = img[:, by0 - Y0:by1 - Y0, bx0 - X0:bx1 - X0]
        box.add_((rgba[:3] - box) * rgba[3:])

    def lip_lines(self, state: WarpState, coef: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Output positions (N, 11, 2) of the lower inner lip on the upper and the lower
        side of the cut: the mouth opening lies between them."""
        A = state.lip_src + torch.einsum("nk,kpc->npc", coef, state.lip_up)
        B = state.lip_src + torch.einsum("nk,kpc->npc", coef, state.lip_lo)
        return A, B

    def _mouth(self, state: WarpState, coef: torch.Tensor, roi: torch.Tensor) -> None:
        """Paint the mouth interior where the lips part (per frame: tight boxes)."""
        A, B = self.lip_lines(state, coef)
        gum = A - coef[:, _JAW, None, None] * state.lip_up[_JAW]
        gap = ((B - A) ** 2).sum(-1).sqrt().amax(1)
        jaw = coef[:, _JAW].tolist()
        for i in (gap >= 0.35).nonzero().flatten().tolist():
            paint_mouth(roi[i], state.roi[:2], state.roi, A[i], B[i], state.colors,
                        state.face_w, state.teeth_h, gum[i], jaw[i])

    def _lids(self, state: WarpState, coef: torch.Tensor, roi: torch.Tensor) -> None:
        """Paint each blinking eye (``paint_eye``): lid skin over what was the eye, as far
        as eyeBlink closes it (the warp alone stretches the photo's lid, a dark smear
        where the photo shows little of it), and the lash line where the eye is (nearly)
        shut, which hides the thin band of squeezed eye the warp leaves between the
        lids."""
        lids = state.lids_src + torch.einsum("nk,kelpc->nelpc", coef, state.lids)
        opening = (lids[:, :, 1, 4] - lids[:, :, 0, 4]).norm(dim=-1) * torch.sign(
            lids[:, :, 1, 4, 1] - lids[:, :, 0, 4, 1])
        closure = smoothstep_t(0.45, 0.9, 1 - opening / state.lid_open.clamp_min(1.0))
        blink = coef[:, _BLINK].clamp(0, 1)  # (N, 2): image-left eye, image-right eye
        # the lid fades in from blink 0.1 (below, the warp alone shows the lid lowering)
        cover = LID_COVER * blink * smoothstep_t(0.1, 0.25, blink)
        todo = (cover > 0) | (closure > 0)
        if not bool(todo.any()):
            return
        # the upper lid without the blink's own motion, raised over the photo's lashes
        top = lids[:, :, 0] - torch.einsum("ne,epc->nepc", blink, state.blink_up)
        top = top + (0.015 * state.face_w) * state.lid_taper * state.up_dir
        shift = (lids[:, :, 1] - state.lids_src[None, :, 1]).mean(2)  # lower lid (N, 2, 2)
        i, e = todo.nonzero().unbind(1)
        paint_eyes(roi, state.roi[:2], state.roi, i, top[i, e], lids[i, e, 0], lids[i, e, 1],
                   shift[i, e], cover[i, e], closure[i, e], state.src_half, state.lid_gain[e],
                   state.colors["lash"], state.face_w)


def rest_avatar(avatar: Avatar) -> Avatar:
    """``avatar`` as its calm rest: the photo warped by its rest offset and the landmarks
    moved with it, marked ``keep_expression`` (so rendering it does not neutralise again);
    the avatar itself when it keeps its expression or is already calm. What ``prepare``
    renders from, at the avatar's own resolution (tests and tools compare with it)."""
    rest = {} if avatar.keep_expression else rest_offset(avatar.neutral_blendshapes)
    if not rest:
        return avatar
    img, face = neutralise(avatar.image, Face.from_landmarks(avatar.landmarks, 1.0), rest)
    lm = np.array(avatar.landmarks, dtype=np.float32, copy=True)
    lm[:, :2] = face.P
    return replace(avatar, image=img, landmarks=lm, keep_expression=True)


def neutralise(img: np.ndarray, face: Face, rest: dict[str, float],
               steps: int = 16) -> tuple[np.ndarray, Face]:
    """The photo ``img`` (S, S, 3) uint8 warped to its calm rest, and its face with the
    landmarks moved likewise.

    The rest offset ``rest`` (``engine.neutral.rest_offset``) is a forward field on every
    pixel around the face (``Rig.rest_field``). Where it closes the lips it collapses the
    photo's mouth opening onto a line, so it is inverted twice, as the upper and as the
    lower lip moves (damped fixed-point steps, as in the renderer), and each pixel takes
    the branch whose source lies on that branch's own lip: upper above the meeting line,
    lower below, blended over one pixel. The photo is sampled bicubically, once."""
    rig = Rig(face)
    size = img.shape[0]
    pad = 0.25 * face.F
    x0, y0 = np.clip(np.floor(face.P.min(0) - pad).astype(int), 0, size - 2)
    x1, y1 = np.clip(np.ceil(face.P.max(0) + pad).astype(int) + 1, x0 + 2, size)
    xs, ys = np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64)
    h, w = len(ys), len(xs)
    X = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    fade = _border_fade(X, size)
    nodes = torch.stack(torch.meshgrid(torch.linspace(-1, 1, w), torch.linspace(-1, 1, h),
                                       indexing="xy"))[None]
    norm = torch.tensor([2.0 / (w - 1), 2.0 / (h - 1)]).view(1, 2, 1, 1)
    pix = torch.from_numpy(X.T.reshape(1, 2, h, w).copy()).float()

    def source(branch: str) -> torch.Tensor:
        """(1, 2, h, w) where each pixel of the rest image comes from, in photo pixels."""
        fwd = rig.rest_field(X, rest, branch) * fade
        f = torch.from_numpy(fwd.reshape(h, w, 2).transpose(2, 0, 1).copy()).float()[None]
        b = -f
        for _ in range(steps):  # q + b(q) + f(q + b(q)) = q
            at = TF.grid_sample(f, (nodes + b * norm).permute(0, 2, 3, 1), mode="bilinear",
                                padding_mode="border", align_corners=True)
            b = 0.4 * b - 0.6 * at
        return pix + b

    up, lo = source("upper"), source("lower")
    seam, gap = rig.lip_seam(up[0].permute(1, 2, 0).reshape(-1, 2).double().numpy())
    k = torch.from_numpy(np.clip(seam + 0.5, 0.0, 1.0).reshape(1, 1, h, w)).float()
    src_at = lo + (up - lo) * k
    src = torch.from_numpy(np.array(img, dtype=np.float32)).permute(2, 0, 1)[None]
    grid = ((2.0 * src_at + 1.0) / size - 1.0).permute(0, 2, 3, 1)
    out = TF.grid_sample(src, grid, mode="bicubic", padding_mode="border", align_corners=False)
    # where the lips now meet, the shadowed line of a closed mouth (the upper branch moves
    # rigidly there, so ``seam`` is the distance to the meeting line in rest pixels)
    out = _lip_line(out, seam.reshape(h, w), gap.reshape(h, w), face.F)
    new = np.array(img, dtype=np.uint8, copy=True)
    new[y0:y1, x0:x1] = out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    moved = face.P + rig.rest_field(face.P, rest) * _border_fade(face.P, size)
    return new, replace(face, P=moved)


def _lip_line(out: torch.Tensor, seam: np.ndarray, gap: np.ndarray, F: float) -> torch.Tensor:
    """The line where a neutralised photo's lips meet, on the rest image ``out`` (1, 3, h,
    w): smooth and soft, like the shadow between closed lips.

    ``seam`` (h, w) is each pixel's signed distance below the meeting line; it follows
    the landmarks' lip polyline, whose small kinks would show as a wavy, stitched thread,
    so the line is taken per column where ``seam`` crosses 0 and smoothed along the mouth
    (Gaussian over 0.02 face widths). The pixels within ~0.01 face widths of it are
    replaced by a blend of the lips just above and below (the photo's teeth or gap
    squeezed there would show as a grey thread), then darkened with a soft profile,
    fading out towards the corners with the photo's lip ``gap`` (h, w)."""
    h, w = seam.shape
    ok = (seam[:-1] >= 0) & (seam[1:] < 0)  # the crossing, per column
    has = ok.any(0) & (gap.max(0) > 0.5)
    if has.sum() < 3:
        return out
    i = ok.argmax(0)
    cols = np.arange(w)
    s0, s1 = seam[i, cols], seam[i + 1, cols]
    y_raw = i + s0 / np.maximum(s0 - s1, 1e-6)
    g = gap[np.clip(np.round(y_raw).astype(int), 0, h - 1), cols] * has
    sig = 0.02 * F
    k = np.exp(-0.5 * (np.arange(-int(3 * sig) - 1, int(3 * sig) + 2) / sig) ** 2)
    wts = has.astype(np.float64)
    y_line = np.convolve(np.where(has, y_raw, 0.0), k, "same") / np.maximum(
        np.convolve(wts, k, "same"), 1e-9)
    strength = smoothstep(0.0, 0.01 * F, np.convolve(g, k, "same") / k.sum())
    ys = np.arange(h, dtype=np.float64)[:, None]
    d = ys - y_line[None]  # rows below the smooth line
    hw = max(0.01 * F, 1.5)
    src = out[0].double().numpy()
    yy_a = np.clip(y_line - hw, 0, h - 1)
    yy_b = np.clip(y_line + hw, 0, h - 1)

    def at(yy: np.ndarray) -> np.ndarray:
        i0 = np.floor(yy).astype(int)
        i1 = np.minimum(i0 + 1, h - 1)
        t = yy - i0
        return src[:, i0, cols] * (1 - t) + src[:, i1, cols] * t  # (3, w)

    ca, cb = at(yy_a), at(yy_b)
    t = np.clip((d + hw) / (2 * hw), 0.0, 1.0)
    fill = ca[:, None] * (1 - t)[None] + cb[:, None] * t[None]
    wb = (np.exp(-(d / hw) ** 4) * strength[None])[None]
    res = src * (1 - wb) + fill * wb
    dark = LIP_LINE * np.exp(-(d / (0.005 * F)) ** 2) * strength[None]
    res = res * (1.0 - np.array([0.85, 1.0, 1.0])[:, None, None] * dark[None])  # warm
    return torch.from_numpy(res[None]).float()


def _border_fade(X: np.ndarray, size: int, margin: float = 0.22) -> np.ndarray:
    """(M, 2) factors that fade the displacement to 0 at the top of the image (within
    ``margin`` of the size): head motion then never samples above the photo, where its
    first row would be smeared into streaks (hair cut by the top of the frame). Only the
    top: the sides keep background in the crop, the bottom is clothes, and every extra
    fade pushes the extreme poses towards a fold (tests/test_warp_pose.py)."""
    fy = smoothstep(0.0, margin * size, X[:, 1])
    return np.stack([fy, fy], 1)


def _mouth_colors(img: np.ndarray, face: Face) -> dict[str, np.ndarray]:
    """Colours of the mouth interior, from the photo: the lips' median colour gives the
    cavity (dark, warm), its lit walls, the lips' inner rim and the tongue; the teeth take
    the brightness of the whites of the eyes, kept within reach of the skin's (a photo's
    light on the face, not pure white), in a warm off-white; ``light`` (1,) is how the
    light changes across the mouth (cheek to cheek, per half mouth width)."""
    P = face.P
    poly = np.concatenate([P[list(L.LIPS_OUTER_UPPER)], P[list(L.LIPS_OUTER_LOWER)][::-1]])
    inner = np.concatenate([P[list(L.LIPS_INNER_UPPER)], P[list(L.LIPS_INNER_LOWER)][::-1]])
    lip_pix = _pixels_in(img, poly, inner)
    lip = np.median(lip_pix, 0) if len(lip_pix) else np.array([170.0, 90.0, 90.0])
    lip = np.maximum(lip, 1.0)
    luma = np.array([0.299, 0.587, 0.114])
    cheeks = []
    for i in L.CHEEKS:
        c = P[i].astype(int)
        patch = img[max(c[1] - 6, 0):c[1] + 6, max(c[0] - 6, 0):c[0] + 6].reshape(-1, 3)
        cheeks.append(np.median(patch.astype(np.float64), 0))
    skin = 0.5 * (cheeks[0] + cheeks[1])
    skin_l = max(float(skin @ luma), 1.0)
    eyes = [_pixels_in(img, np.concatenate([P[list(up)], P[list(lo)][::-1]]))
            for up, lo in ((L.RIGHT_EYE_UPPER, L.RIGHT_EYE_LOWER),
                           (L.LEFT_EYE_UPPER, L.LEFT_EYE_LOWER))]
    eye = np.concatenate(eyes) @ luma
    sclera = float(np.quantile(eye, 0.95)) if len(eye) >= 8 else skin_l
    lo = 1.25 * max(skin_l, float(lip @ luma))  # brighter than the skin and the lips
    teeth_l = float(min(np.clip(sclera, lo, max(1.45 * skin_l, lo)), 232.0))
    warm = np.array([1.0, 0.95, 0.85]) * 0.75 + 0.25 * skin / skin_l
    warm = np.minimum.accumulate(warm)  # G <= R, B <= G: never green nor blue
    cl = [float(c @ luma) for c in cheeks]
    teeth = warm * teeth_l / float(warm @ luma)
    teeth *= min(1.0, 235.0 / teeth.max())  # never pure white
    wall = lip * np.array([0.42, 0.22, 0.23])
    return {
        "cavity": lip * np.array([0.15, 0.07, 0.075]),
        "wall": wall,
        "rim": lip * np.array([0.7, 0.55, 0.57]),
        "teeth": teeth,
        "teeth_low": 0.75 * teeth + 0.08 * lip,  # in the shadow of the lower lip
        "tongue": lip * np.array([0.82, 0.5, 0.52]),
        "light": np.array([np.clip((cl[1] - cl[0]) / max(cl[0] + cl[1], 1.0), -0.15, 0.15)]),
    }


def _pixels_in(img: np.ndarray, poly: np.ndarray,
               hole: np.ndarray | None = None) -> np.ndarray:
    """(M, 3) float pixels of ``img`` inside polygon ``poly`` and outside ``hole``."""
    x0, y0 = np.floor(poly.min(0)).astype(int)
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 1
    yy, xx = np.mgrid[y0:y1, x0:x1]
    q = np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], 1)
    keep = _inside(q, poly)
    if hole is not None:
        keep &= ~_inside(q, hole)
    return img[yy.ravel()[keep].clip(0, img.shape[0] - 1),
               xx.ravel()[keep].clip(0, img.shape[1] - 1)].astype(np.float64)


def _normals(line: np.ndarray, face: Face) -> np.ndarray:
    """(J, 2) unit normals of an open polyline, turned to point down the face."""
    t = np.gradient(line, axis=0)
    n = np.stack([t[:, 1], -t[:, 0]], 1) / np.maximum(np.linalg.norm(t, axis=1), 1e-9)[:, None]
    return n * np.where(n @ face.ey < 0, -1.0, 1.0)[:, None]


def _lid_gain(img: np.ndarray, face: Face, lids: np.ndarray) -> np.ndarray:
    """(2, 3) per eye: the painted lid copies the skin under the eye; this gain takes its
    colour halfway to that of the skin above the upper lid, so the lid shows no rim."""
    F, size = face.F, img.shape[0]
    out = np.ones((2, 3))
    for e in range(2):
        up, lo = lids[e, 0, 2:7], lids[e, 1, 2:7]  # the middle of each lid
        h = float(np.mean(lo[:, 1] - up[:, 1]))
        above = [up + [0, -d] for d in np.linspace(0.02 * F, 0.04 * F, 5)]
        below = [lo + [0, d] for d in np.linspace(0.012 * F, 0.012 * F + max(h, 1.0), 5)]
        pick = [np.clip(np.concatenate(p).round().astype(int), 0, size - 1)
                for p in (above, below)]
        want, have = (img[p[:, 1], p[:, 0]].astype(np.float64).mean(0) for p in pick)
        out[e] = (0.5 * want + 0.5 * have) / np.maximum(have, 1.0)
    return out


def _inside(q: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test (vectorised over points)."""
    x, y = q[:, 0:1], q[:, 1:2]
    a, b = poly, np.roll(poly, -1, axis=0)
    cond = (a[:, 1] > y) != (b[:, 1] > y)
    xint = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / np.where(
        b[:, 1] == a[:, 1], 1e-9, b[:, 1] - a[:, 1])
    return (cond & (x < xint)).sum(1) % 2 == 1


__all__ = ["WarpRenderer", "WarpState", "neutralise", "rest_avatar", "smoothstep"]
