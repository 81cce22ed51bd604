"""The learned Audio2Motion network: a small causal TCN over log-mel frames (torch, training).

Input (B, N_FEATURES, T) features at 100 frames/s; a 1x1 projection to ``channels``, then
residual blocks ``x += W_pw relu(causal_conv_k3_dilated(x))`` with dilations 1, 2, 4, 8, 16
(receptive field 63 frames = 0.63 s of past), then one 1x1 head per look-ahead. Head ``h``
at time ``j`` predicts the mouth at frame ``j - lookaheads[h]``: the same trunk serves every
look-ahead from 0 to 200 ms. Outputs are logits of jaw, close, funnel, pucker, stretch and
speaking (sigmoid -> 0..1).

Weights are shipped as a small ``.npz`` (float16) that :mod:`.learned` runs in numpy;
:func:`export_onnx` writes the same network for other runtimes.
"""

from __future__ import annotations

import warnings
import zipfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import EngineError
from .features import N_FEATURES
from .stream import N_OUT


@dataclass
class TcnDims:
    """Hyper-parameters of the network (stored with the weights)."""

    n_in: int = N_FEATURES
    channels: int = 64
    kernel: int = 3
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16)
    lookaheads: tuple[int, ...] = (0, 2, 4, 6, 8, 10, 14, 20)  # frames (10 ms each)
    n_out: int = N_OUT

    @property
    def receptive_field(self) -> int:
        return 1 + (self.kernel - 1) * sum(self.dilations)


class CausalTcn(nn.Module):
    """Causal TCN with one output head per look-ahead (see the module docstring)."""

    def __init__(self, dims: TcnDims | None = None) -> None:
        super().__init__()
        self.dims = d = dims or TcnDims()
        self.inp = nn.Conv1d(d.n_in, d.channels, 1)
        self.convs = nn.ModuleList(nn.Conv1d(d.channels, d.channels, d.kernel, dilation=r)
                                   for r in d.dilations)
        self.pws = nn.ModuleList(nn.Conv1d(d.channels, d.channels, 1) for _ in d.dilations)
        self.heads = nn.Conv1d(d.channels, d.n_out * len(d.lookaheads), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_in, T) -> logits (B, heads, n_out, T); all causal (left padding)."""
        h = self.inp(x)
        for conv, pw, r in zip(self.convs, self.pws, self.dims.dilations, strict=True):
            pad = (self.dims.kernel - 1) * r
            h = h + pw(torch.relu(conv(nn.functional.pad(h, (pad, 0)))))
        y = self.heads(torch.relu(h))
        return y.view(y.shape[0], len(self.dims.lookaheads), self.dims.n_out, y.shape[-1])


def save_npz(model: CausalTcn, path: Path, meta: dict | None = None) -> None:
    """Write the weights as float16 arrays plus the dims (and ``meta``, e.g. training info)."""
    arrays = {k: v.detach().cpu().numpy().astype(np.float16)
              for k, v in model.state_dict().items()}
    info = {"dims": asdict(model.dims), **(meta or {})}
    arrays["__meta__"] = np.frombuffer(repr(info).encode(), np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def expected_shapes(dims: TcnDims) -> dict[str, tuple[int, ...]]:
    """Array name -> shape, for every weight of a :class:`CausalTcn` with ``dims``."""
    c, heads = dims.channels, dims.n_out * len(dims.lookaheads)
    shapes = {"inp.weight": (c, dims.n_in, 1), "inp.bias": (c,)}
    for i in range(len(dims.dilations)):
        shapes |= {f"convs.{i}.weight": (c, c, dims.kernel), f"convs.{i}.bias": (c,),
                   f"pws.{i}.weight": (c, c, 1), f"pws.{i}.bias": (c,)}
    return shapes | {"heads.weight": (heads, c, 1), "heads.bias": (heads,)}


_READ_ERRORS = (OSError, EOFError, ValueError, TypeError, KeyError, SyntaxError,
                zipfile.BadZipFile, zlib.error)


def _dims_ok(dims: TcnDims) -> bool:
    """Whether ``dims`` describe a network :mod:`.learned` can run (features in, targets out)."""
    sizes = (dims.channels, dims.kernel, *dims.dilations)
    return ((dims.n_in, dims.n_out) == (N_FEATURES, N_OUT) and bool(dims.lookaheads)
            and all(type(v) is int and v > 0 for v in sizes)
            and all(type(v) is int and v >= 0 for v in dims.lookaheads))


def load_npz(path: Path) -> tuple[TcnDims, dict[str, np.ndarray], dict]:
    """Dims, float32 weights and the meta dict of a ``.npz`` written by :func:`save_npz`.

    Raises :class:`EngineError` (one line naming the file) when the file is missing, empty,
    not such a ``.npz``, lacks an array or holds one whose shape differs from the network's.
    """
    import ast

    path = Path(path)
    what = f"Audio2Motion weights {path}"
    fix = "retrain them with `avatar-vcam train-a2m` or use --a2m dsp"
    if not path.is_file():
        raise EngineError(f"Audio2Motion weights not found: {path}; train them with "
                          "`avatar-vcam train-a2m` or use --a2m dsp")
    if path.stat().st_size == 0:
        raise EngineError(f"{what} are unreadable: the file is empty (0 bytes); {fix}")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = ast.literal_eval(bytes(z["__meta__"]).decode())
            weights = {k: z[k].astype(np.float32) for k in z.files if k != "__meta__"}
        d = meta["dims"]
        dims = TcnDims(**{**d, "dilations": tuple(d["dilations"]),
                          "lookaheads": tuple(d["lookaheads"])})
        float(meta.get("jaw_gain", 1.0))
    except _READ_ERRORS:
        raise EngineError(f"{what} are unreadable: not a valid .npz of Audio2Motion weights "
                          f"(truncated, damaged or another kind of file); {fix}") from None
    if not _dims_ok(dims):
        raise EngineError(f"{what} are for another network (dims {asdict(dims)}); {fix}")
    for key, shape in expected_shapes(dims).items():
        if key not in weights:
            raise EngineError(f"{what} lack the array '{key}'; {fix}")
        if weights[key].shape != shape:
            raise EngineError(f"{what}: '{key}' has shape {weights[key].shape}, expected "
                              f"{shape}; {fix}")
    return dims, weights, meta


def torch_from_npz(path: Path) -> CausalTcn:
    """A :class:`CausalTcn` holding the weights of a ``.npz``."""
    dims, weights, _ = load_npz(path)
    model = CausalTcn(dims)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    return model.eval()


def export_onnx(npz: Path, out: Path, frames: int = 200) -> Path:
    """Export the network of ``npz`` to ONNX: input ``features`` (1, n_in, T), output
    ``motion`` (1, heads, n_out, T) as 0..1 values; T is a dynamic axis."""
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise EngineError("ONNX export needs the onnx package: pip install onnx") from None
    model = torch_from_npz(npz)

    class _WithSigmoid(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.net(x))

    x = torch.zeros(1, model.dims.n_in, frames)
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # constant-folding notes about the causal pads
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: no
        # onnxscript needed, and it handles the dynamic time axis of the causal convs
        torch.onnx.export(_WithSigmoid().eval(), (x,), str(out), input_names=["features"],
                          output_names=["motion"], dynamic_axes={"features": {2: "frames"},
                                                                 "motion": {3: "frames"}},
                          dynamo=False)
    return out

