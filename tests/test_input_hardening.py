"""Issue 20, "no input crashes the process": many-channel audio, JSON depth and size
limits, and runtime folders that are not private to the user.

Audio is decoded by real PyAV in a child process, so a segfault (the 7.1 crash) fails the
test with its return code instead of taking pytest down.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from engine import jsonfile
from engine.avatar import load_avatar
from engine.errors import AvatarError
from vcam.control.api import ControlClient, ControlError, ControlServer, control_dir

ROOT = Path(__file__).resolve().parents[1]
EXE = str(Path(sys.executable).parent / "avatar-vcam")
LEO = ROOT / "avatars" / "leo"

_DECODE_CHILD = r"""
import json, sys
import numpy as np
from engine.audio.decode import decode_audio
from engine.errors import AudioError
out = {}
for path in sys.argv[1:]:
    for rate in (None, 16000):
        try:
            pcm, r = decode_audio(path, rate)
            out[f"{path}@{rate}"] = [len(pcm), r, float(np.abs(pcm).max())]
        except AudioError as e:
            out[f"{path}@{rate}"] = "Error: " + str(e)
print(json.dumps(out))
"""


def _decode_in_child(paths: list[Path]) -> dict[str, object]:
    r = subprocess.run([sys.executable, "-c", _DECODE_CHILD, *map(str, paths)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"decoder died with rc {r.returncode}: {r.stderr[-2000:]}"
    return json.loads(r.stdout)


def _wav(path: Path, channels: int, rate: int = 48000, seconds: float = 0.2) -> Path:
    n = int(rate * seconds)
    x = (np.sin(2 * np.pi * 440 * np.arange(n) / rate) * 16384).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(x[:, None], channels, axis=1).tobytes())
    return path


def test_sox_71_wav_decodes(tmp_path):
    """The report's case: a valid 7.1 WAV made by sox segfaulted in to_ndarray."""
    sox = shutil.which("sox")
    if sox is None:
        pytest.skip("sox is not installed (the wave-module cases below cover 8 channels)")
    files = []
    for ch, bits in ((8, 16), (8, 32), (6, 24), (12, 16)):
        f = tmp_path / f"sox{ch}_{bits}.wav"
        subprocess.run([sox, "-n", "-r", "48000", "-c", str(ch), "-b", str(bits), str(f),
                        "synth", "0.5", "sine", "440", "vol", "0.5"], check=True,
                       capture_output=True)
        files.append(f)
    got = _decode_in_child(files)
    for f in files:
        n, rate, peak = got[f"{f}@16000"]
        assert (n, rate) == (8000, 16000) and 0.45 < peak < 0.55, (f.name, got[f"{f}@16000"])
        n, rate, _ = got[f"{f}@None"]
        assert (n, rate) == (24000, 48000)


def test_every_channel_count_downmixes_or_is_refused(tmp_path):
    """1..64 channels average to the same mono signal; more is one Error line."""
    counts = (1, 2, 3, 6, 7, 8, 9, 16, 64)
    files = [_wav(tmp_path / f"ch{c}.wav", c) for c in counts]
    too_many = [_wav(tmp_path / f"ch{c}.wav", c, seconds=0.05) for c in (65, 100)]
    got = _decode_in_child(files + too_many)
    for f in files:
        n, rate, peak = got[f"{f}@16000"]
        assert (n, rate) == (3200, 16000) and abs(peak - 0.5) < 0.01, (f.name, peak)
    for f in too_many:
        msg = got[f"{f}@None"]
        assert isinstance(msg, str) and "\n" not in msg and f.name in msg, msg
        assert "1 to 64" in msg and "-ac 1" in msg


