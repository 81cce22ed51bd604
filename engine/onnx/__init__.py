"""The ``onnx`` backend: every network the engine runs, exported to ONNX and run on
onnxruntime (see docs/onnx.md).

- :mod:`.export`: the exports (LivePortrait's seven networks, the Audio2Motion TCN step).
- :mod:`.liveportrait`: the LivePortrait renderer on onnxruntime.
- :mod:`.a2m`: the learned Audio2Motion on onnxruntime.
- :mod:`.session`: sessions, execution providers and one-line errors.

Importing this package imports neither torch nor onnxruntime.
"""

from __future__ import annotations

#: ``torch``: the networks run in PyTorch (and the learned Audio2Motion in numpy);
#: ``onnx``: they run on onnxruntime from their ONNX exports.
BACKENDS = ("torch", "onnx")

__all__ = ["BACKENDS"]
