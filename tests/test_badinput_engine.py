"""Bad input to the engine's readers: learned Audio2Motion weights (``--a2m FILE.npz``), WAV
headers, the LivePortrait ``installed.json`` and motion files, ``models fetch --from``.

Each case is a file synthesised here; each must give one clear line (an EngineError, or
exit status 1 through the CLI) that names the file and says what to do, never a traceback.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from engine.audio.decode import decode_audio, iter_audio_blocks
from engine.audio2motion import make_audio2motion
from engine.audio2motion.learned import WEIGHTS, LearnedAudio2Motion
from engine.errors import AudioError, EngineError
from engine.renderers.liveportrait import weights as W
from engine.renderers.liveportrait.native import MotionFileError, load_motion


def one_line(msg: str, *words: str) -> None:
    assert "\n" not in msg.strip() and "Traceback" not in msg, msg
    for w in words:
        assert w.lower() in msg.lower(), msg


# ------------------------------------------------------------------ --a2m FILE.npz


def shipped() -> dict[str, np.ndarray]:
    with np.load(WEIGHTS) as z:
        return {k: z[k] for k in z.files}


def truncated(p: Path) -> None:
    p.write_bytes(WEIGHTS.read_bytes()[:50_000])


def missing_key(p: Path) -> None:
    w = shipped()
    del w["convs.0.weight"]
    np.savez(p, **w)


def empty(p: Path) -> None:
    p.write_bytes(b"")


def random_bytes(p: Path) -> None:
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())


def plain_npy(p: Path) -> None:
    with open(p, "wb") as f:
        np.save(f, np.zeros(3))


def no_meta(p: Path) -> None:
    w = shipped()
    del w["__meta__"]
    np.savez(p, **w)


def bad_meta(p: Path) -> None:
    np.savez(p, **{**shipped(), "__meta__": np.frombuffer(b"{'dims': 3}", np.uint8)})


@pytest.mark.parametrize("make,words", [
    (truncated, ["not a valid .npz of Audio2Motion weights"]),
    (missing_key, ["'convs.0.weight'"]),
    (empty, ["empty"]),
    (random_bytes, ["not a valid .npz of Audio2Motion weights"]),
    (plain_npy, ["not a valid .npz of Audio2Motion weights"]),
    (no_meta, ["not a valid .npz of Audio2Motion weights"]),
    (bad_meta, ["not a valid .npz of Audio2Motion weights"]),
], ids=lambda v: getattr(v, "__name__", ""))
def test_badinput_engine_a2m_weights_unreadable(tmp_path: Path, make: Callable[[Path], None],
                                                words: list[str]) -> None:
    p = tmp_path / "w.npz"
    make(p)
    with pytest.raises(EngineError) as e:
        make_audio2motion(str(p))
    one_line(str(e.value), str(p), "train-a2m", *words)
    assert "allow_pickle" not in str(e.value)


@pytest.mark.parametrize("key,shape", [("convs.0.weight", (64, 64, 1)),
                                       ("inp.weight", (64, 40, 1)),
                                       ("heads.bias", (47,))])
def test_badinput_engine_a2m_weights_wrong_shape(tmp_path: Path, key: str,
                                                 shape: tuple[int, ...]) -> None:
    w = shipped()
    expected = w[key].shape
    w[key] = np.zeros(shape, np.float16)
    p = tmp_path / "shape.npz"
    np.savez(p, **w)
    with pytest.raises(EngineError) as e:
        LearnedAudio2Motion(weights=p)
    one_line(str(e.value), str(p), f"'{key}'", str(shape), str(expected))


def test_badinput_engine_a2m_weights_other_dims(tmp_path: Path) -> None:
    """Meta dims for another feature set: the numpy runner could not feed it."""
    import ast

    w = shipped()
    meta = ast.literal_eval(bytes(w["__meta__"]).decode())
    meta["dims"]["n_in"] = 40
    w["__meta__"] = np.frombuffer(repr(meta).encode(), np.uint8)
    p = tmp_path / "dims.npz"
    np.savez(p, **w)
    with pytest.raises(EngineError) as e:
        LearnedAudio2Motion(weights=p)
    one_line(str(e.value), str(p), "another network")


def test_badinput_engine_a2m_cli_empty_weights_is_one_line(tmp_path: Path) -> None:
    """A 0-byte file used to end in click's bare 'Aborted!' (an EOFError)."""
    from vcam.cli.main import cli

    p = tmp_path / "empty.npz"
    p.write_bytes(b"")
    out = tmp_path / "o.mp4"
    result = CliRunner().invoke(cli, ["--a2m", str(p), "--sink", f"file:{out}",
                                      "--duration", "0.5", "--no-control"])
    assert result.exit_code == 1, result.output
    assert "Aborted" not in result.output
    one_line(result.output, "empty", str(p))


