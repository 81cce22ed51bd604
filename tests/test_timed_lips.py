"""TTS timings -> mouth rows (engine.audio2motion.timed), and the pipe: source (issue 21)."""

from __future__ import annotations

import io
import os
import threading
import time

import numpy as np
import pytest

from engine.audio2motion import make_audio2motion
from engine.audio2motion.phones import target_curves
from engine.audio2motion.stream import JAW, PUCKER, ROLL
from engine.audio2motion.timed import TimedAudio2Motion, TimedTrack, to_espeak
from engine.errors import EngineError
from vcam.errors import DeviceError
from vcam.live.inject import AudioInjector
from vcam.live.program_sources import PipeSource, parse_pipe


@pytest.mark.parametrize("name, alphabet, espeak", [
    ("AH0", "arpabet", "V"), ("hh", "arpabet", "h"), ("UW1", "arpabet", "u:"),
    ("SIL", "arpabet", "_"), ("ˈɑː", "ipa", "A:"), ("tʃ", "ipa", "tS"), ("oʊ", "ipa", "oU"),
    ("ə", "ipa", "@"), ("PP", "viseme", "p"), ("ou", "viseme", "u:"), ("oU", "espeak", "oU"),
])
def test_alphabets_name_the_pose_table(name, alphabet, espeak):
    assert to_espeak(name, alphabet) == espeak


def test_unknown_names_and_alphabets_are_refused():
    with pytest.raises(ValueError, match="not an arpabet phone"):
        to_espeak("QQ", "arpabet")
    with pytest.raises(ValueError, match="unknown alphabet"):
        TimedTrack("morse")
    with pytest.raises(ValueError, match="ends .* before it starts"):
        TimedTrack().add_phones([("a", 1.0, 0.5)])
    with pytest.raises(ValueError, match="more than 3"):
        TimedTrack(max_events=3).add_phones([("a", i, None) for i in range(4)])


def test_rows_equal_the_training_targets_and_follow_the_placement():
    from engine.tts.espeak import Espeak

    u = Espeak.get().synth("Five fine vans moved by the pier.")
    n = int(len(u.pcm) / u.sr * 100)
    ref = target_curves(u.phones, n + 1)
    track = TimedTrack("espeak")
    track.add_phones([(p.name, p.start, None) for p in u.phones])  # ends implied
    # played in two pieces with a 0.3 s stall between them (silence stood in)
    cut = 0.8
    track.place(0.0, 5.0, cut)
    track.place(cut, 5.0 + cut + 0.3, len(u.pcm) / u.sr - cut)
    rows = [track.row_at(5.0 + k / 100 if k / 100 < cut else 5.3 + k / 100)
            for k in range(n)]
    assert np.abs(np.stack(rows) - ref[:n]).max() < 1e-5
    assert track.row_at(5.0 + cut + 0.1) is None  # the stall: no timings, the estimator's
    assert track.row_at(4.9) is None
    assert max(r[ROLL] for r in rows) > 0.5  # f/v roll the lower lip


def test_weights_keyframes_are_interpolated_and_win_over_phones():
    track = TimedTrack()
    track.add_phones([("a", 0.0, 1.0)])
    track.add_weights([(0.2, {"jawOpen": 0.2}), (0.4, {"jawOpen": 0.6, "mouthPucker": 1.0})])
    track.place(0.0, 0.0, 1.0)
    assert track.row_at(0.3)[JAW] == pytest.approx(0.4)
    assert track.row_at(0.3)[PUCKER] == pytest.approx(0.5)
    assert track.row_at(0.7)[JAW] == pytest.approx(0.9, abs=0.01)  # phones again: "a"
    with pytest.raises(ValueError, match="unknown weight"):
        track.add_weights([(0.0, {"eyeBlinkLeft": 1.0})])


def test_timed_wrapper_falls_back_to_the_estimator():
    a2m = TimedAudio2Motion(make_audio2motion("dsp"))
    sr = 16000
    a2m.push(np.zeros(sr, np.float32), 0.0, sr)
    track = a2m.add_track(TimedTrack("arpabet"))
    track.add_phones([("AA", 0.0, 0.4)])
    track.place(0.0, 0.3, 0.4)
    assert a2m.motion_at(0.5)["jawOpen"] > 0.8 and a2m.motion_at(0.5).speaking
    assert a2m.motion_at(0.2)["jawOpen"] < 0.05  # silence, estimated
    assert a2m.lookahead == a2m.inner.lookahead


