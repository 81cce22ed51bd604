"""Idle life: blinks, breathing, head sway and gaze saccades, as a pure function of time.

Everything is derived from ``pts`` and a seed, so a frame at a given pts always looks
the same no matter how often or in which order it is asked for (blink times are drawn
in time order within epochs of 10+ minutes, each epoch from its own seeded generator,
so a pts hours or an epoch-like 1.7e9 s away costs no more than one epoch's blinks).
Non-finite pts raise ValueError. Nothing is periodic:
blinks come at random 2-6 s intervals (sometimes doubled), sway and breathing are
smooth value noise, saccades jump to random targets at random times.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from . import motion
from .errors import AvatarError

_BLINK_CLOSE, _BLINK_HOLD, _BLINK_OPEN = 0.07, 0.04, 0.15
_SACCADE_SEG = 0.6
_BREATH_S = 4.0  # mean breathing period


@dataclass
class IdleSettings:
    """Amplitudes of idle life; ``avatar.json``'s ``idle`` section overrides them by name."""

    blink_min_s: float = 2.0
    blink_max_s: float = 6.0
    double_blink_p: float = 0.15
    sway_deg: float = 2.0
    breathing: float = 0.004  # ty amplitude, fraction of face width
    saccade_amount: float = 0.15
    enabled: bool = True

    @classmethod
    def from_dict(cls, data: dict) -> IdleSettings:
        """Settings from avatar.json's ``idle`` section; a typo or a wrong type raises
        AvatarError naming the key and the known ones."""
        fields = cls.__dataclass_fields__
        for key, value in data.items():
            if key not in fields:
                raise AvatarError(f"avatar.json 'idle': unknown key {key!r}; known: "
                                  f"{', '.join(fields)}")
            flag = key == "enabled"
            ok = isinstance(value, bool) if flag else (
                isinstance(value, (int, float)) and not isinstance(value, bool))
            if not ok:
                raise AvatarError(f"avatar.json 'idle': {key!r} must be "
                                  f"{'true or false' if flag else 'a number'}, got {value!r}")
            if not flag:
                lo, hi, what = IDLE_RANGES[key]
                if not lo <= value <= hi:  # False for NaN too
                    raise AvatarError(f"avatar.json 'idle': {key!r} must be a finite number in "
                                      f"{lo:g}..{hi:g} ({what}), got {value!r}")
        out = cls(**data)
        if not out.blink_min_s <= out.blink_max_s:
            raise AvatarError("avatar.json 'idle': need blink_min_s <= blink_max_s, got "
                              f"{out.blink_min_s:g} and {out.blink_max_s:g}")
        return out


#: Allowed values of the numeric idle settings. Blink gaps under 0.1 s (a blink takes
#: 0.26 s) only make blink generation crawl, and an endless gap overflows the random
#: draw, so gaps are 0.1 s..1 h (set "enabled": false for no idle life at all). Head sway
#: and breathing stop where the warp renderer stays clean (motion.POSE_LIMITS): sway moves
#: yaw by up to sway_deg, pitch 0.6x and roll 0.5x that, so 20 keeps yaw <= 20 and roll
#: <= 10 degrees; breathing (x1.25 depth) keeps ty within 0.15 face widths. Gaze amounts
#: are blendshapes, 0..1.
IDLE_RANGES: dict[str, tuple[float, float, str]] = {
    "blink_min_s": (0.1, 3600.0, "seconds"),
    "blink_max_s": (0.1, 3600.0, "seconds, at least blink_min_s"),
    "double_blink_p": (0.0, 1.0, "a probability"),
    "sway_deg": (0.0, 20.0, "degrees"),
    "breathing": (0.0, 0.12, "face widths"),
    "saccade_amount": (0.0, 1.0, "a blendshape weight"),
}


def hash_uniform(seed: int, stream: int, i: np.ndarray) -> np.ndarray:
    """Deterministic uniform [0, 1) numbers indexed by integer ``i`` (vectorised)."""
    x = (np.asarray(i, np.uint64) * np.uint64(0x9E3779B97F4A7C15)
         + np.uint64((seed * 1000003 + stream * 7919) & 0xFFFFFFFF))
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xFF51AFD7ED558CCD)
    x ^= x >> np.uint64(33)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def blink_closure(dt: float) -> float:
    """Eyelid closure 0..1 of a blink ``dt`` seconds after it began: closes in 70 ms, holds
    40 ms, opens in 150 ms (0 before and after)."""
    total = _BLINK_CLOSE + _BLINK_HOLD + _BLINK_OPEN
    if dt < 0 or dt > total:
        return 0.0
    return min(dt / _BLINK_CLOSE, 1.0, (total - dt) / _BLINK_OPEN)


def value_noise(t: float, rate_hz: float, seed: int, stream: int) -> float:
    """Smooth random curve in [-1, 1] with knots every ``1/rate_hz`` s (cubic blend)."""
    x = t * rate_hz
    k = math.floor(x)
    f = x - k
    a, b = hash_uniform(seed, stream, np.array([k, k + 1], np.int64).astype(np.uint64))
    s = f * f * (3 - 2 * f)
    return float(2.0 * ((1 - s) * a + s * b) - 1.0)


