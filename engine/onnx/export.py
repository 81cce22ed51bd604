"""Export the networks the engine runs to ONNX (fixed shapes, batch 1, opset 20).

LivePortrait: one file per network, named as in :data:`LP_FILES`, plus ``onnx.json`` (written
last: a folder without it is an unfinished export). The warping network's 5-D
``grid_sample`` becomes the standard ``GridSample`` operator (opset 20 takes N-D input), so
no custom operator or plugin is needed. Audio2Motion: the causal TCN as one streaming step
(:func:`export_a2m_step`): features of the new frames plus each layer's kept context in,
motion of all look-ahead heads plus the new contexts out.

Exports use torch's TorchScript exporter (``dynamo=False``): it needs only the ``onnx``
package (the dynamo exporter would need onnxscript too).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import EngineError
from .session import require_onnx

OPSET = 20
FORMAT = 1  # bump when the exported graphs change: cached exports are then re-made
MANIFEST = "onnx.json"
MOTION_OUTPUTS = ("pitch", "yaw", "roll", "t", "exp", "scale", "kp")
WARP_OUTPUTS = ("out", "occlusion_map", "deformation")
MLPS = {"stitching": (126, 65), "lip": (65, 63), "eye": (66, 63)}
LP_FILES = ("appearance", "motion", "warping", "spade", *MLPS)


def lp_shapes(input_size: int) -> dict[str, dict[str, dict[str, tuple[int, ...]]]]:
    """Network -> {"inputs": name -> shape, "outputs": name -> shape} at ``input_size``."""
    n, h = input_size, input_size // 4
    kp = (1, 21, 3)
    shapes = {
        "appearance": {"inputs": {"image": (1, 3, n, n)},
                       "outputs": {"feature": (1, 32, 16, h, h)}},
        "motion": {"inputs": {"image": (1, 3, n, n)},
                   "outputs": {"pitch": (1, 66), "yaw": (1, 66), "roll": (1, 66),
                               "t": (1, 3), "exp": (1, 63), "scale": (1, 1), "kp": (1, 63)}},
        "warping": {"inputs": {"feature_3d": (1, 32, 16, h, h), "kp_driving": kp,
                               "kp_source": kp},
                    "outputs": {"out": (1, 256, h, h), "occlusion_map": (1, 1, h, h),
                                "deformation": (1, 16, h, h, 3)}},
        "spade": {"inputs": {"feature": (1, 256, h, h)},
                  "outputs": {"image": (1, 3, 2 * n, 2 * n)}},
    }
    for name, (n_in, n_out) in MLPS.items():
        shapes[name] = {"inputs": {"x": (1, n_in)}, "outputs": {"y": (1, n_out)}}
    return shapes


class _MotionTuple(nn.Module):
    """The motion extractor with its dict output as a tuple in :data:`MOTION_OUTPUTS` order."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        out = self.net(image)
        return tuple(out[k] for k in MOTION_OUTPUTS)


