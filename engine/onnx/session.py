"""onnxruntime sessions for the ``onnx`` backend: provider choice and clear errors.

Every problem a user can cause here (onnxruntime not installed, a damaged or foreign
``.onnx`` file, a file whose inputs are not the network's) is an :class:`EngineError` whose
one line says what to do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EngineError

INSTALL_HINT = "install it with: pip install 'avatar-vcam[onnx]' (or pip install onnxruntime)"


def require_onnxruntime() -> Any:
    """The ``onnxruntime`` module, or an EngineError saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise EngineError(f"--backend onnx needs onnxruntime, which is not installed; "
                          f"{INSTALL_HINT}") from None
    return onnxruntime


def require_onnx() -> Any:
    """The ``onnx`` package (needed to export), or an EngineError saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise EngineError("exporting to ONNX needs the onnx package, which is not installed; "
                          "install it with: pip install 'avatar-vcam[onnx]'") from None
    return onnx


def providers_for(device: str = "auto") -> list[str]:
    """Execution providers for ``device``: ``cpu`` -> CPU only; ``cuda``/``auto`` -> the
    CUDA EP first when this onnxruntime has it (TensorRT is not asked for: it builds its
    engines at first run, minutes), then the CPU EP."""
    ort = require_onnxruntime()
    available = ort.get_available_providers()
    if str(device) != "cpu" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _device_id(device: str) -> int:
    head, _, index = str(device).partition(":")
    return int(index) if head == "cuda" and index.isdigit() else 0


class OnnxNet:
    """One ``.onnx`` file in an onnxruntime session; ``net(name=array, ...)`` -> dict.

    ``inputs`` (name -> shape), when given, is checked against the file so a model exported
    for other shapes is refused at load time with a line naming the file.
    """

    def __init__(self, path: str | Path, device: str = "auto",
                 inputs: Mapping[str, Sequence[int]] | None = None, threads: int = 0) -> None:
        ort = require_onnxruntime()
        self.path = Path(path)
        redo = ("re-export it with `avatar-vcam models export-onnx` (or delete it: it is "
                "re-made)")
        if not self.path.is_file():
            raise EngineError(f"ONNX model not found: {self.path}; {redo}")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # no per-node warnings on stderr
        if threads:
            opts.intra_op_num_threads = threads
        names = providers_for(device)
        provider_opts = [{"device_id": _device_id(device)} if p == "CUDAExecutionProvider"
                         else {} for p in names]
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=names,
                                                provider_options=provider_opts)
        except Exception as exc:  # onnxruntime raises its own types for every bad file
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise EngineError(f"{self.path} is not a usable ONNX model ({first[:160]}); "
                              f"{redo}") from None
        self.providers = self.session.get_providers()
        self.input_shapes = {i.name: tuple(i.shape) for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]
        if inputs is not None:
            want = {k: tuple(v) for k, v in inputs.items()}
            if self.input_shapes != want:
                raise EngineError(f"{self.path} has inputs {self.input_shapes}, expected "
                                  f"{want} (exported for another network or size); {redo}")

    def __call__(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Run the model on float32 arrays; outputs by name."""
        feed = {k: np.ascontiguousarray(v, np.float32) for k, v in inputs.items()}
        outs = self.session.run(self.output_names, feed)
        return dict(zip(self.output_names, outs, strict=True))
