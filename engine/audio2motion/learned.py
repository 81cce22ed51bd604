"""Audio2Motion v2: the learned causal TCN (see :mod:`.tcn`), streamed in numpy.

Streaming works on the 100 frames/s grid of the audio sample clock: feature frame ``j`` is
the 25 ms window ending at ``t_j = j / 100`` s (any sample rate: the window and filterbank are
built per rate; a rate change mid-stream carries the retained samples over). Each push
analyses every newly complete frame in one batch: one gather, one ``rfft``, one filterbank
matmul, the causal normaliser, then per layer three matmuls over (new frames + the kept
context of ``2 * dilation`` frames). No per-sample or per-frame Python loops.

Look-ahead: head ``A`` frames gives the motion of frame ``j - A`` from features up to ``j``;
``lookahead_ms`` picks the largest trained look-ahead not above it (``self.lookahead`` is
the one used). Gaps read as silence; a gap of more than a second is skipped (0.7 s of
silence flushes the network's memory, then the stream jumps ahead).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .features import FPS, Normaliser, analysis, frame_powers, mute_before_stream
from .stream import FUNNEL, JAW, PUCKER, ROLL, SPEAK, STRETCH, MouthStream
from .tcn import TcnDims, load_npz

WEIGHTS = Path(__file__).with_name("weights") / "tcn_a2m.npz"
_CHUNK = 2000  # frames analysed per batch at most (bounds memory on huge pushes)
_GATED = [JAW, FUNNEL, PUCKER, STRETCH, ROLL]  # shapes held shut where the net hears no speech


class _NumpyTcn:
    """Streaming inference of :class:`.tcn.CausalTcn` for one head; keeps layer contexts."""

    def __init__(self, dims: TcnDims, w: dict[str, np.ndarray], head: int) -> None:
        self.dims = dims
        self.w_in = w["inp.weight"][:, :, 0].T.copy()  # (F, C)
        self.b_in = w["inp.bias"]
        self.convs = [(w[f"convs.{i}.weight"].transpose(2, 1, 0).copy(), w[f"convs.{i}.bias"],
                       w[f"pws.{i}.weight"][:, :, 0].T.copy(), w[f"pws.{i}.bias"])
                      for i in range(len(dims.dilations))]
        rows = slice(head * dims.n_out, (head + 1) * dims.n_out)
        self.w_head = w["heads.weight"][rows, :, 0].T.copy()  # (C, n_out)
        self.b_head = w["heads.bias"][rows]
        self.reset()

    def reset(self) -> None:
        c = self.dims.channels
        self.ctx = [np.zeros(((self.dims.kernel - 1) * r, c), np.float32)
                    for r in self.dims.dilations]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(n, F) features -> (n, n_out) values in 0..1."""
        n = len(x)
        h = x @ self.w_in + self.b_in
        for i, ((wc, bc, wp, bp), r) in enumerate(zip(self.convs, self.dims.dilations,
                                                       strict=True)):
            padded = np.concatenate([self.ctx[i], h])
            y = bc + sum(padded[t * r : t * r + n] @ wc[t] for t in range(len(wc)))
            h = h + np.maximum(y, 0.0) @ wp + bp
            self.ctx[i] = padded[n:]
        z = np.maximum(h, 0.0) @ self.w_head + self.b_head
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))


