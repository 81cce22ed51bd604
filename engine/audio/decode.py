"""Decode audio files (anything FFmpeg/PyAV reads) into mono float32 on the sample clock.

``decode_audio`` returns the whole file; ``iter_audio_blocks`` streams it in fixed blocks
whose ``pts`` = samples before the block / sample rate (the engine's master clock), so a
long file never has to sit in memory. Every failure is an :class:`AudioError` with a
one-line message that says what is wrong and what to do.
"""

from __future__ import annotations

import logging
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np

from ..errors import AudioError
from ..frames import AudioChunk

log = logging.getLogger(__name__)

_FORMATS_HINT = "use a WAV, MP3, FLAC, OGG/Opus or M4A/AAC file"
_MAX_BAD_PACKETS = 20  # consecutive undecodable packets before a file counts as corrupt
_FILE_RATES = (4000, 768_000)  # Hz; a file's rate outside these is a broken header
#: swresample mixes at most 64 channels (SWR_CH_MAX); more is refused in one line.
MAX_CHANNELS = 64
#: Frames come out of the resampler *packed* (interleaved): PyAV counts a planar frame's
#: planes by walking ``extended_data`` to a NULL that is not there for 8 or more channels
#: (``data[8]`` is followed by ``linesize``), so ``to_ndarray`` of an 8-channel (7.1)
#: ``fltp`` frame read a 9th plane from a wild pointer and segfaulted. A packed frame has
#: one plane whatever its channel count.
_OUT_FORMAT = "flt"


def _first_line(exc: BaseException) -> str:
    """FFmpeg's reason without errno and path noise, e.g. 'Invalid data found ...'."""
    reason = getattr(exc, "strerror", None) or str(exc)
    text = str(reason).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _open(path: str | Path) -> tuple[av.container.InputContainer, av.audio.stream.AudioStream]:
    """Open ``path`` and pick its first audio stream; AudioError for every bad case."""
    p = Path(path)
    if not p.exists():
        raise AudioError(f"audio file not found: {p}; check the path")
    if not p.is_file():
        raise AudioError(f"{p} is not a file; give the path of an audio file")
    if p.stat().st_size == 0:
        raise AudioError(f"audio file {p} is empty (0 bytes); {_FORMATS_HINT}")
    try:
        container = av.open(str(p), mode="r")
    except PermissionError:
        raise AudioError(f"cannot read {p}: permission denied; check the file's permissions") \
            from None
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise AudioError(f"cannot read {p} as audio ({_first_line(exc)}); the file is corrupt "
                         f"or not audio; {_FORMATS_HINT}") from None
    if not container.streams.audio:
        kind = container.format.name if container.format is not None else "unknown"
        container.close()
        raise AudioError(f"{p} has no audio track (FFmpeg reads it as {kind!r}); "
                         f"{_FORMATS_HINT}")
    stream = container.streams.audio[0]
    if stream.codec_context is None:  # e.g. a WAV with an unknown format tag or 0 bits
        container.close()
        raise AudioError(f"cannot decode {p}: its audio encoding is unknown or its header is "
                         f"corrupt; re-export it or {_FORMATS_HINT}")
    channels = stream.codec_context.channels
    if channels > MAX_CHANNELS:  # 0 (unknown) is left to the decoder and the frames
        container.close()
        _check_channels(channels, p)
    return container, stream


def _pcm_stream(
    container: av.container.InputContainer,
    stream: av.audio.stream.AudioStream,
    rate: int,
    path: Path,
) -> Iterator[np.ndarray]:
    """Mono float32 arrays at ``rate`` from ``stream``; closes ``container`` when done.

    Channels are averaged here (not by swresample's mono matrix, whose gains depend on the
    layout), so a stereo file with the same signal on both sides keeps its amplitude.
    Undecodable packets are skipped, like the ffmpeg tool does, unless too many in a row.
    """
    resampler: av.AudioResampler | None = None
    key: tuple[str, int] | None = None
    bad = 0
    total = 0
    skipped: av.FFmpegError | None = None  # the last undecodable packet's error
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError as exc:
                skipped = exc
                bad += 1
                if bad >= _MAX_BAD_PACKETS:
                    raise AudioError(f"{path} is corrupt ({_first_line(exc)}); re-export or "
                                     f"re-download it; {_FORMATS_HINT}") from None
                continue
            bad = 0 if frames else bad
            for frame in frames:
                fkey = (frame.layout.name, frame.sample_rate)
                if resampler is None or fkey != key:  # (re)build on a format change
                    _check_file_rate(frame.sample_rate, path)
                    _check_channels(len(frame.layout.channels), path)
                    if resampler is not None:
                        for out in resampler.resample(None):
                            yield _mono(out)
                    resampler = av.AudioResampler(format=_OUT_FORMAT, layout=frame.layout,
                                                  rate=rate)
                    key = fkey
                for out in resampler.resample(frame):
                    pcm = _mono(out)
                    total += len(pcm)
                    yield pcm
        if resampler is not None:
            for out in resampler.resample(None):
                pcm = _mono(out)
                total += len(pcm)
                yield pcm
    except AudioError:
        raise
    except av.FFmpegError as exc:
        if total == 0:
            raise AudioError(f"{path} is corrupt ({_first_line(exc)}); re-export or "
                             f"re-download it; {_FORMATS_HINT}") from None
    finally:
        container.close()
    if total == 0 and skipped is not None:
        raise AudioError(f"{path} is corrupt: no packet decodes ({_first_line(skipped)}); "
                         f"re-export or re-download it; {_FORMATS_HINT}")
    if total == 0:
        raise AudioError(f"{path} contains no audio samples; record or export it again")
    _warn_if_cut(path, total / rate)


