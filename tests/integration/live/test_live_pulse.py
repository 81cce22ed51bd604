"""The live path on real parts: PulseAudio null sinks, pyvirtualcam's v4l2 code, the CLI.

Speech (vowels at known times) is played into the "system audio" sink; the daemon runs
``--source system --sink vcam:/dev/video10 --voice-out avatar_mic``; the camera frames
(with the time the camera got each) and the virtual mic's monitor are recorded and the
lips are cross-correlated with the voice: |A/V offset| must stay within one frame.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

SUPPORT = Path(__file__).resolve().parents[2] / "support"
sys.path.insert(0, str(SUPPORT))
from avsync import av_lag, camera_frames, lips, offline_lag  # noqa: E402
from needs import require  # noqa: E402
from pulse_server import Recorder  # noqa: E402
from speech import phrases, write_wav  # noqa: E402

EXE = str(Path(sys.executable).parent / "avatar-vcam")
FPS, SIZE, RATE = 25, 192, 48000
SCRIPT = [(0.2, "hello there"), (1.6, "papa, mama"), (3.0, "one more time")]

pytestmark = pytest.mark.integration


class Daemon:
    """``avatar-vcam`` as a subprocess; collects stderr lines as they come."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([EXE, *args], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.times: list[float] = []  # time.monotonic() when each line was read
        self.started = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.times.append(time.monotonic())
            self.lines.append(line.rstrip())
            if "<-" in line:
                self.started.set()

    def wait_started(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.started.wait(0.1):
            assert self.proc.poll() is None, "\n".join(self.lines)
            assert time.monotonic() < deadline, "daemon did not start"

    def wait(self, timeout: float = 60) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        return rc

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture(scope="module")
def speech_pcm() -> np.ndarray:
    require("espeak-ng", "speaks the test phrases")
    return phrases(RATE, SCRIPT, 4.5)[0]


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory, speech_pcm) -> Path:
    return write_wav(tmp_path_factory.mktemp("speech") / "speech.wav", speech_pcm, RATE)


def test_live_voice_and_lips_leave_together(pulse_server, fake_v4l2, speech_wav, speech_pcm,
                                            tmp_path):
    cam, times = tmp_path / "cam.yuv", tmp_path / "cam.times"
    env = fake_v4l2("/dev/video10", cam, times, base=pulse_server.env)
    mic = Recorder(pulse_server, "avatar_mic.monitor")
    played = Recorder(pulse_server, "sysaudio.monitor")
    d = Daemon(["--source", "system", "--sink", "vcam:/dev/video10", "--voice-out",
                "avatar_mic", "--duration", "14", "--size", str(SIZE), "--no-control"], env)
    try:
        d.wait_started()
        time.sleep(2.5)  # null sinks settle into low-latency mode
        for _ in range(2):
            pulse_server.play(speech_wav).wait(20)
            time.sleep(0.6)
        assert d.wait(60) == 0, d.text
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
        voice, t_voice = mic.stop()
        orig, t_orig = played.stop()
    frames, t_frames = camera_frames(cam, times, SIZE)
    assert len(frames) > 10 * FPS, d.text
    gaps = np.diff(t_frames)
    assert gaps.max() < 0.2, f"camera stalled for {gaps.max():.3f} s"
    assert abs(np.median(gaps) - 1 / FPS) < 0.004, "frames not paced at 25 fps"
    openness = lips(frames, SIZE)
    assert openness.max() > 0.1, f"the mouth never opened\n{d.text}"
    sync = av_lag(openness, t_frames, voice, t_voice, RATE, FPS)
    if os.environ.get("AVATAR_VCAM_DUMP"):
        np.savez(os.environ["AVATAR_VCAM_DUMP"], openness=openness, t_frames=t_frames,
                 voice=voice, t_voice=t_voice, orig=orig, t_orig=t_orig)
    e2e = av_lag(openness, t_frames, orig, t_orig, RATE, FPS)
    model = offline_lag(speech_pcm, RATE, FPS, SIZE)
    print(f"\n[live] A/V offset (virtual mic vs camera) {1000 * sync.lag_s:+.0f} ms "
          f"(corr {sync.corr:.2f}, peak width {1000 * sync.spread_s:.0f} ms); the same "
          f"measure on a file render {1000 * model.lag_s:+.0f} ms, so the live path adds "
          f"{1000 * (sync.lag_s - model.lag_s):+.0f} ms; end-to-end delay (played -> lips "
          f"on camera) {-1000 * e2e.lag_s:.0f} ms; daemon: {d.lines[-1] if d.lines else ''}")
    assert sync.corr > 0.5, "lips do not follow the voice"
    assert abs(sync.lag_s) <= 1.0 / FPS, f"A/V offset {1000 * sync.lag_s:+.0f} ms"
    assert -e2e.lag_s < 0.4, f"end-to-end delay {-1000 * e2e.lag_s:.0f} ms"


