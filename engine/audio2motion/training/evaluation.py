"""Lip-sync metrics against phone timings (used by bench/lipsync_eval.py and the tests).

A model is streamed through a clip in live-sized blocks; its mouth channels are read at
every 10 ms frame and compared with :func:`.phones.target_curves`:

- ``r_jaw``: Pearson r of ``jawOpen`` with the target openness, over all frames.
- ``closure_recall``: share of p/b/m phones during which (+-20 ms) the lips meet at least
  once: lip gap ``jawOpen - mouthClose`` <= ``CLOSED_GAP``.
- ``silence_closed``: share of frames inside pauses of >= 0.3 s (minus a margin of
  ``max(0.15 s, look-ahead + 0.05 s)`` at both ends for the motion to settle) whose
  ``jawOpen`` < ``SILENT_JAW``.
- ``onset_lag_ms``: at each speech start after such a pause, the time the predicted jaw
  first reaches ``ONSET_JAW`` minus the time the target does (negative: early).

What a viewer notices beyond the jaw (real-voice evaluation, issue 18):

- ``silence_closed_all``: as ``silence_closed`` but every pause frame counts, from the
  stream's first frame (room noise at the start of a stream must not open the mouth) and
  up to the next speech, with only the look-ahead + 50 ms kept free before an onset.
- ``closed_after_80ms``: share of speech ends (a pause of >= 0.3 s follows) where the jaw
  is below ``RELEASED_JAW`` 80 ms after the last phone ends.
- ``bilabial_shut`` / ``other_shut``: share of frames inside p/b/m phones (their middle
  60 %) / inside other speech phones whose lips are shut (gap <= ``CLOSED_GAP``);
  ``bilabial_auc``: how well the lip gap tells those two frame sets apart (0.5 = chance).
- ``rounded_auc``: how well ``mouthFunnel + mouthPucker - mouthStretch`` tells rounded
  vowels (/u/ /o/ /w/) from spread ones (/i/ /e/), frame by frame.
- ``labiodental_auc``: how well ``mouthRollLower`` tells f/v frames (their middle 60 %)
  from other speech frames; ``labiodental_roll`` / ``other_roll``: its mean on each.
- ``jaw_open_vowels`` / ``jaw_consonants``: mean ``jawOpen`` inside open vowels (target
  openness >= 0.7) and inside non-bilabial consonants (target <= 0.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...motion import channel_index
from ..base import Audio2Motion
from .corpus import Clip
from .phones import FPS, is_bilabial, is_pause, pose

CLOSED_GAP = 0.15
SILENT_JAW = 0.05
ONSET_JAW = 0.15
RELEASED_JAW = 0.1
_READ = [channel_index(c) for c in ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker",
                                    "mouthStretchLeft")]
_ROLL = channel_index("mouthRollLower")


def stream_clip(model: Audio2Motion, pcm: np.ndarray, sr: int, n_frames: int,
                block_s: float = 0.02) -> np.ndarray:
    """Push ``pcm`` in blocks (then a second of silence to flush the look-ahead) and read
    frames ``0 .. n_frames-1`` as soon as each is ready: (n_frames, 7): jaw, close, funnel,
    pucker, stretch, the speaking flag, mouthRollLower."""
    n = max(1, round(block_s * sr))
    x = np.concatenate([pcm.astype(np.float32), np.zeros(sr, np.float32)])
    out = np.zeros((n_frames, 7), np.float32)
    k = 0
    for i in range(0, len(x), n):
        model.push(x[i : i + n], i / sr, sr)
        while k < n_frames and k / FPS <= model.ready_until() + 1e-9:
            f = model.motion_at(k / FPS)
            out[k, :5] = f.values[_READ]
            out[k, 5] = f.speaking
            out[k, 6] = f.values[_ROLL]
            k += 1
        if k >= n_frames:
            break
    return out


@dataclass
class Scores:
    """Accumulates per-clip comparisons; :meth:`summary` gives the metrics."""

    lookahead: float = 0.0
    jaw: list[np.ndarray] = field(default_factory=list)
    target: list[np.ndarray] = field(default_factory=list)
    closures: list[bool] = field(default_factory=list)
    silent: list[np.ndarray] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    silent_all: list[np.ndarray] = field(default_factory=list)
    released: list[bool] = field(default_factory=list)
    gap_bilabial: list[np.ndarray] = field(default_factory=list)
    gap_other: list[np.ndarray] = field(default_factory=list)
    shape_rounded: list[np.ndarray] = field(default_factory=list)
    shape_spread: list[np.ndarray] = field(default_factory=list)
    jaw_open_vowel: list[np.ndarray] = field(default_factory=list)
    jaw_consonant: list[np.ndarray] = field(default_factory=list)
    roll_labiodental: list[np.ndarray] = field(default_factory=list)
    roll_other: list[np.ndarray] = field(default_factory=list)

    def add(self, pred: np.ndarray, clip: Clip) -> None:
        """Compare ``pred`` (frames, 7 from :func:`stream_clip`) with the clip's phones."""
        tgt = clip.targets()
        n = min(len(pred), len(tgt))
        pred, tgt = pred[:n], tgt[:n]
        self.jaw.append(pred[:, 0])
        self.target.append(tgt[:, 0])
        gap = pred[:, 0] - np.minimum(pred[:, 1], pred[:, 0])
        for p in clip.phones:
            if is_bilabial(p.name):
                a = max(0, int(np.floor((p.start - 0.02) * FPS)))
                b = min(n, int(np.ceil((p.end + 0.02) * FPS)) + 1)
                if b > a:
                    self.closures.append(bool(gap[a:b].min() <= CLOSED_GAP))
        margin = max(0.15, self.lookahead + 0.05)
        for pause in _pauses(clip):
            a = int(np.ceil((pause[0] + margin) * FPS))
            b = min(n, int(np.floor((pause[1] - margin) * FPS)))
            if b > a:
                self.silent.append(pred[a:b, 0] < SILENT_JAW)
            if pause[1] >= clip.phones[-1].end - 1e-6:
                continue  # the trailing pause: no onset follows
            s = int(round(pause[1] * FPS))
            t_on = _first_at_least(tgt[:, 0], ONSET_JAW, max(0, s - 5), min(n, s + 60))
            if t_on is None:
                continue
            p_on = _first_at_least(pred[:, 0], ONSET_JAW, max(0, t_on - 25), min(n, t_on + 40))
            if p_on is not None:
                self.lags.append((p_on - t_on) * 1000.0 / FPS)
            else:
                self.lags.append(400.0)  # missed onset: counted as very late
        self._add_shapes(pred, clip, n)

    def _add_shapes(self, pred: np.ndarray, clip: Clip, n: int) -> None:
        gap = pred[:, 0] - np.minimum(pred[:, 1], pred[:, 0])
        shape = pred[:, 2] + pred[:, 3] - pred[:, 4]
        free = self.lookahead + 0.05  # the mouth may open this early for the next sound
        first_speech = next((p.start for p in clip.phones if not is_pause(p.name)), None)
        for i, p in enumerate(clip.phones):
            a = max(0, int(np.ceil(p.start * FPS)))
            b = min(n, int(np.floor(p.end * FPS)))
            if b <= a:
                continue
            if is_pause(p.name):
                nxt = next((q.start for q in clip.phones[i + 1:] if not is_pause(q.name)), None)
                lo = a if p.start <= (first_speech or 0.0) else a + 5  # 50 ms to settle
                hi = b if nxt is None else min(b, int(np.floor((nxt - free) * FPS)))
                if hi > lo:
                    self.silent_all.append(pred[lo:hi, 0] < SILENT_JAW)
                prev_speech = i > 0 and not is_pause(clip.phones[i - 1].name)
                if prev_speech and p.end - p.start >= 0.3:
                    k = int(round((p.start + 0.08) * FPS))
                    if k < n:
                        self.released.append(bool(pred[k, 0] < RELEASED_JAW))
                continue
            jaw_t, close_t, funnel_t, pucker_t, stretch_t, roll_t = pose(p.name)
            m = (b - a) * 0.2
            middle = slice(int(a + m), max(int(a + m) + 1, int(b - m)))
            if roll_t >= 0.5:
                self.roll_labiodental.append(pred[middle, 6])
            else:
                self.roll_other.append(pred[a:b, 6])
            if is_bilabial(p.name):
                self.gap_bilabial.append(gap[middle])
                continue
            self.gap_other.append(gap[a:b])
            if funnel_t + pucker_t >= 0.7 and stretch_t == 0:
                self.shape_rounded.append(shape[a:b])
            elif stretch_t >= 0.35:
                self.shape_spread.append(shape[a:b])
            if jaw_t >= 0.7:
                self.jaw_open_vowel.append(pred[a:b, 0])
            elif jaw_t <= 0.2:
                self.jaw_consonant.append(pred[a:b, 0])

    def summary(self) -> dict[str, float]:
        jaw, tgt = np.concatenate(self.jaw), np.concatenate(self.target)
        sil = np.concatenate(self.silent) if self.silent else np.zeros(0, bool)
        lags = np.array(self.lags) if self.lags else np.array([np.nan])
        return {
            "r_jaw": float(np.corrcoef(jaw, tgt)[0, 1]) if jaw.std() > 0 else 0.0,
            "closure_recall": float(np.mean(self.closures)) if self.closures else float("nan"),
            "n_closures": float(len(self.closures)),
            "silence_closed": float(sil.mean()) if len(sil) else float("nan"),
            "onset_lag_ms": float(np.median(lags)),
            "onset_lag_mean_ms": float(np.mean(lags)),
            "n_onsets": float(len(self.lags)),
            "silence_closed_all": _mean(self.silent_all),
            "closed_after_80ms": float(np.mean(self.released)) if self.released else np.nan,
            "bilabial_shut": _mean([g <= CLOSED_GAP for g in self.gap_bilabial]),
            "other_shut": _mean([g <= CLOSED_GAP for g in self.gap_other]),
            "bilabial_auc": _auc(_cat(self.gap_other), _cat(self.gap_bilabial)),
            "rounded_auc": _auc(_cat(self.shape_rounded), _cat(self.shape_spread)),
            "jaw_open_vowels": _mean(self.jaw_open_vowel),
            "jaw_consonants": _mean(self.jaw_consonant),
            "labiodental_roll": _mean(self.roll_labiodental),
            "other_roll": _mean(self.roll_other),
            "labiodental_auc": _auc(_cat(self.roll_labiodental), _cat(self.roll_other)),
        }


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0)


def _mean(parts: list[np.ndarray]) -> float:
    x = _cat(parts)
    return float(np.mean(x)) if len(x) else float("nan")


def _auc(high: np.ndarray, low: np.ndarray) -> float:
    """P(a value from ``high`` > one from ``low``), ties half: the ROC area (Mann-Whitney)."""
    if not len(high) or not len(low):
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([high, low]))  # ties get their mean rank
    return float((ranks[: len(high)].sum() - len(high) * (len(high) + 1) / 2)
                 / (len(high) * len(low)))


def _pauses(clip: Clip) -> list[tuple[float, float]]:
    """(start, end) of runs of pause phones lasting >= 0.3 s."""
    out: list[tuple[float, float]] = []
    start: float | None = None
    end = 0.0
    for p in [*clip.phones, None]:
        if p is not None and is_pause(p.name):
            start = p.start if start is None else start
            end = p.end
            continue
        if start is not None and end - start >= 0.3:
            out.append((start, end))
        start = None
    return out


def _first_at_least(y: np.ndarray, level: float, a: int, b: int) -> int | None:
    hit = np.nonzero(y[a:b] >= level)[0]
    return a + int(hit[0]) if len(hit) else None
