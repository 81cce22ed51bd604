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

A live recording (``fragmented=True``, set by the run for live runs) is a fragmented mp4
with a keyframe and a fragment each second, each playable on its own. When a write fails
there (disk full, file size limit), the file is cut after its last whole fragment and put
in place, so what fit is kept as a finished file, and the error says how much (or exactly
why nothing could be kept). FFmpeg may report a failed write some seconds after it
happened; the fragment cut at the failure is dropped, so the kept file is whole. A file
render is not fragmented (run it again).
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from engine.frames import AudioChunk, VideoFrame

from ..errors import DeviceError
from .output_path import check_output, unwritable

_BT709, _SMPTE170M, _SRGB_TRC, _LIMITED = 1, 6, 13, 1  # FFmpeg's AVCOL_* numbers
# delay_moov: the moov waits for the first fragment, so its edit list knows the AAC
# priming (without it the voice plays ~20 ms off the lips); a fragment every second.
_FRAGMENTED = {"movflags": "empty_moov+default_base_moof+delay_moov",
               "frag_duration": "1000000"}
_FRAGMENTABLE = (".mp4", ".m4v", ".mov")


class Mp4Sink:
    """Write frames and the voice to ``path``."""

    name = "file"
    SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")

    def __init__(self, path: str | Path, audio_rate: int = 48000, crf: int = 20,
                 fragmented: bool = False) -> None:
        self.path = Path(path)
        self.fragmented = fragmented
        self.kept_s: float | None = None  # after a failed write: seconds kept at path
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
            options = (_FRAGMENTED if self.fragmented
                       and self.path.suffix.lower() in _FRAGMENTABLE else {})
            self._container = av.open(str(self.partial), mode="w", options=dict(options))
        except (OSError, av.error.FFmpegError) as e:
            raise unwritable(self.path, e) from None
        v = self._container.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.options = {"crf": str(self.crf), "preset": "veryfast"}
        if self.fragmented:  # fragments are cut at keyframes: one a second
            v.codec_context.gop_size = fps
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
            self._failed = True
            if self.fragmented and self.frames:
                raise DeviceError(self._keep_fragments(e)) from None
            self._discard()
            raise unwritable(self.path, e) from None

    def _keep_fragments(self, e: BaseException) -> str:
        """After a failed write: cut the file after its last whole fragment and put it at
        ``path``; the one-line message that says what was kept, or why nothing was."""
        why = getattr(e, "strerror", None) or str(e) or type(e).__name__
        if self._container is not None:
            with contextlib.suppress(Exception):  # its trailer cannot be written either
                self._container.close()
            self._container = None
        try:
            end = complete_fragments_end(self.partial)
            if end is None:
                self.partial.unlink(missing_ok=True)
                return (f"cannot write {self.path}: {why}; nothing playable was written "
                        f"before that (the first fragment was not complete), so no file "
                        f"was kept")
            os.truncate(self.partial, end)
            self.kept_s = _video_seconds(self.partial)
            os.replace(self.partial, self.path)
        except (OSError, av.error.FFmpegError) as e2:
            self.partial.unlink(missing_ok=True)
            return (f"cannot write {self.path}: {why}; the recording could not be kept "
                    f"either ({getattr(e2, 'strerror', None) or e2})")
        return (f"cannot write {self.path}: {why}; the first {self.kept_s:.1f} s (all "
                f"that fit) are kept in {self.path}")

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


def complete_fragments_end(path: Path) -> int | None:
    """Byte offset just after the last whole ``moof`` + ``mdat`` of a fragmented mp4 whose
    writing stopped part-way (None when not even one fragment is whole)."""
    size = path.stat().st_size
    end, pos, moof = None, 0, False
    with path.open("rb") as f:
        while pos + 8 <= size:
            f.seek(pos)
            head = f.read(16)
            n, kind = struct.unpack(">I4s", head[:8])
            if n == 1 and len(head) == 16:
                n = struct.unpack(">Q", head[8:16])[0]
            if n < 8 or pos + n > size:  # 0 (to the end, unfinished) or cut short
                break
            if kind == b"moof":
                moof = True
            elif kind == b"mdat" and moof:
                end, moof = pos + n, False
            pos += n
    return end


def _video_seconds(path: Path) -> float:
    """How long the video of ``path`` plays (last frame's end), read from its packets."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        last = None
        for p in c.demux(v):
            if p.pts is not None:
                last = p.pts if last is None else max(last, p.pts)
        if last is None or v.time_base is None:
            return 0.0
        step = 1 / float(v.average_rate or 25)
        return float(last * v.time_base) + step
