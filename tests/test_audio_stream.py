"""/v1/audio on a real control server, injector and sample clock (issue 21).

A real :class:`ControlServer` serves the WebSocket; a real :class:`ClockSource` drives the
injector and a real Audio2Motion (wrapped by TimedAudio2Motion) from a thread, as the
daemon's engine thread does. Clients are real WebSocket clients (the websockets library)
or raw sockets for what a library would not send. Each bad client gets its close code and
a reason that says what to do; the clock keeps running and the next client is served.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from engine.audio2motion import make_audio2motion
from engine.audio2motion.timed import TimedAudio2Motion
from vcam.control.api import ControlError, ControlServer
from vcam.control.audio_client import AudioClient
from vcam.live.inject import AudioInjector
from vcam.live.program_sources import ClockSource

RATE = 48000


class _Target:
    def __init__(self, injector: AudioInjector | None) -> None:
        self.audio_in = injector

    def set_expression(self, name: str) -> None:
        raise KeyError(name)

    def expressions(self) -> list[str]:
        return []

    def status(self) -> dict:
        return {}


class Daemon:
    """The daemon's audio path without devices: clock -> injector -> Audio2Motion."""

    def __init__(self, tmp_path, **injector_args) -> None:
        self.a2m = TimedAudio2Motion(make_audio2motion("dsp"))
        self.injector = AudioInjector(RATE, timed=self.a2m, **injector_args)
        self.source = ClockSource(RATE)
        self.mixed: list = []
        self.server = ControlServer(_Target(self.injector), runtime_dir=tmp_path).start()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        for chunk in self.source.chunks():
            chunk = self.injector.mix(chunk)
            self.a2m.push(chunk.pcm, chunk.pts, chunk.sample_rate)
            self.mixed.append(chunk)

    def client(self) -> AudioClient:
        return AudioClient(self.server.port, self.server.token, timeout=5)

    def raw(self, headers: dict | None = None):
        """A websockets client connection (no AudioClient niceties)."""
        h = {"Authorization": f"Bearer {self.server.token}", **(headers or {})}
        return connect(f"ws://127.0.0.1:{self.server.port}/v1/audio", proxy=None,
                       additional_headers=h, ping_interval=None, compression=None,
                       close_timeout=2)

    def audio(self) -> np.ndarray:
        return np.concatenate([c.pcm for c in list(self.mixed)])

    def close(self) -> None:
        self.source.close()
        self._thread.join(2)
        self.server.close()


@pytest.fixture
def daemon(tmp_path):
    d = Daemon(tmp_path, stall_s=0.6, max_queue_s=2.0)
    yield d
    d.close()


