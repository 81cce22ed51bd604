"""The liveportrait renderer on the CPU with synthesised weights (small crops: 128 -> 256).

Synthesised weights make no face, so these tests check the plumbing the renderer owns:
motion mapping, native replay, crop and paste, fallbacks; the networks themselves are
proven against the reference in test_liveportrait.py.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
import torch

from avatars import load
from engine.motion import vector, zeros
from engine.renderers import make_renderer
from engine.renderers.liveportrait.motion_map import (
    CONTROLS,
    EXP_ROWS,
    MotionMapper,
    control_basis,
    controls_from_channels,
    ratios_from_mesh,
)
from engine.renderers.liveportrait.native import (
    MotionFileError,
    NativeMotion,
    load_motion,
    save_motion,
)
from engine.renderers.liveportrait.renderer import LivePortraitRenderer
from engine.renderers.warp import WarpRenderer


@pytest.fixture(scope="module")
def renderer(nets) -> LivePortraitRenderer:
    return LivePortraitRenderer(device="cpu", nets=nets, input_size=128)


@pytest.fixture(scope="module")
def leo():
    return load("leo")


@pytest.fixture(scope="module")
def state(renderer, leo):
    small = dataclasses.replace(leo, renderer={"liveportrait": {"crop_scale": 1.2}})
    return renderer.prepare(small, 256)


def test_ratios_from_mesh_are_plausible(leo) -> None:
    eye_l, eye_r, lip = ratios_from_mesh(leo.landmarks)
    assert 0.1 < eye_l < 0.6 and 0.1 < eye_r < 0.6  # open eyes: gap a fraction of width
    assert 0.0 <= lip < 0.3  # closed mouth


def test_control_basis_rows() -> None:
    basis = control_basis().reshape(len(CONTROLS), 21, 3)
    smile = basis[CONTROLS.index("smile")]
    assert smile[14, 1] == pytest.approx(-0.02) and smile[20, 1] == pytest.approx(-0.01)
    touched = {(r, a) for r, a, _ in EXP_ROWS["smile"]}
    untouched = [(r, a) for r in range(21) for a in range(3) if (r, a) not in touched]
    assert all(smile[r, a] == 0 for r, a in untouched)
    ctrl = controls_from_channels(torch.from_numpy(np.stack([
        vector({"mouthSmileLeft": 1, "mouthSmileRight": 1}),
        vector({"eyeLookOutLeft": 1, "eyeLookInRight": 1})])))
    assert ctrl[0, CONTROLS.index("smile")] == 1 and ctrl[0].sum() == 1
    assert ctrl[1, CONTROLS.index("pupil_right")] == 1 and ctrl[1].sum() == 1


def test_neutral_motion_gives_source_keypoints(renderer, state) -> None:
    mapper = MotionMapper(state.source, renderer.nets.retargeting, stitch=False)
    x_d = mapper(zeros()[None])
    assert torch.allclose(x_d, state.source.x_s, atol=1e-6)


def test_channels_move_the_right_keypoints(renderer, state) -> None:
    mapper = MotionMapper(state.source, renderer.nets.retargeting, stitch=False)
    m = np.stack([zeros(), vector({"mouthSmileLeft": 1, "mouthSmileRight": 1}),
                  vector({"jawOpen": 1}), vector({"eyeBlinkLeft": 1, "eyeBlinkRight": 1}),
                  vector({"yaw": 15}), vector({"tx": 0.1})])
    x = mapper(m)
    d = (x - x[:1]).abs()
    scale = abs(float(state.source.scale))  # synthesised weights: any sign
    # smile: only rows of the smile recipe move, by scale * offset (no rotation of exp)
    want = torch.zeros(21, 3)
    for r, a, v in EXP_ROWS["smile"]:
        want[r, a] += abs(v)
    assert torch.allclose(d[1], scale * want, atol=1e-6)
    assert d[2].max() > 1e-4 and d[3].max() > 1e-4  # lip and eye MLPs act
    assert not torch.allclose(d[2], d[3])
    # yaw rotates: z changes, and tx shifts every keypoint's x by the same amount
    assert d[4, :, 2].max() > 1e-3
    assert torch.allclose(d[5, :, 0], d[5, :1, 0].expand(21), atol=1e-6)
    assert d[5, :, 1:].max() < 1e-6


def test_render_shape_and_paste(renderer, state, leo) -> None:
    frames = renderer.render(state, np.stack([zeros(), vector({"jawOpen": 0.8})]))
    assert frames.shape == (2, 256, 256, 3) and frames.dtype == np.uint8
    x0, y0, x1, y1 = state.roi
    assert 0 < x0 < x1 < 256 and 0 < y0 < y1 < 256  # crop_scale 1.2: inside the frame
    bg = (state.background[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    outside = np.ones((256, 256), bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(frames[0][outside], bg[outside])  # untouched outside the crop
    inside = frames[0, y0:y1, x0:x1].astype(int) - bg[y0:y1, x0:x1]
    assert np.abs(inside).mean() > 1  # the decoded crop is pasted in
    # feathered: the first pasted column is close to the background, the centre is not
    edge = np.abs(inside[:, 0]).mean()
    centre = np.abs(inside[:, (x1 - x0) // 2]).mean()
    assert edge < 0.2 * centre
    assert not np.array_equal(frames[0], frames[1])  # motion changes the picture


def test_render_streams_batches_several_avatars(renderer, state) -> None:
    """Frames of two avatars (different sources, sizes, lengths) from one warp + decode
    call equal what each stream's own ``render`` gives; an empty stream stays empty."""
    grace = dataclasses.replace(load("grace"), renderer={"liveportrait": {"crop_scale": 1.2}})
    other = renderer.prepare(grace, 192)
    m_leo = np.stack([zeros(), vector({"jawOpen": 0.8}), vector({"eyeBlinkLeft": 1.0})])
    m_grace = np.stack([vector({"mouthSmileLeft": 0.7}), zeros()])
    calls = []
    real = renderer.runtime

    def counting(*args):
        calls.append(args[0].shape[0])
        return real(*args)

    renderer.runtime = counting
    try:
        got = renderer.render_streams([(state, m_leo), (other, np.zeros((0, m_leo.shape[1]))),
                                       (other, m_grace)])
    finally:
        renderer.runtime = real
    assert calls == [5]  # one call, all five frames
    assert [g.shape for g in got] == [(3, 256, 256, 3), (0, 192, 192, 3), (2, 192, 192, 3)]
    for g, want in ((got[0], renderer.render(state, m_leo)),
                    (got[2], renderer.render(other, m_grace))):
        assert np.abs(g.astype(int) - want).max() <= 1  # batched float sums: rounding only
    assert renderer.render_streams([]) == []


