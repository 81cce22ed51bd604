"""The LivePortrait networks exported to ONNX and run on onnxruntime (CPU provider).

Exported once per session at the fixtures' input size (128) from the synthesised weights,
through the same cache path ``--backend onnx`` uses. Conformance: each network's ONNX
output against the reference fixtures and against the torch network, rel L2 < 1e-4 (fp32).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from lp_testdata import rel_l2

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from engine.errors import EngineError  # noqa: E402
from engine.onnx.export import (  # noqa: E402
    LP_FILES,
    MOTION_OUTPUTS,
    OPSET,
    WARP_OUTPUTS,
    lp_shapes,
    manifest_ok,
)
from engine.onnx.liveportrait import (  # noqa: E402
    OnnxLivePortrait,
    cache_folder,
    ensure_exported,
    make_onnx_renderer,
)
from engine.onnx.session import OnnxNet  # noqa: E402

TOL = 1e-4
SIZE = 128  # the fixtures' input size
MLP_FIXTURES = {"stitching": "retarget_shoulder", "lip": "retarget_mouth", "eye": "retarget_eye"}


@pytest.fixture(scope="session")
def onnx_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def exported(weights_dir: Path, onnx_root: Path) -> Path:
    return ensure_exported(weights_dir, SIZE, root=onnx_root)


@pytest.fixture(scope="session")
def ort_nets(exported: Path) -> OnnxLivePortrait:
    return OnnxLivePortrait(exported, SIZE, device="cpu")


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a))


# 1. the exported graphs -------------------------------------------------------------------

def test_every_network_is_exported_with_fixed_shapes(exported: Path, weights_dir: Path,
                                                     onnx_root: Path) -> None:
    shapes = lp_shapes(SIZE)
    folder, fingerprint = cache_folder(weights_dir, SIZE, onnx_root)
    assert folder == exported and manifest_ok(exported, SIZE, fingerprint)
    for name in LP_FILES:
        model = onnx.load(exported / f"{name}.onnx", load_external_data=False)
        assert model.opset_import[0].version == OPSET
        got = {i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim)
               for i in model.graph.input}
        assert got == shapes[name]["inputs"], name
        outs = {o.name: tuple(d.dim_value for d in o.type.tensor_type.shape.dim)
                for o in model.graph.output}
        assert outs == shapes[name]["outputs"], name


def test_warping_grid_sample_is_the_standard_5d_operator(exported: Path) -> None:
    """The 5-D grid_sample is ONNX's own GridSample (opset 20), no custom op or plugin."""
    model = onnx.shape_inference.infer_shapes(onnx.load(exported / "warping.onnx"))
    onnx.checker.check_model(model)
    ranks = {v.name: len(v.type.tensor_type.shape.dim)
             for v in [*model.graph.value_info, *model.graph.input]}
    samples = [n for n in model.graph.node if n.op_type == "GridSample"]
    assert len(samples) == 2  # the sparse motions, then the feature volume
    for node in samples:
        assert node.domain == "" and ranks[node.input[0]] == 5
        mode = next(a.s for a in node.attribute if a.name == "mode")
        assert mode == b"linear"
    assert {n.domain for n in model.graph.node} == {""}


# 2. conformance ---------------------------------------------------------------------------

def test_appearance(ort_nets, nets, fixtures) -> None:
    got = ort_nets.appearance(fixtures["img"])
    assert rel_l2(got, fixtures["F_out"]) < TOL
    with torch.no_grad():
        assert rel_l2(got, nets.appearance(fixtures["img"])) < TOL


def test_motion_extractor(ort_nets, nets, fixtures) -> None:
    got = ort_nets.motion(fixtures["img"])
    with torch.no_grad():
        ref = nets.motion(fixtures["img"])
    assert set(got) == set(MOTION_OUTPUTS)
    for key in MOTION_OUTPUTS:
        assert rel_l2(got[key], fixtures[f"M_out_{key}"]) < TOL, key
        assert rel_l2(got[key], ref[key]) < TOL, key


def test_warping(ort_nets, nets, fixtures) -> None:
    args = (fixtures["W_in_feature_3d"], fixtures["W_in_kp_driving"], fixtures["W_in_kp_source"])
    got = ort_nets.runtime.warp(*(a.numpy() for a in args))
    with torch.no_grad():
        ref = nets.warping(*args)
    for key in WARP_OUTPUTS:
        assert rel_l2(_t(got[key]), fixtures[f"W_out_{key}"]) < TOL, key
        assert rel_l2(_t(got[key]), ref[key]) < TOL, key


def test_spade(ort_nets, nets, fixtures) -> None:
    got = _t(ort_nets.sessions["spade"](feature=fixtures["G_in_feature"].numpy())["image"])
    assert rel_l2(got, fixtures["G_out"]) < TOL
    with torch.no_grad():
        assert rel_l2(got, nets.spade(fixtures["G_in_feature"])) < TOL


