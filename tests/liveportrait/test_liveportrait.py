"""LivePortrait networks: checkpoint layout, conformance with the reference, loader errors.

Reference outputs (tests/fixtures/liveportrait/fixtures.npz) were computed by the original
implementation on the CPU with the synthesised stand-in weights, at 128x128 input.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from lp_testdata import STITCHING_FILE, rel_l2, shapes_of

from engine.errors import EngineError
from engine.renderers.liveportrait import (
    NETWORKS,
    WeightsError,
    find_checkpoint,
    keypoints_from_motion,
    load_network,
    load_networks,
    pose_to_degrees,
    rotation_matrix,
    transform_keypoints,
)
from engine.renderers.liveportrait.stitching import CHECKPOINT_PARTS

TOL = 1e-4
BASE_FILES = [name for name, (f, _, _) in NETWORKS.items() if f != STITCHING_FILE]


def build_on_meta(name: str) -> torch.nn.Module:
    """The network with shape-only (meta) tensors: no memory, no init cost."""
    with torch.device("meta"):
        return NETWORKS[name][2]()


def checkpoint_shapes(name: str) -> dict[str, tuple[int, ...]]:
    module = build_on_meta(name)
    if hasattr(module, "checkpoint_shapes"):  # SPADE: weight_orig / weight_u / weight_v
        return module.checkpoint_shapes()
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


# 1. keys and shapes ---------------------------------------------------------------------

@pytest.mark.parametrize("name", BASE_FILES)
def test_state_dict_matches_manifest(name: str, manifest: dict) -> None:
    want = shapes_of(manifest["checkpoints"][NETWORKS[name][0]])
    got = checkpoint_shapes(name)
    assert sorted(got) == sorted(want)
    assert got == want


def test_retargeting_state_dicts_match_manifest(manifest: dict) -> None:
    module = build_on_meta("retargeting")
    entries = manifest["checkpoints"][STITCHING_FILE]
    assert set(entries) == set(CHECKPOINT_PARTS)
    for part, attr in CHECKPOINT_PARTS.items():
        got = {k: tuple(v.shape) for k, v in getattr(module, attr).state_dict().items()}
        assert got == shapes_of(entries[part]), part


def test_dtypes_match_manifest(manifest: dict) -> None:
    for name in BASE_FILES:
        module = build_on_meta(name)
        entries = manifest["checkpoints"][NETWORKS[name][0]]
        for key, value in module.state_dict().items():
            if key in entries:
                assert str(value.dtype) == entries[key][1], key


def test_loader_accepts_official_files_strictly(nets, manifest: dict) -> None:
    """The session's networks were loaded from files holding exactly the manifest's keys."""
    spade_sd = nets.spade.state_dict()
    ckpt = manifest["checkpoints"]["spade_generator.pth"]
    folded = {k for k in ckpt if k.endswith(".weight_orig")}
    assert folded and all(k.replace("_orig", "") in spade_sd for k in folded)
    assert not any(k.endswith(("weight_u", "weight_v", "weight_orig")) for k in spade_sd)
    assert not nets.warping.training and not nets.spade.training
    for net in vars(nets).values():  # built on the meta device, then every tensor assigned
        assert all(not t.is_meta for t in [*net.parameters(), *net.buffers()])


def test_find_checkpoint_layouts(weights_dir: Path, tmp_path: Path) -> None:
    for name, (filename, sub, _) in NETWORKS.items():
        assert find_checkpoint(weights_dir, name) == weights_dir / sub / filename
        (tmp_path / filename).symlink_to(weights_dir / sub / filename)
        assert find_checkpoint(tmp_path, name) == tmp_path / filename
    nets = load_network("retargeting", find_checkpoint(tmp_path, "retargeting"))
    assert nets.eye.mlp[0].in_features == 66


def test_spectral_norm_fold(weights_dir: Path, nets) -> None:
    raw = torch.load(weights_dir / "base_models" / "spade_generator.pth", weights_only=True)
    w, u, v = (raw[f"up_1.conv_s.weight_{s}"] for s in ("orig", "u", "v"))
    sigma = torch.dot(u, w.reshape(w.shape[0], -1) @ v)
    torch.testing.assert_close(nets.spade.up_1.conv_s.weight, w / sigma)


# 2. conformance -------------------------------------------------------------------------

@torch.no_grad()
def test_appearance(nets, fixtures) -> None:
    assert rel_l2(nets.appearance(fixtures["img"]), fixtures["F_out"]) < TOL


@torch.no_grad()
def test_motion_extractor(nets, fixtures) -> None:
    out = nets.motion(fixtures["img"])
    assert set(out) == {"kp", "exp", "pitch", "yaw", "roll", "t", "scale"}
    for key, value in out.items():
        assert rel_l2(value, fixtures[f"M_out_{key}"]) < TOL, key


@torch.no_grad()
def test_warping(nets, fixtures) -> None:
    out = nets.warping(fixtures["W_in_feature_3d"], kp_driving=fixtures["W_in_kp_driving"],
                       kp_source=fixtures["W_in_kp_source"])
    for key in ("out", "occlusion_map", "deformation"):
        assert rel_l2(out[key], fixtures[f"W_out_{key}"]) < TOL, key


@torch.no_grad()
def test_spade_generator(nets, fixtures) -> None:
    assert rel_l2(nets.spade(fixtures["G_in_feature"]), fixtures["G_out"]) < TOL


@torch.no_grad()
@pytest.mark.parametrize("part", list(CHECKPOINT_PARTS))
def test_retargeting_mlps(nets, fixtures, part: str) -> None:
    mlp = getattr(nets.retargeting, CHECKPOINT_PARTS[part])
    assert rel_l2(mlp(fixtures[f"S_in_{part}"]), fixtures[f"S_out_{part}"]) < TOL


@torch.no_grad()
def test_retargeting_helpers(nets, fixtures) -> None:
    x = fixtures["S_in_retarget_shoulder"]
    x_s, x_d = x[:, :63].reshape(2, 21, 3), x[:, 63:].reshape(2, 21, 3)
    delta = fixtures["S_out_retarget_shoulder"]
    want = x_d + delta[:, :63].reshape(2, 21, 3)
    want[..., :2] += delta[:, 63:65].reshape(2, 1, 2)
    assert rel_l2(nets.retargeting.stitch(x_s, x_d), want) < TOL
    lip = fixtures["S_in_retarget_mouth"]
    got = nets.retargeting.lip_delta(lip[:, :63].reshape(2, 21, 3), lip[:, 63:])
    assert rel_l2(got, fixtures["S_out_retarget_mouth"].reshape(2, 21, 3)) < TOL
    eye = fixtures["S_in_retarget_eye"]
    got = nets.retargeting.eye_delta(eye[:, :63].reshape(2, 21, 3), eye[:, 63:])
    assert rel_l2(got, fixtures["S_out_retarget_eye"].reshape(2, 21, 3)) < TOL


def test_keypoint_transform(fixtures) -> None:
    deg = {k: pose_to_degrees(fixtures[f"T_in_{k}"]) for k in ("pitch", "yaw", "roll")}
    for key, value in deg.items():
        assert rel_l2(value, fixtures[f"T_out_{key}_deg"]) < TOL, key
    rot = rotation_matrix(deg["pitch"], deg["yaw"], deg["roll"])
    assert rel_l2(rot, fixtures["T_out_rotation"]) < TOL
    kp = transform_keypoints(fixtures["T_in_kp"], fixtures["T_in_exp"], rot,
                             fixtures["T_in_t"], fixtures["T_in_scale"])
    assert rel_l2(kp, fixtures["T_out_kp"]) < TOL
    motion = {k: fixtures[f"T_in_{k}"] for k in ("kp", "exp", "pitch", "yaw", "roll", "t", "scale")}
    assert rel_l2(keypoints_from_motion(motion), fixtures["T_out_kp"]) < TOL
    # degrees pass through unchanged
    assert torch.equal(pose_to_degrees(deg["yaw"]), deg["yaw"])


# 3. clear errors ------------------------------------------------------------------------

def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    assert isinstance(exc.value, EngineError)
    return msg


@pytest.fixture()
def appearance_sd(weights_dir: Path) -> dict[str, torch.Tensor]:
    path = weights_dir / "base_models" / "appearance_feature_extractor.pth"
    return torch.load(path, weights_only=True)


def test_missing_key(appearance_sd, tmp_path: Path) -> None:
    del appearance_sd["second.bias"]
    path = tmp_path / "appearance_feature_extractor.pth"
    torch.save(appearance_sd, path)
    with pytest.raises(WeightsError) as exc:
        load_network("appearance", path)
    msg = _one_line(exc)
    assert "appearance_feature_extractor.pth" in msg and "missing 1 key" in msg
    assert "second.bias" in msg and "re-download" in msg


def test_wrong_shape(appearance_sd, tmp_path: Path) -> None:
    appearance_sd["second.weight"] = torch.zeros(512, 128, 1, 1)
    path = tmp_path / "appearance_feature_extractor.pth"
    torch.save(appearance_sd, path)
    with pytest.raises(WeightsError) as exc:
        load_network("appearance", path)
    msg = _one_line(exc)
    assert "second.weight is (512, 128, 1, 1), expected (512, 256, 1, 1)" in msg


def test_unexpected_key_and_wrong_file(weights_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "appearance_feature_extractor.pth"
    shutil.copy(weights_dir / "retargeting_models" / STITCHING_FILE, path)
    with pytest.raises(WeightsError) as exc:
        load_network("appearance", path)
    msg = _one_line(exc)
    assert "unexpected 3 key(s): retarget_eye" in msg and "missing" in msg and str(path) in msg


def test_spade_partial_spectral_triplet(tmp_path: Path) -> None:
    sd = {"up_0.conv_s.weight_orig": torch.zeros(256, 512, 1, 1),
          "up_0.conv_s.weight_v": torch.zeros(512)}
    path = tmp_path / "spade_generator.pth"
    torch.save(sd, path)
    with pytest.raises(WeightsError) as exc:
        load_network("spade", path)
    assert "up_0.conv_s.weight_u" in _one_line(exc)


def test_stitching_part_missing_or_wrong(weights_dir: Path, tmp_path: Path) -> None:
    sd = torch.load(weights_dir / "retargeting_models" / STITCHING_FILE, weights_only=True)
    path = tmp_path / STITCHING_FILE
    sd["retarget_eye"]["module.mlp.10.bias"] = torch.zeros(62)
    torch.save(sd, path)
    with pytest.raises(WeightsError) as exc:
        load_network("retargeting", path)
    msg = _one_line(exc)
    assert "[retarget_eye]" in msg and "mlp.10.bias is (62,)" in msg
    del sd["retarget_mouth"]
    torch.save(sd, path)
    with pytest.raises(WeightsError) as exc:
        load_network("retargeting", path)
    assert "no 'retarget_mouth'" in _one_line(exc)


def test_missing_file_and_garbage(tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as exc:
        load_networks(tmp_path)
    msg = _one_line(exc)
    assert "appearance_feature_extractor.pth not found" in msg and "download" in msg
    bad = tmp_path / "motion_extractor.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError) as exc:
        load_network("motion", bad)
    assert "cannot read" in _one_line(exc)