def test_input_lost_mid_run_idles_and_resumes(pulse_server, fake_v4l2, tmp_path):
    cam, times = tmp_path / "cam.yuv", tmp_path / "cam.times"
    env = fake_v4l2("/dev/video10", cam, times, base=pulse_server.env)
    d = Daemon(["--source", "device:sysaudio.monitor", "--sink", "vcam:/dev/video10",
                "--duration", "9", "--size", "128", "--no-control"], env)
    try:
        d.wait_started()
        time.sleep(2.0)
        pulse_server.unload_sink("sysaudio")
        time.sleep(2.5)
        pulse_server.load_sink("sysaudio")
        assert d.wait(60) == 0, d.text
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
        if "sysaudio" not in pulse_server.modules:
            pulse_server.load_sink("sysaudio")
        pulse_server.pactl("set-default-sink", "sysaudio")
    assert "audio input lost" in d.text and "audio input back" in d.text, d.text
    _, t = camera_frames(cam, times, 128)
    gaps = np.diff(t)
    big = [(round(float(t[i] - t[0]), 2), round(float(g), 2)) for i, g in enumerate(gaps)
           if g > 0.1]
    assert len(t) > 0.7 * 9 * FPS and gaps.max() < 0.4, (
        f"{len(t)} frames, gaps (at s, for s) {big}: the avatar must keep idling\n{d.text}")