def test_badinput_engine_a2m_shipped_weights_still_load() -> None:
    assert LearnedAudio2Motion(40).lookahead == pytest.approx(0.04)


# ------------------------------------------------------------------ WAV headers


def wav(path: Path, tag: int = 1, rate: int = 16000, bits: int = 16, n: int = 1600) -> Path:
    """A mono WAV with the given header fields over ``n`` 16-bit samples of a tone."""
    data = (np.sin(np.arange(n) * 0.1) * 10_000).astype("<i2").tobytes()
    align = max(bits, 8) // 8
    fmt = struct.pack("<HHIIHH", tag, 1, rate, rate * align, align, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


@pytest.mark.parametrize("tag,bits", [(99, 16), (1, 0)])
def test_badinput_engine_wav_unknown_encoding(tmp_path: Path, tag: int, bits: int) -> None:
    p = wav(tmp_path / "odd.wav", tag=tag, bits=bits)
    for call in (lambda: decode_audio(p), lambda: iter_audio_blocks(p),
                 lambda: decode_audio(p, 16000)):
        with pytest.raises(AudioError) as e:
            call()
        one_line(str(e.value), "odd.wav", "cannot decode", "use a WAV")


@pytest.mark.parametrize("rate", [1, 3999, 768_001, 1_000_000_000])
def test_badinput_engine_wav_absurd_sample_rate(tmp_path: Path, rate: int) -> None:
    p = wav(tmp_path / "rate.wav", rate=rate)
    for call in (lambda: decode_audio(p), lambda: iter_audio_blocks(p),
                 lambda: decode_audio(p, 16000)):  # resampling would not save it either
        with pytest.raises(AudioError) as e:
            call()
        one_line(str(e.value), "rate.wav", f"{rate} Hz", "4000..768000")


@pytest.mark.parametrize("rate", [4000, 768_000])
def test_badinput_engine_wav_edge_rates_are_fine(tmp_path: Path, rate: int) -> None:
    pcm, sr = decode_audio(wav(tmp_path / "edge.wav", rate=rate))
    assert sr == rate and len(pcm) == 1600


# ------------------------------------------------------------------ LivePortrait


@pytest.fixture()
def models_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(W.ENV_DIR, str(tmp_path / "models"))
    return tmp_path / "models" / "KwaiVGI-LivePortrait"


@pytest.mark.parametrize("record", [
    [], "text", 3, None, {"files": []}, {"files": {"appearance": {}}},
    {"files": {"appearance": []}}, {"files": {"appearance": {"size": "12", "sha256": "x"}}},
])
def test_badinput_engine_installed_json_wrong_shape(models_env: Path, record: object) -> None:
    """Valid JSON of the wrong shape counts as no record, like invalid JSON already did."""
    from engine.renderers import liveportrait_unavailable
    from vcam.cli.main import cli

    ckpt = models_env / W.REPO_PATHS["appearance"]
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"x" * 12)
    (models_env / W.RECORD).write_text(json.dumps(record))
    states = {s.network: s.state for s in W.status(verify=True)}
    assert states["appearance"] == "unrecorded" and states["motion"] == "missing"
    assert not W.installed()
    assert "models fetch liveportrait" in (liveportrait_unavailable("cpu") or "")
    result = CliRunner().invoke(cli, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    files = json.loads(result.output)["liveportrait"]["files"]
    assert {f["network"]: f["state"] for f in files}["appearance"] == "unrecorded"


def test_badinput_engine_installed_json_good_record_still_counts(models_env: Path) -> None:
    ckpt = models_env / W.REPO_PATHS["appearance"]
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"x" * 12)
    rec = {"size": 12, "sha256": "0" * 64}
    (models_env / W.RECORD).write_text(json.dumps({"files": {"appearance": rec}}))
    assert {s.network: s.state for s in W.status()}["appearance"] == "ok"
    assert {s.network: s.state for s in W.status(verify=True)}["appearance"] == "changed"


