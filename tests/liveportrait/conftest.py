"""Shared LivePortrait test data: the manifest, the fixtures and synthesised checkpoints.

Checkpoint files are synthesised once per session with the project-provided rule
(``synth_weights.py``) from the manifest's keys and shapes, saved with ``torch.save`` the
way the official release lays them out, and read back through the package's loader.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lp_testdata import FIXTURES, load_manifest, synth_checkpoint


@pytest.fixture(scope="session")
def manifest() -> dict:
    return load_manifest()


@pytest.fixture(scope="session")
def fixtures() -> dict[str, torch.Tensor]:
    with np.load(FIXTURES / "fixtures.npz") as data:
        return {k: torch.from_numpy(data[k]) for k in data.files}


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory: pytest.TempPathFactory, manifest: dict) -> Path:
    """A folder in the official layout (base_models/, retargeting_models/)."""
    from engine.renderers.liveportrait import NETWORKS

    root = tmp_path_factory.mktemp("liveportrait")
    for filename, sub, _ in NETWORKS.values():
        (root / sub).mkdir(exist_ok=True)
        torch.save(synth_checkpoint(filename, manifest), root / sub / filename)
    return root


@pytest.fixture(scope="session")
def nets(weights_dir: Path):
    from engine.renderers.liveportrait import load_networks

    return load_networks(weights_dir)