def test_busy_camera_is_one_clear_line(pulse_server, fake_v4l2, tmp_path):
    env = fake_v4l2("/dev/video10", tmp_path / "cam.yuv", base=pulse_server.env)
    env["FAKE_V4L2_BUSY"] = "1"
    r = subprocess.run([EXE, "--source", "system", "--sink", "vcam:/dev/video10",
                        "--duration", "1", "--no-control"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and "ALSA lib" not in ln]
    assert len(lines) == 1 and lines[0].startswith("Error:") and "/dev/video10" in lines[0], \
        r.stderr


@pytest.mark.parametrize("args, expected", [
    (["--voice-out", "no_such_sink"], "setup-virtual-mic"),
    (["--source", "device:no_such_source"], "no audio input called"),
    (["--source", "device:sysaudio.monitor", "--voice-out", "sysaudio"], "would loop"),
])
def test_missing_or_looping_devices_are_one_clear_line(pulse_server, tmp_path, args, expected):
    r = subprocess.run([EXE, "--source", "system", *args, "--sink",
                        f"file:{tmp_path / 'o.mp4'}", "--duration", "1", "--no-control"],
                       env=pulse_server.env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and "ALSA lib" not in ln]
    assert len(lines) == 1 and expected in lines[0], r.stderr


def test_setup_virtual_mic_creates_a_microphone_and_removes_it(pulse_server):
    env = pulse_server.env
    r = subprocess.run([EXE, "setup-virtual-mic"], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    sources = pulse_server.pactl("list", "short", "sources")
    assert "avatar_vcam_mic_src" in sources and "avatar_vcam_mic.monitor" in sources
    again = subprocess.run([EXE, "setup-virtual-mic"], env=env, capture_output=True, text=True)
    assert "already set up" in again.stdout
    devices = subprocess.run([EXE, "devices", "--json"], env=env, capture_output=True,
                             text=True, check=True).stdout
    assert "avatar_vcam_mic" in devices and "sysaudio.monitor" in devices
    r = subprocess.run([EXE, "setup-virtual-mic", "--remove"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and "removed" in r.stdout
    assert "avatar_vcam_mic" not in pulse_server.pactl("list", "short", "sources")


def test_doctor_names_the_fix_for_each_missing_piece(pulse_server):
    r = subprocess.run([EXE, "doctor", "--json"], env=pulse_server.env, capture_output=True,
                       text=True, timeout=60)
    import json

    checks = {c["what"]: c for c in json.loads(r.stdout)}
    assert r.returncode == 1  # no virtual camera in a container
    assert checks["sound server"]["ok"]
    assert not checks["virtual camera"]["ok"]
    assert "modprobe v4l2loopback" in checks["virtual camera"]["fix"]
    assert "exclusive_caps=1" in checks["virtual camera"]["fix"]
    assert checks["virtual microphone"]["fix"] == "avatar-vcam setup-virtual-mic"
    assert checks["avatar leo"]["ok"]


def test_ctrl_c_stops_within_a_second(pulse_server, tmp_path):
    import signal

    d = Daemon(["--source", "system", "--sink", f"file:{tmp_path / 'o.mp4'}",
                "--voice-out", "avatar_mic"], pulse_server.env)
    try:
        d.wait_started()
        # Frames leave on the voice output's clock. Stop only once they flow (asked through
        # the control API): a slow start of the output once sent none in a fixed second.
        deadline = time.monotonic() + 20
        while True:
            r = subprocess.run([EXE, "status", "--json"], env=pulse_server.env,
                               capture_output=True, text=True, timeout=30)
            if r.returncode == 0 and json.loads(r.stdout).get("frames", 0) >= 5:
                break
            assert time.monotonic() < deadline and d.proc.poll() is None, d.text + r.stderr
            time.sleep(0.2)
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGINT)
        rc = d.wait(10)
        took = time.monotonic() - t0
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
    assert rc == 0, d.text
    # "wrote" comes once every device is closed (the mp4 finished, the streams stopped);
    # the interpreter's own exit after it is not the daemon's work, and on a loaded 2-core
    # machine it alone took up to a second
    closed = next(t for t, ln in zip(d.times, d.lines, strict=True) if ln.startswith("wrote"))
    print(f"devices closed {closed - t0:.2f} s after SIGINT, process gone after {took:.2f} s")
    assert closed - t0 < 1.0, f"devices closed {closed - t0:.2f} s after Ctrl-C"
    assert took < 5, f"the process took {took:.2f} s to exit"
    assert (tmp_path / "o.mp4").stat().st_size > 0
    assert not any("Traceback" in ln for ln in d.lines), d.text
    assert os.path.exists(tmp_path / "o.mp4")


@pytest.mark.parametrize("kind", ["pulseaudio", "pipewire"])
def test_a_sound_server_that_fails_to_start_leaves_nothing_running(kind: str,
                                                                   monkeypatch) -> None:
    """A start that fails after its processes are up (here: a sink that never loads) stops
    them, so a broken setup does not leave servers behind for the next test to meet."""
    from pulse_server import PipeWireServer, PulseServer

    cls = PipeWireServer if kind == "pipewire" else PulseServer
    for tool in (*PipeWireServer.TOOLS, "pactl") if kind == "pipewire" else ("pulseaudio",
                                                                           "pactl"):
        require(tool, "the sound servers of the live tests")
    started: list[subprocess.Popen] = []
    real_popen = subprocess.Popen

    def recording_popen(*args, **kwargs):
        proc = real_popen(*args, **kwargs)
        started.append(proc)
        return proc

    def no_sink(self, name: str, timeout: float = 10) -> None:
        raise RuntimeError(f"sink {name} was loaded but never listed")

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    monkeypatch.setattr(cls, "load_sink", no_sink)
    server = cls()
    with pytest.raises(RuntimeError, match="never listed"):
        server.start()
    assert started and all(p.poll() is not None for p in started)
    assert not server.root.exists()
