"""The Audio2Motion TCN in ONNX: the whole-sequence export (tcn.export_onnx) and the
streaming step that ``--backend onnx`` runs, against torch and the numpy stream; the
backend through the engine and the command line, and its one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from engine.audio2motion.features import N_FEATURES  # noqa: E402
from engine.audio2motion.learned import WEIGHTS, LearnedAudio2Motion  # noqa: E402
from engine.audio2motion.stream import N_OUT  # noqa: E402
from engine.audio2motion.tcn import export_onnx, torch_from_npz  # noqa: E402
from engine.errors import EngineError  # noqa: E402
from engine.onnx.a2m import OnnxLearnedAudio2Motion, ensure_a2m_exported  # noqa: E402
from engine.onnx.session import OnnxNet  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "support"))
from speech import syllables  # noqa: E402


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(autouse=True)
def models_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The ONNX cache in a temporary folder."""
    monkeypatch.setenv("AVATAR_VCAM_MODELS", str(tmp_path / "models"))
    return tmp_path / "models"


@pytest.fixture(scope="module")
def voice() -> tuple[np.ndarray, int]:
    sr = 16000
    return syllables(sr, [(0.3, 0.4), (1.0, 0.25), (1.5, 0.5)], 2.5, v="a"), sr


def test_tcn_export_onnx_has_the_current_dims(tmp_path: Path) -> None:
    """tcn.export_onnx with the shipped weights' dims (features, outputs as
    features.py and stream.py define them today); T stays a dynamic axis."""
    path = export_onnx(WEIGHTS, tmp_path / "a2m.onnx")
    model = torch_from_npz(WEIGHTS)
    assert (model.dims.n_in, model.dims.n_out) == (N_FEATURES, N_OUT)
    net = OnnxNet(path, "cpu", {"features": (1, N_FEATURES, "frames")})
    rng = np.random.default_rng(0)
    for t in (37, 333):
        x = rng.standard_normal((1, N_FEATURES, t)).astype(np.float32)
        got = net(features=x)["motion"]
        with torch.no_grad():
            want = torch.sigmoid(model(torch.from_numpy(x))).numpy()
        assert got.shape == (1, len(model.dims.lookaheads), N_OUT, t)
        assert rel_l2(got, want) < 1e-4


def test_streaming_step_equals_the_numpy_stream(voice) -> None:
    x, sr = voice
    for la_ms in (0.0, 40.0, 200.0):
        ref, ort = LearnedAudio2Motion(la_ms), OnnxLearnedAudio2Motion(la_ms)
        assert ort.lookahead == ref.lookahead
        rng = np.random.default_rng(int(la_ms))
        i = 0
        while i < len(x):  # uneven pushes: 1 sample to 0.2 s
            b = int(rng.integers(1, 3200))
            ref.push(x[i:i + b], i / sr, sr)
            ort.push(x[i:i + b], i / sr, sr)
            i += b
        assert ort.ready_until() == ref.ready_until()
        end = ref._hist_end  # noqa: SLF001
        ks = np.arange(end - 200, end) % ref._cap  # noqa: SLF001
        got, want = ort._hist[ks], ref._hist[ks]  # noqa: SLF001
        assert want[:, 0].max() > 0.3  # the jaw opened
        assert rel_l2(got, want) < 1e-4
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_a2m_export_is_cached(models_env: Path) -> None:
    path = ensure_a2m_exported()
    assert path.parent == models_env / "onnx" and path.is_file()
    stamp = path.stat().st_mtime_ns
    assert ensure_a2m_exported() == path and path.stat().st_mtime_ns == stamp


def test_engine_with_the_onnx_backend(voice) -> None:
    from engine import Engine, EngineConfig

    x, sr = voice
    config = EngineConfig(size=128, idle=False, renderer="warp", device="cpu", backend="onnx")
    with Engine("leo", config) as engine:
        assert isinstance(engine.a2m, OnnxLearnedAudio2Motion)
        engine.push_audio(x[:sr], pts=0.0, sample_rate=sr)
        frame = engine.frame_at(0.5)
    assert frame.image.shape == (128, 128, 3)
    with pytest.raises(ValueError, match="backend"):
        EngineConfig(backend="tensorrt")


def test_bad_step_file_and_missing_onnxruntime(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "a2m.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    with pytest.raises(EngineError) as e:
        OnnxLearnedAudio2Motion(onnx_path=bad)
    assert "\n" not in str(e.value) and "not a usable ONNX model" in str(e.value)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(EngineError, match="pip install"):
        OnnxLearnedAudio2Motion()


def test_cli_backend_onnx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--backend onnx renders the demo; without onnxruntime it is one Error line."""
    from vcam.cli.main import cli

    out = tmp_path / "out.mp4"
    args = ["--backend", "onnx", "--renderer", "warp", "--device", "cpu", "--source", "demo",
            "--sink", f"file:{out}", "--duration", "0.4", "--size", "128", "--no-control"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 0
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert lines[-1].startswith("Error:") and "onnxruntime" in lines[-1]
    assert "Traceback" not in res.output


def test_cli_export_onnx_without_liveportrait(tmp_path: Path) -> None:
    from vcam.cli.main import cli

    res = CliRunner().invoke(cli, ["models", "export-onnx", "--out", str(tmp_path / "x")])
    assert res.exit_code == 0, res.output
    assert "exporting Audio2Motion only" in res.output
    assert len(list((tmp_path / "x").glob("a2m-*.onnx"))) == 1