class _WarpTuple(nn.Module):
    """The warping network with its dict output as a tuple in :data:`WARP_OUTPUTS` order."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, feature_3d: Tensor, kp_driving: Tensor,
                kp_source: Tensor) -> tuple[Tensor, ...]:
        out = self.net(feature_3d, kp_driving, kp_source)
        return tuple(out[k] for k in WARP_OUTPUTS)


def export_module(module: nn.Module, args: Sequence[Tensor], path: Path,
                  input_names: Sequence[str], output_names: Sequence[str],
                  dynamic_axes: dict[str, dict[int, str]] | None = None) -> Path:
    """``torch.onnx.export`` at opset 20 into ``path`` (written to a temporary name, then
    renamed, so an interrupted export never leaves a half file under the real name)."""
    require_onnx()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.part")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes
            torch.onnx.export(module.eval(), tuple(args), str(tmp), opset_version=OPSET,
                              input_names=list(input_names), output_names=list(output_names),
                              dynamic_axes=dynamic_axes, do_constant_folding=True,
                              dynamo=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def export_liveportrait(nets: object, folder: str | Path, input_size: int = 256,
                        names: Iterable[str] = LP_FILES, source: str = "") -> dict[str, Path]:
    """Export the LivePortrait networks of ``nets`` (a ``LivePortraitNetworks``, fp32) to
    ``folder/<name>.onnx`` at ``input_size`` (the renderer's: 256; the fixtures': 128).
    ``source`` (e.g. a fingerprint of the weights) is kept in the manifest."""
    if input_size % 32:
        raise EngineError(f"ONNX export: input size must be a multiple of 32, got {input_size}")
    folder = Path(folder)
    names = tuple(names)
    unknown = set(names) - set(LP_FILES)
    if unknown:
        raise EngineError(f"ONNX export: unknown network(s) {sorted(unknown)}; "
                          f"available: {', '.join(LP_FILES)}")
    shapes = lp_shapes(input_size)
    modules: dict[str, nn.Module] = {
        "appearance": nets.appearance, "motion": _MotionTuple(nets.motion),
        "warping": _WarpTuple(nets.warping), "spade": nets.spade,
        **{k: getattr(nets.retargeting, k) for k in MLPS},
    }
    gen = torch.Generator().manual_seed(0)
    paths = {}
    for name in names:
        module = modules[name]
        device = next(module.parameters()).device
        ins = shapes[name]["inputs"]
        example = [_example(k, s, gen).to(device) for k, s in ins.items()]
        paths[name] = export_module(module, example, folder / f"{name}.onnx", list(ins),
                                    list(shapes[name]["outputs"]))
    manifest = {"format": FORMAT, "opset": OPSET, "input_size": input_size, "source": source,
                "networks": {k: {io: {n: list(s) for n, s in v.items()} for io, v in
                                 shapes[k].items()} for k in names}}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return paths


def _example(name: str, shape: tuple[int, ...], gen: torch.Generator) -> Tensor:
    """A plausible example input (the graphs are traced: values only steer nothing)."""
    if name.startswith("kp"):
        return 0.3 * torch.randn(shape, generator=gen)
    return torch.rand(shape, generator=gen)


def weights_fingerprint(files: Iterable[Path]) -> str:
    """A short hash of the files' names, sizes and modification times."""
    h = hashlib.sha256()
    for f in sorted(Path(p) for p in files):
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def manifest_ok(folder: Path, input_size: int, source: str = "",
                names: Iterable[str] = LP_FILES) -> bool:
    """Whether ``folder`` holds a finished export of ``names`` at ``input_size`` from
    ``source``, in this version's format."""
    try:
        m = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(m, dict) and m.get("format") == FORMAT
            and m.get("input_size") == input_size and m.get("source") == source
            and set(names) <= set(m.get("networks", {}))
            and all((Path(folder) / f"{n}.onnx").is_file() for n in names))


# --------------------------------------------------------------------------- Audio2Motion

class TcnStep(nn.Module):
    """One streaming step of a :class:`~engine.audio2motion.tcn.CausalTcn`.

    ``features`` (1, n_in, n) of the ``n`` new frames and, per layer ``i``, ``ctx_i``
    (1, C, (k - 1) * d_i): the last frames of that layer's input. Returns ``motion``
    (1, heads, n_out, n) in 0..1 and the new contexts: the same sums as the whole-sequence
    network, chunk by chunk, as :mod:`~engine.audio2motion.learned` runs it in numpy.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        d = net.dims
        self.ctx_len = [(d.kernel - 1) * r for r in d.dilations]

    def forward(self, features: Tensor, *ctx: Tensor) -> tuple[Tensor, ...]:
        net, d = self.net, self.net.dims
        h = net.inp(features)
        new = []
        for conv, pw, c, k in zip(net.convs, net.pws, ctx, self.ctx_len, strict=True):
            padded = torch.cat([c, h], dim=2)
            new.append(padded[:, :, -k:])
            h = h + pw(torch.relu(conv(padded)))
        y = torch.sigmoid(net.heads(torch.relu(h)))
        return (y.reshape(1, len(d.lookaheads), d.n_out, -1), *new)


def a2m_step_shapes(dims: object) -> dict[str, tuple]:
    """Input name -> shape of the streaming step (``"frames"``: the dynamic axis)."""
    shapes: dict[str, tuple] = {"features": (1, dims.n_in, "frames")}
    for i, r in enumerate(dims.dilations):
        shapes[f"ctx_{i}"] = (1, dims.channels, (dims.kernel - 1) * r)
    return shapes


def export_a2m_step(npz: str | Path, out: str | Path) -> Path:
    """Export the TCN of the weights ``npz`` as a streaming step (see :class:`TcnStep`).
    Batch 1 and the contexts are fixed; the number of new frames per push is dynamic."""
    from ..audio2motion.tcn import torch_from_npz

    step = TcnStep(torch_from_npz(Path(npz)))
    shapes = a2m_step_shapes(step.net.dims)
    args = [torch.zeros(1, step.net.dims.n_in, 20)]
    args += [torch.zeros(s) for k, s in shapes.items() if k != "features"]
    outs = ["motion", *[f"new_ctx_{i}" for i in range(len(step.ctx_len))]]
    return export_module(step, args, Path(out), list(shapes), outs,
                         dynamic_axes={"features": {2: "frames"}, "motion": {3: "frames"}})


def file_digest(path: Path) -> str:
    """First 16 hex digits of the file's sha256."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
