"""--renderer auto and --device auto are the defaults: the best renderer this machine runs."""

from __future__ import annotations

import pytest
import torch

from engine import EngineConfig
from engine.errors import EngineError
from engine.renderers import make_renderer, resolve_device


def test_auto_is_the_default():
    c = EngineConfig()
    assert (c.renderer, c.device) == ("auto", "auto")


def test_auto_device_is_the_gpu_when_torch_sees_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda:1") == "cuda:1" and resolve_device("cpu") == "cpu"


def test_auto_without_gpu_or_weights_is_warp_on_the_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("AVATAR_VCAM_MODELS", str(tmp_path))  # no LivePortrait weights here
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    r = make_renderer("auto", "auto")
    assert r.name == "warp" and r.device.type == "cpu"


def test_unknown_device_names_auto_in_its_error():
    with pytest.raises(EngineError, match="--device auto, cpu, cuda or cuda:N"):
        make_renderer("warp", "tpu9")
