"""The virtual-mic sink disappears under a live run and comes back (issue 20).

On a private PulseAudio and on PipeWire, with the camera through pyvirtualcam's v4l2 code
(the shim): the daemon captures ``sysaudio.monitor`` (the default sink, so the server's
fallback for a stream that loses its sink is the very sink the daemon listens to) and
plays its voice into ``avatar_mic``. While speech plays, ``avatar_mic`` is unloaded, and
two seconds later loaded again. Asserted from the outside:

- the voice is never heard on any other sink: every other sink's monitor is recorded,
  and on ``sysaudio`` what is left after taking out the speech the test played is
  silence (a voice moved there would be that speech again, D later);
- the status says VOICE OUT LOST (and A/V unknown) within 1 s, the camera goes on;
- after the sink is back the status is live again, the voice reaches the virtual mic, and
  lips and voice line up within one frame, with a measured A/V offset in the status.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import fftconvolve

SUPPORT = Path(__file__).resolve().parents[2] / "support"
sys.path.insert(0, str(SUPPORT))
from avsync import av_lag, camera_frames, lips  # noqa: E402
from needs import require  # noqa: E402
from pulse_server import Recorder  # noqa: E402
from speech import phrases, write_wav  # noqa: E402

from vcam.control.api import ControlClient  # noqa: E402
from vcam.control.status import format_line  # noqa: E402

EXE = str(Path(sys.executable).parent / "avatar-vcam")
FPS, SIZE, RATE = 25, 128, 48000
SCRIPT = [(0.2, "hello there"), (1.6, "papa, mama"), (3.0, "one more time"),
          (4.4, "and once again")]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> tuple[np.ndarray, Path]:
    require("espeak-ng", "speaks the test phrases")
    pcm = phrases(RATE, SCRIPT, 6.0)[0]
    pcm = np.round(np.clip(pcm, -1, 1) * 32767) / 32768  # exactly what the wav holds
    return pcm, write_wav(tmp_path_factory.mktemp("speech") / "speech.wav", pcm, RATE)


class StatusPoller(threading.Thread):
    """``/v1/status`` every 50 ms: (monotonic time, fields) for the whole run."""

    def __init__(self, runtime: Path) -> None:
        super().__init__(daemon=True)
        self.runtime, self.seen = runtime, []
        self.stop = threading.Event()

    def run(self) -> None:
        client = None
        while not self.stop.wait(0.05):
            try:
                client = client or ControlClient.from_runtime_file(self.runtime, timeout=2)
                self.seen.append((time.monotonic(), client.status()))
            except Exception:
                continue

    def first(self, after: float, test) -> float | None:
        """When a status taken after ``after`` first passed ``test``."""
        return next((t for t, f in self.seen if t >= after and test(f)), None)


class SinkTap:
    """Everything a sink plays (its monitor), to a file: parecord with a roomy buffer, so
    that not a sample is dropped under load (placed in time by its content, not clocks)."""

    def __init__(self, server, sink: str, path: Path) -> None:
        self.path, self.out = path, open(path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["parecord", "-d", f"{sink}.monitor", "--raw", "--format=s16le",
             f"--rate={RATE}", "--channels=1", "--latency-msec=200"], env=server.env,
            stdout=self.out)

    def stop(self) -> np.ndarray:
        self.proc.terminate()
        self.proc.wait(5)
        self.out.close()
        return np.fromfile(self.path, "<i2").astype(np.float32) / 32768


def _play(server, wav: Path) -> subprocess.Popen:
    """paplay into ``sysaudio`` with a roomy buffer: no underrun drops a piece of it."""
    return subprocess.Popen(["paplay", "-d", "sysaudio", "--latency-msec=200", str(wav)],
                            env=server.env)


def _echo_windows(rec: np.ndarray, template: np.ndarray, span: tuple[float, float],
                  step: float = 0.02, search: float = 0.02) -> list[tuple[float, float]]:
    """Each ``step`` of ``rec`` over ``span`` (seconds into the speech the test played,
    found in ``rec`` by its content): (what is left after taking out the best-matching
    piece of that speech, the recording's RMS there). The speech alone leaves nothing (a
    null sink mixes exactly); the voice played there too (the same speech, D later)
    leaves about as much as there was."""
    k = int(np.argmax(fftconvolve(rec, template[::-1], mode="full")[len(template) - 1:]))
    n, reach = round(step * RATE), round(search * RATE)
    template = np.concatenate([template, np.zeros(reach + n, template.dtype)])
    energy = np.concatenate([[0.0], np.cumsum(template.astype(np.float64) ** 2)])
    out = []
    for t in np.arange(span[0], span[1] - step, step):
        j = round(t * RATE)
        tgt = rec[k + j:k + j + n].astype(np.float64)
        rms = float(np.sqrt(np.mean(tgt ** 2))) if len(tgt) == n else 0.0
        if rms < 1e-3:
            continue  # a pause in the speech: nothing to tell apart
        j0 = max(0, j - reach)
        ref = template[j0:j + reach + n].astype(np.float64)
        dots = fftconvolve(ref, tgt[::-1], mode="valid")
        if not len(dots):  # past the end of the speech: any sound here is not the test's
            out.append((rms, rms))
            continue
        e = energy[j0 + n:j0 + n + len(dots)] - energy[j0:j0 + len(dots)]
        fit = np.where(e > 1e-9, dots ** 2 / np.maximum(e, 1e-9), 0.0)
        left = np.sqrt(max(0.0, float(tgt @ tgt) - float(fit.max())) / n)
        out.append((left, rms))
    return out


def test_voice_out_sink_unloaded_and_back(pulse_server, fake_v4l2, speech, tmp_path):
    pcm, wav = speech
    runtime = tmp_path / "run"
    cam, times = tmp_path / "cam.yuv", tmp_path / "cam.times"
    env = fake_v4l2("/dev/video10", cam, times, base=pulse_server.env)
    env["AVATAR_VCAM_RUNTIME_DIR"] = str(runtime)
    others = [s for s in pulse_server.sinks() if s != "avatar_mic"]
    assert "sysaudio" in others
    taps = {s: SinkTap(pulse_server, s, tmp_path / f"{s}.raw") for s in others}
    d = subprocess.Popen([EXE, "--source", "system", "--sink", "vcam:/dev/video10",
                          "--voice-out", "avatar_mic", "--duration", "30", "--size",
                          str(SIZE), "--control"], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    poller = StatusPoller(runtime)
    poller.start()
    mic = None
    try:
        deadline = time.monotonic() + 60
        while not poller.seen:
            assert d.poll() is None and time.monotonic() < deadline, d.stderr.read()
            time.sleep(0.1)
        time.sleep(3.0)  # null sinks settle into low-latency mode
        t_play = time.monotonic()
        player = _play(pulse_server, wav)
        time.sleep(1.7)  # in the middle of "papa, mama"
        t_unload = time.monotonic()
        pulse_server.unload_sink("avatar_mic")
        player.wait(20)
        time.sleep(max(0.0, t_unload + 2.5 - time.monotonic()))
        t_reload = time.monotonic()
        pulse_server.load_sink("avatar_mic")
        mic = Recorder(pulse_server, "avatar_mic.monitor")
        time.sleep(3.0)
        t_speak = time.monotonic()
        for _ in range(2):
            _play(pulse_server, wav).wait(20)
        _, err = d.communicate(timeout=120)
    finally:
        poller.stop.set()
        if d.poll() is None:
            d.kill()
        recorded = {s: tap.stop() for s, tap in taps.items()}
        voice, t_voice = mic.stop() if mic is not None else (np.zeros(0), 0.0)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    text = "\n".join(lines)
    assert d.returncode == 0, text

    # 1. not one sample of the voice anywhere else
    span = (t_unload + 0.05 - t_play, t_reload - t_play)
    windows = _echo_windows(recorded["sysaudio"], pcm, span)
    assert len(windows) > 50, "the test's speech did not play during the loss"
    echo = np.array([left / rms for left, rms in windows])
    if os.environ.get("AVATAR_VCAM_DUMP"):
        np.savez(os.environ["AVATAR_VCAM_DUMP"], sysrec=recorded["sysaudio"], pcm=pcm,
                 span=span, echo=echo)
    # A glitch of the test's own playback (a few samples dropped by the server) spoils
    # one 20-ms piece; a voice played there runs on for D and more: two pieces in a row.
    dirty = echo >= 0.05
    assert not (dirty[1:] & dirty[:-1]).any() and dirty.mean() < 0.02, (
        f"voice heard on sysaudio while its sink was gone: {dirty.sum()} of "
        f"{len(echo)} 20-ms pieces hold more than the speech played there (worst "
        f"{echo.max():.2f} of their level)\n{text}")
    for sink in others:
        if sink != "sysaudio":
            assert np.abs(recorded[sink]).max(initial=0) < 1e-3, f"sound on {sink}\n{text}"

    # 2. the status says so at once, with no A/V figure; the camera goes on
    t_lost = poller.first(t_unload, lambda f: f.get("voice_state") == "lost")
    assert t_lost is not None and t_lost - t_unload < 1.0, text
    during = [f for t, f in poller.seen if t_lost <= t < t_reload]
    assert all(f["av_offset_ms"] is None for f in during), during[-1]
    assert all("VOICE OUT LOST" in format_line(f) and "A/V ?" in format_line(f)
               for f in during)
    warned = [ln for ln in lines if ln.startswith("WARNING") and "voice_out" in ln]
    assert len(warned) == 2 and "VOICE OUT LOST" in warned[0], text  # lost, back
    frames, t_frames = camera_frames(cam, times, SIZE)
    gaps = np.diff(t_frames[(t_frames > t_unload - 1) & (t_frames < t_reload + 3)])
    assert gaps.max() < 0.2, f"camera stalled {gaps.max():.3f} s around the loss"

    # 3. back: live again, measured A/V, voice and lips together on the virtual mic
    t_back = poller.first(t_reload, lambda f: f.get("voice_state") == "live")
    t_av = poller.first(t_reload, lambda f: f.get("voice_state") == "live"
                        and f.get("av_offset_ms") is not None)
    assert t_back is not None and t_av is not None, text
    after = t_frames > t_speak
    sync = av_lag(lips(frames[after], SIZE), t_frames[after], voice, t_voice, RATE, FPS)
    final = poller.seen[-1][1]
    print(f"\n[voice-out loss, {type(pulse_server).__name__}] status LOST "
          f"{1000 * (t_lost - t_unload):.0f} ms after the unload; re-attached "
          f"{1000 * (t_back - t_reload):.0f} ms after the sink returned, A/V measured again "
          f"after {1000 * (t_av - t_reload):.0f} ms; voice->lips after: "
          f"{1000 * sync.lag_s:+.0f} ms (corr {sync.corr:.2f}); status A/V "
          f"{final.get('av_offset_ms')} ms; sysaudio during the loss: nothing but the speech "
          f"played there ({len(echo)} pieces, {dirty.sum()} spoilt by a glitch)")
    assert t_back - t_reload < 3.0
    assert sync.corr > 0.5, f"lips do not follow the voice after the sink came back\n{text}"
    assert abs(sync.lag_s) <= 1.0 / FPS, f"A/V offset {1000 * sync.lag_s:+.0f} ms"
    assert final.get("av_offset_ms") is not None and abs(final["av_offset_ms"]) < 1000 / FPS
    assert "voice out back" in text
