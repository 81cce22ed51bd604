"""The live path's clock logic without devices: delay line, drift compensation, presenter.

The PortAudio callbacks are called directly with simulated device clocks, so a
10-minute run of two sound cards 300 ppm apart takes seconds and is exact.
"""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import numpy as np
import pytest

from engine.frames import AudioChunk, VideoFrame
from vcam.live.audio_devices import Endpoint
from vcam.live.presenter import LiveStats, Presenter
from vcam.live.voice_out import DelayLine, VoiceOut, default_delay

RATE = 48000


def test_delay_line_reads_by_absolute_index_and_zero_fills():
    line = DelayLine(1000)
    line.write(0, np.arange(1, 301, dtype=np.float32))
    assert np.array_equal(line.read(100, 5), [101, 102, 103, 104, 105])
    assert np.array_equal(line.read(-3, 5), [0, 0, 0, 1, 2])
    assert np.array_equal(line.read(298, 4), [299, 300, 0, 0])
    line.write(500, np.ones(10, np.float32))  # a gap reads as silence
    assert np.array_equal(line.read(295, 10), [296, 297, 298, 299, 300, 0, 0, 0, 0, 0])
    line.write(5000, np.full(10, 7, np.float32))  # far ahead: old data is gone, not wrong
    assert np.array_equal(line.read(500, 3), [0, 0, 0])
    assert np.array_equal(line.read(5005, 3), [7, 7, 7])


def simulate(ppm: float, minutes: float, delay: float = 0.1, block: int = 480,
             jitter: int = 3) -> tuple[VoiceOut, list[float]]:
    """Input clock ``ppm`` faster than the output; returns the voice and its fill errors."""
    voice = VoiceOut(Endpoint("sim", None), RATE, delay, block=block)
    rng = np.random.default_rng(0)
    in_rate = RATE * (1 + ppm * 1e-6)
    written = 0
    out = np.zeros((block, 1), np.float32)
    errors = []
    info = SimpleNamespace(outputBufferDacTime=0.0, currentTime=0.0)
    steps = int(minutes * 60 * RATE / block)
    for k in range(steps):
        # The input has delivered what its faster clock produced by now (in whole
        # blocks, a few callbacks early or late).
        due = int((k + rng.integers(-jitter, jitter + 1)) * block * in_rate / RATE)
        while written + block <= due:
            voice.write(AudioChunk(written / RATE, np.full(block, 0.1, np.float32), RATE))
            written += block
        voice._callback(out, block, info, None)
        if k % 500 == 0:  # read point against the input's true (jitter-free) position
            errors.append((k * block * in_rate / RATE - voice._read) / RATE - delay)
    return voice, errors


@pytest.mark.parametrize("ppm", [-300.0, 0.0, 300.0])
def test_ten_minutes_of_drifting_clocks_keep_the_delay(ppm):
    voice, errors = simulate(ppm, minutes=10)
    # One per 5 s. The set point sits up to ~3 blocks off D (delivery jitter runs ahead);
    # what matters is that it does not walk.
    errors = np.array(errors)
    assert abs(errors).max() < 0.035
    walk = errors[-12:].mean() - errors[:12].mean()
    assert abs(walk) < 0.003, f"delay walked by {1000 * walk:.1f} ms in 10 min"
    assert np.ptp(errors[1:]) < 0.02  # after the first 5 s; the input jitters +-30 ms
    assert voice.stats.resyncs == 0
    # 300 ppm over 10 min = 8640 samples to drop (or repeat), in single samples.
    expected = ppm * 1e-6 * RATE * 600
    assert voice.stats.drift_samples == pytest.approx(expected, abs=0.025 * RATE)


def test_a_stall_resyncs_instead_of_playing_late_forever():
    voice = VoiceOut(Endpoint("sim", None), RATE, 0.1)
    out = np.zeros((480, 1), np.float32)
    info = SimpleNamespace()
    for k in range(100):
        voice.write(AudioChunk(k * 0.01, np.zeros(480, np.float32), RATE))
        voice._callback(out, 480, info, None)
    for k in range(100, 160):  # the input jumps 0.6 s ahead (a burst after a stall)
        voice.write(AudioChunk(k * 0.01, np.zeros(480, np.float32), RATE))
    voice._callback(out, 480, info, None)
    assert voice.stats.resyncs == 1
    assert abs((voice.line.end - voice._read) / RATE - 0.1) < 0.011


