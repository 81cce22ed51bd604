"""The live loop: capture -> engine -> frames on the grid k/fps -> camera, voice -> mic.

Two threads. The engine thread (the caller's) takes captured blocks, stores them in the
voice delay line, and renders each frame whose audio (pts + look-ahead) has arrived; when
it falls more than two frames behind it renders only the newest and skips the rest, so
work never queues up. Without a voice
output it sends each frame at once (minimal delay). With one, a presenter thread sends
one frame per tick of the *output's* audio clock: at the moment pts k/fps is heard it
sends frame k, or the newest ready frame if k is late (counted), so picture and voice
leave together and latency cannot accumulate.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from engine import Engine
from engine.frames import AudioChunk, VideoFrame
from engine.motion import MotionFrame

from ..sinks.base import Sink
from .priority import promote_audio_thread, promote_render_thread
from .voice_out import VoiceOut

log = logging.getLogger(__name__)


@dataclass
class LiveStats:
    """What the live loop did so far: the status line, `avatar-vcam status` and tests."""

    frames: int = 0  # frames sent to the sinks
    rendered: int = 0
    skipped: int = 0  # frames never rendered because the engine was behind
    late: int = 0  # ticks at which the due frame was not ready (newest one shown)
    audio_seconds: float = 0.0
    render_ms: deque = field(default_factory=lambda: deque(maxlen=100))
    av_offset_ms: deque = field(default_factory=lambda: deque(maxlen=250))
    delay_ms: deque = field(default_factory=lambda: deque(maxlen=250))
    sent_at: deque = field(default_factory=lambda: deque(maxlen=100))
    speaking: bool = False
    delay_raised_ms: float = 0.0  # how much D grew because frames were late
    delay_lowered_ms: float = 0.0  # how much of that was given back once frames had slack
    half_rate: bool = False  # rendering every other frame (each shown twice): CPU is short
    want_half_rate: bool = False  # the presenter saw late frames: degrade before raising D
    repeated: int = 0  # frames shown twice instead of rendered (half rate)

    def fps(self) -> float:
        """Frames sent per second over the last ~4 s."""
        t = list(self.sent_at)
        if len(t) < 2 or t[-1] == t[0]:
            return 0.0
        return (len(t) - 1) / (t[-1] - t[0])

    def summary(self) -> dict[str, Any]:
        # The presenter thread appends while this runs (status line, control API): work on
        # copies (list() of a deque is atomic), or statistics' loops see it mutate.
        def med(d: deque) -> float | None:
            v = list(d)
            return round(statistics.median(v), 1) if v else None

        def spread(d: deque) -> float | None:
            v = list(d)
            return round(statistics.pstdev(v), 1) if len(v) > 1 else None

        return {
            "fps": round(self.fps(), 1), "frames": self.frames, "late": self.late,
            "skipped": self.skipped, "render_ms": med(self.render_ms),
            "av_offset_ms": med(self.av_offset_ms), "av_offset_sd_ms": spread(self.av_offset_ms),
            "e2e_delay_ms": med(self.delay_ms), "audio_seconds": round(self.audio_seconds, 2),
            "speaking": self.speaking, "half_rate": self.half_rate, "repeated": self.repeated,
        }


class Presenter(threading.Thread):
    """Sends one frame per tick of the voice output's clock.

    With ``adapt``, D follows the renderer. More than 5 of the last 50 ticks late first
    make the render loop degrade (every other frame rendered, each shown twice); if ticks
    are still late at half rate, D is raised by half a frame (at once). Each frame's slack
    (its tick's time less the time it was ready) is kept for ``quiet_s``: when 98 % of the
    frames of that window had more than three quarters of a frame, D is lowered by that
    slack less a quarter frame (at most 200 ms at a time), never below the D it started
    with: back at its start value ``quiet_s`` after the load went.
    """

    def __init__(self, voice: VoiceOut, sinks: list[Sink], fps: int, stats: LiveStats,
                 capture_time: Callable[[float], float | None], adapt: bool = True,
                 quiet_s: float = 10.0) -> None:
        super().__init__(name="avatar-vcam-presenter", daemon=True)
        self.voice, self.sinks, self.fps, self.stats = voice, sinks, fps, stats
        self.adapt = adapt
        self._recent_late: deque[bool] = deque(maxlen=50)
        self.quiet_s = quiet_s
        self._slack: deque[float] = deque(maxlen=max(1, round(quiet_s * fps)))
        self._ready_at: dict[int, float] = {}  # frame index -> monotonic time it was offered
        self._base_delay = 0.0  # D when the loop starts: the floor for lowering
        self.capture_time = capture_time
        # Frames wait here about (D - look-ahead) * fps ticks, and older ones are dropped as
        # ticks pass them; the bound only matters if ticks stop (the largest D is 2 s).
        wait_s = max(voice.delay_s, 0.3) + 1.0
        self.ready: deque[VideoFrame] = deque(maxlen=math.ceil(wait_s * fps) + 8)
        self.final: int | None = None  # no tick after this frame (set by drain)
        self.stop = threading.Event()
        self.errors: list[BaseException] = []

    def offer(self, frame: VideoFrame) -> None:
        self._ready_at[frame.index] = time.monotonic()
        self.ready.append(frame)

    def drain(self, last_index: int, timeout: float) -> None:
        """Wait until frame ``last_index`` has had its tick and its voice has been heard.

        No tick after ``last_index`` sends anything: the voice plays on to its end, but a
        repeated last frame would make the picture one frame longer than the sound.
        """
        self.final = last_index
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.errors:
            heard = self.voice.heard_pts()
            if heard is not None and heard * self.fps >= last_index + 1:
                return
            time.sleep(0.005)

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as e:  # surfaced by the engine thread
            self.errors.append(e)

    def _newest_upto(self, k: int) -> VideoFrame | None:
        """The newest ready frame due by tick ``k``; older ones are dropped (frames arrive in
        index order, the engine thread appends on the right while this pops on the left)."""
        best = None
        for f in list(self.ready):
            if f.index <= k and (best is None or f.index > best.index):
                best = f
        if best is not None:
            while self.ready and self.ready[0].index < best.index:
                self.ready.popleft()
        return best

    def _loop(self) -> None:
        promote_audio_thread("presenter")
        self._base_delay = self.voice.delay_s
        last_tick = -1
        shown: VideoFrame | None = None
        while not self.stop.is_set():
            now = time.monotonic()
            heard = self.voice.heard_pts(now)
            if heard is None or heard < 0:
                self.stop.wait(0.005)
                continue
            k = math.floor(heard * self.fps + 1e-9)
            if self.final is not None and k > self.final:
                last_tick = max(last_tick, k)  # past the last frame: the voice plays out
            elif k > last_tick:
                frame = self._newest_upto(k) or shown
                if frame is not None:
                    self._recent_late.append(frame.index < k)
                    if frame.index < k:
                        self.stats.late += 1
                        self._maybe_raise_delay()
                    if self.adapt:
                        self._maybe_lower_delay(k, frame)
                    self._send(replace(frame, pts=k / self.fps, index=k), frame, heard, now)
                    shown = frame
                last_tick = k
            due = self.voice.wall_time_of((last_tick + 1) / self.fps)
            wait = 0.005 if due is None else min(max(due - time.monotonic(), 0.0005), 0.05)
            self.stop.wait(wait)

    def _maybe_raise_delay(self) -> None:
        """More than 1 in 10 of the last 50 ticks late: first half the render rate, then
        (still late at half rate) raise D by half a frame."""
        if not self.adapt or sum(self._recent_late) <= 5:
            return
        self._recent_late.clear()
        if not self.stats.half_rate:
            if not self.stats.want_half_rate:
                self.stats.want_half_rate = True
            return
        step = 0.5 / self.fps
        if self.voice.raise_delay(step):
            self.stats.delay_raised_ms += 1000 * step
            self._slack.clear()
            log.warning("frames are late at half rate: voice delay D raised to %.0f ms",
                        1000 * self.voice.delay_s)

    def _maybe_lower_delay(self, k: int, frame: VideoFrame) -> None:
        """Keep frame ``k``'s slack; D above where it started and 98 % of a whole window
        with more than three quarters of a frame of it: give it back."""
        due = self.voice.wall_time_of(k / self.fps)
        ready = self._ready_at.pop(frame.index, None) if frame.index == k else None
        for i in [i for i in list(self._ready_at) if i < k]:
            self._ready_at.pop(i, None)
        if frame.index < k or due is None:
            self._slack.append((frame.index - k) / self.fps)  # late: negative slack
        elif ready is not None:
            self._slack.append(due - ready)
        if self.voice.delay_s <= self._base_delay + 1e-9:
            self._slack.clear()
            return
        if len(self._slack) < self._slack.maxlen:
            return
        q = sorted(self._slack)[len(self._slack) // 50]
        self._slack.clear()
        if q < 0.75 / self.fps:
            return
        by = min(q - 0.25 / self.fps, self.voice.delay_s - self._base_delay)
        if self.voice.lower_delay(by, self._base_delay):
            self.stats.delay_lowered_ms += 1000 * by
            log.info("frames have slack (%.0f ms): voice delay D lowered to %.0f ms",
                     1000 * q, 1000 * self.voice.delay_s)

    def _send(self, out: VideoFrame, frame: VideoFrame, heard: float, now: float) -> None:
        for s in self.sinks:
            s.send(out)
        st = self.stats
        st.frames += 1
        st.sent_at.append(now)
        # Audio ahead of the picture (> 0) as the camera got it: after the send returned.
        # Only while the voice plays with a latency the device reported; otherwise the
        # offset is unknown and older figures are dropped (never shown as if current).
        if getattr(self.voice, "av_known", True):
            after = self.voice.heard_pts()
            st.av_offset_ms.append(1000 * ((after if after is not None else heard)
                                           - frame.pts))
        else:
            st.av_offset_ms.clear()
        _note_delay(st, self.capture_time(frame.pts), now)


def measure_render_s(engine: Engine, frames: int = 6) -> float:
    """Worst of the last few warm renders of a frame (seconds): the D budget's render part."""
    times = []
    for _ in range(frames):
        t0 = time.perf_counter()
        engine.render([MotionFrame(0.0)])
        times.append(time.perf_counter() - t0)
    return max(times[frames // 2:])


def run_live(engine: Engine, chunks: Iterable[AudioChunk], sinks: list[Sink], *,
             voice: VoiceOut | None = None,
             capture_time: Callable[[float], float | None] = lambda pts: None,
             duration: float | None = None, stats: LiveStats | None = None,
             should_stop: Callable[[], bool] = lambda: False,
             on_tick: Callable[[LiveStats], None] | None = None) -> LiveStats:
    """Run until ``chunks`` end, the frames of ``duration`` seconds are out, or a stop."""
    fps = engine.config.fps
    stats = stats or LiveStats()
    last_k = None if duration is None else math.ceil(duration * fps - 1e-9) - 1
    presenter = None
    if voice is not None:
        presenter = Presenter(voice, sinks, fps, stats, capture_time)
        presenter.start()
    loop = _Loop(engine, sinks, stats, presenter, capture_time)
    loop.last_k = last_k
    promote_render_thread()
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.001)  # audio threads wait at most ~1 ms for the interpreter
    end, rate = 0.0, 16000
    try:
        for chunk in chunks:
            if voice is not None:
                voice.write(chunk)
            engine.push_audio(chunk.pcm, chunk.pts, chunk.sample_rate)
            _audio_to_sinks(sinks, chunk, duration)
            end, rate = chunk.end, chunk.sample_rate
            stats.audio_seconds = end if duration is None else min(end, duration)
            loop.render_newest(engine.ready_until(), last_k)
            if on_tick is not None:
                on_tick(stats)
            if presenter is not None and presenter.errors:
                raise presenter.errors[0]
            if should_stop() or (last_k is not None and loop.next_k > last_k):
                break
        else:  # the input ended: its look-ahead window is silence; render what is left
            tail = engine.a2m.lookahead + 2.0 / fps
            engine.push_audio(np.zeros(math.ceil(tail * rate), np.float32), end, rate)
            final = math.ceil(end * fps - 1e-9) - 1
            loop.render_all(final if last_k is None else min(final, last_k))
        if presenter is not None and not should_stop():
            presenter.drain(loop.next_k - 1, timeout=(voice.delay_s if voice else 0) + 1.0)
    finally:
        sys.setswitchinterval(switch)
        if presenter is not None:
            presenter.stop.set()
            presenter.join(2.0)
    if presenter is not None and presenter.errors:  # a sink failed after the input ended
        raise presenter.errors[0]
    return stats


class _Loop:
    """Renders frames for the engine thread and hands them on."""

    def __init__(self, engine: Engine, sinks: list[Sink], stats: LiveStats,
                 presenter: Presenter | None,
                 capture_time: Callable[[float], float | None]) -> None:
        self.engine, self.sinks, self.stats = engine, sinks, stats
        self.presenter, self.capture_time = presenter, capture_time
        self.next_k = 0
        self.last_k: int | None = None
        self._half_since = 0.0

    def render_newest(self, ready_until: float, last_k: int | None, catch_up: int = 2) -> None:
        """Every frame the audio allows, unless more than ``catch_up`` are due at once:
        then only the newest (the older ones are skipped, never queued)."""
        last = math.floor(ready_until * self.engine.config.fps + 1e-9)
        if last_k is not None:
            last = min(last, last_k)
        if last - self.next_k >= catch_up:
            self.stats.skipped += last - self.next_k
            self.next_k = last
        while self.next_k <= last:
            self._render(self.next_k)

    def render_all(self, last: int) -> None:
        while self.next_k <= last:
            self._render(self.next_k)

    def _render(self, k: int) -> None:
        fps = self.engine.config.fps
        t0 = time.perf_counter()
        motion = self.engine.motion_at(k / fps)
        frame = self.engine.render([motion])[0]
        self.stats.render_ms.append(1000 * (time.perf_counter() - t0))
        self.stats.rendered += 1
        self.stats.speaking = motion.speaking
        self.next_k = k + 1
        frames = [frame]
        if self.presenter is not None and self._pace(fps) and (
                self.last_k is None or k + 1 <= self.last_k):
            frames.append(dataclasses.replace(frame, pts=(k + 1) / fps, index=k + 1))
            self.stats.repeated += 1
            self.next_k = k + 2
        for f in frames:
            if self.presenter is not None:
                self.presenter.offer(f)
            else:
                _send_now(f, self.sinks, self.stats, self.capture_time)

    def _pace(self, fps: int) -> bool:
        """Whether to show this frame twice (half rate): the presenter saw late ticks, or
        renders take more than 0.7 of a frame; back to full rate after 10 s at half rate
        once they take less than 0.4 of one."""
        st, now = self.stats, time.monotonic()
        recent = list(st.render_ms)[-12:]
        slow = len(recent) >= 6 and statistics.median(recent) > 700 / fps
        if not st.half_rate and (st.want_half_rate or slow):
            st.half_rate, self._half_since = True, now
            log.warning("%s: rendering every other frame (each shown twice), D stays",
                        "frames are late" if st.want_half_rate else
                        f"renders take {statistics.median(recent):.0f} ms")
        elif st.half_rate and now - self._half_since > 10 and not slow \
                and statistics.median(recent) < 400 / fps:
            st.half_rate = st.want_half_rate = False
            log.info("renders take %.0f ms again: every frame rendered",
                     statistics.median(recent))
        return st.half_rate


def _audio_to_sinks(sinks: list[Sink], chunk: AudioChunk, duration: float | None) -> None:
    if duration is not None and chunk.end > duration:
        keep = max(0, round((duration - chunk.pts) * chunk.sample_rate))
        if keep == 0:
            return
        chunk = AudioChunk(chunk.pts, chunk.pcm[:keep], chunk.sample_rate)
    for s in sinks:
        s.audio(chunk)


def _send_now(frame: VideoFrame, sinks: list[Sink], stats: LiveStats,
              capture_time: Callable[[float], float | None]) -> None:
    now = time.monotonic()
    for s in sinks:
        s.send(frame)
    stats.frames += 1
    stats.sent_at.append(now)
    _note_delay(stats, capture_time(frame.pts), now)


def _note_delay(stats: LiveStats, captured: float | None, now: float) -> None:
    """Input -> camera delay of a frame sent at ``now``; unknown drops older figures."""
    if captured is None:
        stats.delay_ms.clear()
    else:
        stats.delay_ms.append(1000 * (now - captured))

