"""Load the official LivePortrait checkpoints into this package's networks.

Checkpoint keys are mapped once, here: the ``module.`` prefix of the stitching file is
stripped and SPADE's spectral-norm triplets are folded into plain weights. Every file is
checked against the network before a strict ``load_state_dict``; a missing or mismatched
file raises :class:`WeightsError` with a one-line message naming the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ...errors import EngineError
from .appearance import AppearanceFeatureExtractor
from .motion_extractor import MotionExtractor
from .spade import SPECTRAL_SUFFIXES, SPADEGenerator, fold_spectral_norm
from .stitching import CHECKPOINT_PARTS, Retargeting
from .warping import WarpingNetwork

# network name -> (checkpoint file, sub-folder of the official release, constructor)
NETWORKS: dict[str, tuple[str, str, Callable[[], nn.Module]]] = {
    "appearance": ("appearance_feature_extractor.pth", "base_models", AppearanceFeatureExtractor),
    "motion": ("motion_extractor.pth", "base_models", MotionExtractor),
    "warping": ("warping_module.pth", "base_models", WarpingNetwork),
    "spade": ("spade_generator.pth", "base_models", SPADEGenerator),
    "retargeting": (
        "stitching_retargeting_module.pth", "retargeting_models", Retargeting
    ),
}

HINT = "download the official LivePortrait weights (HF KwaiVGI/LivePortrait, MIT) into"


class WeightsError(EngineError):
    """A LivePortrait checkpoint is missing, unreadable or does not fit the network."""


@dataclass
class LivePortraitNetworks:
    """The five LivePortrait networks, loaded and in eval mode."""

    appearance: AppearanceFeatureExtractor
    motion: MotionExtractor
    warping: WarpingNetwork
    spade: SPADEGenerator
    retargeting: Retargeting


def find_checkpoint(folder: str | Path, name: str) -> Path:
    """Path of network ``name``'s file in ``folder`` (flat, or the official sub-folders)."""
    filename, sub, _ = NETWORKS[name]
    folder = Path(folder)
    for cand in (folder / filename, folder / sub / filename,
                 folder / "liveportrait" / sub / filename):
        if cand.is_file():
            return cand
    raise WeightsError(f"LivePortrait weights: {filename} not found in {folder} "
                       f"(nor {sub}/); {HINT} {folder}")


def _read(path: Path) -> dict:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file gets the same advice
        raise WeightsError(f"LivePortrait weights: cannot read {path} "
                           f"({type(exc).__name__}); re-download it") from exc
    if not isinstance(obj, Mapping):
        raise WeightsError(f"LivePortrait weights: {path} is not a state_dict "
                           f"({type(obj).__name__}); re-download it")
    return dict(obj)


def _strip_prefix(sd: Mapping[str, Tensor], prefix: str = "module.") -> dict[str, Tensor]:
    return {k.removeprefix(prefix): v for k, v in sd.items()}


def _sample(keys: Iterable[str], n: int = 3) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def check_state_dict(module: nn.Module, sd: Mapping[str, Tensor], where: str) -> None:
    """Raise WeightsError unless ``sd`` has exactly ``module``'s keys and shapes."""
    want = module.state_dict()
    problems = []
    if missing := want.keys() - sd.keys():
        problems.append(f"missing {len(missing)} key(s): {_sample(missing)}")
    if unexpected := sd.keys() - want.keys():
        problems.append(f"unexpected {len(unexpected)} key(s): {_sample(unexpected)}")
    bad = [k for k in want.keys() & sd.keys()
           if not isinstance(sd[k], Tensor) or sd[k].shape != want[k].shape]
    if bad:
        k = sorted(bad)[0]
        got = tuple(sd[k].shape) if isinstance(sd[k], Tensor) else type(sd[k]).__name__
        problems.append(f"{len(bad)} wrong shape(s), e.g. {k} is {got}, "
                        f"expected {tuple(want[k].shape)}")
    if problems:
        raise WeightsError(f"LivePortrait weights: {where} does not match the network "
                           f"({'; '.join(problems)}); re-download the official file")


def _load_into(module: nn.Module, sd: Mapping[str, Tensor], where: str) -> None:
    check_state_dict(module, sd, where)
    module.load_state_dict(sd, strict=True, assign=True)


def load_network(name: str, path: str | Path) -> nn.Module:
    """Build network ``name`` (a key of NETWORKS) and load ``path`` into it; eval, CPU, fp32."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"LivePortrait weights: {path} not found; {HINT} {path.parent}")
    return network_from_state_dict(name, _read(path), str(path))


def network_from_state_dict(name: str, sd: Mapping, where: str = "state_dict") -> nn.Module:
    """Build network ``name`` from an official-layout state_dict held in memory."""
    with torch.device("meta"):  # no init cost: every tensor comes from ``sd``
        module = NETWORKS[name][2]()
    if name == "retargeting":
        for part, attr in CHECKPOINT_PARTS.items():
            if not isinstance(sd.get(part), Mapping):
                raise WeightsError(f"LivePortrait weights: {where} has no '{part}' state_dict; "
                                   f"re-download the official file")
            _load_into(getattr(module, attr), _strip_prefix(sd[part]), f"{where} [{part}]")
    else:
        if name == "spade":
            sd = _fold(dict(sd), where)
        _load_into(module, sd, where)
    return module.eval().requires_grad_(False)


def _fold(sd: dict[str, Tensor], path: str) -> dict[str, Tensor]:
    prefixes = {k.rpartition(".")[0] for k in sd if k.rpartition(".")[2] in SPECTRAL_SUFFIXES}
    incomplete = [f"{p}.{s}" for p in sorted(prefixes) for s in SPECTRAL_SUFFIXES
                  if f"{p}.{s}" not in sd]
    if incomplete:
        raise WeightsError(f"LivePortrait weights: {path} does not match the network "
                           f"(missing {len(incomplete)} key(s): {_sample(incomplete)}); "
                           f"re-download the official file")
    try:
        return fold_spectral_norm(sd)
    except RuntimeError as exc:  # shapes of W_orig, u, v disagree
        raise WeightsError(f"LivePortrait weights: {path} has inconsistent spectral-norm "
                           f"tensors ({exc}); re-download the official file") from exc


def load_networks(folder: str | Path, device: str | torch.device = "cpu",
                  dtype: torch.dtype = torch.float32) -> LivePortraitNetworks:
    """Load all five networks from ``folder`` (flat or the official layout) onto ``device``."""
    nets = {name: load_network(name, find_checkpoint(folder, name)) for name in NETWORKS}
    return LivePortraitNetworks(**{k: v.to(device=device, dtype=dtype) for k, v in nets.items()})
