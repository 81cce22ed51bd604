"""Phone timings -> mouth poses and curves at 100 frames/s: the run-time phone table.

Used at run time by :mod:`.timed` (a TTS's phone timings drive the mouth) and by training
and evaluation as their ground truth (``training/phones.py`` re-exports this module).

Each espeak-ng phone mnemonic gets a mouth pose: jaw openness (0 shut .. 1 wide open), lips
closed (p/b/m), funnel and pucker (rounded vowels, w, sh), stretch (spread vowels /i/ /e/),
lower lip rolled in under the upper teeth (f/v).
Pauses are a closed, relaxed mouth. The piecewise-constant poses are smoothed with a short
Gaussian (coarticulation: lips and jaw move continuously), except that a bilabial closure
keeps its full depth at its centre, so short p/b/m still shut the lips in the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stream import N_OUT, ROLL, SPEAK

FPS = 100


@dataclass
class Phone:
    """One phone: espeak mnemonic (``_`` / ``_:`` are pauses), start and end in seconds."""

    name: str
    start: float
    end: float

# Target rows: jaw, close, funnel, pucker, stretch, speaking, roll (the stream's layout).
N_TARGETS = N_OUT  # one row per mouth channel the estimators stream
Pose = tuple[float, float, float, float, float, float]  # jaw, close, funnel, pucker, stretch, roll
_POSE: dict[str, Pose] = {}
_SHAPE_ROWS = [0, 1, 2, 3, 4, ROLL]  # target rows of a pose's six values


def _set(names: str, jaw: float, close: float = 0.0, funnel: float = 0.0, pucker: float = 0.0,
         stretch: float = 0.0, roll: float = 0.0) -> None:
    for n in names.split():
        _POSE[n] = (jaw, close, funnel, pucker, stretch, roll)


# Vowels (espeak-ng English mnemonics), openness after their first formant.
_set("a aa a: A: A@ aI aI2 aI@ aU V a#", 0.9)
_set("0 O O: O@ o@ OI", 0.7, funnel=0.35, pucker=0.25)
_set("E e e@ eI 3 3: VR @5 e:", 0.55, stretch=0.35)
_set("@ @2 @L @3 a2 IR", 0.4)
_set("I I# I2 i i: i@ i@3 i2 y", 0.3, stretch=0.7)
_set("oU o o: O2", 0.5, funnel=0.5, pucker=0.45)
_set("U u u: U@ u@ Y", 0.3, funnel=0.6, pucker=0.75)
# Consonants.
_set("p b m m- p2 b2", 0.0, close=1.0)
_set("f v", 0.1, roll=0.8)
_set("T D", 0.2)
_set("s z t# t[ t d n n- l l- L r r- R x ? N k g", 0.2)
_set("S Z tS dZ", 0.15, funnel=0.45, pucker=0.2)
_set("w w#", 0.15, funnel=0.5, pucker=0.8)
_set("j", 0.2, stretch=0.4)
_set("h", 0.35)
_SILENCE: Pose = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def is_pause(name: str) -> bool:
    """Pauses and clause boundaries (``_``, ``_:``, ``_!`` ...)."""
    return name.startswith("_") or name in ("", ";")


def pose(name: str) -> Pose:
    """Mouth pose (jaw, close, funnel, pucker, stretch, roll) of one espeak-ng phone mnemonic."""
    if is_pause(name):
        return _SILENCE
    if name in _POSE:
        return _POSE[name]
    base = name.rstrip(":;#-[0123456789")
    if base in _POSE:
        return _POSE[base]
    if base[:1] in _POSE:
        return _POSE[base[:1]]
    return (0.3, 0.0, 0.0, 0.0, 0.0, 0.0)  # an unknown phone: half-open, neutral shape


def is_bilabial(name: str) -> bool:
    """p, b, m: the lips must meet."""
    return not is_pause(name) and pose(name)[1] >= 1.0


def target_curves(phones: list[Phone], n_frames: int, offset: float = 0.0,
                  sigma_ms: float = 15.0) -> np.ndarray:
    """(n_frames, N_TARGETS) targets at ``k / FPS`` s: jaw, close, funnel, pucker, stretch,
    speaking, roll.

    ``offset``: seconds to add to the phone times (the clip's position in a longer signal).
    """
    raw = np.zeros((n_frames, N_TARGETS), np.float32)
    closures = []
    for p in phones:
        a = max(0, int(round((p.start + offset) * FPS)))
        b = min(n_frames, int(round((p.end + offset) * FPS)))
        if b <= a:
            continue
        raw[a:b, _SHAPE_ROWS] = pose(p.name)
        raw[a:b, SPEAK] = 0.0 if is_pause(p.name) else 1.0
        if is_bilabial(p.name):
            closures.append((a, b))
    out = raw.copy()
    r = max(1, int(round(3 * sigma_ms / 1000 * FPS)))
    g = np.exp(-0.5 * (np.arange(-r, r + 1) / (sigma_ms / 1000 * FPS)) ** 2)
    g /= g.sum()
    for c in _SHAPE_ROWS:
        out[:, c] = np.convolve(np.pad(raw[:, c], r, mode="edge"), g, mode="valid")
    for a, b in closures:  # the closure's middle stays shut
        mid = (a + b) // 2
        out[mid, 0] = 0.0
        out[mid, 1] = 1.0
    return out