def test_voice_is_the_input_delayed_by_d():
    voice = VoiceOut(Endpoint("sim", None), RATE, 0.05)
    d = round(0.05 * RATE)
    out = np.zeros((480, 1), np.float32)
    ramp = (np.arange(RATE) + 1).astype(np.float32)
    for k in range(50):
        end = (k + 1) * 480
        voice.write(AudioChunk(k * 0.01, ramp[k * 480:end], RATE))
        voice._callback(out, 480, SimpleNamespace(), None)
        idx = np.arange(end - d, end - d + 480)
        expected = np.where(idx >= 0, idx + 1, 0).astype(np.float32)
        assert np.array_equal(out[:, 0], expected), k
        # The clock says which pts is being heard: the first sample of this block.
        assert voice._heard[1] == end - d


def test_default_delay_budget():
    d = default_delay(lookahead_s=0.06, block_s=0.01, render_s=0.008, fps=25)
    assert d == pytest.approx(0.06 + 0.01 + 0.008 + 0.010, abs=0.0011)


class _Voice:
    """A voice output whose clock is the wall clock (heard pts = now - t0)."""

    delay_s = 0.0

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.raised: list[float] = []

    def raise_delay(self, by_s: float) -> bool:
        self.raised.append(by_s)
        self.delay_s += by_s
        return True

    def lower_delay(self, by_s: float, min_s: float) -> bool:
        new = max(min_s, self.delay_s - by_s)
        if new >= self.delay_s:
            return False
        self.delay_s = new
        return True

    def heard_pts(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.t0

    def wall_time_of(self, pts: float) -> float:
        return self.t0 + pts


class _Camera:
    name = "cam"

    def __init__(self) -> None:
        self.sent: list[tuple[float, int, int]] = []

    def send(self, frame: VideoFrame) -> None:
        self.sent.append((time.monotonic(), frame.index, int(frame.image[0, 0, 0])))

    def audio(self, chunk: AudioChunk) -> None:
        pass


def test_presenter_sends_one_frame_per_tick_of_the_audio_clock_and_replaces_late_ones():
    cam, stats = _Camera(), LiveStats()
    p = Presenter(_Voice(), [cam], 25, stats, lambda pts: None)
    for k in range(10):
        p.offer(VideoFrame(k / 25, k, np.full((4, 4, 3), k, np.uint8)))
    p.voice = voice = _Voice()  # its clock starts now
    p.start()
    time.sleep(0.8)  # ticks 0..20: frames 10..20 never came (late)
    p.stop.set()
    p.join(1)
    indices = [i for _, i, _ in cam.sent]
    contents = [c for _, _, c in cam.sent]
    first = indices[0]  # tick 0, or one later on a busy machine
    assert first <= 1, "the first tick came late"
    assert indices == list(range(first, first + len(indices))) and indices[-1] >= 12
    assert contents[:10 - first] == list(range(first, 10))
    assert all(c == 9 for c in contents[10 - first:]), "late ticks show the newest ready frame"
    assert stats.late == indices[-1] - 9
    # each frame leaves within its own tick (before the next one is due); with the two
    # cores busy, wake-ups of 21-26 ms were seen, so the bound is the tick, not a guess
    lateness = [t - (voice.t0 + i / 25) for t, i, _ in cam.sent]
    assert max(lateness) < 1 / 25, f"a frame went out {1000 * max(lateness):.0f} ms late"
    assert sorted(lateness)[len(lateness) // 2] < 0.01, "frames go out late as a rule"
    # More than 5 late ticks in the last 50: the presenter asks for half rate first (the
    # render loop's part); only late ticks at half rate ask for a longer delay.
    assert stats.want_half_rate and not voice.raised


def test_frames_rendered_far_ahead_of_their_tick_are_all_shown():
    """A large D (or a high fps) keeps many frames waiting: each is shown at its own tick,
    none is dropped for being early (a count-limited queue froze the picture here)."""
    cam, stats = _Camera(), LiveStats()
    voice = _Voice()
    voice.delay_s = 2.0  # --delay-ms 2000, the largest: up to 2 s of frames wait
    p = Presenter(voice, [cam], 30, stats, lambda pts: None, adapt=False)
    for k in range(60):
        p.offer(VideoFrame(k / 30, k, np.full((4, 4, 3), k, np.uint8)))
    voice.t0 = time.monotonic()
    p.start()
    time.sleep(0.6)
    p.stop.set()
    p.join(1)
    indices = [i for _, i, _ in cam.sent]
    assert indices and indices[0] <= 1 and indices[-1] >= 15
    assert all(i == c for _, i, c in cam.sent), "a tick showed another frame than its own"
    assert stats.late == 0
    assert len(p.ready) <= 60 - indices[-1], "frames whose tick has passed are kept"


def test_draining_sends_the_last_frame_once_and_no_tick_after_it():
    """At the end of the input the voice plays out, but the picture stops at its last
    frame: a repeat of it would make the video a frame longer than the sound."""
    cam, stats = _Camera(), LiveStats()
    p = Presenter(_Voice(), [cam], 25, stats, lambda pts: None, adapt=False)
    for k in range(5):
        p.offer(VideoFrame(k / 25, k, np.full((4, 4, 3), k, np.uint8)))
    p.voice = voice = _Voice()
    p.start()
    p.drain(4, timeout=1.0)
    assert voice.heard_pts() >= 5 / 25, "drain returned before the last frame's voice"
    time.sleep(0.15)  # ticks 5..8 come and go
    p.stop.set()
    p.join(1)
    assert [i for _, i, _ in cam.sent] == [0, 1, 2, 3, 4] and stats.late == 0


def test_the_end_of_the_input_plays_out_and_is_never_replayed():
    """After the input ends the voice plays to its last sample, then silence; the read
    point never moves back over voice already heard (D above and below the resync)."""
    for delay in (0.08, 0.3):
        voice = VoiceOut(Endpoint("sim", None), RATE, delay)
        out = np.zeros((480, 1), np.float32)
        ramp = (np.arange(RATE) + 1).astype(np.float32)  # 1 s, sample i is i + 1
        reads, heard, loudest = [], [], 0.0
        for k in range(200):  # the input for 1 s, then nothing for 1 s
            if k < 100:
                voice.write(AudioChunk(k * 0.01, ramp[k * 480:(k + 1) * 480], RATE))
            voice._callback(out, 480, SimpleNamespace(), None)
            reads.append(voice._read)
            heard.append(voice._heard[1])
            loudest = max(loudest, float(out.max()))
        assert np.all(np.diff(reads) > 0), f"D {delay}: the read point went back (a replay)"
        assert np.all(np.diff(heard) > 0), f"D {delay}: the heard clock went back"
        assert loudest >= RATE - 1, f"D {delay}: the end of the voice was not played"
        assert voice.stats.resyncs == 0


def test_an_engine_stall_longer_than_d_drops_late_voice_instead_of_replaying():
    """The engine thread stalls 0.5 s (D 0.1 s), then its backlog arrives at once: the
    voice due during the stall is lost, never replayed, and D holds afterwards."""
    voice = VoiceOut(Endpoint("sim", None), RATE, 0.1)
    out = np.zeros((480, 1), np.float32)
    ramp = (np.arange(3 * RATE) + 1).astype(np.float32)
    reads = []
    for k in range(300):
        if k < 100 or k >= 150:  # writes 100..149 come late, with block 150
            first = 100 if k == 150 else k
            voice.write(AudioChunk(first * 0.01, ramp[first * 480:(k + 1) * 480], RATE))
        voice._callback(out, 480, SimpleNamespace(), None)
        reads.append(voice._read)
    assert np.all(np.diff(reads) > 0), "the read point went back (a replay)"
    assert abs((voice.line.end - voice._read) / RATE - 0.1) < 0.011, "D not restored"
    assert out[0, 0] == voice._read - 480 + 1, "not playing the voice D behind the input"


def test_raising_the_delay_replays_a_little_and_moves_the_heard_clock():
    voice = VoiceOut(Endpoint("sim", None), RATE, 0.05)
    out = np.zeros((480, 1), np.float32)
    ramp = (np.arange(RATE) + 1).astype(np.float32)
    for k in range(20):
        voice.write(AudioChunk(k * 0.01, ramp[k * 480:(k + 1) * 480], RATE))
        voice._callback(out, 480, SimpleNamespace(), None)
    before = voice._heard[1]
    assert voice.raise_delay(0.02)
    voice.write(AudioChunk(0.2, ramp[9600:10080], RATE))
    voice._callback(out, 480, SimpleNamespace(), None)
    assert voice._heard[1] == before + 480 - 960  # 20 ms later than it would have been
    assert out[0, 0] == before + 480 - 960 + 1
    assert voice.delay_s == pytest.approx(0.07)
    assert not voice.raise_delay(1.0, max_s=0.07)


def test_presenter_gives_a_raised_delay_back_once_frames_have_slack():
    """Late frames first ask for half rate, then (at half rate) raise D; frames a few ticks
    early for ``quiet_s`` lower it again at once, back to where it started and not below."""
    cam, stats = _Camera(), LiveStats()
    voice = _Voice()
    voice.delay_s = 0.1
    p = Presenter(voice, [cam], 25, stats, lambda pts: None, quiet_s=0.2)
    img = np.zeros((4, 4, 3), np.uint8)
    offered = -1

    def feed(seconds: float, lead: int) -> None:
        nonlocal offered
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            want = math.floor(voice.heard_pts() * 25) + lead
            for i in range(offered + 1, want + 1):
                p.offer(VideoFrame(i / 25, i, img))
            offered = max(offered, want)
            time.sleep(0.005)

    p.start()
    try:
        feed(0.5, lead=-2)  # every frame two ticks late: degrade first, D untouched
        assert stats.want_half_rate and voice.delay_s == 0.1
        stats.half_rate = True  # what the render loop does when asked
        feed(1.0, lead=-2)  # still late at half rate: D goes up
        raised = voice.delay_s
        assert raised > 0.1 + 0.03 and stats.delay_raised_ms > 30
        feed(0.6, lead=3)  # frames ready three ticks early: one window gives it all back
        assert voice.delay_s == pytest.approx(0.1), "D should be back where it started"
        assert stats.delay_lowered_ms == pytest.approx(stats.delay_raised_ms)
    finally:
        p.stop.set()
        p.join(1)


def test_lowering_the_delay_drifts_there_without_skipping_voice():
    """lower_delay() leaves the read point alone; through voice the callback plays up to
    2 % fast until it sits D_new behind the input: no jump (resync), no sample skipped."""
    d0, d1 = 0.1, 0.08
    voice = VoiceOut(Endpoint("sim", None), RATE, d0)
    out = np.zeros((480, 1), np.float32)
    ramp = np.arange(1, 30 * RATE + 1, dtype=np.float32)
    firsts = []
    for k in range(20 * 100):
        voice.write(AudioChunk(k * 0.01, ramp[k * 480:(k + 1) * 480], RATE))
        voice._callback(out, 480, SimpleNamespace(), None)
        firsts.append(out[0, 0])
        if k == 100:
            assert voice.lower_delay(0.05, min_s=d1)  # floored at d1
            assert not voice.lower_delay(0.01, min_s=d1)
    lag = (voice.line.end - voice._read + 480) / RATE  # as the next callback will see it
    assert lag == pytest.approx(d1, abs=0.002)
    assert voice.stats.resyncs == 0
    steps = np.diff(firsts[100:])
    assert steps.min() >= 480 and steps.max() <= 489.01, "each block moves on by 480..489"
    assert voice.stats.skipped_silence_ms == 0


def test_lowering_the_delay_skips_silence_at_once():
    """Silence between D_new and D_old is skipped in one step: D is back at once."""
    voice = VoiceOut(Endpoint("sim", None), RATE, 0.25)
    out = np.zeros((480, 1), np.float32)
    quiet = np.full(480, 1e-4, np.float32)
    for k in range(200):
        voice.write(AudioChunk(k * 0.01, quiet, RATE))
        voice._callback(out, 480, SimpleNamespace(), None)
        if k == 100:
            assert voice.lower_delay(0.2, min_s=0.05)
        if k == 130:
            lag = (voice.line.end - voice._read + 480) / RATE
            assert lag == pytest.approx(0.05, abs=0.002)
    assert voice.stats.skipped_silence_ms == pytest.approx(200, abs=10)
    assert voice.stats.resyncs == 0


def test_a_sink_failing_after_the_input_ended_fails_the_run():
    """The presenter sends the last frames while the voice plays out; a sink error then
    (a full disk under the mp4) must reach the caller, not vanish with the thread."""
    from engine import Engine, EngineConfig
    from vcam.live.presenter import run_live

    class Voice(_Voice):
        def write(self, chunk: AudioChunk) -> None:
            pass

    class FullDisk(_Camera):
        def send(self, frame: VideoFrame) -> None:
            if frame.index == 10:
                raise OSError(28, "No space left on device")
            super().send(frame)

    rate = 16000
    chunks = [AudioChunk(i / 50, np.zeros(rate // 50, np.float32), rate) for i in range(25)]
    with Engine("leo", EngineConfig(fps=25, size=64)) as engine:
        voice = Voice()
        with pytest.raises(OSError, match="No space left"):
            run_live(engine, chunks, [FullDisk()], voice=voice)
    # the input (0.5 s) was all pushed long before frame 10's tick at 0.4 s of voice
    assert voice.heard_pts() >= 0.4
