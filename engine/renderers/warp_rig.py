"""The warp renderer's rig: per-channel displacement fields built from the 478 landmarks.

Every MotionFrame channel becomes a smooth *forward* displacement field (source pixel ->
where it goes at channel value 1), written as an analytic function of position in a face
frame (eye line = x, face width F = unit) that the landmarks shape: lip and lid curves,
mouth corners, brows, a head ellipse and a depth map from landmark z. Evaluated once per
avatar on a coarse grid, the fields form a linear basis; the renderer combines them with
one matmul per frame. Head pose is non-linear in the angle, so each axis has two bases
(sin and cos-1 terms) and the field stays linear in the coefficients.

The mouth is cut along the lower inner lip: the area above (upper lip, visible upper
teeth) follows the "upper" version of each field, the lip/chin below the "lower" one, so
opening the jaw tears the image exactly there and the renderer fills the gap with a
mouth interior. Away from the mouth both versions agree. A second cut runs under the chin
(the lower face outline): the jaw drops the mandible over the neck, which keeps only a
little of the drop, so the lowered chin covers the top of the neck (see ``_jaw_drop``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import landmarks as L
from ..motion import BLENDSHAPES

#: Extra, non-blendshape bases appended after the 52 blendshapes.
POSE_BASES: tuple[str, ...] = (
    "yaw_sin", "yaw_cos", "pitch_sin", "pitch_cos", "roll_sin", "roll_cos", "tx", "ty",
)
BASIS_NAMES: tuple[str, ...] = BLENDSHAPES + POSE_BASES
JAW_DROP = 0.24  # drop of the lower lip and chin at jawOpen = 1, in face widths
JAW_CORNER = 0.45  # share of the drop at the lip corners
JAW_NECK = 0.3  # share of the drop the skin under the chin keeps (the rest is covered)
BROW_INNER_UP = 0.09  # inner-brow raise at browInnerUp = 1, face widths
BROW_OUTER_UP = 0.07  # outer-brow raise at browOuterUp = 1, face widths
EYE_WIDE = 0.35  # upper-lid raise at eyeWide = 1, x the eye's opening
FROWN_DROP = 0.07  # lip-corner drop at mouthFrown = 1, face widths
FROWN_OUT = 0.08  # lip corners out at mouthFrown = 1, face widths (as mouthStretch)
DEPTH_FADE = 1.45  # head radii where the depth of the head has fallen to 0
DEPTH_SLOPE = 1.6  # steepest depth change per pixel that head rotation may see
REST_SMILE = 1.65  # rest offset: corner motion per unit of smile relaxed (x the smile field)
REST_CLOSE_FULL = 0.2  # rest offset: lip readings from here on close the whole lip gap
REST_CHEEK = 0.03  # rest offset: cheek let down per unit of smile relaxed (face widths)
REST_LIP_OVERLAP = 0.005  # rest offset: each lip past the meeting line (face widths)
REST_LID = 0.375 / EYE_WIDE  # rest offset: lid raise per unit of blink relaxed (x the eyeWide
# field: 0.375 of the eye's opening)


def smoothstep(e0: float | np.ndarray, e1: float | np.ndarray, x: np.ndarray) -> np.ndarray:
    """Hermite ramp 0 -> 1 between e0 and e1 (e0 > e1 gives a falling ramp)."""
    t = np.clip((x - e0) / (np.asarray(e1) - e0 + 1e-12), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _curve(xs: np.ndarray, ys: np.ndarray):
    """Piecewise-linear y(x) through points (sorted by x), constant beyond the ends."""
    order = np.argsort(xs)
    xs, ys = xs[order], ys[order]

    def f(x: np.ndarray) -> np.ndarray:
        return np.interp(x, xs, ys)

    return f


@dataclass
class Face:
    """Face frame and landmark-derived curves of one avatar at the render size (pixels)."""

    P: np.ndarray  # (478, 2) landmark xy
    Z: np.ndarray  # (478,) landmark z (smaller = closer)
    F: float  # face width
    ex: np.ndarray  # unit vector along the eye line (image right)
    ey: np.ndarray  # unit vector down the face

    @classmethod
    def from_landmarks(cls, lm: np.ndarray, scale: float) -> Face:
        """Face frame from (478, 3) landmarks in avatar pixels scaled by ``scale``."""
        P = lm[:, :2].astype(np.float64) * scale
        Z = lm[:, 2].astype(np.float64) * scale
        F = float(np.linalg.norm(P[L.FACE_SIDES[1]] - P[L.FACE_SIDES[0]]))
        ex = P[L.LEFT_EYE_CORNERS[1]] - P[L.RIGHT_EYE_CORNERS[0]]
        ex = ex / np.linalg.norm(ex)
        ey = np.array([-ex[1], ex[0]])
        return cls(P, Z, F, ex, ey)

    def local(self, X: np.ndarray, origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(u, v) of points X in the face frame around ``origin`` (pixels)."""
        d = X - origin
        return d @ self.ex, d @ self.ey

    def to_image(self, du: np.ndarray, dv: np.ndarray) -> np.ndarray:
        """Face-frame displacement components -> (M, 2) image displacement."""
        return du[:, None] * self.ex + dv[:, None] * self.ey