def replay(*args: str) -> str:
    from vcam.cli.main import cli

    result = CliRunner().invoke(cli, ["liveportrait", "replay", *args, "--device", "cpu"])
    assert result.exit_code == 1, result.output
    assert "Aborted" not in result.output and "Traceback" not in result.output
    return result.output


def test_badinput_engine_replay_missing_motion_file(tmp_path: Path) -> None:
    out = replay(str(tmp_path / "nosuch.npz"))
    one_line(out, "nosuch.npz", "does not exist")
    assert "Errno" not in out and "numpy.savez" not in out


@pytest.mark.parametrize("make,words", [
    (empty, ["empty"]), (random_bytes, ["cannot read"]), (truncated, ["cannot read"]),
    (plain_npy, ["cannot read"]),
], ids=lambda v: getattr(v, "__name__", ""))
def test_badinput_engine_replay_unreadable_motion_file(
        tmp_path: Path, make: Callable[[Path], None], words: list[str]) -> None:
    p = tmp_path / "m.npz"
    make(p)
    with pytest.raises(MotionFileError) as e:
        load_motion(p)
    one_line(str(e.value), str(p), "numpy.savez", *words)
    assert "allow_pickle" not in str(e.value)
    one_line(replay(str(p)), "m.npz", *words)


def test_badinput_engine_replay_motion_path_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(MotionFileError) as e:
        load_motion(tmp_path)
    one_line(str(e.value), "not a file")


def test_badinput_engine_replay_without_weights_names_the_fetch_command(
        tmp_path: Path, models_env: Path) -> None:
    motion = tmp_path / "kp.npz"
    np.savez(motion, kp_driving=np.zeros((2, 21, 3), np.float32))
    one_line(replay(str(motion)), "not installed", str(models_env),
             "avatar-vcam models fetch liveportrait")


def test_badinput_engine_fetch_from_missing_folder(tmp_path: Path, models_env: Path) -> None:
    from vcam.cli.main import cli

    nope = tmp_path / "nonexistent"
    result = CliRunner().invoke(cli, ["models", "fetch", "liveportrait", "--from", str(nope)])
    assert result.exit_code == 1, result.output
    one_line(result.output, str(nope), "does not exist")
    assert ".pth not found" not in result.output
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    result = CliRunner().invoke(cli, ["models", "fetch", "liveportrait", "--from", str(a_file)])
    assert result.exit_code == 1 and "is not a folder" in result.output
    assert not os.path.exists(models_env / W.RECORD)


@pytest.mark.parametrize("arrays, words", [
    ({"kp_driving": np.float32(1.0)}, ["single number"]),
    ({"kp_driving": np.array(["a", "b"])}, ["does not hold numbers"]),
    ({"kp_driving": np.zeros((2, 21, 3), np.float32), "stitch": np.array([0, 1])},
     ["'stitch' must be one number"]),
], ids=["scalar", "text", "stitch-vector"])
def test_badinput_engine_replay_arrays_of_the_wrong_kind(tmp_path: Path, arrays: dict,
                                                         words: list[str]) -> None:
    p = tmp_path / "m.npz"
    np.savez(p, **arrays)
    with pytest.raises(MotionFileError) as e:
        load_motion(p)
    one_line(str(e.value), str(p), *words)


def test_badinput_engine_replay_of_an_unknown_device_is_one_line(tmp_path: Path) -> None:
    from vcam.cli.main import cli

    motion = tmp_path / "kp.npz"
    np.savez(motion, kp_driving=np.zeros((2, 21, 3), np.float32))
    result = CliRunner().invoke(cli, ["liveportrait", "replay", str(motion), "--device",
                                      "bogus"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    one_line(result.output, "unknown device 'bogus'")
