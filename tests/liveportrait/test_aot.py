"""AOTInductor packages of warp + decode (CPU, fixtures): built once, then loaded and
serving the first frame of a new runtime; bad packages are rebuilt; the key follows the
weights."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from lp_testdata import rel_l2
from support.needs import require

from engine.renderers.liveportrait.aot import AotModule, weights_sha256
from engine.renderers.liveportrait.runtime import RuntimeOptions, WarpDecodeRuntime

TOL = 1e-4


@pytest.fixture(scope="module")
def args(fixtures) -> tuple[torch.Tensor, ...]:
    return (fixtures["W_in_feature_3d"], fixtures["W_in_kp_driving"],
            fixtures["W_in_kp_source"])


@pytest.fixture(scope="module")
def built(nets, args, tmp_path_factory):
    """A runtime that compiled its package in the foreground (one build, ~1 min on a CPU)."""
    require("gcc", "AOTInductor compiles C++ on the CPU")
    cache = tmp_path_factory.mktemp("lp-cache")
    (cache / "aot").mkdir()
    (cache / "aot" / "warp-decode-b1-stale0000.pt2").write_bytes(b"from an older torch")
    (cache / "aot" / "warp-decode-b8-other0000.pt2").write_bytes(b"another batch size")
    rt = WarpDecodeRuntime(nets.warping, nets.spade, args[0].shape[-1], "cpu",
                           RuntimeOptions(compile=True, aot=True, cache_dir=cache))
    out = rt(*args)
    return rt, cache, out


@torch.no_grad()
def test_package_is_built_once_and_computes_the_reference(nets, args, built) -> None:
    rt, cache, out = built
    assert isinstance(rt.compiled, AotModule) and rt.fn is rt.compiled
    packages = list((cache / "aot").glob("warp-decode-b1-*.pt2"))
    assert len(packages) == 1 and not list((cache / "aot").glob(".*"))  # no temp files left
    assert "stale" not in packages[0].name  # replaced; other batch sizes are left alone
    assert (cache / "aot" / "warp-decode-b8-other0000.pt2").exists()
    want = nets.spade(nets.warping(*args)["out"])
    assert rel_l2(out, want) < TOL


@torch.no_grad()
def test_a_restart_serves_its_first_frame_from_the_package(nets, args, built, monkeypatch
                                                            ) -> None:
    _, cache, out = built

    def no_build(self, *_):
        raise AssertionError("the package exists: nothing may be built")

    monkeypatch.setattr(AotModule, "_build", no_build)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)  # restored afterwards
    rt = WarpDecodeRuntime(nets.warping, nets.spade, args[0].shape[-1], "cpu",
                           RuntimeOptions(compile=True, aot=True, cache_dir=cache,
                                          background_compile=True))
    assert torch.backends.cudnn.benchmark is False  # eager frames: cuDNN's heuristic
    first = rt(*args)
    assert rt.fn is rt.compiled and rt.compiled_ready.is_set()  # no eager frame first
    assert torch.backends.cudnn.benchmark is True  # the package's convs are tuned
    assert rel_l2(first, out) < 1e-6


def test_a_package_that_does_not_load_is_deleted_for_a_rebuild(tmp_path, caplog) -> None:
    bad = tmp_path / "warp-decode-b1-0123.pt2"
    bad.write_bytes(b"PK\x03\x04 not really a package")
    aot = AotModule(torch.nn.Identity(), tmp_path)
    with caplog.at_level(logging.WARNING):
        assert aot._load(bad) is None
    assert not bad.exists()
    assert "does not load" in caplog.text and "building it again" in caplog.text


def test_the_package_key_follows_weights_shapes_and_options() -> None:
    conv = torch.nn.Conv2d(3, 4, 3)
    x = (torch.zeros(1, 3, 8, 8),)
    a = AotModule(conv, Path("/nonexistent"))
    p1 = a.path_for(x)
    assert p1.name.startswith("warp-decode-b1-") and p1.suffix == ".pt2"
    assert a.path_for((torch.zeros(2, 3, 8, 8),)).name.startswith("warp-decode-b2-")
    sha = weights_sha256(conv)
    with torch.no_grad():
        conv.weight[0, 0, 0, 0] += 1
    assert weights_sha256(conv) != sha
    b = AotModule(conv, p1.parent)
    assert b.path_for(x) != p1  # new weights, new package
    c = AotModule(conv, p1.parent, {"freezing": True})
    assert c.path_for(x) != b.path_for(x)