def test_native_replay_is_exact(renderer, state, tmp_path) -> None:
    src = state.source
    codes = NativeMotion(exp=src.exp.repeat(2, 1, 1), rotation=None, t=src.t.repeat(2, 1),
                         scale=src.scale.repeat(2, 1))
    from engine.renderers.liveportrait.keypoints import rotation_matrix

    codes.rotation = rotation_matrix(*(torch.tensor([v, v]) for v in
                                       (src.pitch, src.yaw, src.roll)))
    codes.exp[1, 19, 1] += 0.05
    save_motion(tmp_path / "m.npz", codes)
    loaded = load_motion(tmp_path / "m.npz")
    x_d = loaded.keypoints(src.kp)
    assert torch.allclose(x_d[0], src.x_s[0], atol=1e-6)
    assert float((x_d[1] - src.x_s[0]).abs().max()) > 1e-3
    # degrees instead of R, and the keypoint form, give the same keypoints
    np.savez(tmp_path / "deg.npz", exp=codes.exp.numpy(), t=codes.t.numpy(),
             scale=codes.scale.numpy(), pitch=np.full(2, src.pitch), yaw=np.full(2, src.yaw),
             roll=np.full(2, src.roll))
    assert torch.allclose(load_motion(tmp_path / "deg.npz").keypoints(src.kp), x_d, atol=1e-5)
    np.savez(tmp_path / "kp.npz", kp_driving=x_d[1:].numpy())
    kp_motion = load_motion(tmp_path / "kp.npz")
    seen = []
    real_frames = renderer._frames
    try:  # record what reaches warp + decode (rendering itself is tested above)
        renderer._frames = lambda st, kp: seen.append(kp) or np.zeros((len(kp), 1, 1, 3))
        renderer.render_native(state, kp_motion)
    finally:
        renderer._frames = real_frames
    assert torch.equal(seen[0], x_d[1:])