def test_planar_71_codecs_decode(tmp_path):
    """AAC and Opus decoders hand out planar 8-channel frames: they must not crash either."""
    import av

    files = []
    for codec, ext in (("aac", "m4a"), ("libopus", "ogg")):
        f = tmp_path / f"71.{ext}"
        try:
            out = av.open(str(f), "w")
            stream = out.add_stream(codec, rate=48000, layout="7.1")
        except (av.FFmpegError, ValueError):
            continue  # this FFmpeg build lacks the encoder
        x = (np.sin(np.arange(48000) / 10) * 0.5).astype(np.float32)
        packed = np.repeat(x[:, None], 8, axis=1)
        for i in range(0, 48000, 960):  # packed: PyAV's own from_ndarray breaks on planar 8ch
            frame = av.AudioFrame.from_ndarray(packed[i:i + 960].reshape(1, -1), format="flt",
                                               layout="7.1")
            frame.sample_rate = 48000
            for p in stream.encode(frame):
                out.mux(p)
        for p in stream.encode(None):
            out.mux(p)
        out.close()
        files.append(f)
    if not files:
        pytest.skip("no 7.1 encoder in this FFmpeg build")
    got = _decode_in_child(files)
    for f in files:
        n, rate, peak = got[f"{f}@16000"]
        assert rate == 16000 and n > 15000 and 0.4 < peak < 0.6, (f.name, got[f"{f}@16000"])


# JSON limits ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, reason", [
    ("[" * 100_000, "nested deeper than 32"),
    ("[" * 40 + "]" * 40, "nested deeper than 32"),
    ('{"a": ' * 33 + "1" + "}" * 33, "nested deeper than 32"),
    ("1" * 5000, "not usable JSON"),
    ("{", "not valid JSON"),
])
def test_json_limits(text, reason):
    with pytest.raises(jsonfile.JsonError, match=reason):
        jsonfile.loads(text)


def test_json_size_limit(tmp_path):
    f = tmp_path / "big.json"
    f.write_text("[" + "0," * 100 + "0]")
    with pytest.raises(jsonfile.JsonError, match="larger than 64 bytes"):
        jsonfile.read(f, max_bytes=64)
    assert len(jsonfile.read(f)) == 101
    assert jsonfile.loads('{"a": ' * 32 + "1" + "}" * 32) is not None  # 32 deep is fine


def _avatar_copy(tmp_path: Path, name: str, meta_text: str | None = None) -> Path:
    folder = tmp_path / name
    shutil.copytree(LEO, folder)
    if meta_text is not None:
        (folder / "avatar.json").write_text(meta_text)
    else:
        meta = json.loads((folder / "avatar.json").read_text())
        meta["name"] = name
        (folder / "avatar.json").write_text(json.dumps(meta))
    return folder


def test_deep_avatar_json_is_one_line_naming_the_file(tmp_path):
    bad = _avatar_copy(tmp_path, "deep", "[" * 200_000)
    with pytest.raises(AvatarError) as e:
        load_avatar(bad)
    assert "avatar.json" in str(e.value) and "nested deeper" in str(e.value)
    deep_landmarks = _avatar_copy(tmp_path, "deeplm")
    (deep_landmarks / "landmarks.json").write_text('{"points": ' + "[" * 5000 + "]" * 5000 + "}")
    with pytest.raises(AvatarError, match="landmarks.json is nested deeper"):
        load_avatar(deep_landmarks)