class Rig:
    """Evaluates every basis field at arbitrary points; built once per avatar and size."""

    def __init__(self, face: Face) -> None:
        self.f = face
        P, F = face.P, face.F
        # --- mouth frame
        c0, c1 = P[L.LIP_CORNERS_INNER[0]], P[L.LIP_CORNERS_INNER[1]]
        self.mc = 0.5 * (c0 + c1)
        self.hw = 0.5 * float(np.linalg.norm(c1 - c0))

        def lip(idx: tuple[int, ...]):
            u, v = face.local(P[list(idx)], self.mc)
            return _curve(u / self.hw, v)

        self.uo, self.ui = lip(L.LIPS_OUTER_UPPER), lip(L.LIPS_INNER_UPPER)
        self.li, self.lo = lip(L.LIPS_INNER_LOWER), lip(L.LIPS_OUTER_LOWER)
        _, self.chin_v = face.local(P[L.CHIN][None], self.mc)
        self.chin_v = float(self.chin_v[0])
        # lower face outline (ear -> chin -> ear) as v(u) in the mouth frame, pixels
        jaw_idx = list(L.FACE_OVAL[8:29])
        self.jaw_pts = P[jaw_idx]
        ju, jv = face.local(self.jaw_pts, self.mc)
        self.jaw_line = _curve(ju, jv)
        # how far in front of the jaw hinge each part of the jaw line is (landmark z): a
        # mandible rotating about the hinge drops each point in proportion, so the chin
        # drops most and the jaw angles little
        z_hinge = float(face.Z[list(L.FACE_SIDES)].mean())
        z_chin = float(face.Z[[L.CHIN, 148, 377]].mean())
        reach = np.clip((z_hinge - face.Z[jaw_idx]) / max(z_hinge - z_chin, 1e-6), 0, 1)
        self.jaw_reach = _curve(ju, reach)
        tangent = np.gradient(self.jaw_pts, axis=0)
        self.jaw_steep = 1 - smoothstep(0.5, 0.8, np.abs(tangent @ face.ex) / np.maximum(
            np.linalg.norm(tangent, axis=1), 1e-9))  # 1 where the outline runs down
        # --- eyes: (corner0, corner1, upper, lower, upper rings, brow lower, brow upper)
        self.eyes = {
            "Right": self._eye(L.RIGHT_EYE_CORNERS, L.RIGHT_EYE_UPPER, L.RIGHT_EYE_LOWER,
                               L.RIGHT_BROW_LOWER, L.RIGHT_IRIS),
            "Left": self._eye(L.LEFT_EYE_CORNERS, L.LEFT_EYE_UPPER, L.LEFT_EYE_LOWER,
                              L.LEFT_BROW_LOWER, L.LEFT_IRIS),
        }
        self.brows = {
            # inner end first
            "Right": (L.RIGHT_BROW_UPPER[::-1], L.RIGHT_BROW_LOWER[::-1]),
            "Left": (L.LEFT_BROW_UPPER, L.LEFT_BROW_LOWER),
        }
        # --- head ellipse (face frame), pivots and depth
        top, chin = P[L.FOREHEAD], P[L.CHIN]
        sides = P[list(L.FACE_SIDES)]
        self.face_c = 0.5 * (sides[0] + sides[1])
        height = float(np.linalg.norm(chin - top))
        self.head_b = 0.5 * height * 1.35
        self.head_a = 0.5 * F * 1.12
        _, chin_fv = face.local(chin[None], self.face_c)
        # ellipse bottom at the chin
        self.head_c = self.face_c + face.ey * (float(chin_fv[0]) - self.head_b)
        self.roll_pivot = self.face_c + face.ey * (float(chin_fv[0]) + 0.1 * F)
        z_sides = float(face.Z[list(L.FACE_SIDES)].mean())
        self.z_axis = z_sides + 0.15 * F
        oval = P[list(L.FACE_OVAL)]
        self.r_oval = float(np.mean(self.ellipse_r(oval)))
        self.d_edge = float(np.mean(self.z_axis - face.Z[list(L.FACE_OVAL)]))
        self._depth_grid: tuple[float, float, float, np.ndarray] | None = None

    # ------------------------------------------------------------------ geometry helpers
    def _eye(self, corners, upper, lower, brow_lower, iris):
        f, P = self.f, self.f.P
        ec = 0.5 * (P[corners[0]] + P[corners[1]])
        ehw = 0.5 * float(np.linalg.norm(P[corners[1]] - P[corners[0]]))

        def curve(idx):
            u, v = f.local(P[list(idx)], ec)
            return _curve(u / ehw, v)

        ic = P[iris[0]]
        ir = float(np.mean(np.linalg.norm(P[list(iris[1:])] - ic, axis=1)))
        return {"c": ec, "hw": ehw, "up": curve(upper), "lo": curve(lower),
                "brow": curve(brow_lower), "iris_c": ic, "iris_r": ir}

    def ellipse_r(self, X: np.ndarray) -> np.ndarray:
        """Elliptical radius of points w.r.t. the head ellipse (1 on its outline)."""
        u, v = self.f.local(X, self.head_c)
        return np.sqrt((u / self.head_a) ** 2 + (v / self.head_b) ** 2)

    def face_window(self, X: np.ndarray) -> np.ndarray:
        """1 on the face, 0 beyond 1.3 head radii: face channels are exactly 0 out there."""
        return smoothstep(1.3, 1.0, self.ellipse_r(X))

    def pose_window(self, X: np.ndarray) -> np.ndarray:
        """1 on the head, falling to 0 at 1.5 head radii (neck, hair, background)."""
        return smoothstep(1.5, 1.0, self.ellipse_r(X))

    def support_radius(self) -> float:
        """Elliptical radius outside which every basis is exactly zero."""
        return 1.5

    def raw_depth(self, X: np.ndarray) -> np.ndarray:
        """Depth in front of the head's rotation axis (pixels): landmark z on the face
        (Nadaraya-Watson), beyond it a smooth fall to 0 at DEPTH_FADE head radii."""
        f = self.f
        r = self.ellipse_r(X)
        ell = self.d_edge * smoothstep(DEPTH_FADE, min(self.r_oval, 0.95), r)
        d_lm = self.z_axis - f.Z
        s = 0.045 * f.F
        out = np.empty(len(X))
        mask = np.empty(len(X))
        for i in range(0, len(X), 4096):
            d2 = ((X[i:i + 4096, None, :] - f.P[None]) ** 2).sum(-1)
            w = np.exp(-d2 / (2 * s * s))
            sw = w.sum(1)
            out[i:i + 4096] = (w @ d_lm) / np.maximum(sw, 1e-12)
            mask[i:i + 4096] = smoothstep(0.05, 0.6, sw)
        return mask * out + (1 - mask) * ell

    def depth(self, X: np.ndarray) -> np.ndarray:
        """Depth used by head rotation: :meth:`raw_depth` with its slope capped at
        DEPTH_SLOPE (its largest DEPTH_SLOPE-Lipschitz minorant, on a 6 px grid).

        Rotating a depth map moves points by sin(angle) * depth; where depth falls faster
        than 1 / sin(angle) per pixel (the face's silhouette, the hairline, under the
        chin) the warp would fold and tear. Capping the slope lowers the cheeks next to
        the silhouette instead, so every pose up to about +-20/15/10 degrees stays
        fold-free (tests/test_warp_pose.py)."""
        if self._depth_grid is None:
            self._depth_grid = self._limited_depth_grid()
        x0, y0, step, grid = self._depth_grid
        gx = np.clip((X[:, 0] - x0) / step, 0, grid.shape[1] - 1.001)
        gy = np.clip((X[:, 1] - y0) / step, 0, grid.shape[0] - 1.001)
        ix, iy = gx.astype(int), gy.astype(int)
        fx, fy = gx - ix, gy - iy
        top = grid[iy, ix] * (1 - fx) + grid[iy, ix + 1] * fx
        bot = grid[iy + 1, ix] * (1 - fx) + grid[iy + 1, ix + 1] * fx
        return top * (1 - fy) + bot * fy

    def _limited_depth_grid(self, step: float = 6.0):
        f = self.f
        ext = DEPTH_FADE * 1.05 * np.sqrt((self.head_a * f.ex) ** 2 + (self.head_b * f.ey) ** 2)
        x0, y0 = self.head_c - ext
        nx, ny = (np.ceil(2 * ext / step).astype(int) + 2)
        xs, ys = x0 + step * np.arange(nx), y0 + step * np.arange(ny)
        X = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
        d = self.raw_depth(X).reshape(ny, nx)
        # lower envelope min_y d(y) + L |x - y| by chamfer passes over the 8 neighbours
        big = np.pad(d, 1, constant_values=np.inf)
        costs = [((dy, dx), DEPTH_SLOPE * step * np.hypot(dy, dx))
                 for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
        for _ in range(4 * max(nx, ny)):
            inner = big[1:-1, 1:-1]
            new = inner.copy()
            for (dy, dx), c in costs:
                np.minimum(new, big[1 + dy:ny + 1 + dy, 1 + dx:nx + 1 + dx] + c, out=new)
            if np.array_equal(new, inner):
                break
            big[1:-1, 1:-1] = new
        return float(x0), float(y0), step, big[1:-1, 1:-1].copy()

    # ------------------------------------------------------------------ mouth
    def _mouth_coords(self, X):
        u, v = self.f.local(X, self.mc)
        mu = u / self.hw
        return mu, v, np.clip(mu, -1, 1)

    def _lat(self, mu, sigma):
        return np.exp(-(((np.abs(mu) - 1).clip(0) * self.hw) / sigma) ** 2)

    def _side_fall(self, X, side: str):
        """Weight of lip motion: 1 on the lip of ``side`` (and towards the mouth), decaying
        into the skin beyond it (nose above, chin below) and past the corners."""
        F = self.f.F
        mu, v, _ = self._mouth_coords(X)
        lat = self._lat(mu, 0.1 * F)
        if side == "upper":
            d = (self.uo(mu) - v).clip(0)
            return lat * np.exp(-((d / (0.045 * F)) ** 2))
        d = (v - self.lo(mu)).clip(0)
        return lat * np.exp(-((d / (0.06 * F)) ** 2))

    def _thin(self, X, side: str):
        """0 at the inner lip contour, 1 at the outer one (for thinning/thickening)."""
        mu, v, _ = self._mouth_coords(X)
        if side == "upper":
            t = (self.ui(mu) - v) / np.maximum(self.ui(mu) - self.uo(mu), 1.0)
        else:
            t = (v - self.li(mu)) / np.maximum(self.lo(mu) - self.li(mu), 1.0)
        return t.clip(0, 1) * self._side_fall(X, side)

    def _jaw_weight(self, X, side: str):
        """Share of a sideways / forward jaw shift: lower lip/chin 1 (less at the
        corners), upper lip only near the corners; fades along the jaw line and below the
        chin."""
        F = self.f.F
        mu, v, muc = self._mouth_coords(X)
        if side == "upper":
            return 0.45 * muc**4 * self._side_fall(X, "upper")
        lip = 1 - 0.55 * muc**2
        w = lip + (1 - lip) * smoothstep(self.lo(mu), self.lo(mu) + 0.1 * F, v)
        lat = self._lat(mu, 0.3 * F)
        below_chin = np.exp(-(((v - self.chin_v).clip(0)) / (0.09 * F)) ** 2)
        above = smoothstep(-0.12 * F, 0.0, v - self.li(mu))  # cheeks above the corners: 0
        return w * lat * below_chin * np.maximum(above, 0.0)

    def _below_jaw(self, X: np.ndarray) -> np.ndarray:
        """Distance (pixels) below the cut under the chin: the lower face outline, a
        little outside it so that the chin's edge goes with the chin."""
        u, v = self.f.local(X, self.mc)
        return v - (self.jaw_line(u) + 0.01 * self.f.F)

    def _jaw_sides(self, X: np.ndarray) -> np.ndarray:
        """1, falling to 0 near the steep sides of the lower face outline: there the jaw
        would slide down its own edge and tear the face from what is beside it, so the
        drop fades out before the edge instead (the chin's edge, below, is a cut)."""
        F = self.f.F
        a, b = self.jaw_pts[:-1], self.jaw_pts[1:]
        ab = b - a
        t = np.clip(((X[:, None] - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0, 1)
        d = np.linalg.norm(X[:, None] - (a + t[..., None] * ab), axis=-1)  # (M, J-1)
        k = d.argmin(1)
        steep = 0.5 * (self.jaw_steep[:-1] + self.jaw_steep[1:])[k]
        return 1 - steep * smoothstep(0.1 * F, 0.0, d[np.arange(len(X)), k])

    def chin_alpha(self, X: np.ndarray) -> np.ndarray:
        """(M,) 1 on the face side of the cut under the chin, 0 on the neck side (the
        same 2 px ramp as the jaw field uses)."""
        return smoothstep(1.0, -1.0, self._below_jaw(X))

    def _jaw_drop(self, X, side: str, cover: bool = False):
        """Share of the jaw drop (jawOpen): the mandible (lower lip, chin, jaw line) moves
        down as one piece, less towards the jaw angles and at the lip corners; the
        cheeks above the corners stretch. The chin slides over the neck: below the face
        outline only a little of the drop remains (the skin under the chin stretches), so
        the forward field folds there and the chin covers the top of the neck.

        ``cover``: the mandible's share continued below the outline, the start of the
        renderer's inverse so that it picks the chin, not the neck, where both land."""
        F = self.f.F
        mu, v, muc = self._mouth_coords(X)
        if side == "upper":
            return JAW_CORNER * muc**4 * self._side_fall(X, "upper")
        lip = 1 - (1 - JAW_CORNER) * muc**2
        w = lip + (1 - lip) * smoothstep(self.lo(mu), self.lo(mu) + 0.08 * F, v)
        lat = self.jaw_reach(mu * self.hw) * self._jaw_sides(X)
        above = smoothstep(-0.2 * F, 0.0, v - self.li(mu))  # cheeks above the corners: 0
        if cover:
            return w * lat * above
        below = self._below_jaw(X)
        face = smoothstep(1.0, -1.0, below)
        neck = JAW_NECK * np.exp(-((below.clip(0) / (0.25 * F)) ** 2))
        return w * lat * above * (face + (1 - face) * neck)

    def _frown_weight(self, X, sgn: float):
        """One side of a frown's arch: the lips bend down towards that corner (quadratic
        in the position along the mouth, 0 at its centre), and the skin around the corner
        goes with them, furthest below it (the muscle pulls the corner towards the jaw),
        so the whole mouth curves instead of kinking at the corner."""
        F = self.f.F
        mu, v, muc = self._mouth_coords(X)
        arch = np.clip(sgn * mu, 0.0, 1.0) ** 2 * self._lat(mu, 0.12 * F)
        up = (self.uo(mu) - v).clip(0)  # above the upper lip
        down = (v - self.lo(mu)).clip(0)  # below the lower lip
        return arch * np.exp(-((up / (0.05 * F)) ** 2)) * np.exp(-((down / (0.12 * F)) ** 2))

    def _mouth_field(self, name: str, X: np.ndarray, side: str):
        """(du, dv) of a mouth/jaw channel on the given side of the lip cut, or None."""
        F = self.f.F
        mu, v, muc = self._mouth_coords(X)
        zero = np.zeros(len(X))
        fall = self._side_fall(X, side)
        sgn = 1.0 if name.endswith("Left") else -1.0  # subject's left = image right
        g = smoothstep(-0.3, 1.0, sgn * muc) ** 1.5  # weight of one corner
        one_side = (1 - muc**2) * (0.5 + 0.5 * sgn * muc)
        bell = 1 - 0.55 * muc**2 - 0.45 * muc**4  # 1 at the centre, 0 at the corners
        if name == "jawOpen":
            jw = self._jaw_drop(X, side)
            corner = np.exp(-(((np.abs(mu) - 1) * self.hw) / (0.08 * F)) ** 2) * fall
            # the corners come in (the lips stretch over the opening) and the lower face
            # narrows a little as the mandible swings down and back
            du = -0.03 * F * np.sign(mu) * corner - 0.04 * mu * self.hw * jw
            return du, JAW_DROP * F * jw
        if name == "mouthClose":
            k = 0.8 if side == "lower" else -0.2
            lip = fall if side == "upper" else np.exp(
                -(((v - self.lo(mu)).clip(0)) / (0.03 * F)) ** 2) * self._lat(mu, 0.1 * F)
            return zero, -k * JAW_DROP * F * bell * lip
        if name in ("jawLeft", "jawRight"):
            return sgn * 0.04 * F * self._jaw_weight(X, side), zero
        if name == "jawForward":
            return zero, 0.012 * F * self._jaw_weight(X, side)
        if name.startswith("mouthSmile"):
            return sgn * 0.04 * F * g * fall, -0.055 * F * g * fall
        if name.startswith("mouthStretch"):
            return sgn * 0.06 * F * g * fall, 0.012 * F * g * fall
        if name.startswith("mouthFrown"):
            # the corner goes down and out (depressor anguli oris pulls it towards the
            # jaw and sideways): without the outward part a tracker reads the arch as a
            # shrug of the lower lip, not a frown
            arch = self._frown_weight(X, sgn)
            return (sgn * (0.08 * FROWN_DROP * F * arch + FROWN_OUT * F * g * fall),
                    FROWN_DROP * F * arch + 0.2 * FROWN_OUT * F * g * fall)
        if name.startswith("mouthDimple"):
            return -sgn * 0.02 * F * g * fall, -0.006 * F * g * fall
        if name in ("mouthLeft", "mouthRight"):
            return sgn * 0.05 * F * (1 - 0.3 * muc**2) * fall, zero
        if name == "mouthFunnel":
            open_ = (-0.025 if side == "upper" else 0.03) * F * bell
            return -0.25 * self.hw * mu * fall, open_ * fall
        if name == "mouthPucker":
            thick = (-0.012 if side == "upper" else 0.012) * F * (1 - muc**2)
            return -0.3 * self.hw * mu * fall, thick * self._thin(X, side)
        if name.startswith("mouthPress"):
            k = 0.012 if side == "upper" else -0.012
            return zero, k * F * (0.3 + 0.7 * g) * self._thin(X, side)
        if name == "mouthRollUpper":
            return zero, (0.02 * F * self._thin(X, "upper")) if side == "upper" else zero
        if name == "mouthRollLower":
            return zero, (-0.02 * F * self._thin(X, "lower")) if side == "lower" else zero
        if name == "mouthShrugUpper":
            return zero, (-0.015 * F * bell * fall) if side == "upper" else zero
        if name == "mouthShrugLower":
            return zero, (-0.02 * F * bell * fall) if side == "lower" else zero
        if name.startswith("mouthUpperUp"):
            return zero, (-0.035 * F * one_side * fall) if side == "upper" else zero
        if name.startswith("mouthLowerDown"):
            return zero, (0.04 * F * one_side * fall) if side == "lower" else zero
        return None

    # ------------------------------------------------------------------ eyes, brows, cheeks
    def _eye_field(self, name: str, X: np.ndarray):
        side = "Left" if name.endswith("Left") else "Right"
        e, f = self.eyes[side], self.f
        F = f.F
        u, v = f.local(X, e["c"])
        eu = u / e["hw"]
        euc = np.clip(eu, -1, 1)
        y_up, y_lo = e["up"](euc), e["lo"](euc)
        h = np.maximum(y_lo - y_up, 0.0)
        lat = np.exp(-((((np.abs(eu) - 1).clip(0)) * e["hw"]) / (0.05 * F)) ** 2)
        gap_b = np.maximum(y_up - e["brow"](euc), 0.02 * F)
        between = (v >= y_up) & (v <= y_lo)
        above_d = (y_up - v).clip(0)
        below_d = (v - y_lo).clip(0)
        browcut = smoothstep(0.85 * gap_b, 0.5 * gap_b, above_d)
        zero = np.zeros(len(X))
        if name.startswith("eyeBlink"):
            # The lid unfolds: the skin between the lashes and the crease stretches down
            # over the eye, the lash line is squeezed into a thin line on the lower lid
            # (which stays: a rising lower lid reads as a squint) and the eyeball
            # between the lids is squeezed away under it. The renderer then paints skin
            # over what was the eye (warp_paint.paint_eyes).
            meet = y_lo
            e_h = 0.04 * h  # what is left of the eyeball, above the meeting line
            g, lw = 0.015 * F, 0.006 * F  # lash band in the photo, lash line when closed
            band = np.minimum(0.7 * gap_b, 0.09 * F)  # lid skin that stretches
            top = meet - e_h - lw  # where the top of the lash band goes
            t = np.where(h > 0, (v - y_up) / np.maximum(h, 1e-6), 1.0)
            eye = (meet - e_h * (1 - t)) - v
            lash = (top + lw * (1 - above_d / g)) - v
            sk = smoothstep(0.0, 1.0, 1 - (above_d - g) / band)
            skin = sk * (top - (y_up - g))
            dv = np.where(between, eye, np.where(above_d <= g, lash, skin))
            dv = np.where(v > y_lo, 0.0, dv)
            return zero, dv * lat
        if name.startswith("eyeSquint"):
            k = 0.3 * h
            dv = np.where(between, -k * (v - y_up) / np.maximum(h, 1e-6), 0.0)
            dv = dv + np.where(v > y_lo, -k * np.exp(-below_d / (0.04 * F)), 0.0)
            return zero, dv * lat
        if name.startswith("eyeWide"):
            k = EYE_WIDE * h
            dv = np.where(between, -k * (y_lo - v) / np.maximum(h, 1e-6), 0.0)
            dv = dv + np.where(v < y_up, -k * np.exp(-above_d / (0.03 * F)) * browcut, 0.0)
            return zero, dv * lat
        if name.startswith("eyeLook"):
            ir = e["iris_r"]
            d2 = ((X - e["iris_c"]) ** 2).sum(1)
            bump = np.exp(-d2 / (2 * (1.1 * ir) ** 2))
            inside = np.exp(-(np.maximum(above_d, below_d) / (0.012 * F)) ** 2) * lat
            w = bump * inside
            toward_nose = -1.0 if side == "Left" else 1.0  # image-x direction of "In"
            if "In" in name:
                return toward_nose * 0.55 * ir * w, zero
            if "Out" in name:
                return -toward_nose * 0.55 * ir * w, zero
            if "Up" in name:
                return zero, -0.35 * ir * w
            return zero, 0.35 * ir * w
        return None

    def _brow_field(self, name: str, X: np.ndarray, side: str):
        f = self.f
        F, P = f.F, f.P
        upper, lower = self.brows[side]
        pts = 0.5 * (P[list(upper)] + P[list(lower)])  # brow centre line, inner -> outer
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        s_pts = np.concatenate([[0.0], np.cumsum(seg)])
        length = s_pts[-1]
        # position along the brow: project on the inner->outer chord
        axis = (pts[-1] - pts[0]) / np.linalg.norm(pts[-1] - pts[0])
        t = ((X - pts[0]) @ axis) / length
        tc = np.clip(t, 0, 1)
        along = np.exp(-((np.where(t < 0, -t, (t - 1).clip(0)) * length) / (0.06 * F)) ** 2)
        cy = np.interp(tc, s_pts / length, (pts - pts[0]) @ f.ey)
        v = (X - pts[0]) @ f.ey - cy  # vertical offset from the brow line (down +)
        eye = self.eyes[side]
        thick = 0.5 * float(np.mean(np.linalg.norm(P[list(upper)] - P[list(lower)], axis=1)))
        gap = max(float(np.mean(eye["up"](np.zeros(1)) - eye["brow"](np.zeros(1)))), 0.03 * F)
        above = np.exp(-(((-v - thick).clip(0)) / (0.1 * F)) ** 2)
        below = smoothstep(0.9 * gap, 0.2 * gap, v - thick)  # stops before the lid
        w = along * np.where(v < 0, above, below) * self.face_window(X)
        inward = -1.0 if side == "Left" else 1.0
        zero = np.zeros(len(X))
        if name == "browInnerUp":  # the inner ends rise and draw together a little
            return (inward * 0.02 * F * (1 - tc) * w,
                    -BROW_INNER_UP * F * (1 - 0.8 * tc) * w)
        if name.startswith("browDown"):
            return inward * 0.01 * F * (1 - tc) * w, 0.03 * F * (1 - 0.3 * tc) * w
        if name.startswith("browOuterUp"):
            return zero, -BROW_OUTER_UP * F * (0.2 + 0.8 * tc) * w
        return None

    def _gauss(self, X, c, sigma):
        return np.exp(-((X - c) ** 2).sum(1) / (2 * sigma * sigma))

    def _misc_field(self, name: str, X: np.ndarray):
        f, P, F = self.f, self.f.P, self.f.F
        zero = np.zeros(len(X))
        sgn = 1.0 if name.endswith("Left") else -1.0
        k = 1 if sgn > 0 else 0
        if name == "cheekPuff":
            u, _ = f.local(X, self.face_c)
            w = self._gauss(X, P[L.CHEEKS[0]], 0.12 * F) + self._gauss(X, P[L.CHEEKS[1]], 0.12 * F)
            return np.sign(u) * 0.03 * F * w, zero
        if name.startswith("cheekSquint"):
            return zero, -0.018 * F * self._gauss(X, P[L.CHEEKS[k]], 0.09 * F)
        if name.startswith("noseSneer"):
            return zero, -0.018 * F * self._gauss(X, P[L.NOSE_WINGS[k]], 0.04 * F)
        return None

    # ------------------------------------------------------------------ public
    def blendshape(self, name: str, X: np.ndarray, side: str) -> np.ndarray:
        """(M, 2) image displacement of channel ``name`` at value 1 on one lip side."""
        out = self._mouth_field(name, X, side)
        if out is None and name.startswith("brow"):
            if name == "browInnerUp":
                a = self._brow_field(name, X, "Left")
                b = self._brow_field(name, X, "Right")
                out = (a[0] + b[0], a[1] + b[1])
            else:
                out = self._brow_field(name, X, "Left" if name.endswith("Left") else "Right")
        if out is None and name.startswith("eye"):
            out = self._eye_field(name, X)
        if out is None:
            out = self._misc_field(name, X)
        if out is None:  # e.g. tongueOut: not rendered as a warp
            return np.zeros((len(X), 2))
        du, dv = out
        return self.f.to_image(du, dv) * self.face_window(X)[:, None]

    # ------------------------------------------------------------------ rest offset
    def rest_field(self, X: np.ndarray, offset: dict[str, float],
                   branch: str | None = None) -> np.ndarray:
        """(M, 2) forward displacement of the rest offset (``engine.neutral.rest_offset``:
        channel -> negative weight) at points X: the negative directions of the channels,
        as warps of the photo's own pixels. Smile: the corners move in and down. jawOpen /
        mouthUpperUp / mouthLowerDown: the lips move toward each other until they meet and
        the photo's mouth interior between them is squeezed to a line (the field is the
        same on both sides of the lip cut, so it tears nothing). eyeBlink / eyeSquint: the
        upper lid moves up (the eye between the lids stretches, the skin above folds into
        the crease).

        ``branch`` "upper" / "lower": the lip closure as the upper (lower) lip moves,
        continued over the whole mouth; each is smooth and invertible, and a point of
        the rest image comes from the branch whose source lies on its own lip
        (:meth:`lip_gap_side`), so the photo's interior is never sampled."""
        out = np.zeros((len(X), 2))
        for side in ("Left", "Right"):
            k = -min(offset.get("mouthSmile" + side, 0.0), 0.0)
            if k > 0:
                w = self.lip_cut(X)[:, None]
                up = self.blendshape("mouthSmile" + side, X, "upper")
                lo = self.blendshape("mouthSmile" + side, X, "lower")
                out -= REST_SMILE * k * (w * lo + (1 - w) * up)
                out += REST_CHEEK * k * self._cheek_drop(X, 1.0 if side == "Left" else -1.0)
            k = -min(offset.get("eyeBlink" + side, 0.0), 0.0) - 0.5 * min(
                offset.get("eyeSquint" + side, 0.0), 0.0)
            if k > 0:
                out += REST_LID * min(k, 1.0) * self.blendshape("eyeWide" + side, X, "upper")
        jaw = -min(offset.get("jawOpen", 0.0), 0.0)
        uu = -0.5 * sum(min(offset.get("mouthUpperUp" + s, 0.0), 0.0) for s in ("Left", "Right"))
        ld = -0.5 * sum(min(offset.get("mouthLowerDown" + s, 0.0), 0.0)
                        for s in ("Left", "Right"))
        if max(jaw, uu, ld) > 0:
            close = min(max(jaw, uu, ld) / REST_CLOSE_FULL, 1.0)
            upper = float(np.clip(uu / (uu + ld + jaw), 0.25, 0.75))
            dv = close * self._close_lips(X, upper, jaw / (jaw + ld + 1e-9), branch)
            out += self.f.to_image(np.zeros(len(X)), dv) * self.face_window(X)[:, None]
        return out

    def _cheek_drop(self, X: np.ndarray, sgn: float) -> np.ndarray:
        """(M, 2) one cheek of a grin let down: the skin beside and above the mouth
        corner (where a smile bunches it into the fold from nose to mouth) moves down and
        a little in, with a broad fall-off; the lips themselves move with the smile
        field's negative direction."""
        F = self.f.F
        corner = self.f.P[L.LIP_CORNERS_OUTER[1 if sgn > 0 else 0]]
        c = corner + self.f.ex * (sgn * 0.04 * F) - self.f.ey * (0.06 * F)
        w = self._gauss(X, c, 0.09 * F) * self.face_window(X)
        return self.f.to_image(-sgn * 0.3 * F * w, F * w)

    def _close_lips(self, X: np.ndarray, upper: float, jaw_share: float,
                    branch: str | None = None) -> np.ndarray:
        """(M,) downward displacement that closes the photo's lip gap: the inner lips meet
        on a line ``upper`` of the way down the gap; the upper lip moves down rigidly and
        fades into the skin above it, the lower lip (with the chin as far as ``jaw_share``
        of the opening was the jaw's) moves up, and the photo's interior between them
        collapses onto the meeting line. Continuous everywhere; ``branch`` as in
        :meth:`rest_field`."""
        F = self.f.F
        mu, v, muc = self._mouth_coords(X)
        ui, li = self.ui(muc), self.li(muc)
        gap = np.maximum(li - ui, 0.0)
        meet = ui + upper * gap
        over = self._lip_overlap(gap) if branch else 0.0  # each lip's hidden inner edge
        t_up, t_lo = upper * gap + over, (1 - upper) * gap + over
        up = t_up * np.exp(-(((self.uo(muc) - v).clip(0)) / (0.045 * F)) ** 2)
        width = (0.06 + 0.2 * jaw_share) * F
        lo_fall = np.exp(-(((v - self.lo(muc)).clip(0)) / width) ** 2)
        down = -t_lo * lo_fall
        if branch == "upper":
            dv = np.where(v <= ui, up, t_up)
        elif branch == "lower":
            dv = np.where(v >= li, down, -t_lo)
        else:
            dv = np.where(v <= ui, up, np.where(v <= li, meet - v, down))
        return dv * self._lat(mu, 0.1 * F)

    def _lip_overlap(self, gap: np.ndarray) -> np.ndarray:
        """How far each lip of a closed photo mouth goes past the meeting line (pixels):
        the photo's lip edge is blended with the teeth or the dark behind it over a pixel
        or two, which would show as a light or dark thread."""
        return REST_LIP_OVERLAP * self.f.F * smoothstep(0.0, 0.01 * self.f.F, gap)

    def lip_seam(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(M,) signed distance (pixels) of photo point X above the part of the upper lip
        that stays visible when the rest closes the mouth (> 0 there and above; < 0 on the
        lip's hidden inner edge, in the opening and below), and (M,) the photo's lip gap
        at X (pixels, 0 past the corners)."""
        mu, v, muc = self._mouth_coords(X)
        gap = np.maximum(self.li(muc) - self.ui(muc), 0.0) * self._lat(mu, 0.1 * self.f.F)
        return self.ui(muc) - v - self._lip_overlap(gap), gap

    def jaw_cover(self, X: np.ndarray) -> np.ndarray:
        """(M, 2) what to add to the jawOpen field for the start of the inverse: the
        mandible's drop continued over the neck (see :meth:`_jaw_drop`)."""
        drop = self._jaw_drop(X, "lower", cover=True) - self._jaw_drop(
            X, "lower") * self.face_window(X)
        dv = JAW_DROP * self.f.F * drop * self.lip_cut(X)
        return self.f.to_image(np.zeros(len(X)), dv)

    def lip_cut(self, X: np.ndarray) -> np.ndarray:
        """Weight of the 'lower' field: 1 below the lower inner lip between the corners,
        0 above; the transition widens past the corners so the cheeks stay smooth."""
        mu, v, _ = self._mouth_coords(X)
        s = v - self.li(mu) + 0.5
        tau = 0.75 + 1.2 * (np.abs(mu) - 1).clip(0) * self.hw
        return smoothstep(-tau, tau, s)

    def pose(self, X: np.ndarray, depth: np.ndarray) -> dict[str, np.ndarray]:
        """(M, 2) image displacement bases of head pose (see POSE_BASES)."""
        f = self.f
        win = self.pose_window(X)[:, None]
        u, v = f.local(X, self.head_c)
        zero = np.zeros(len(X))
        ru, rv = f.local(X, self.roll_pivot)
        out = {
            "yaw_sin": f.to_image(depth, zero),
            "yaw_cos": f.to_image(u, zero),
            "pitch_sin": f.to_image(zero, -depth),
            "pitch_cos": f.to_image(zero, v),
            "roll_sin": f.to_image(-rv, ru),
            "roll_cos": f.to_image(ru, rv),
            "tx": np.tile([f.F, 0.0], (len(X), 1)),
            "ty": np.tile([0.0, f.F], (len(X), 1)),
        }
        return {k: val * win for k, val in out.items()}

    def fields(self, X: np.ndarray, side: str | None = None) -> np.ndarray:
        """(K, M, 2) every basis at points X; ``side`` None blends by the lip cut."""
        depth = self.depth(X)
        pose = self.pose(X, depth)
        w = self.lip_cut(X)[:, None] if side is None else None
        out = np.zeros((len(BASIS_NAMES), len(X), 2))
        for k, name in enumerate(BLENDSHAPES):
            if side is None:
                lo = self.blendshape(name, X, "lower")
                up = self.blendshape(name, X, "upper")
                out[k] = w * lo + (1 - w) * up
            else:
                out[k] = self.blendshape(name, X, side)
        for j, name in enumerate(POSE_BASES):
            out[len(BLENDSHAPES) + j] = pose[name]
        return out
