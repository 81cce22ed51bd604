"""The learned Audio2Motion on onnxruntime (``--backend onnx``).

Everything but the network is :class:`~engine.audio2motion.learned.LearnedAudio2Motion`'s
own (features, normaliser, gating, history); the TCN runs as the streaming step of
:func:`.export.export_a2m_step`, one session call per push, on onnxruntime's CPU provider
(the network is ~0.1 MFLOP a frame: a GPU round trip every 10 ms would cost more than it
computes). The export is made once per weights file into ``<models>/onnx/a2m-<digest>.onnx``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..audio2motion.learned import WEIGHTS, LearnedAudio2Motion
from ..audio2motion.tcn import TcnDims
from .export import a2m_step_shapes, export_a2m_step, file_digest
from .session import OnnxNet, require_onnxruntime

log = logging.getLogger(__name__)


class OrtTcn:
    """Streaming TCN over an ONNX step; the interface of ``learned._NumpyTcn``."""

    def __init__(self, net: OnnxNet, dims: TcnDims, head: int) -> None:
        self.net, self.dims, self.head = net, dims, head
        self.reset()

    def reset(self) -> None:
        """Forget the layers' context (as at the start of a stream)."""
        c, k = self.dims.channels, self.dims.kernel
        self.ctx = [np.zeros((1, c, (k - 1) * r), np.float32) for r in self.dims.dilations]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(n, F) features -> (n, n_out) values in 0..1 of this head."""
        feed = {"features": np.ascontiguousarray(np.asarray(x, np.float32).T[None])}
        feed |= {f"ctx_{i}": c for i, c in enumerate(self.ctx)}
        out = self.net(**feed)
        self.ctx = [out[f"new_ctx_{i}"] for i in range(len(self.ctx))]
        return out["motion"][0, self.head].T


def ensure_a2m_exported(weights: str | Path | None = None, root: Path | None = None) -> Path:
    """The streaming-step ONNX file of ``weights`` (default: the shipped ones), exported
    first if it is not in the cache yet."""
    from ..renderers.liveportrait.weights import models_root

    npz = Path(weights) if weights is not None else WEIGHTS
    root = Path(root) if root is not None else models_root() / "onnx"
    path = root / f"a2m-{file_digest(npz)}.onnx"
    if not path.is_file():
        log.info("exporting the Audio2Motion TCN to ONNX in %s (once)", path)
        export_a2m_step(npz, path)
    return path


class OnnxLearnedAudio2Motion(LearnedAudio2Motion):
    """:class:`LearnedAudio2Motion` whose network runs on onnxruntime (same outputs)."""

    def __init__(self, lookahead_ms: float = 60.0, weights: str | Path | None = None,
                 history_s: float = 4.0, onnx_path: str | Path | None = None) -> None:
        require_onnxruntime()
        super().__init__(lookahead_ms=lookahead_ms, weights=weights, history_s=history_s)
        dims = self._net.dims
        head = max(i for i, a in enumerate(dims.lookaheads) if a == self._ahead)
        path = Path(onnx_path) if onnx_path is not None else ensure_a2m_exported(weights)
        self._net = OrtTcn(OnnxNet(path, "cpu", a2m_step_shapes(dims), threads=1), dims, head)