def test_lips_rendered_from_espeak_timings_are_within_a_frame_of_the_phones():
    """The say path without devices: espeak-ng audio + phones through the injector into a
    real Engine; the mouth measured on the rendered frames against the phones."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "support"))
    from mouth import mouth_box, mouth_openness
    from tts_lips import jaw_target

    from engine import Engine, EngineConfig
    from engine.frames import AudioChunk
    from engine.tts.espeak import Espeak

    fps, size, rate = 25, 160, 48000
    u = Espeak.get().synth("Peter Piper picked a peck of pickled peppers.")
    phones = [(p.name, p.start, p.end) for p in u.phones]
    a2m = TimedAudio2Motion(make_audio2motion("learned"))
    injector = AudioInjector(rate, timed=a2m)
    stream = injector.open("f32le", u.sr, 1, alphabet="espeak")
    stream.track.add_phones(phones)
    lead = 0.5
    total = lead + len(u.pcm) / u.sr + 0.5
    block = rate // 100
    images = []
    with Engine("leo", EngineConfig(fps=fps, size=size, seed=1), audio2motion=a2m) as e:
        k = 0
        for i in range(0, round(total * rate), block):
            if i == round(lead * rate):
                stream.write(u.pcm.astype("<f4").tobytes())
                stream.finish()
            c = injector.mix(AudioChunk(i / rate, np.zeros(block, np.float32), rate))
            e.push_audio(c.pcm, c.pts, c.sample_rate)
            while k / fps <= e.ready_until():
                images.append(e.frame_at(k / fps).image)
                k += 1
    box = mouth_box("leo", size)
    o = np.array([mouth_openness(im, box) for im in images])
    t = np.arange(len(o)) / fps - stream.started_pts
    jaw = jaw_target(phones, len(u.pcm) / u.sr)
    lags = np.arange(-0.12, 0.1205, 0.002)
    score = [np.corrcoef(o, np.interp((t + lag) * 100, np.arange(len(jaw)), jaw, 0, 0))[0, 1]
             for lag in lags]
    best = lags[int(np.argmax(score))]
    assert max(score) > 0.8
    assert abs(best) <= 1 / fps, f"lips {1000 * best:+.0f} ms off the phones"


# -- pipe: -------------------------------------------------------------------------------
def test_pipe_specs_are_checked():
    assert parse_pipe("pipe:s16le:22050") == ("s16le", 22050, 1)
    assert parse_pipe("pipe:f32le:48000:2") == ("f32le", 48000, 2)
    for bad, words in [("pipe:", "pipe:FORMAT:RATE"), ("pipe:s16le", "pipe:FORMAT:RATE"),
                       ("pipe:s16le:fast", "whole numbers"), ("pipe:mp3:22050", "format"),
                       ("pipe:s16le:22050:0", "channels")]:
        with pytest.raises(DeviceError, match=words):
            parse_pipe(bad)
    assert issubclass(DeviceError, EngineError)


def test_pipe_offline_reads_stdin_as_it_comes_split_anywhere():
    x = (np.sin(np.arange(8000) / 7) * 12000).astype("<i2")
    stereo = np.stack([x, x], 1).tobytes() + b"\x01"  # a trailing partial sample
    src = PipeSource("pipe:s16le:8000:2", realtime=False, stdin=io.BytesIO(stereo),
                     read_bytes=333)
    chunks = list(src.chunks())
    pcm = np.concatenate([c.pcm for c in chunks])
    assert len(pcm) == 8000 and src.duration == 1.0
    assert np.allclose(pcm, x / 32768.0)
    assert [c.pts for c in chunks] == sorted(c.pts for c in chunks)


def test_pipe_live_idles_through_a_stall_and_ends_after_eof():
    r, w = os.pipe()
    rate = 8000
    src = PipeSource(f"pipe:s16le:{rate}", realtime=True, stdin=os.fdopen(r, "rb"))
    part = (np.full(rate // 2, 8000)).astype("<i2").tobytes()

    def writer() -> None:
        os.write(w, part)
        time.sleep(1.0)  # the program thinks: the avatar idles on silence
        os.write(w, part)
        os.close(w)

    threading.Thread(target=writer, daemon=True).start()
    t0 = time.monotonic()
    chunks = list(src.chunks())
    took = time.monotonic() - t0
    pcm = np.concatenate([c.pcm for c in chunks])
    loud = np.flatnonzero(pcm > 0.1)
    assert len(loud) == rate  # both halves, whole
    assert 1.3 < took < 3.0 and 1.3 < len(pcm) / rate < 2.5  # real time, stall included
    gap = np.flatnonzero(np.diff(loud) > 1)
    assert len(gap) == 1 and np.diff(loud)[gap[0]] > 0.3 * rate  # silence stood in (1 s - 0.5 s)
    assert src.stream.underruns == 1
