"""The mp4 a player opens has both streams, the right length and the voice on the lips."""

from __future__ import annotations

import av
import numpy as np
import pytest

from engine.frames import AudioChunk, VideoFrame
from vcam.errors import DeviceError
from vcam.sinks import Mp4Sink

FPS, SIZE = 25, 64


def _write_flash_and_click(path, rate: int, event_s: float = 1.0, total_s: float = 2.0):
    """Frames black except a white one at ``event_s``; audio silent except a burst there."""
    sink = Mp4Sink(path)
    sink.open(SIZE, SIZE, FPS)
    n = round(total_s * rate)
    pcm = np.zeros(n, np.float32)
    i0 = round(event_s * rate)
    pcm[i0 : i0 + rate // 50] = 0.8 * np.sin(2 * np.pi * 1000 * np.arange(rate // 50) / rate)
    block = rate // 50
    for k in range(round(total_s * FPS)):
        img = np.full((SIZE, SIZE, 3), 255 if k == round(event_s * FPS) else 0, np.uint8)
        sink.send(VideoFrame(k / FPS, k, img))
        for j in range(k * n // round(total_s * FPS), (k + 1) * n // round(total_s * FPS), block):
            sink.audio(AudioChunk(j / rate, pcm[j : j + block], rate))
    sink.close()


def _decode(path):
    """Decode as a player does (edit lists applied): flash time, burst time, durations."""
    with av.open(str(path)) as c:
        assert {s.type for s in c.streams} == {"video", "audio"}
        flash, frames = None, 0
        for f in c.decode(video=0):
            frames += 1
            if flash is None and f.to_ndarray(format="gray").mean() > 128:
                flash = float(f.time)
    with av.open(str(path)) as c:
        chunks, t0 = [], None
        for f in c.decode(audio=0):
            if t0 is None:
                t0 = float(f.time)
            chunks.append(f.to_ndarray().mean(axis=0))
        rate = c.streams.audio[0].rate
    audio = np.concatenate(chunks)
    burst = t0 + np.argmax(np.abs(audio) > 0.2) / rate
    return flash, burst, frames, t0 + len(audio) / rate


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
def test_voice_and_picture_align_as_a_player_sees_them(tmp_path, rate):
    path = tmp_path / "av.mp4"
    _write_flash_and_click(path, rate)
    flash, burst, frames, audio_end = _decode(path)
    assert frames == 2 * FPS
    assert flash == pytest.approx(1.0, abs=1e-3)
    # The AAC encoder's 1024 priming samples must not delay the voice (a naive mux: +21 ms+).
    assert abs(burst - flash) < 0.005, f"voice {1000 * (burst - flash):+.1f} ms from picture"
    assert audio_end == pytest.approx(2.0, abs=0.03)


def test_unwritable_paths_fail_with_one_line(tmp_path):
    for bad in (tmp_path / "missing-dir" / "x.mp4", tmp_path, tmp_path / "x.txt"):
        with pytest.raises(DeviceError) as e:
            Mp4Sink(bad).open(SIZE, SIZE, FPS)
        assert "\n" not in str(e.value) and str(bad.name) in str(e.value)


def test_a_failed_write_keeps_the_old_file_and_says_why_in_one_line(tmp_path):
    """Written under a temporary name and renamed when complete: a disk that fills up
    mid-render leaves the old file as it was, and no half-written one beside it."""
    path = tmp_path / "out.mp4"
    path.write_bytes(b"the user's earlier render")
    sink = Mp4Sink(path)
    sink.open(SIZE, SIZE, FPS)
    frame = VideoFrame(0.0, 0, np.zeros((SIZE, SIZE, 3), np.uint8))
    sink.send(frame)

    class DiskFull:  # the real container, whose next write finds the disk full
        def __init__(self, real):
            self.real = real

        def mux(self, *_a):
            raise av.error.OSError(28, "No space left on device")

        def close(self):
            self.real.close()

    sink._container = DiskFull(sink._container)
    with pytest.raises(DeviceError) as e:
        sink.send(VideoFrame(1 / FPS, 1, frame.image))
    sink.close()
    assert "No space left on device" in str(e.value) and "\n" not in str(e.value)
    assert path.read_bytes() == b"the user's earlier render"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_the_file_appears_only_when_complete(tmp_path):
    path = tmp_path / "out.mp4"
    sink = Mp4Sink(path)
    sink.open(SIZE, SIZE, FPS)
    for k in range(3):
        sink.send(VideoFrame(k / FPS, k, np.zeros((SIZE, SIZE, 3), np.uint8)))
    assert not path.exists()
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]
    with av.open(str(path)) as c:
        assert c.streams.video[0].frames == 3


def test_no_frame_leaves_no_file_and_no_error_of_its_own(tmp_path):
    """Closed with no frame (a run that failed before its first frame, or one too short):
    nothing is left behind, and the close raises nothing that would hide the run's own
    error (the run reports a render of no frames itself)."""
    sink = Mp4Sink(tmp_path / "out.mp4")
    sink.open(SIZE, SIZE, FPS)
    sink.close()
    assert list(tmp_path.iterdir()) == [] and sink.frames == 0


def test_frames_and_voice_from_two_threads_at_once(tmp_path):
    """The live presenter sends frames while the capture loop passes the voice on. Without
    a lock the two threads met inside the muxer: the process aborted (or a write failed
    with EINVAL in a clean-clone run). Run in a child process, so an abort fails the test
    instead of ending the session."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import threading
        import numpy as np
        from engine.frames import AudioChunk, VideoFrame
        from vcam.sinks import Mp4Sink

        for trial in range(4):
            sink = Mp4Sink({str(tmp_path)!r} + f"/t{{trial}}.mp4")
            sink.open(128, 128, 25)
            image = np.random.default_rng(trial).integers(0, 255, (128, 128, 3), np.uint8)
            tone = np.random.default_rng(trial).standard_normal(480).astype(np.float32) / 10

            def video():
                for k in range(250):
                    sink.send(VideoFrame(k / 25, k, image))

            def voice():
                for k in range(1000):
                    sink.audio(AudioChunk(k * 0.01, tone, 48000))

            threads = [threading.Thread(target=video), threading.Thread(target=voice)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            sink.close()
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stderr[-2000:])
    for trial in range(4):
        with av.open(str(tmp_path / f"t{trial}.mp4")) as c:
            assert c.streams.video[0].frames == 250


def test_the_video_says_how_its_colours_were_encoded(tmp_path):
    """Tagged BT.601 matrix, limited range, sRGB primaries and transfer: what swscale did,
    so a player decodes the skin tones as rendered (untagged, browsers guess BT.709)."""
    out = tmp_path / "c.mp4"
    sink = Mp4Sink(out)
    sink.open(64, 64, 25)
    for k in range(5):
        sink.send(VideoFrame(k / 25, k, np.full((64, 64, 3), (200, 80, 40), np.uint8)))
    sink.close()
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc) == \
            (6, 1, 1, 13)  # AVCOL_SPC_SMPTE170M, MPEG range, BT.709 primaries, sRGB TRC
        frame = next(c.decode(video=0))
        # decoded by the tags it carries, the colour comes back as it went in
        assert np.abs(frame.to_ndarray(format="rgb24")[32, 32].astype(int)
                      - (200, 80, 40)).max() <= 3