def tone(rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def closed_with(ws) -> tuple[int, str, list[dict]]:
    """Read until the server closes: (code, reason, the JSON messages it sent)."""
    msgs = []
    try:
        while True:
            m = ws.recv(timeout=5)
            if isinstance(m, str):
                msgs.append(json.loads(m))
    except ConnectionClosed as e:
        rcvd = e.rcvd
        return (rcvd.code if rcvd else 1006), (rcvd.reason if rcvd else ""), msgs


def still_serves(d: Daemon) -> None:
    """The daemon's clock runs on and a well-behaved client is served after a bad one."""
    before = len(d.mixed)
    with d.client() as c:
        c.open("f32le", 16000)
        c.send_pcm(tone(16000, 0.2))
        done = c.end(timeout=5)
    assert done["played_s"] == pytest.approx(0.2, abs=0.002)
    assert len(d.mixed) > before


# -- the good path -----------------------------------------------------------------------
def test_streamed_audio_plays_on_the_daemon_clock_resampled(daemon):
    x = tone(22050, 0.5)
    with daemon.client() as c:
        ready = c.open("s16le", 22050, channels=1)
        c.send_pcm(x)
        done = c.end(timeout=5)
    assert ready["type"] == "ready" and ready["rate"] == RATE and ready["timings"]
    assert done["underruns"] == 0 and done["played_s"] == pytest.approx(0.5, abs=0.001)
    out = daemon.audio()
    a = round(done["started_pts"] * RATE)
    heard = out[a:a + round(0.5 * RATE)]
    assert np.abs(heard).max() == pytest.approx(0.5, abs=0.02)  # the tone, at 48 kHz
    spectrum = np.abs(np.fft.rfft(heard))
    assert np.argmax(spectrum) * RATE / len(heard) == pytest.approx(220, abs=3)
    assert a == 0 or np.abs(out[:a]).max() == 0.0  # silence before it: the idle clock


def test_stereo_and_timestamped_frames_with_a_gap(daemon):
    x = tone(16000, 0.2)
    stereo = np.stack([x, x], 1).astype("<f4").tobytes()
    with daemon.raw() as ws:
        ws.send(json.dumps({"format": "f32le", "rate": 16000, "channels": 2,
                            "timestamps": True}))
        assert json.loads(ws.recv(5))["type"] == "ready"
        ws.send(struct.pack("<d", 0.0) + stereo)
        ws.send(struct.pack("<d", 0.5) + stereo)  # 0.3 s of silence between them
        ws.send(json.dumps({"type": "end"}))
        done = json.loads(ws.recv(10))
    assert done["played_s"] == pytest.approx(0.7, abs=0.002)


def test_phone_timings_drive_the_mouth_where_the_audio_plays(daemon):
    from engine.audio2motion.phones import Phone, target_curves

    phones = [("SIL", 0.0, 0.1), ("P", 0.1, 0.2), ("AA1", 0.2, 0.5), ("M", 0.5, 0.6),
              ("SIL", 0.6, 0.8)]
    with daemon.client() as c:
        c.open("f32le", 16000, alphabet="arpabet")
        c.send_phones(phones)
        c.send_pcm(tone(16000, 0.8, 0.05))
        done = c.end(timeout=5)
    t0 = done["started_pts"]
    ref = target_curves([Phone(n, s, e) for n, s, e in
                         [("_", 0, 0.1), ("p", 0.1, 0.2), ("A:", 0.2, 0.5), ("m", 0.5, 0.6),
                          ("_", 0.6, 0.8)]], 80)
    jaw = np.array([daemon.a2m.motion_at(t0 + k / 100)["jawOpen"] for k in range(80)])
    assert np.abs(jaw - ref[:, 0]).max() < 1e-5  # the phones' curve, to the sample
    assert daemon.a2m.motion_at(t0 + 0.35).speaking


# -- bad clients ---------------------------------------------------------------------------
def test_a_client_that_stalls_is_closed_with_a_reason_and_the_mouth_idles(daemon):
    with daemon.raw() as ws:
        ws.send(json.dumps({"format": "s16le", "rate": 16000}))
        ws.recv(5)
        ws.send((tone(16000, 0.2) * 32767).astype("<i2").tobytes())
        code, reason, msgs = closed_with(ws)  # then nothing: stalled after 0.6 s
    assert code == 1008 and reason.startswith("stalled"), reason
    assert msgs[-1]["type"] == "error" and '{"type": "end"}' in msgs[-1]["error"]
    assert daemon.injector.status()["audio_streams"] == 0
    still_serves(daemon)


def test_a_client_that_floods_is_closed_with_a_reason(daemon):
    with daemon.raw() as ws:
        ws.send(json.dumps({"format": "f32le", "rate": 48000}))
        ws.recv(5)
        block = tone(48000, 0.5).tobytes()
        try:
            for _ in range(40):  # 20 s at once; the daemon queues at most 2 s
                ws.send(block)
        except ConnectionClosed:
            pass
        code, reason, _ = closed_with(ws)
    assert code == 1008 and reason.startswith("flood"), reason
    still_serves(daemon)


@pytest.mark.parametrize("opening, frames, code, words", [
    ("hello", [], 1007, "not JSON"),
    ("[1, 2]", [], 1007, "not a JSON object"),
    ('{"format": "mp3", "rate": 16000}', [], 1008, "format must be"),
    ('{"format": "s16le", "rate": 1e9}', [], 1008, "rate must be"),
    ('{"format": "s16le", "rate": 16000, "channels": 0}', [], 1008, "channels must be"),
    ('{"format": "s16le", "rate": 16000, "alphabet": "klingon"}', [], 1008, "alphabet"),
    (b"\x00\x01", [], 1008, "binary before the opening"),
    ('{"format": "s16le", "rate": 16000}', [b"\x00\x01\x02"], 1007, "not a whole number"),
    ('{"format": "f32le", "rate": 16000}', [np.array([np.nan], "<f4").tobytes()], 1007,
     "NaN"),
    ('{"format": "s16le", "rate": 16000}', ['{"type": "dance"}'], 1007,
     "unknown event type"),
    ('{"format": "s16le", "rate": 16000}', ['{"type": "phones", "phones": 3}'], 1007,
     "must be a list"),
    ('{"format": "s16le", "rate": 16000}',
     ['{"type": "phones", "phones": [{"phone": "XX", "start": 0}]}'], 1007,
     "not an arpabet phone"),
    ('{"format": "s16le", "rate": 16000}',
     ['{"type": "phones", "phones": [{"phone": "AA", "start": -1}]}'], 1007, ">= 0"),
    ('{"format": "s16le", "rate": 16000}',
     ['{"type": "weights", "frames": [{"t": 0, "jawOpen": 7}]}'], 1007, "0..1"),
    ('{"format": "s16le", "rate": 16000, "timestamps": true}', [b"\x00\x00"], 1007,
     "starts with its time"),
    ('{"format": "s16le", "rate": 16000, "timestamps": true}',
     [struct.pack("<d", 3600.0) + b"\x00\x00"], 1007, "jumps"),
])
def test_garbage_gets_a_close_code_and_what_to_send(daemon, opening, frames, code, words):
    with daemon.raw() as ws:
        ws.send(opening)
        for f in frames:
            ws.send(f)
        c, reason, msgs = closed_with(ws)
    assert c == code, (c, reason)
    errors = [m for m in msgs if m.get("type") == "error"]
    assert errors and words in errors[-1]["error"], msgs
    assert len(reason.encode()) <= 123
    still_serves(daemon)


def test_a_message_over_the_size_limit_is_1009(daemon):
    with daemon.raw() as ws:
        ws.send(json.dumps({"format": "s16le", "rate": 16000}))
        ws.recv(5)
        try:
            ws.send(b"\x00" * (2 << 20))
        except ConnectionClosed:
            pass
        code, _, _ = closed_with(ws)
    assert code == 1009
    still_serves(daemon)


def test_a_disconnect_mid_utterance_drops_its_audio_and_the_mouth_idles(daemon):
    ws = daemon.raw().__enter__()  # closed below by hand, without a close frame
    ws.send(json.dumps({"format": "f32le", "rate": 48000}))
    ws.recv(5)
    ws.send(tone(48000, 1.5).tobytes())  # 1.5 s queued, then the client vanishes
    time.sleep(0.3)
    ws.socket.shutdown(socket.SHUT_RDWR)  # no close frame: a crash, a pulled cable
    ws.socket.close()
    deadline = time.monotonic() + 3
    while daemon.injector.status()["audio_streams"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert daemon.injector.status()["audio_streams"] == 0
    time.sleep(0.2)
    gone_at = daemon.injector.clock_pts
    time.sleep(0.3)
    out = daemon.audio()
    assert np.abs(out[round(gone_at * RATE):]).max() == 0.0, "the rest must not play"
    assert not daemon.a2m.motion_at(daemon.a2m.ready_until()).speaking
    still_serves(daemon)


def test_too_many_streams_is_1013_and_missing_token_is_refused(tmp_path):
    d = Daemon(tmp_path, max_streams=1)
    try:
        with d.raw() as first:
            first.send(json.dumps({"format": "s16le", "rate": 16000}))
            first.recv(5)
            with d.raw() as second:
                second.send(json.dumps({"format": "s16le", "rate": 16000}))
                code, reason, _ = closed_with(second)
            assert code == 1013 and "try again" in reason
        c = AudioClient(d.server.port, "wrong-token")
        with pytest.raises(ControlError, match="wrong token"):
            c.open()
    finally:
        d.close()


def test_a_run_without_streamed_audio_says_so(tmp_path):
    server = ControlServer(_Target(None), runtime_dir=tmp_path).start()
    try:
        with pytest.raises(ControlError, match="takes no streamed audio"):
            AudioClient(server.port, server.token).open()
    finally:
        server.close()