class IdleLife:
    """Idle channel vector at any pts."""

    def __init__(self, settings: IdleSettings | None = None, seed: int = 0) -> None:
        self.settings = settings or IdleSettings()
        self.seed = seed
        # Blinks are drawn in time order inside epochs of ``_epoch_s`` seconds, each from
        # its own generator (seeded by seed and epoch number), so a pts far from the last
        # one (an epoch-like clock, hours into a run) starts at its own epoch instead of
        # drawing every blink since 0. Epoch 0 draws exactly as before.
        self._epoch_s = max(600.0, 4.0 * self.settings.blink_max_s)
        self._epochs: dict[int, tuple[np.random.Generator, list[float], list[float]]] = {}

    def _epoch(self, k: int) -> tuple[np.random.Generator, list[float], list[float]]:
        state = self._epochs.get(k)
        if state is None:
            rng = np.random.default_rng(self.seed if k == 0 else [self.seed, k])
            start = k * self._epoch_s + float(rng.uniform(0.8, 2.5))
            state = (rng, [], [start])  # generator, blink starts, [next start]
            if len(self._epochs) >= 4:  # bounded memory: keep the last few epochs used
                del self._epochs[next(iter(self._epochs))]
            self._epochs[k] = state
        return state

    def _epoch_blinks_until(self, k: int, pts: float) -> list[float]:
        s = self.settings
        rng, blinks, nxt = self._epoch(k)
        end = (k + 1) * self._epoch_s  # the next epoch draws its own blinks from there
        while nxt[0] <= pts + 1.0 and nxt[0] < end:
            t = nxt[0]
            blinks.append(t)
            if rng.random() < s.double_blink_p:
                blinks.append(t + _BLINK_CLOSE + _BLINK_HOLD + _BLINK_OPEN + 0.08)
            nxt[0] = blinks[-1] + float(rng.uniform(s.blink_min_s, s.blink_max_s))
        return blinks

    def _blink_starts_until(self, pts: float) -> list[float]:
        """Blink start times that can matter at ``pts`` (those of its epoch and, for a
        blink still closing across the boundary, of the one before)."""
        pts = motion.finite_pts(pts)
        if pts < 0:
            return []
        k = int(pts // self._epoch_s)
        prev = int(max(pts - 1.0, 0.0) // self._epoch_s)
        starts = self._epoch_blinks_until(k, pts)
        if prev != k:
            starts = self._epoch_blinks_until(prev, pts)[-4:] + starts
        # Only the blinks just before pts matter; bisect rather than scan a long epoch.
        i = bisect.bisect_left(starts, pts - 1.0)
        return starts[max(i - 1, 0):]

    def blink_at(self, pts: float) -> float:
        """Eyelid closure 0..1 at ``pts``."""
        starts = self._blink_starts_until(pts)
        return max((blink_closure(pts - s) for s in starts), default=0.0)

    def value_at(self, pts: float) -> np.ndarray:
        """Idle channels (blinks, sway, breathing, gaze) at ``pts``."""
        v = motion.zeros()
        s = self.settings
        if not s.enabled:
            return v
        ix = motion.CHANNEL_INDEX
        blink = self.blink_at(pts)
        v[ix["eyeBlinkLeft"]] = v[ix["eyeBlinkRight"]] = blink
        v[ix["yaw"]] = s.sway_deg * value_noise(pts, 0.25, self.seed, 1)
        v[ix["pitch"]] = 0.6 * s.sway_deg * value_noise(pts, 0.2, self.seed, 2)
        v[ix["roll"]] = 0.5 * s.sway_deg * value_noise(pts, 0.15, self.seed, 3)
        # Breathing: ~15 breaths a minute whose phase wanders (phase, not period, is
        # modulated: dividing pts by a varying period speeds breathing up without bound
        # as pts grows), with a slowly varying depth.
        phase = pts / _BREATH_S + 0.6 * value_noise(pts, 0.05, self.seed, 4)
        depth = 1.0 + 0.25 * value_noise(pts, 0.07, self.seed, 8)
        v[ix["ty"]] = s.breathing * depth * math.sin(2 * math.pi * phase)
        # Saccades: gaze holds a random target and jumps at random times: slot k of
        # 0.6 s holds a jump with probability 0.35, at a random moment inside the slot
        # (so jumps are not locked to a 0.6 s beat).
        seg = math.floor(pts / _SACCADE_SEG)
        segs = np.arange(seg, seg - 12, -1).clip(0).astype(np.uint64)
        at = (segs.astype(np.float64) + hash_uniform(self.seed, 9, segs)) * _SACCADE_SEG
        switches = (hash_uniform(self.seed, 5, segs) < 0.35) & (at <= pts)
        anchor = segs[int(np.argmax(switches))] if switches.any() else segs[-1]
        gx = 2 * hash_uniform(self.seed, 6, np.array([anchor]))[0] - 1
        gy = 2 * hash_uniform(self.seed, 7, np.array([anchor]))[0] - 1
        a = s.saccade_amount
        if gx > 0:  # looking to the viewer's right: left eye looks out, right eye in
            v[ix["eyeLookOutLeft"]] = v[ix["eyeLookInRight"]] = a * gx
        else:
            v[ix["eyeLookInLeft"]] = v[ix["eyeLookOutRight"]] = -a * gx
        if gy > 0:
            v[ix["eyeLookDownLeft"]] = v[ix["eyeLookDownRight"]] = 0.5 * a * gy
        else:
            v[ix["eyeLookUpLeft"]] = v[ix["eyeLookUpRight"]] = -0.5 * a * gy
        return v
