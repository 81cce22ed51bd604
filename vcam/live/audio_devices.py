"""Find audio endpoints: ``mic``, ``system``, ``device:NAME`` in, a virtual mic out.

An :class:`Endpoint` is what a PortAudio stream needs to open the right thing: the
sounddevice device, and on PulseAudio/PipeWire the ``PULSE_SOURCE``/``PULSE_SINK`` value
that picks a server node by its own name (see :mod:`.pulse`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from ..errors import DeviceError
from . import sound_server as pulse
from .sound_server import PulseEnv


@dataclass(frozen=True)
class Endpoint:
    """An audio input or output ready to be opened."""

    label: str  # for humans: "system audio (sysaudio.monitor)"
    device: int | str | None  # sounddevice device (None: PortAudio's default)
    env: dict[str, str] = field(default_factory=dict)  # PULSE_SOURCE / PULSE_SINK
    pulse_name: str | None = None  # the server node, watched for disappearing
    extra_settings: Any = None  # sounddevice host-API settings (WASAPI loopback)


def sounddevice() -> Any:
    """The sounddevice module, or a DeviceError saying how to get PortAudio."""
    try:
        import sounddevice as sd
    except OSError as e:  # libportaudio missing
        raise DeviceError(f"PortAudio is not available ({e}); install it (Debian/Ubuntu: "
                          "sudo apt install libportaudio2)") from None
    return sd


_alsa_messages = [0]
_alsa_handler: list[Any] = []  # keeps the C callback alive


def alsa_messages() -> int:
    """How many messages libasound wanted to print (underruns/overruns, mostly)."""
    return _alsa_messages[0]


def quiet_alsa() -> None:
    """Count libasound's messages instead of letting them print over the status line.

    ALSA writes "underrun occurred" and the like straight to stderr from C; its error
    handler is the documented way to take them. Does nothing where there is no libasound.
    """
    if _alsa_handler or not sys.platform.startswith("linux"):
        return
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("asound")
    if name is None:
        return
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return
    handler_type = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                                    ctypes.c_int, ctypes.c_char_p)

    def count(*_: Any) -> None:
        _alsa_messages[0] += 1

    handler = handler_type(count)
    lib.snd_lib_error_set_handler(handler)
    _alsa_handler.append(handler)


def open_stream(endpoint: Endpoint, kind: str, rate: int, block: int, callback: Any,
                fix: str, on_lost: Any = None) -> Any:
    """Open and start a mono float32 low-latency stream on ``endpoint``.

    ``kind`` is "input" or "output"; DeviceError names the endpoint and ``fix``. A sound
    server node is opened through libpulse, never movable by the server (``on_lost(why)``
    is called when it goes); other devices through PortAudio.
    """
    if endpoint.pulse_name is not None and native_pulse():
        from .pulse_stream import open_pulse_stream

        try:
            return open_pulse_stream(kind, endpoint.pulse_name, rate, block, callback,
                                     on_lost=on_lost)
        except DeviceError as e:
            raise DeviceError(f"cannot open audio {kind} {endpoint.label}: {e}; {fix}"
                              ) from None
    sd = sounddevice()
    quiet_alsa()
    cls = sd.InputStream if kind == "input" else sd.OutputStream
    try:
        with PulseEnv(**endpoint.env):
            stream = cls(device=endpoint.device, channels=1, samplerate=rate, blocksize=block,
                         latency="low", dtype="float32", callback=callback,
                         extra_settings=endpoint.extra_settings)
        stream.start()
    except (sd.PortAudioError, ValueError) as e:
        raise DeviceError(f"cannot open audio {kind} {endpoint.label}: {e}; {fix}") from None
    return stream


def native_pulse() -> bool:
    """Sound-server nodes through libpulse (unless AVATAR_VCAM_PULSE_VIA_PORTAUDIO=1)."""
    if os.environ.get("AVATAR_VCAM_PULSE_VIA_PORTAUDIO") == "1":
        return False
    from .pulse_stream import available

    return available()


def _devices(kind: str) -> list[tuple[int, str]]:
    """(index, name) of PortAudio devices with input (kind='input') or output channels."""
    sd = sounddevice()
    key = f"max_{kind}_channels"
    return [(d["index"], d["name"]) for d in sd.query_devices() if d[key] > 0]


def _alsa_default(kind: str) -> int:
    """Index of the ALSA ``default`` device, which PULSE_SOURCE/PULSE_SINK steer."""
    for index, name in _devices(kind):
        if name == "default":
            return index
    raise DeviceError("PulseAudio is running but PortAudio has no ALSA 'default' device; "
                      "install the ALSA pulse plugin (sudo apt install libasound2-plugins)")


def _by_name(spec: str, kind: str) -> int:
    """PortAudio device by index or (case-insensitive, unique) part of its name."""
    devices = _devices(kind)
    if spec.isdigit():
        for index, _ in devices:
            if index == int(spec):
                return index
    exact = [i for i, n in devices if n.lower() == spec.lower()]
    if len(exact) == 1:
        return exact[0]
    found = [i for i, n in devices if spec.lower() in n.lower()]
    if len(found) == 1:
        return found[0]
    known = ", ".join(f"{i}: {n}" for i, n in devices) or "none"
    if not found:
        raise DeviceError(f"no audio {kind} called {spec!r}; {kind}s: {known} "
                          "(see `avatar-vcam devices`)")
    raise DeviceError(f"audio {kind} {spec!r} is ambiguous; pick one of: "
                      + ", ".join(f"{i}: {n}" for i, n in devices if i in found))


def _not_the_virtual_mic(name: str) -> None:
    if name.startswith(pulse.VIRTUAL_MIC_SINK):
        raise DeviceError(f"the input {name} is the avatar's own virtual microphone (its voice "
                          "would loop back); pick your real mic with --source device:NAME")


def resolve_input(spec: str) -> Endpoint:
    """``mic`` | ``system`` | ``device:NAME`` -> an input :class:`Endpoint`."""
    kind, _, arg = spec.partition(":")
    on_pulse = pulse.available()
    if spec == "mic":
        if on_pulse:
            name = pulse.default_source()
            _not_the_virtual_mic(name)
            return Endpoint(f"mic ({name})", _alsa_default("input"),
                            {"PULSE_SOURCE": name}, name)
        sd = sounddevice()
        if not _devices("input"):
            raise DeviceError("no microphone found; plug one in, or use --source system or "
                              "--source file:PATH")
        return Endpoint("mic (default input)", sd.default.device[0])
    if spec == "system":
        if on_pulse:
            name = pulse.default_sink() + ".monitor"
            _not_the_virtual_mic(name)
            return Endpoint(f"system audio ({name})", _alsa_default("input"),
                            {"PULSE_SOURCE": name}, name)
        return _system_loopback()
    if kind == "device" and arg:
        if on_pulse and pulse.has_source(arg):
            _not_the_virtual_mic(arg)
            return Endpoint(f"{arg}", _alsa_default("input"), {"PULSE_SOURCE": arg}, arg)
        return Endpoint(arg, _by_name(arg, "input"))
    raise DeviceError(f"unknown source {spec!r}; use mic, system, device:NAME, demo or "
                      "file:PATH")


def _system_loopback() -> Endpoint:
    """What the computer plays, without PulseAudio: WASAPI loopback devices on Windows."""
    loop = [(i, n) for i, n in _devices("input") if "loopback" in n.lower()]
    if loop:
        return Endpoint(f"system audio ({loop[0][1]})", loop[0][0])
    if sys.platform == "win32":
        hint = "enable 'Stereo Mix' in the Sound settings or install VB-Cable"
    elif sys.platform == "darwin":
        hint = "install BlackHole and add it to a Multi-Output Device"
    else:
        hint = "start PulseAudio or PipeWire (pipewire-pulse)"
    raise DeviceError(f"no system-audio loopback input found; {hint}, then use --source "
                      "system or --source device:NAME")


def resolve_output(spec: str) -> Endpoint:
    """A voice-out device: a PulseAudio/PipeWire sink name or a PortAudio output name."""
    if pulse.available() and pulse.has_sink(spec):
        return Endpoint(spec, _alsa_default("output"), {"PULSE_SINK": spec}, spec)
    try:
        return Endpoint(spec, _by_name(spec, "output"))
    except DeviceError as e:
        if sys.platform.startswith("linux"):
            raise DeviceError(f"{e}; to make a virtual microphone run `avatar-vcam "
                              f"setup-virtual-mic` and use --voice-out "
                              f"{pulse.VIRTUAL_MIC_SINK}") from None
        raise DeviceError(f"{e}; install a virtual audio cable (VB-Cable on Windows, "
                          "BlackHole on macOS) and name its input") from None


def describe_devices() -> dict[str, Any]:
    """Everything `avatar-vcam devices` shows: PortAudio devices and sound-server nodes."""
    info: dict[str, Any] = {"portaudio": {"inputs": [], "outputs": []}, "pulse": None}
    try:
        info["portaudio"]["inputs"] = [{"index": i, "name": n} for i, n in _devices("input")]
        info["portaudio"]["outputs"] = [{"index": i, "name": n} for i, n in _devices("output")]
    except DeviceError as e:
        info["portaudio"]["error"] = str(e)
    if pulse.available():
        info["pulse"] = {
            "default_sink": pulse.default_sink(),
            "default_source": pulse.default_source(),
            "sinks": [s.name for s in pulse.sinks()],
            "sources": [s.name for s in pulse.sources()],
        }
    return info
