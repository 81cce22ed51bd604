"""A PulseAudio / PipeWire (pipewire-pulse) stream of our own, through libpulse (ctypes).

PortAudio reaches the sound server through ALSA's pulse plugin, which lets the server move
a stream to the fallback device when its own disappears: the voice then played into the
system-audio sink the daemon captures (a feedback path). Here every stream is opened with
``PA_STREAM_DONT_MOVE`` (pipewire-pulse maps it to ``node.dont-reconnect``): when its
device goes away the server kills it instead, :attr:`PulseStream.lost` says why at once,
and its owner re-opens it when the device is back. The stream also reports what it
measured: its latency (``pa_stream_get_latency``) and the device it is connected to.

The interface mimics a sounddevice callback stream: ``callback(data, frames, time_info,
status)`` with a ``(frames, 1)`` float32 array, called from libpulse's mainloop thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DeviceError

log = logging.getLogger(__name__)

_FLOAT32LE = 5
_CONTEXT_READY, _CONTEXT_FAILED, _CONTEXT_TERMINATED = 4, 5, 6
_STREAM_READY, _STREAM_FAILED, _STREAM_TERMINATED = 2, 3, 4
_INTERPOLATE_TIMING, _AUTO_TIMING_UPDATE = 0x0002, 0x0008
_DONT_MOVE, _ADJUST_LATENCY = 0x0200, 0x2000
_NOAUTOSPAWN = 0x0001
_UNSET = 0xFFFFFFFF


class _SampleSpec(ctypes.Structure):
    _fields_ = [("format", ctypes.c_int), ("rate", ctypes.c_uint32),
                ("channels", ctypes.c_uint8)]


class _BufferAttr(ctypes.Structure):
    _fields_ = [("maxlength", ctypes.c_uint32), ("tlength", ctypes.c_uint32),
                ("prebuf", ctypes.c_uint32), ("minreq", ctypes.c_uint32),
                ("fragsize", ctypes.c_uint32)]


_P = ctypes.c_void_p
_STATE_CB = ctypes.CFUNCTYPE(None, _P, _P)
_REQUEST_CB = ctypes.CFUNCTYPE(None, _P, ctypes.c_size_t, _P)
_lib_cache: list[Any] = []


def _lib() -> Any:
    """libpulse with the prototypes used here; DeviceError when it is not installed."""
    if _lib_cache:
        return _lib_cache[0]
    name = ctypes.util.find_library("pulse") or "libpulse.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError as e:
        raise DeviceError(f"libpulse is not available ({e})") from None
    sig = {
        "pa_threaded_mainloop_new": (_P, []),
        "pa_threaded_mainloop_get_api": (_P, [_P]),
        "pa_threaded_mainloop_start": (ctypes.c_int, [_P]),
        "pa_threaded_mainloop_stop": (None, [_P]),
        "pa_threaded_mainloop_free": (None, [_P]),
        "pa_threaded_mainloop_lock": (None, [_P]),
        "pa_threaded_mainloop_unlock": (None, [_P]),
        "pa_threaded_mainloop_signal": (None, [_P, ctypes.c_int]),
        "pa_threaded_mainloop_wait": (None, [_P]),
        "pa_context_new": (_P, [_P, ctypes.c_char_p]),
        "pa_context_set_state_callback": (None, [_P, _STATE_CB, _P]),
        "pa_context_connect": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_int, _P]),
        "pa_context_get_state": (ctypes.c_int, [_P]),
        "pa_context_errno": (ctypes.c_int, [_P]),
        "pa_context_disconnect": (None, [_P]),
        "pa_context_unref": (None, [_P]),
        "pa_strerror": (ctypes.c_char_p, [ctypes.c_int]),
        "pa_stream_new": (_P, [_P, ctypes.c_char_p, ctypes.POINTER(_SampleSpec), _P]),
        "pa_stream_set_state_callback": (None, [_P, _STATE_CB, _P]),
        "pa_stream_set_write_callback": (None, [_P, _REQUEST_CB, _P]),
        "pa_stream_set_read_callback": (None, [_P, _REQUEST_CB, _P]),
        "pa_stream_set_moved_callback": (None, [_P, _STATE_CB, _P]),
        "pa_stream_connect_playback": (ctypes.c_int, [_P, ctypes.c_char_p,
                                                      ctypes.POINTER(_BufferAttr),
                                                      ctypes.c_int, _P, _P]),
        "pa_stream_connect_record": (ctypes.c_int, [_P, ctypes.c_char_p,
                                                    ctypes.POINTER(_BufferAttr), ctypes.c_int]),
        "pa_stream_get_state": (ctypes.c_int, [_P]),
        "pa_stream_write": (ctypes.c_int, [_P, _P, ctypes.c_size_t, _P, ctypes.c_int64,
                                           ctypes.c_int]),
        "pa_stream_peek": (ctypes.c_int, [_P, ctypes.POINTER(_P),
                                          ctypes.POINTER(ctypes.c_size_t)]),
        "pa_stream_drop": (ctypes.c_int, [_P]),
        "pa_stream_get_latency": (ctypes.c_int, [_P, ctypes.POINTER(ctypes.c_uint64),
                                                 ctypes.POINTER(ctypes.c_int)]),
        "pa_stream_get_device_name": (ctypes.c_char_p, [_P]),
        "pa_stream_get_index": (ctypes.c_uint32, [_P]),
        "pa_stream_disconnect": (ctypes.c_int, [_P]),
        "pa_stream_unref": (None, [_P]),
    }
    for fn, (res, args) in sig.items():
        f = getattr(lib, fn)
        f.restype, f.argtypes = res, args
    _lib_cache.append(lib)
    return lib


def available() -> bool:
    """True when libpulse can be loaded."""
    try:
        _lib()
    except DeviceError:
        return False
    return True


@dataclass(frozen=True)
class PulseTime:
    """Handed to the callback as ``time_info``: what the server says of the stream now."""

    latency: float | None  # seconds (see PulseStream.latency); None while it cannot tell


class PulseStream:
    """One mono float32 stream on a named sink ("output") or source ("input").

    Never moved by the server: :attr:`lost` is set (and ``on_lost`` called, from the
    mainloop thread) when the device disappears, the server kills the stream or dies.
    """

    def __init__(self, kind: str, device: str, rate: int, block: int,
                 callback: Callable[..., None], name: str = "avatar-vcam",
                 on_lost: Callable[[str], None] | None = None) -> None:
        self.kind, self.device, self.rate, self.block = kind, device, rate, block
        self.callback, self.on_lost = callback, on_lost
        self.lost: str | None = None  # why the stream ended, None while it plays
        self._pa = _lib()
        self._ml = self._ctx = self._stream = None
        self._name = name.encode()
        # ctypes callbacks must outlive the C side's use of them
        self._cbs = (_STATE_CB(self._on_context_state), _STATE_CB(self._on_stream_state),
                     _REQUEST_CB(self._on_write), _REQUEST_CB(self._on_read),
                     _STATE_CB(self._on_moved))
        self._buf = np.zeros(block * 8, np.float32)

    # -- opening and closing --------------------------------------------------------------
    def start(self, timeout: float = 3.0) -> None:
        """Connect; DeviceError with the server's reason when the device is not there."""
        pa = self._pa
        self._ml = pa.pa_threaded_mainloop_new()
        if not self._ml:
            raise DeviceError("libpulse could not create a mainloop")
        pa.pa_threaded_mainloop_lock(self._ml)
        try:
            self._connect(timeout)
        except BaseException:
            pa.pa_threaded_mainloop_unlock(self._ml)
            self.close()
            raise
        pa.pa_threaded_mainloop_unlock(self._ml)

    def _wait_state(self, get: Callable[[], int], ready: int, bad: tuple[int, ...],
                    deadline: float, what: str) -> None:
        pa = self._pa
        while (state := get()) != ready:
            if state in bad:
                raise DeviceError(f"{what}: {self._error()}")
            if time.monotonic() > deadline:
                raise DeviceError(f"{what}: timed out")
            pa.pa_threaded_mainloop_wait(self._ml)

    def _connect(self, timeout: float) -> None:
        pa = self._pa
        deadline = time.monotonic() + timeout
        if pa.pa_threaded_mainloop_start(self._ml) < 0:
            raise DeviceError("libpulse could not start its mainloop thread")
        self._ctx = pa.pa_context_new(pa.pa_threaded_mainloop_get_api(self._ml), self._name)
        pa.pa_context_set_state_callback(self._ctx, self._cbs[0], None)
        if pa.pa_context_connect(self._ctx, None, _NOAUTOSPAWN, None) < 0:
            raise DeviceError(f"cannot reach the sound server: {self._error()}")
        self._wait_state(lambda: pa.pa_context_get_state(self._ctx), _CONTEXT_READY,
                         (_CONTEXT_FAILED, _CONTEXT_TERMINATED), deadline,
                         "cannot reach the sound server")
        spec = _SampleSpec(_FLOAT32LE, self.rate, 1)
        self._stream = pa.pa_stream_new(self._ctx, self._name + b" " + self.kind.encode(),
                                        ctypes.byref(spec), None)
        if not self._stream:
            raise DeviceError(f"cannot create a stream: {self._error()}")
        pa.pa_stream_set_state_callback(self._stream, self._cbs[1], None)
        pa.pa_stream_set_moved_callback(self._stream, self._cbs[4], None)
        nbytes = self.block * 4
        flags = _DONT_MOVE | _ADJUST_LATENCY | _INTERPOLATE_TIMING | _AUTO_TIMING_UPDATE
        if self.kind == "output":
            # two blocks in flight: the sink asks for one block each time one has played
            attr = _BufferAttr(_UNSET, 2 * nbytes, _UNSET, nbytes, _UNSET)
            pa.pa_stream_set_write_callback(self._stream, self._cbs[2], None)
            rc = pa.pa_stream_connect_playback(self._stream, self.device.encode(),
                                               ctypes.byref(attr), flags, None, None)
        else:
            attr = _BufferAttr(_UNSET, _UNSET, _UNSET, _UNSET, nbytes)
            pa.pa_stream_set_read_callback(self._stream, self._cbs[3], None)
            rc = pa.pa_stream_connect_record(self._stream, self.device.encode(),
                                             ctypes.byref(attr), flags)
        if rc < 0:
            raise DeviceError(f"cannot open {self.device}: {self._error()}")
        self._wait_state(lambda: pa.pa_stream_get_state(self._stream), _STREAM_READY,
                         (_STREAM_FAILED, _STREAM_TERMINATED), deadline,
                         f"cannot open {self.device}")

    def _error(self) -> str:
        if not self._ctx:
            return "no connection"
        return self._pa.pa_strerror(self._pa.pa_context_errno(self._ctx)).decode()

    def abort(self) -> None:
        """Stop delivering callbacks at once (same as :meth:`close`)."""
        self.close()

    def close(self) -> None:
        """Disconnect and free everything; safe to call twice and after a loss."""
        pa, ml = self._pa, self._ml
        if ml is None:
            return
        pa.pa_threaded_mainloop_lock(ml)
        stream, self._stream = self._stream, None
        if stream:
            pa.pa_stream_set_state_callback(stream, _STATE_CB(), None)
            pa.pa_stream_set_write_callback(stream, _REQUEST_CB(), None)
            pa.pa_stream_set_read_callback(stream, _REQUEST_CB(), None)
            pa.pa_stream_set_moved_callback(stream, _STATE_CB(), None)
            pa.pa_stream_disconnect(stream)
            pa.pa_stream_unref(stream)
        ctx, self._ctx = self._ctx, None
        if ctx:
            pa.pa_context_set_state_callback(ctx, _STATE_CB(), None)
            pa.pa_context_disconnect(ctx)
            pa.pa_context_unref(ctx)
        pa.pa_threaded_mainloop_unlock(ml)
        pa.pa_threaded_mainloop_stop(ml)
        pa.pa_threaded_mainloop_free(ml)
        self._ml = None

    # -- what was measured ----------------------------------------------------------------
    @property
    def latency(self) -> float | None:
        """Seconds from a sample written now to its playing (output), or from its capture
        to its reading (input), as the server reports it; None when it cannot tell."""
        if self._ml is None or self.lost:
            return None
        self._pa.pa_threaded_mainloop_lock(self._ml)
        try:
            return self._latency_locked()
        finally:
            self._pa.pa_threaded_mainloop_unlock(self._ml)

    def _latency_locked(self) -> float | None:
        """The server's latency; None before it has timing (a null sink that has not
        started playing reports exactly 0 for seconds: that is not a measurement)."""
        if not self._stream:
            return None
        usec, negative = ctypes.c_uint64(), ctypes.c_int()
        if self._pa.pa_stream_get_latency(self._stream, ctypes.byref(usec),
                                          ctypes.byref(negative)) < 0:
            return None
        if usec.value == 0:
            return None
        return (-1 if negative.value else 1) * usec.value / 1e6

    @property
    def device_name(self) -> str | None:
        """The sink/source the server has the stream on now (None when not connected)."""
        if self._ml is None or self.lost:
            return None
        self._pa.pa_threaded_mainloop_lock(self._ml)
        try:
            if not self._stream:
                return None
            name = self._pa.pa_stream_get_device_name(self._stream)
            return name.decode() if name else None
        finally:
            self._pa.pa_threaded_mainloop_unlock(self._ml)

    # -- mainloop-thread callbacks -------------------------------------------------------------
    def _lose(self, why: str) -> None:
        if self.lost is None:
            self.lost = why
            if self.on_lost is not None:
                self.on_lost(why)

    def _on_context_state(self, ctx: Any, _: Any) -> None:
        state = self._pa.pa_context_get_state(ctx)
        if state in (_CONTEXT_FAILED, _CONTEXT_TERMINATED) and self._stream:
            self._lose("the sound server went away")
        self._pa.pa_threaded_mainloop_signal(self._ml, 0)

    def _on_stream_state(self, stream: Any, _: Any) -> None:
        state = self._pa.pa_stream_get_state(stream)
        if state in (_STREAM_FAILED, _STREAM_TERMINATED) and self._stream:
            self._lose(f"{self.device} disappeared")
        self._pa.pa_threaded_mainloop_signal(self._ml, 0)

    def _on_moved(self, stream: Any, _: Any) -> None:
        """A server that moved it anyway (DONT_MOVE ignored): silence it at once."""
        name = self._pa.pa_stream_get_device_name(stream)
        where = name.decode() if name else "?"
        if where != self.device:
            self._lose(f"the server moved the stream from {self.device} to {where}")
            self._pa.pa_stream_disconnect(stream)

    def _on_write(self, stream: Any, nbytes: int, _: Any) -> None:
        frames = nbytes // 4
        if frames <= 0 or self.lost:
            return
        if len(self._buf) < frames:
            self._buf = np.zeros(frames, np.float32)
        out = self._buf[:frames].reshape(frames, 1)
        try:
            self.callback(out, frames, PulseTime(self._latency_locked()), None)
        except Exception as e:  # a callback must not take the mainloop thread down
            log.debug("output callback failed: %s", e)
            out[:] = 0
        self._pa.pa_stream_write(stream, out.ctypes.data, frames * 4, None, 0, 0)

    def _on_read(self, stream: Any, nbytes: int, _: Any) -> None:
        pa = self._pa
        data, size = _P(), ctypes.c_size_t()
        when = PulseTime(self._latency_locked())
        while pa.pa_stream_peek(stream, ctypes.byref(data), ctypes.byref(size)) == 0 \
                and size.value:
            if data.value:  # NULL with a size is a hole in the recording: skip it
                n = size.value // 4
                pcm = np.frombuffer((ctypes.c_float * n).from_address(data.value), np.float32)
                if not self.lost:
                    self.callback(pcm.reshape(n, 1).copy(), n, when, None)
            pa.pa_stream_drop(stream)


def open_pulse_stream(kind: str, device: str, rate: int, block: int,
                      callback: Callable[..., None],
                      on_lost: Callable[[str], None] | None = None) -> PulseStream:
    """Open and start a :class:`PulseStream`; DeviceError when it cannot."""
    stream = PulseStream(kind, device, rate, block, callback, on_lost=on_lost)
    stream.start()
    return stream