@pytest.mark.parametrize("name", list(MLP_FIXTURES))
def test_retargeting_mlps(ort_nets, nets, fixtures, name: str) -> None:
    part = MLP_FIXTURES[name]
    x = fixtures[f"S_in_{part}"]  # two rows: run row by row through the batch-1 graph
    got = getattr(ort_nets.retargeting, name)(x)
    assert rel_l2(got, fixtures[f"S_out_{part}"]) < TOL
    with torch.no_grad():
        assert rel_l2(got, getattr(nets.retargeting, name)(x)) < TOL


def test_warp_decode_batch_of_rows(ort_nets, nets, fixtures) -> None:
    """W then G on a batch of 2 (row by row) equals the torch networks."""
    f = fixtures["W_in_feature_3d"].expand(2, -1, -1, -1, -1)
    kp_s = fixtures["W_in_kp_source"].expand(2, -1, -1)
    kp_d = torch.cat([fixtures["W_in_kp_driving"], fixtures["W_in_kp_source"]])
    got = ort_nets.runtime(f, kp_d, kp_s)
    with torch.no_grad():
        ref = nets.spade(nets.warping(f, kp_d, kp_s)["out"])
    assert got.shape == (2, 3, 2 * SIZE, 2 * SIZE)
    assert rel_l2(got, ref) < TOL


# 3. the renderer on onnxruntime -----------------------------------------------------------

def test_renderer_onnx_matches_torch(exported: Path, nets) -> None:
    from avatars import load
    from engine.motion import vector, zeros
    from engine.renderers.liveportrait.renderer import LivePortraitRenderer

    leo = dataclasses.replace(load("leo"), renderer={"liveportrait": {"crop_scale": 1.2}})
    ref = LivePortraitRenderer(device="cpu", nets=nets, input_size=SIZE)
    ort = make_onnx_renderer(device="cpu", input_size=SIZE, folder=exported)
    assert ort.backend == "onnx" and ort.providers == ["CPUExecutionProvider"]
    s_ref, s_ort = ref.prepare(leo, 128), ort.prepare(leo, 128)
    assert rel_l2(s_ort.f_s, s_ref.f_s) < TOL
    assert rel_l2(s_ort.source.x_s, s_ref.source.x_s) < TOL
    motions = np.stack([zeros(), vector({"jawOpen": 0.8, "pitch": 5.0, "yaw": -8.0})])
    motions[1, 0:52] += 0.4  # every blendshape on too: lips, eyes, expression rows
    x_ref, x_ort = s_ref.mapper.map(_t(motions)), s_ort.mapper.map(_t(motions))
    assert rel_l2(x_ort, x_ref) < TOL
    assert rel_l2(ort.crops(s_ort, x_ort), ref.crops(s_ref, x_ref)) < TOL
    a, b = ref.render(s_ref, motions), ort.render(s_ort, motions)
    assert a.shape == b.shape == (2, 128, 128, 3)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_export_is_cached_and_redone_when_stale(weights_dir: Path, onnx_root: Path,
                                                exported: Path) -> None:
    stamp = (exported / "warping.onnx").stat().st_mtime_ns
    t0 = time.perf_counter()
    assert ensure_exported(weights_dir, SIZE, root=onnx_root) == exported
    assert time.perf_counter() - t0 < 2 and (exported / "warping.onnx").stat().st_mtime_ns == stamp
    copy = onnx_root / "stale"
    shutil.copytree(exported, copy)
    (copy / "onnx.json").write_text("{not json")
    assert not manifest_ok(copy, SIZE)


# 4. bad input -----------------------------------------------------------------------------

def test_bad_onnx_file_is_one_line(tmp_path: Path, exported: Path) -> None:
    bad = tmp_path / "warping.onnx"
    bad.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(EngineError) as e:
        OnnxNet(bad, "cpu")
    msg = str(e.value)
    assert "\n" not in msg and str(bad) in msg and "export-onnx" in msg
    with pytest.raises(EngineError, match="not found"):
        OnnxNet(tmp_path / "nothing.onnx", "cpu")
    with pytest.raises(EngineError, match="expected") as e:  # a file for another size
        OnnxNet(exported / "spade.onnx", "cpu", lp_shapes(256)["spade"]["inputs"])
    assert "\n" not in str(e.value)


def test_missing_onnxruntime_is_one_line(monkeypatch: pytest.MonkeyPatch, exported: Path
                                         ) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if absent
    with pytest.raises(EngineError) as e:
        make_onnx_renderer(device="cpu", input_size=SIZE, folder=exported)
    assert "\n" not in str(e.value) and "pip install" in str(e.value)
    from engine.renderers import make_renderer

    with pytest.raises(EngineError, match="onnxruntime"):
        make_renderer("warp", "cpu", backend="onnx")


def test_make_renderer_onnx_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without weights (or, for auto, without onnxruntime's CUDA provider): warp, as torch."""
    from engine.renderers import make_renderer
    from engine.renderers.warp import WarpRenderer

    monkeypatch.setenv("AVATAR_VCAM_MODELS", str(tmp_path))
    assert isinstance(make_renderer("auto", "cpu", backend="onnx"), WarpRenderer)
    assert isinstance(make_renderer("liveportrait", "cpu", backend="onnx"), WarpRenderer)
    with pytest.raises(EngineError, match="backend"):
        make_renderer("warp", "cpu", backend="tensorrt")