def _header_seconds(path: Path) -> float | None:
    """The length a PCM WAV's header promises (FFmpeg trusts the file size instead)."""
    if path.suffix.lower() != ".wav":
        return None
    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes() / w.getframerate() if w.getframerate() else None
    except (wave.Error, EOFError, OSError):  # float or extensible WAVs: no promise to check
        return None


def _warn_if_cut(path: Path, seconds: float) -> None:
    """Warn (once, at the end) when a WAV holds less audio than its header says."""
    promised = _header_seconds(path)
    if promised is not None and seconds < promised - 0.05:
        log.warning("%s ends after %.2f s but its header says %.2f s: the file is truncated "
                    "(an interrupted copy or recording?); using the %.2f s it holds",
                    path, seconds, promised, seconds)


def _mono(frame: av.AudioFrame) -> np.ndarray:
    """The channel average of a packed float frame (never a planar one: see _OUT_FORMAT)."""
    if frame.format.is_planar:  # guard: to_ndarray of a planar frame can crash (see above)
        raise AudioError(f"internal error: planar {frame.format.name} frame from the resampler")
    n = frame.samples
    a = frame.to_ndarray().reshape(-1)  # packed float: (1, n * channels), interleaved
    if n == 0:
        return np.zeros(0, np.float32)
    a = a[: (a.size // n) * n].reshape(n, -1).mean(axis=1)
    a = np.nan_to_num(a.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(a, -1.0, 1.0)


def _check_channels(channels: int, path: Path) -> None:
    """AudioError unless the file has 1..MAX_CHANNELS channels (more cannot be mixed)."""
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"{path} has {channels} audio channels; avatar-vcam reads 1 to "
                         f"{MAX_CHANNELS}: mix it down first, e.g. `ffmpeg -i {path.name} "
                         f"-ac 1 mono.wav`")


def _check_file_rate(rate: int, path: Path) -> None:
    """AudioError unless ``rate`` (what the file says) is a plausible audio sample rate."""
    lo, hi = _FILE_RATES
    if not lo <= rate <= hi:
        raise AudioError(f"{path} says its sample rate is {rate} Hz, outside {lo}..{hi} Hz: "
                         f"its header is corrupt; re-export it or {_FORMATS_HINT}")


def _target_rate(stream: av.audio.stream.AudioStream, sample_rate: int | None,
                 path: Path) -> int:
    rate = stream.codec_context.sample_rate or stream.rate
    if rate:
        _check_file_rate(int(rate), path)
    if sample_rate is not None:
        if not 1000 <= int(sample_rate) <= 768_000:
            raise AudioError(f"sample rate {sample_rate} is out of range; use 1000..768000 Hz")
        return int(sample_rate)
    if not rate:
        raise AudioError(f"{path} does not say its sample rate; convert it to WAV first")
    return int(rate)


def _open_at_rate(p: Path, sample_rate: int | None) -> tuple[Any, Any, int]:
    """Open ``p`` and choose the output rate; the container is closed if that fails."""
    container, stream = _open(p)
    try:
        return container, stream, _target_rate(stream, sample_rate, p)
    except AudioError:
        container.close()
        raise


def decode_audio(path: str | Path, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode a whole audio file to mono float32 in [-1, 1].

    Returns ``(pcm, rate)``; ``rate`` is ``sample_rate`` when given (the file is
    resampled), else the file's own rate. Raises :class:`AudioError` for a missing, empty,
    corrupt or non-audio file, or one without samples.
    """
    p = Path(path)
    container, stream, rate = _open_at_rate(p, sample_rate)
    parts = list(_pcm_stream(container, stream, rate, p))
    return np.concatenate(parts).astype(np.float32, copy=False), rate


def iter_audio_blocks(
    path: str | Path, block_seconds: float = 0.02, sample_rate: int | None = None
) -> Iterator[AudioChunk]:
    """Stream a file as :class:`AudioChunk` blocks of ``block_seconds`` (the last may be short).

    Opening errors raise here, at the call; decoding errors raise during iteration. Block
    ``pts`` count samples (``samples_before / rate``), never the container's time stamps,
    so they stay exact on the audio sample clock.
    """
    if not block_seconds > 0:
        raise ValueError(f"block_seconds must be > 0, got {block_seconds}")
    p = Path(path)
    container, stream, rate = _open_at_rate(p, sample_rate)
    n = max(1, round(block_seconds * rate))

    def blocks() -> Iterator[AudioChunk]:
        done = 0
        pending: list[np.ndarray] = []
        have = 0
        for pcm in _pcm_stream(container, stream, rate, p):
            pending.append(pcm)
            have += len(pcm)
            if have < n:
                continue
            buf = np.concatenate(pending)
            cut = (len(buf) // n) * n
            for i in range(0, cut, n):
                yield AudioChunk(done / rate, buf[i : i + n], rate)
                done += n
            pending, have = [buf[cut:]], len(buf) - cut
        if have:
            yield AudioChunk(done / rate, np.concatenate(pending), rate)

    return blocks()
