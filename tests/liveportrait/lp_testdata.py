"""LivePortrait test data helpers: manifest, fixtures and synthesised checkpoints.

The stand-in weights come from the project-provided rule in ``synth_weights.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from synth_weights import synth_state_dict

FIXTURES = Path(__file__).parent.parent / "fixtures" / "liveportrait"
STITCHING_FILE = "stitching_retargeting_module.pth"


def rel_l2(got: torch.Tensor, want: torch.Tensor) -> float:
    """Relative L2 error of ``got`` against ``want`` (same shapes), in float64."""
    assert got.shape == want.shape, (tuple(got.shape), tuple(want.shape))
    return float((got.double() - want.double()).norm() / want.double().norm())


def load_manifest() -> dict:
    """manifest.json: ``config`` and ``checkpoints`` (file -> key -> [shape, dtype])."""
    return json.loads((FIXTURES / "manifest.json").read_text())


def shapes_of(entries: dict) -> dict[str, tuple[int, ...]]:
    """Manifest entries -> key -> shape."""
    return {k: tuple(shape) for k, (shape, _dtype) in entries.items()}


def synth_checkpoint(filename: str, manifest: dict) -> dict:
    """The object the official file holds, with the stand-in weights of the fixtures.

    The stitching file is a dict of three state_dicts; the fixtures' weights for it were
    synthesised from keys qualified by the dict entry (``retarget_eye.mlp.0.weight``), and
    saved with the DDP ``module.`` prefix that the published file carries.
    """
    entries = manifest["checkpoints"][filename]
    if filename != STITCHING_FILE:
        return synth_state_dict(shapes_of(entries))
    out = {}
    for part, part_entries in entries.items():
        sd = synth_state_dict({f"{part}.{k}": s for k, s in shapes_of(part_entries).items()})
        out[part] = {"module." + k.removeprefix(part + "."): v for k, v in sd.items()}
    return out