class LearnedAudio2Motion(MouthStream):
    """Streaming Audio2Motion from the shipped TCN; implements the Audio2Motion protocol.

    ``lookahead_ms``: audio after ``pts`` the motion may use (0-200 ms; the largest trained
    look-ahead not above it is used). ``weights``: a ``.npz`` from the training script.
    ``history_s``: how far back ``motion_at`` can answer.
    """

    hangover_s = 0.25  # speaking flag stays on through short pauses
    gap_flush_s = 0.7  # flushes the network's memory
    dead_zone = 0.03  # channel values below this read as 0 (a closed mouth is closed)
    jaw_dead_zone = 0.06  # the jaw's (chosen on the train split's real voices: silence
    # closed 91.7 -> 93.6 %, r 0.846 -> 0.843)
    # The shapes open only as far as the network's own speech head allows: 0 below
    # speech 0.3, full above 0.7 (a breath or a click the jaw head half-believes in stays
    # shut). Chosen on the train split's real voices: silence closed 94.2 -> 95.9 %, jaw
    # released within 80 ms 92.4 -> 94.4 %, r 0.846 -> 0.841.
    speech_gate = (0.3, 0.7)

    def __init__(self, lookahead_ms: float = 60.0, weights: str | Path | None = None,
                 history_s: float = 4.0) -> None:
        if not 0 <= lookahead_ms <= 1000:
            raise ValueError(f"lookahead_ms must be in 0..1000, got {lookahead_ms}")
        dims, w, self.meta = load_npz(Path(weights) if weights is not None else WEIGHTS)
        want = int(math.floor(lookahead_ms / 1000 * FPS + 1e-6))
        head = max(i for i, a in enumerate(dims.lookaheads) if a <= want or i == 0)
        # How wide the mouth opens per unit of target openness (weights meta; 1 = targets).
        self.jaw_gain = float(self.meta.get("jaw_gain", 1.0))
        self._ahead = dims.lookaheads[head]
        self.lookahead = self._ahead / FPS
        self._net = _NumpyTcn(dims, w, head)
        self._norm = Normaliser()
        self._init_stream(history_s)
        self._next_j = 0  # next feature frame to analyse
        self._last_act = -(10**9)
        self._cond = np.zeros(2, bool)  # speech condition of the last two frames
        self._s0 = 0

    # ---------------------------------------------------------------- streaming internals
    def _win_start(self, j: int | np.ndarray, sr: int) -> np.ndarray:
        """First sample of feature frame j's window at rate sr."""
        return np.round(np.asarray(j) * sr / FPS).astype(np.int64) - analysis(sr)[0]

    def _start(self, sr: int, pts: float) -> None:
        self._sr = sr
        j = math.ceil(pts * FPS - 1e-6)
        self._first = self._next_j = self._hist_end = j
        s = round(pts * sr)
        self._b0 = min(s, int(self._win_start(j, sr)))
        self._buf = np.zeros(s - self._b0, np.float32)  # silence before the stream
        self._s0 = s  # windows reaching before it hear nothing (a DC step is not a sound)

    def _jump(self, s: int) -> None:
        """Skip a long gap: frames inside it are neutral; resume analysis just before ``s``."""
        sr = self._sr
        assert sr is not None
        j = max(self._next_j, math.floor(s * FPS / sr))
        new_end = j - self._ahead
        for k in range(max(self._hist_end, new_end - self._cap), new_end):
            self._hist[k % self._cap] = 0.0
        self._hist_end = max(self._hist_end, new_end)
        self._cond[:] = False
        self._next_j = j
        start = int(self._win_start(j, sr))
        self._b0 = min(start, s)
        self._buf = np.zeros(s - self._b0, np.float32)

    def _process(self) -> None:
        """Analyse every frame whose window is complete, then drop samples no longer needed."""
        sr = self._sr
        assert sr is not None
        w = analysis(sr)[0]
        end = self._b0 + len(self._buf)
        while True:
            j0 = self._next_j
            js = np.arange(j0, min(math.floor(end * FPS / sr) + 2, j0 + _CHUNK))
            starts = self._win_start(js, sr)
            js, starts = js[starts + w <= end], starts[starts + w <= end]
            if not len(js):
                break
            if starts[0] < self._b0:  # after a rate change a window may reach back
                pad = int(self._b0 - starts[0])
                self._buf = np.concatenate([np.zeros(pad, np.float32), self._buf])
                self._b0 -= pad
            idx = (starts - self._b0)[:, None] + np.arange(w)
            bands = frame_powers(self._buf[idx], sr)
            mute_before_stream(bands, starts, self._s0)
            out = self._net(self._norm(bands))
            self._emit(js - self._ahead, out)
            self._next_j = int(js[-1]) + 1
        keep_from = int(self._win_start(self._next_j, sr))
        drop = min(keep_from - self._b0, len(self._buf))
        if drop > 0:
            self._buf = self._buf[drop:]
            self._b0 += drop

    def _emit(self, ks: np.ndarray, out: np.ndarray) -> None:
        """Store network outputs for output frames ``ks`` (ascending) in the history ring."""
        keep = ks >= self._first
        ks, out = ks[keep], out[keep]
        if not len(ks):
            return
        lo, hi = self.speech_gate
        gated = out.copy()
        gated[:, _GATED] *= np.clip((out[:, SPEAK] - lo) / (hi - lo), 0.0, 1.0)[:, None]
        dz = np.full(out.shape[1], self.dead_zone)
        dz[JAW] = self.jaw_dead_zone
        rows = np.clip((gated - dz) / (1.0 - dz), 0.0, 1.0)
        rows[:, JAW] = np.minimum(rows[:, JAW] * self.jaw_gain, 1.0)
        # Speaking: the network says speech *and* moves the jaw, for 3 frames in a row (a
        # 10-20 ms blip in noise must not flip the flag, e.g. an OBS "talking" scene).
        cond = np.concatenate([self._cond, (out[:, SPEAK] >= 0.5) & (out[:, JAW] >= 0.1)])
        self._cond = cond[-2:]
        held = cond[2:] & cond[1:-1] & cond[:-2]
        act = np.where(held, ks, -(10**9))
        last = np.maximum.accumulate(np.maximum(act, self._last_act))
        self._last_act = int(last[-1])
        rows[:, SPEAK] = last >= ks - round(self.hangover_s * FPS)
        ks, rows = ks[-self._cap :], rows[-self._cap :]
        self._hist[ks % self._cap] = rows
        self._hist_end = int(ks[-1]) + 1
