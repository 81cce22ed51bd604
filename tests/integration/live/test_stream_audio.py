"""Programs drive the daemon on real parts: PulseAudio/PipeWire null sinks, pyvirtualcam's
v4l2 code through the shim, the CLI (issue 21).

The daemon runs ``--source idle --sink vcam:/dev/video10 --voice-out avatar_mic``. A client
streams a WAV over the control API's WebSocket ``/v1/audio`` in real time: the lips on the
camera must follow it and the A/V offset (virtual mic vs camera) stay within a frame, as
for a mic. Then ``avatar-vcam say`` speaks with espeak-ng's phone timings: the lips on the
camera must match the phones, as heard on the virtual mic, within one frame.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

SUPPORT = Path(__file__).resolve().parents[2] / "support"
sys.path.insert(0, str(SUPPORT))
sys.path.insert(0, str(Path(__file__).parent))
from avsync import av_lag, camera_frames, lips, offline_lag  # noqa: E402
from needs import require  # noqa: E402
from pulse_server import Recorder  # noqa: E402
from speech import phrases, write_wav  # noqa: E402
from test_live_pulse import EXE, Daemon  # noqa: E402
from tts_lips import find_in_recording, phone_sync  # noqa: E402

FPS, SIZE, RATE = 25, 192, 48000
SCRIPT = [(0.2, "hello there"), (1.6, "papa, mama"), (3.0, "one more time")]
SAY = "Peter Piper picked a peck of pickled peppers."

pytestmark = pytest.mark.integration


def _wait_control(runtime: Path, d: Daemon, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not (runtime / "control.json").exists():
        assert d.proc.poll() is None and time.monotonic() < deadline, d.text
        time.sleep(0.1)


def _daemon(pulse_server, fake_v4l2, tmp_path: Path, seconds: float) -> tuple[Daemon, Path,
                                                                              Path, Path]:
    cam, times = tmp_path / "cam.yuv", tmp_path / "cam.times"
    env = fake_v4l2("/dev/video10", cam, times, base=pulse_server.env)
    d = Daemon(["--source", "idle", "--sink", "vcam:/dev/video10", "--voice-out",
                "avatar_mic", "--duration", str(seconds), "--size", str(SIZE)], env)
    runtime = Path(pulse_server.env["XDG_RUNTIME_DIR"]) / "avatar-vcam"
    d.wait_started()
    _wait_control(runtime, d)
    return d, runtime, cam, times


def test_websocket_wav_drives_lips_and_voice_as_a_mic(pulse_server, fake_v4l2, tmp_path):
    require("espeak-ng", "speaks the test phrases")
    from vcam.control.audio_client import AudioClient

    pcm, _ = phrases(RATE, SCRIPT, 4.5)
    wav = write_wav(tmp_path / "speech.wav", pcm, RATE)
    with wave.open(str(wav)) as w:  # what a client has: a WAV file's bytes
        rate, data = w.getframerate(), w.readframes(w.getnframes())
    mic = Recorder(pulse_server, "avatar_mic.monitor")
    d, runtime, cam, times = _daemon(pulse_server, fake_v4l2, tmp_path, 13)
    try:
        time.sleep(2.0)  # null sinks settle into low-latency mode
        with AudioClient.from_runtime_file(runtime) as c:
            ready = c.open("s16le", rate, channels=1)
            block = rate // 50 * 2  # 20 ms of s16le, sent in real time
            t0 = time.monotonic()
            for i in range(0, len(data), block):
                time.sleep(max(0.0, t0 + i / 2 / rate - time.monotonic()))
                c.send_pcm(data[i:i + block])
            c.sent = len(data) // 2
            done = c.end()
        assert d.wait(60) == 0, d.text
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
        voice, t_voice = mic.stop()
    assert ready["rate"] == RATE and done["played_s"] == pytest.approx(len(pcm) / RATE,
                                                                       abs=0.01)
    frames, t_frames = camera_frames(cam, times, SIZE)
    assert len(frames) > 10 * FPS, d.text
    assert np.diff(t_frames).max() < 0.2, "camera stalled"
    openness = lips(frames, SIZE)
    assert openness.max() > 0.1, f"the mouth never opened\n{d.text}"
    sync = av_lag(openness, t_frames, voice, t_voice, RATE, FPS)
    model = offline_lag(pcm, RATE, FPS, SIZE)  # Audio2Motion's own lag, transport perfect
    added = sync.lag_s - model.lag_s
    print(f"\n[ws] A/V offset (virtual mic vs camera) {1000 * sync.lag_s:+.0f} ms "
          f"(corr {sync.corr:.2f}); on a file render {1000 * model.lag_s:+.0f} ms, so the "
          f"stream's live path adds {1000 * added:+.0f} ms; underruns {done['underruns']}; "
          f"{d.lines[-1]}")
    assert sync.corr > 0.5, "lips do not follow the streamed voice"
    assert abs(added) <= 1.0 / FPS, f"the live path adds {1000 * added:+.0f} ms of A/V offset"
    assert abs(sync.lag_s) <= 1.5 / FPS, f"A/V offset {1000 * sync.lag_s:+.0f} ms"


def test_say_lips_match_espeak_phone_timings(pulse_server, fake_v4l2, tmp_path):
    require("espeak-ng", "the say command's voice")
    from engine.tts.espeak import Espeak

    mic = Recorder(pulse_server, "avatar_mic.monitor")
    d, runtime, cam, times = _daemon(pulse_server, fake_v4l2, tmp_path, 10)
    try:
        time.sleep(2.0)
        r = subprocess.run([EXE, "say", "--json", SAY], env=pulse_server.env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        said = json.loads(r.stdout)
        bad = subprocess.run([EXE, "say", ""], env=pulse_server.env, capture_output=True,
                             text=True, timeout=60)
        assert d.wait(60) == 0, d.text
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
        voice, t_voice = mic.stop()
    assert bad.returncode == 1 and bad.stderr.startswith("Error:"), bad.stderr
    utt = Espeak.get().synth(SAY, rate=170)  # the same synthesis, for finding it on the mic
    at, match = find_in_recording(utt.pcm, utt.sr, voice, RATE)
    # (drift correction on the voice output drops/repeats single samples: the match of the
    # whole waveform is partial, about 0.3 on a loaded machine; noise scores near 0)
    assert match > 0.15, f"the voice on the virtual mic is not the utterance ({match:.2f})"
    frames, t_frames = camera_frames(cam, times, SIZE)
    openness = lips(frames, SIZE)
    phones = [tuple(p) for p in said["phones"]]
    sync = phone_sync(openness, t_frames, t_voice + at / RATE, phones, said["audio_s"])
    first = (sync.first_motion - said["t_start"]) if sync.first_motion else float("nan")
    print(f"\n[say] lips vs espeak-ng phones as heard {1000 * sync.lag_s:+.0f} ms (corr "
          f"{sync.corr:.2f}); say -> first mouth motion on camera {1000 * first:.0f} ms; "
          f"heard {1000 * (sync.heard_at - said['t_start']):.0f} ms after say started")
    assert sync.corr > 0.6, "lips do not follow the phones"
    assert abs(sync.lag_s) <= 1.0 / FPS, f"lips off the phones by {1000 * sync.lag_s:+.0f} ms"


def test_say_with_another_tts_program(pulse_server, fake_v4l2, tmp_path):
    """`say --tts COMMAND`: a third program's audio and phone timings (here a small program
    over espeak-ng's library, tests/support/fake_tts.py) drive the lips as espeak-ng's do."""
    require("espeak-ng", "the test TTS program's voice")
    import shlex

    from engine.tts.espeak import Espeak

    tts = (f"{shlex.quote(sys.executable)} {shlex.quote(str(SUPPORT / 'fake_tts.py'))} "
           "{wav} {timings}")
    mic = Recorder(pulse_server, "avatar_mic.monitor")
    d, runtime, cam, times = _daemon(pulse_server, fake_v4l2, tmp_path, 10)
    try:
        time.sleep(2.0)
        r = subprocess.run([EXE, "say", "--json", "--tts", tts, SAY], env=pulse_server.env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        said = json.loads(r.stdout)
        bad = subprocess.run([EXE, "say", "--tts", "no-such-tts -w {wav}", SAY],
                             env=pulse_server.env, capture_output=True, text=True, timeout=60)
        assert d.wait(60) == 0, d.text
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
        voice, t_voice = mic.stop()
    assert bad.returncode == 1 and bad.stderr.startswith("Error:") and "not found" in bad.stderr
    assert said["timings"] and len(said["phones"]) > 20
    utt = Espeak.get().synth(SAY, rate=170)
    at, match = find_in_recording(utt.pcm, utt.sr, voice, RATE)
    assert match > 0.15, f"the voice on the virtual mic is not the utterance ({match:.2f})"
    frames, t_frames = camera_frames(cam, times, SIZE)
    sync = phone_sync(lips(frames, SIZE), t_frames, t_voice + at / RATE,
                      [tuple(p) for p in said["phones"]], said["audio_s"])
    print(f"\n[say --tts] lips vs the program's phones as heard {1000 * sync.lag_s:+.0f} ms "
          f"(corr {sync.corr:.2f})")
    assert sync.corr > 0.6, "lips do not follow the phones"
    assert abs(sync.lag_s) <= 1.0 / FPS, f"lips off the phones by {1000 * sync.lag_s:+.0f} ms"