@pytest.mark.parametrize("content, needle", [
    ({"exp": np.zeros((2, 63))}, "missing t, scale, R or pitch/yaw/roll"),
    ({"kp_driving": np.zeros((2, 20, 3))}, "expected (frames, 21, 3)"),
    ({"exp": np.zeros((2, 63)), "t": np.zeros((3, 3)), "scale": np.ones(2),
      "R": np.tile(np.eye(3), (2, 1, 1))}, "has 3 frames, expected 2"),
    ({"kp_driving": np.full((1, 21, 3), np.nan)}, "NaN"),
])
def test_bad_motion_files(tmp_path, content, needle) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **content)
    with pytest.raises(MotionFileError) as e:
        load_motion(path)
    assert needle in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(MotionFileError, match="cannot read"):
        load_motion(tmp_path / "junk.npz")


def test_fallback_without_weights(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("AVATAR_VCAM_MODELS", str(tmp_path))
    with caplog.at_level(logging.WARNING):
        r = make_renderer("liveportrait", "cpu")
    assert isinstance(r, WarpRenderer)
    assert "models fetch liveportrait" in caplog.text and "falling back" in caplog.text
    caplog.clear()
    assert isinstance(make_renderer("auto", "cpu"), WarpRenderer)
    assert "falling back" not in caplog.text  # auto falls back quietly


def test_fallback_without_gpu(weights_dir, monkeypatch, caplog) -> None:
    import shutil

    from engine.renderers.liveportrait import weights

    root = weights_dir.parent / "models_gpu_test"
    if not root.exists():
        shutil.copytree(weights_dir, root / "KwaiVGI-LivePortrait")
    monkeypatch.setenv("AVATAR_VCAM_MODELS", str(root))
    assert weights.installed()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.WARNING):
        r = make_renderer("liveportrait", "cpu")
    assert isinstance(r, WarpRenderer) and "CUDA GPU" in caplog.text


def test_engine_drives_the_liveportrait_renderer(nets) -> None:
    """Engine + mixer + Audio2Motion -> the liveportrait renderer through the protocol."""
    from engine import Engine, EngineConfig

    lp = LivePortraitRenderer(device="cpu", nets=nets, input_size=128)
    with Engine("leo", EngineConfig(size=128, idle=False), renderer=lp) as engine:
        engine.push_audio(np.zeros(1600, np.float32), pts=0.0, sample_rate=16000)
        frame = engine.frame_at(0.0)
    assert frame.image.shape == (128, 128, 3) and frame.image.dtype == np.uint8
    assert frame.image.std() > 5  # a picture, not a constant fill


def test_graphed_mapping_and_paste_reuse_buffers_safely(renderer, state, monkeypatch) -> None:
    """On CUDA the mapping and the paste replay graphs whose outputs are one buffer,
    overwritten by the next replay. A stand-in with those semantics (CUDA graphs cannot
    run here): one capture per (part, batch size), frames as without graphs, and
    ``render_streams`` with one state listed twice still gets each job's own frames."""
    from engine.renderers.liveportrait import renderer as renderer_module

    captured: list[tuple[int, ...]] = []

    class BufferRunner:  # GraphRunner's contract: static inputs in, one output buffer out
        def __init__(self, fn, inputs) -> None:
            self.fn, self.static = fn, [x.clone() for x in inputs]
            self.out = fn(*self.static).clone()
            captured.append(tuple(inputs[0].shape))

        def __call__(self, *xs: torch.Tensor) -> torch.Tensor:
            for dst, src in zip(self.static, xs, strict=True):
                dst.copy_(src)
            self.out.copy_(self.fn(*self.static))
            return self.out

    m1 = np.stack([zeros(), vector({"jawOpen": 0.8})])
    m2 = np.stack([vector({"eyeBlinkLeft": 1.0}), vector({"mouthSmileLeft": 0.7})])
    want1, want2 = renderer.render(state, m1), renderer.render(state, m2)
    want_one = renderer.render(state, m1[:1])
    graphed = dataclasses.replace(state, graphs={})
    monkeypatch.setattr(renderer_module, "GraphRunner", BufferRunner)
    monkeypatch.setattr(renderer, "use_graphs", True)
    assert np.array_equal(renderer.render(graphed, m1), want1)
    assert np.array_equal(renderer.render(graphed, m2), want2)
    assert sorted(graphed.graphs) == [("map", 2), ("paste", 2)] and len(captured) == 2
    assert np.array_equal(renderer.render(graphed, m1[:1]), want_one)  # a new batch size
    assert sorted(graphed.graphs) == [("map", 1), ("map", 2), ("paste", 1), ("paste", 2)]
    got = renderer.render_streams([(graphed, m1), (graphed, m2)])
    for g, want in zip(got, (want1, want2), strict=True):
        assert np.abs(g.astype(int) - want).max() <= 1  # batched float sums: rounding only
    assert not np.array_equal(got[0], got[1])
