"""Mp4Sink: H.264 video + AAC voice in an mp4, with A/V aligned as a player sees it.

Video frame k gets pts k in a 1/fps time base; audio samples get pts = sample index in a
1/rate time base, both from the same audio clock. The AAC encoder delays its output by
its priming samples (1024); libavformat records them in the mp4 edit list only when the
packets keep the encoder's negative start pts, so the packets are muxed exactly as the
encoder returns them (re-stamping them to 0 is what makes a naive mux play the voice
~2 frames late).

``send`` and ``audio`` may come from different threads (the live presenter sends frames
while the capture loop passes the voice on); one lock keeps them out of the muxer at the
same time, which aborted the process or failed with EINVAL.

The file is written under a temporary name beside ``path`` and renamed when it is
complete, so a render that fails (disk full, an error, a second Ctrl-C) or is killed never
replaces an existing file with a broken one: on a failure callers :meth:`Mp4Sink.abort`
instead of closing (``sinks.base.writing`` does that).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from engine.frames import AudioChunk, VideoFrame

from .output_path import check_output, unwritable

_BT709, _SMPTE170M, _SRGB_TRC, _LIMITED = 1, 6, 13, 1  # FFmpeg's AVCOL_* numbers


class Mp4Sink:
    """Write frames and the voice to ``path``."""

    name = "file"
    SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")

    def __init__(self, path: str | Path, audio_rate: int = 48000, crf: int = 20) -> None:
        self.path = Path(path)
        self.audio_rate = audio_rate
        self.crf = crf
        self._container: av.container.OutputContainer | None = None
        self._resampler: av.AudioResampler | None = None
        self._samples_out = 0
        self.frames = 0
        self.partial = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        self._lock = threading.Lock()
        self._failed = False

    def open(self, width: int, height: int, fps: int) -> None:
        check_output(self.path, self.SUFFIXES, trial=False)  # opening the partial file is one
        try:
            self._container = av.open(str(self.partial), mode="w")
        except (OSError, av.error.FFmpegError) as e:
            raise unwritable(self.path, e) from None
        v = self._container.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.options = {"crf": str(self.crf), "preset": "veryfast"}
        # Say what the frames are: sRGB (BT.709 primaries, sRGB transfer) turned into
        # limited-range YUV with the BT.601 matrix, swscale's default. Untagged, browsers
        # and QuickTime guess BT.709 for the matrix and skin tones shift.
        cc = v.codec_context
        cc.colorspace, cc.color_range = _SMPTE170M, _LIMITED
        cc.color_primaries, cc.color_trc = _BT709, _SRGB_TRC
        v.codec_context.time_base = Fraction(1, fps)
        a = self._container.add_stream("aac", rate=self.audio_rate, layout="mono")
        a.codec_context.time_base = Fraction(1, self.audio_rate)
        self._video, self._audio = v, a
        self._resampler = None
        self._rate_in: int | None = None

    def send(self, frame: VideoFrame) -> None:
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame.image), format="rgb24")
        vf.pts = frame.index
        with self._lock:
            if self._ready():
                vf.time_base = self._video.codec_context.time_base
                self._guard(lambda: self._container.mux(self._video.encode(vf)))
                self.frames += 1

    def audio(self, chunk: AudioChunk) -> None:
        with self._lock:
            if self._ready():
                self._guard(lambda: self._audio_chunk(chunk))

    def _ready(self) -> bool:
        """False once a write failed and the file was dropped (the other thread's call)."""
        assert self._container is not None or self._failed, "open() first"
        return not self._failed

    def _guard(self, write: Callable[[], object]) -> None:
        """Run ``write``; a write error drops the unfinished file and is one line."""
        try:
            write()
        except (OSError, av.error.FFmpegError) as e:
            self._discard()
            self._failed = True
            raise unwritable(self.path, e) from None

    def _audio_chunk(self, chunk: AudioChunk) -> None:
        if self._resampler is None or chunk.sample_rate != self._rate_in:
            self._rate_in = chunk.sample_rate
            self._resampler = av.AudioResampler(format="fltp", layout="mono",
                                                rate=self.audio_rate)
        # Place the block on the output sample clock by its pts (gaps become silence).
        start = round(chunk.pts * self.audio_rate)
        gap = start - self._samples_out
        if gap > 1:
            self._write(np.zeros(round(gap * chunk.sample_rate / self.audio_rate), np.float32))
        self._write(chunk.pcm.astype(np.float32, copy=False))

    def _write(self, pcm: np.ndarray) -> None:
        af = av.AudioFrame.from_ndarray(pcm[None, :], format="flt", layout="mono")
        af.sample_rate = self._rate_in
        for out in self._resampler.resample(af):
            self._encode(out)

    def _encode(self, out: av.AudioFrame | None) -> None:
        if out is not None:
            out.pts = self._samples_out
            out.time_base = Fraction(1, self.audio_rate)
            self._samples_out += out.samples
        self._container.mux(self._audio.encode(out))

    def close(self) -> None:
        """Finish the file and put it in place (a failed finish leaves ``path`` as it was)."""
        with self._lock:
            self._close()

    def abort(self) -> None:
        """Drop the unfinished file: the run failed, and ``path`` keeps what it had."""
        with self._lock:
            self._discard()

    def _close(self) -> None:
        if self._container is None:
            return
        if self.frames == 0:  # nothing to finish (the muxer has not even made the file);
            self._discard()   # the caller says so: an error may be on its way already
            return
        self._guard(self._finish)

    def _finish(self) -> None:
        """Flush both encoders, close the file and give it its name."""
        if self._resampler is not None:
            for out in self._resampler.resample(None):
                self._encode(out)
        self._container.mux(self._audio.encode(None))
        self._container.mux(self._video.encode(None))
        self._container.close()
        self._container = None
        os.replace(self.partial, self.path)

    def _discard(self) -> None:
        """Drop the unfinished file (after a write error)."""
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
            self._container = None
        self.partial.unlink(missing_ok=True)