def test_cli_deep_avatar_json_error_line(tmp_path):
    """The real command: one `Error:` line naming avatar.json, no RecursionError."""
    bad = _avatar_copy(tmp_path, "deep", "[" * 200_000)
    r = subprocess.run([EXE, "--avatar", str(bad), "--source", "demo", "--sink",
                        f"file:{tmp_path / 'o.mp4'}", "--no-control"], capture_output=True,
                       text=True, timeout=120, cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr[-3000:]
    assert lines[0].startswith("Error: ") and str(bad) in lines[0], lines[0]
    assert "avatar.json is nested deeper than 32 levels" in lines[0], lines[0]


def test_avatars_lists_the_good_and_reports_the_bad(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    _avatar_copy(folder, "good")
    _avatar_copy(folder, "deep", "[" * 200_000)
    _avatar_copy(folder, "notobj", "[1, 2]")
    env = {**os.environ, "AVATAR_VCAM_AVATARS": str(folder), "COLUMNS": "200"}
    r = subprocess.run([EXE, "avatars"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "RecursionError" not in r.stderr
    for name in ("good", "deep", "notobj", "leo", "grace"):
        assert name in r.stdout
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 2, r.stderr
    assert any(str(folder / "deep" / "avatar.json") in w and "nested deeper" in w
               for w in warnings), warnings


# control API bodies and control.json -------------------------------------------------


class _Target:
    def __init__(self) -> None:
        self.expression = "neutral"

    def set_expression(self, name: str) -> None:
        if name not in self.expressions():
            raise KeyError(f"unknown expression {name!r}")
        self.expression = name

    def expressions(self) -> list[str]:
        return ["neutral", "smile"]

    def status(self) -> dict[str, object]:
        return {"expression": self.expression}


def test_control_body_too_deep_is_a_400(tmp_path):
    import http.client

    with ControlServer(_Target(), runtime_dir=tmp_path / "run") as server:
        for depth in (5000, 9):
            body = '{"name": ' + "[" * depth + "]" * depth + "}"
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.request("POST", "/v1/expression", body=body.encode(),
                         headers={"Authorization": f"Bearer {server.token}"})
            resp = conn.getresponse()
            reply = json.loads(resp.read())
            conn.close()
            assert resp.status == 400 and "nested deeper than 8" in reply["error"], reply
        client = ControlClient(server.port, server.token)
        assert client.set_expression("smile")["expression"] == "smile"


def test_deep_control_json_counts_as_unreadable(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    (run / "control.json").write_text("[" * 100_000)
    monkeypatch.setenv("AVATAR_VCAM_RUNTIME_DIR", str(run))
    with pytest.raises(ControlError, match="unreadable"):
        ControlClient.from_runtime_file()


# runtime folders -----------------------------------------------------------------------


def _foreign_folder(tmp_path: Path) -> Path:
    """A folder owned by another user: chown'ed when we are root, else one of root's."""
    if os.geteuid() != 0:
        return Path("/")
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)
    return folder


def test_runtime_dir_of_another_user_is_refused(tmp_path, monkeypatch):
    folder = _foreign_folder(tmp_path)
    monkeypatch.setenv("AVATAR_VCAM_RUNTIME_DIR", str(folder))
    with pytest.raises(ControlError) as e:
        control_dir()
    msg = str(e.value)
    assert "\n" not in msg and "belongs to uid" in msg and "AVATAR_VCAM_RUNTIME_DIR" in msg
    with pytest.raises(ControlError, match="belongs to uid"):
        ControlServer(_Target()).start()
    with pytest.raises(ControlError, match="belongs to uid"):
        ControlServer(_Target(), runtime_dir=folder).start()


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777])
def test_runtime_dir_writable_by_others_is_refused(tmp_path, monkeypatch, mode):
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(mode)
    monkeypatch.setenv("AVATAR_VCAM_RUNTIME_DIR", str(folder))
    with pytest.raises(ControlError, match="writable by other users.*chmod 700"):
        control_dir()


def test_cli_refuses_foreign_runtime_dir(tmp_path):
    folder = _foreign_folder(tmp_path)
    env = {**os.environ, "AVATAR_VCAM_RUNTIME_DIR": str(folder)}
    r = subprocess.run([EXE, "status"], capture_output=True, text=True, timeout=60, env=env)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    assert "belongs to uid" in lines[0]


def test_private_runtime_dir_is_accepted(tmp_path, monkeypatch):
    folder = tmp_path / "mine"
    monkeypatch.setenv("AVATAR_VCAM_RUNTIME_DIR", str(folder))
    assert control_dir() == folder  # absent: created 0700 by the daemon
    with ControlServer(_Target()) as server:
        assert (folder / "control.json").is_file()
        assert ControlClient.from_runtime_file().status()["pid"] == os.getpid()
        assert server.port > 0


# config.toml ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, reason", [
    ("fps = " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 16 levels"),
    ("x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n", "nested deeper than 16 levels"),
    ("[" + ".".join(["a"] * 3000) + "]\nb = 1\n", "nested deeper than 16 levels"),
    ("# padding\n" * 200_000, "larger than 1024 KB"),
])
def test_config_toml_limits(tmp_path, text, reason):
    from vcam.control.settings import ConfigError, load_config

    f = tmp_path / "config.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert reason in str(e.value) and str(f) in str(e.value) and "\n" not in str(e.value)
