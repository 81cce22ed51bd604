"""Native LivePortrait motion: per-frame codes replayed exactly (a ``.npz`` motion file).

A motion file holds, per frame N, either

- ``kp_driving`` (N, 21, 3): driving keypoints used as they are (PersonaLive-style 3-D
  keypoint input), or
- LivePortrait codes: ``exp`` (N, 21, 3) or (N, 63); pose as ``R`` (N, 3, 3) or
  ``pitch``/``yaw``/``roll`` (N,) degrees or (N, 66) bin logits; ``t`` (N, 3);
  ``scale`` (N,) or (N, 1); optional ``kp`` canonical keypoints (default: the source's),

and optionally ``stitch`` (scalar 0/1, default 0: exact replay). The driving keypoints are
``scale * (kp @ R + exp) + [tx, ty, 0]``, the same transform as the reference.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ...errors import EngineError
from .keypoints import pose_to_degrees, rotation_matrix, transform_keypoints

NUM_KP = 21


class MotionFileError(EngineError):
    """A native motion file is missing, unreadable or malformed."""


@dataclass
class NativeMotion:
    """Driving motion in LivePortrait's own terms (float32 tensors, first axis = frames)."""

    kp_driving: Tensor | None = None
    exp: Tensor | None = None
    rotation: Tensor | None = None
    t: Tensor | None = None
    scale: Tensor | None = None
    kp: Tensor | None = None
    stitch: bool = False

    def __len__(self) -> int:
        ref = self.kp_driving if self.kp_driving is not None else self.exp
        return 0 if ref is None else int(ref.shape[0])

    def keypoints(self, kp_source_canonical: Tensor) -> Tensor:
        """(N, 21, 3) driving keypoints; ``kp`` defaults to the source's canonical ones."""
        if self.kp_driving is not None:
            return self.kp_driving
        n = len(self)
        kp = self.kp if self.kp is not None else kp_source_canonical.expand(n, -1, -1)
        return transform_keypoints(kp, self.exp, self.rotation, self.t, self.scale)

    def slice(self, start: int, stop: int) -> NativeMotion:
        """Frames ``start:stop`` (for rendering a long file in batches)."""
        part = {k: (v[start:stop] if isinstance(v, Tensor) else v) for k, v in vars(self).items()}
        return NativeMotion(**part)

    def to(self, device: torch.device | str) -> NativeMotion:
        moved = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in vars(self).items()}
        return NativeMotion(**moved)


def _arr(data: dict, key: str, path: Path, shape_tail: tuple[int, ...], n: int | None
         ) -> Tensor:
    try:
        a = np.asarray(data[key], np.float32)
    except (TypeError, ValueError):
        raise MotionFileError(f"motion file {path}: '{key}' does not hold numbers "
                              f"(dtype {data[key].dtype})") from None
    if a.ndim == 0:
        raise MotionFileError(f"motion file {path}: '{key}' is a single number; it needs one "
                              "row per frame")
    if n is not None and a.shape[0] != n:
        raise MotionFileError(f"motion file {path}: '{key}' has {a.shape[0]} frames, "
                              f"expected {n}; every array needs one row per frame")
    try:
        a = a.reshape((a.shape[0], *shape_tail))
    except ValueError:
        raise MotionFileError(f"motion file {path}: '{key}' has shape {a.shape}, expected "
                              f"(frames, {', '.join(map(str, shape_tail))})") from None
    if not np.isfinite(a).all():
        raise MotionFileError(f"motion file {path}: '{key}' holds NaN or inf values")
    return torch.from_numpy(a)


def load_motion(path: str | Path) -> NativeMotion:
    """Read a ``.npz`` motion file (see module docstring); one-line errors."""
    path = Path(path)
    if not path.exists():
        raise MotionFileError(f"motion file {path} does not exist; check the path")
    if not path.is_file():
        raise MotionFileError(f"motion file {path} is not a file; give the path of a .npz")
    if path.stat().st_size == 0:
        raise MotionFileError(f"motion file {path} is empty (0 bytes); save the motion with "
                              f"numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except PermissionError:
        raise MotionFileError(f"motion file {path}: permission denied; check the file's "
                              f"permissions") from None
    except (OSError, EOFError, ValueError, TypeError, zipfile.BadZipFile, zlib.error):
        raise MotionFileError(f"motion file {path}: cannot read it as a .npz of numeric arrays "
                              f"(truncated, damaged, pickled objects or another kind of file); "
                              f"save it with numpy.savez") from None
    flag = data.pop("stitch", np.array(0))
    if flag.size != 1 or flag.dtype.kind not in "biuf":
        raise MotionFileError(f"motion file {path}: 'stitch' must be one number, 0 or 1")
    stitch = bool(flag.item())
    if "kp_driving" in data:
        return NativeMotion(kp_driving=_arr(data, "kp_driving", path, (NUM_KP, 3), None),
                            stitch=stitch)
    missing = [k for k in ("exp", "t", "scale") if k not in data]
    if "R" not in data and not all(k in data for k in ("pitch", "yaw", "roll")):
        missing.append("R or pitch/yaw/roll")
    if missing:
        raise MotionFileError(f"motion file {path}: missing {', '.join(missing)}; it needs "
                              f"kp_driving, or exp, pose, t and scale per frame")
    exp = _arr(data, "exp", path, (NUM_KP, 3), None)
    n = exp.shape[0]
    if "R" in data:
        rot = _arr(data, "R", path, (3, 3), n)
    else:
        deg = []
        for k in ("pitch", "yaw", "roll"):
            a = np.asarray(data[k], np.float32)
            a = a.reshape(a.shape[0], -1) if a.ndim else a.reshape(1, 1)
            deg.append(pose_to_degrees(_arr({k: a}, k, path, (a.shape[-1],), n)))
        rot = rotation_matrix(*deg)
    return NativeMotion(
        exp=exp, rotation=rot, t=_arr(data, "t", path, (3,), n),
        scale=_arr(data, "scale", path, (1,), n),
        kp=_arr(data, "kp", path, (NUM_KP, 3), n) if "kp" in data else None, stitch=stitch)


def save_motion(path: str | Path, motion: NativeMotion) -> None:
    """Write ``motion`` as a ``.npz`` motion file (R form)."""
    arrays: dict[str, np.ndarray] = {"stitch": np.array(int(motion.stitch))}
    for key, name in (("kp_driving", "kp_driving"), ("exp", "exp"), ("rotation", "R"),
                      ("t", "t"), ("scale", "scale"), ("kp", "kp")):
        value = getattr(motion, key)
        if value is not None:
            arrays[name] = value.detach().cpu().numpy()
    np.savez(path, **arrays)
