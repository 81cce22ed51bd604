"""decode_audio / iter_audio_blocks: every common format in, mono float32 out; bad input ->
AudioError with a one-line message that says what to do."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from engine.audio.decode import decode_audio, iter_audio_blocks
from engine.errors import AudioError

FREQ = 440.0
AMP = 0.5
DUR = 1.0


def tone(sr: int, channels: int = 1, dur: float = DUR) -> np.ndarray:
    """(n, channels) float64 sine, the same on every channel."""
    t = np.arange(round(dur * sr)) / sr
    x = AMP * np.sin(2 * np.pi * FREQ * t)
    return np.repeat(x[:, None], channels, axis=1)


def write_wav_int(path: Path, x: np.ndarray, sr: int, width: int) -> None:
    """PCM WAV with the stdlib: 8-bit unsigned, 16/24/32-bit signed little-endian."""
    if width == 1:
        data = np.round(x * 127 + 128).astype(np.uint8).tobytes()
    elif width == 3:
        v = np.round(x * (2**23 - 1)).astype("<i4")
        data = v.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    else:
        dtype = {2: "<i2", 4: "<i4"}[width]
        data = np.round(x * (2 ** (8 * width - 1) - 1)).astype(dtype).tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(width)
        w.setframerate(sr)
        w.writeframes(data)


def write_wav_float(path: Path, x: np.ndarray, sr: int) -> None:
    """IEEE-float WAV (format tag 3) written by hand; the wave module can't."""
    data = x.astype("<f4").tobytes()
    ch = x.shape[1]
    fmt = struct.pack("<HHIIHH", 3, ch, sr, sr * ch * 4, ch * 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def write_encoded(path: Path, x: np.ndarray, sr: int, codec: str, fmt: str | None = None) -> None:
    """Encode (n, channels) float samples with PyAV."""
    layout = "mono" if x.shape[1] == 1 else "stereo"
    with av.open(str(path), "w", format=fmt) as out:
        st = out.add_stream(codec, rate=sr, layout=layout)
        sample_fmt = st.codec_context.codec.audio_formats[0].name
        frame_size = st.codec_context.frame_size or 1024
        planar = np.ascontiguousarray(x.T.astype(np.float32))
        for i in range(0, planar.shape[1], frame_size):
            frame = av.AudioFrame.from_ndarray(planar[:, i : i + frame_size], format="fltp",
                                               layout=layout)
            frame.sample_rate = sr
            frame.pts = i
            resampler = av.AudioResampler(format=sample_fmt, layout=layout, rate=sr)
            for f in resampler.resample(frame):
                for p in st.encode(f):
                    out.mux(p)
        for p in st.encode(None):
            out.mux(p)


def peak_freq(x: np.ndarray, sr: int) -> float:
    mid = x[len(x) // 4 : 3 * len(x) // 4]
    spec = np.abs(np.fft.rfft(mid * np.hanning(len(mid)), 1 << 18))
    return float(np.argmax(spec) * sr / (1 << 18))


def amplitude(x: np.ndarray) -> float:
    mid = x[len(x) // 4 : 3 * len(x) // 4]
    return float(np.sqrt(np.mean(mid.astype(np.float64) ** 2)) * np.sqrt(2))


def check(pcm: np.ndarray, sr: int, want_sr: int, dur_tol: float, amp_tol: float) -> None:
    assert pcm.dtype == np.float32 and pcm.ndim == 1
    assert sr == want_sr
    assert abs(len(pcm) / sr - DUR) <= dur_tol, len(pcm) / sr
    assert np.all(np.abs(pcm) <= 1.0)
    assert abs(peak_freq(pcm, sr) - FREQ) < 1.0
    assert abs(amplitude(pcm) - AMP) <= amp_tol * AMP, amplitude(pcm)


@pytest.mark.parametrize("width", [1, 2, 3, 4])
@pytest.mark.parametrize("sr,channels", [(8000, 1), (22050, 2), (44100, 1), (96000, 2)])
def test_int_wav(tmp_path: Path, width: int, sr: int, channels: int) -> None:
    p = tmp_path / f"t{width}.wav"
    write_wav_int(p, tone(sr, channels), sr, width)
    pcm, rate = decode_audio(p)
    check(pcm, rate, sr, dur_tol=1e-9, amp_tol=0.02 if width == 1 else 0.002)


@pytest.mark.parametrize("sr,channels", [(16000, 1), (48000, 2)])
def test_float_wav(tmp_path: Path, sr: int, channels: int) -> None:
    p = tmp_path / "f.wav"
    write_wav_float(p, tone(sr, channels), sr)
    pcm, rate = decode_audio(p)
    check(pcm, rate, sr, dur_tol=1e-9, amp_tol=1e-4)


def test_float_wav_out_of_range_and_nan_is_sanitised(tmp_path: Path) -> None:
    x = tone(16000) * 4.0
    x[100] = np.nan
    p = tmp_path / "hot.wav"
    write_wav_float(p, x, 16000)
    pcm, _ = decode_audio(p)
    assert np.all(np.isfinite(pcm)) and np.abs(pcm).max() <= 1.0


@pytest.mark.parametrize("ext,codec,fmt,sr,channels", [
    ("mp3", "libmp3lame", "mp3", 44100, 2),
    ("flac", "flac", "flac", 48000, 1),
    ("ogg", "libopus", "ogg", 48000, 2),
    ("opus", "libopus", "opus", 48000, 1),
    ("m4a", "aac", "ipod", 44100, 2),
])
def test_compressed(tmp_path: Path, ext: str, codec: str, fmt: str, sr: int, channels: int
                    ) -> None:
    p = tmp_path / f"t.{ext}"
    write_encoded(p, tone(sr, channels), sr, codec, fmt)
    pcm, rate = decode_audio(p)
    lossless = codec == "flac"
    check(pcm, rate, sr, dur_tol=1e-9 if lossless else 0.06, amp_tol=0.002 if lossless else 0.1)


@pytest.mark.parametrize("target", [8000, 16000, 22050, 48000])
def test_resample(tmp_path: Path, target: int) -> None:
    p = tmp_path / "t.wav"
    write_wav_int(p, tone(44100, 2), 44100, 2)
    pcm, rate = decode_audio(p, sample_rate=target)
    check(pcm, rate, target, dur_tol=2.0 / target, amp_tol=0.02)


def test_stereo_downmix_is_the_channel_mean(tmp_path: Path) -> None:
    sr = 16000
    x = np.zeros((sr, 2))
    x[:, 0] = tone(sr)[:, 0]  # tone on the left only -> half amplitude in mono
    p = tmp_path / "left.wav"
    write_wav_int(p, x, sr, 2)
    pcm, _ = decode_audio(p)
    assert abs(amplitude(pcm) - AMP / 2) < 0.01


def test_iter_audio_blocks_on_sample_clock(tmp_path: Path) -> None:
    p = tmp_path / "t.flac"
    write_encoded(p, tone(44100, 1), 44100, "flac", "flac")
    whole, _ = decode_audio(p, 22050)
    blocks = list(iter_audio_blocks(p, 0.02, 22050))
    n = round(0.02 * 22050)
    assert all(len(b.pcm) == n and b.sample_rate == 22050 for b in blocks[:-1])
    assert 0 < len(blocks[-1].pcm) <= n
    for i, b in enumerate(blocks):
        assert b.pts == i * n / 22050
    assert np.array_equal(np.concatenate([b.pcm for b in blocks]), whole)


def _assert_helpful(exc: AudioError, *words: str) -> None:
    msg = str(exc)
    assert "\n" not in msg and "Traceback" not in msg and "Errno" not in msg
    for w in words:
        assert w.lower() in msg.lower(), msg


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError) as e:
        decode_audio(tmp_path / "nope.wav")
    _assert_helpful(e.value, "not found", "nope.wav", "check the path")
    with pytest.raises(AudioError):  # streaming opens eagerly: the error comes at the call
        iter_audio_blocks(tmp_path / "nope.wav")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioError) as e:
        decode_audio(tmp_path)
    _assert_helpful(e.value, "not a file")


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(AudioError) as e:
        decode_audio(p)
    _assert_helpful(e.value, "empty", "use a WAV")


def test_text_file(tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("hello, this is not audio\n" * 20)
    with pytest.raises(AudioError) as e:
        decode_audio(p)
    _assert_helpful(e.value, "notes.txt", "use a WAV")


def test_png_file(tmp_path: Path) -> None:
    from PIL import Image

    p = tmp_path / "face.png"
    Image.new("RGB", (32, 32), (200, 100, 50)).save(p)
    with pytest.raises(AudioError) as e:
        decode_audio(p)
    _assert_helpful(e.value, "no audio track", "face.png")


def test_corrupt_file(tmp_path: Path) -> None:
    p = tmp_path / "garbage.mp3"
    p.write_bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(AudioError) as e:
        decode_audio(p)
    _assert_helpful(e.value, "garbage.mp3", "corrupt")


def test_wav_without_samples(tmp_path: Path) -> None:
    p = tmp_path / "zero.wav"
    write_wav_int(p, np.zeros((0, 1)), 16000, 2)
    with pytest.raises(AudioError) as e:
        decode_audio(p)
    _assert_helpful(e.value, "no audio samples")
    with pytest.raises(AudioError):
        list(iter_audio_blocks(p))


def test_truncated_wav_keeps_what_is_there_and_says_so(tmp_path: Path, caplog) -> None:
    p = tmp_path / "cut.wav"
    write_wav_int(p, tone(16000), 16000, 2)
    data = p.read_bytes()
    p.write_bytes(data[: 44 + 2 * 8000])  # header says 1 s, file holds 0.5 s
    with caplog.at_level("WARNING"):
        pcm, sr = decode_audio(p)
    assert abs(len(pcm) / sr - 0.5) < 0.01
    assert abs(peak_freq(pcm, sr) - FREQ) < 1.0
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(said) == 1 and "ends after 0.50 s but its header says 1.00 s" in said[0]
    caplog.clear()  # streamed: the same one warning, after the last block
    with caplog.at_level("WARNING"):
        blocks = list(iter_audio_blocks(p))
    assert sum(len(b.pcm) for b in blocks) == 8000 and len(caplog.records) == 1


def test_whole_wav_raises_no_warning(tmp_path: Path, caplog) -> None:
    p = tmp_path / "whole.wav"
    write_wav_int(p, tone(16000), 16000, 2)
    with caplog.at_level("WARNING"):
        decode_audio(p)
    assert not caplog.records


def test_bundled_demo_clip() -> None:
    clip = Path(__file__).parents[1] / "vcam" / "assets" / "demo_speech.wav"
    assert clip.stat().st_size < 400_000
    pcm, sr = decode_audio(clip)
    assert sr == 16000 and 6.0 <= len(pcm) / sr <= 10.0
    assert 0.1 < np.abs(pcm).max() <= 1.0
    assert np.abs(pcm[: sr // 4]).max() < 0.01  # starts with silence
