"""PulseAudio / PipeWire (pipewire-pulse) through ``pactl``: names, defaults, virtual mic.

PortAudio reaches PulseAudio through ALSA's ``pulse`` plugin, whose device list holds only
``pulse`` and ``default``. A particular sink or source is chosen with the ``PULSE_SINK`` /
``PULSE_SOURCE`` environment variables, read when the ``default`` ALSA device is opened
(they are ignored by the ``pulse`` device). So the server's own names, as
``pactl list short sinks`` prints them, are what users type and what this module resolves.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from ..errors import DeviceError

VIRTUAL_MIC_SINK = "avatar_vcam_mic"
VIRTUAL_MIC_SOURCE = "avatar_vcam_mic_src"
VIRTUAL_MIC_DESCRIPTION = "Avatar-Microphone"


@dataclass(frozen=True)
class PulseNode:
    """A sink or source of the sound server."""

    name: str
    driver: str
    spec: str
    state: str

    @property
    def is_monitor(self) -> bool:
        return self.name.endswith(".monitor")


def pactl(*args: str, timeout: float = 3.0) -> str:
    """Run ``pactl`` and return its stdout; DeviceError with its message on failure."""
    exe = shutil.which("pactl")
    if exe is None:
        raise DeviceError("pactl not found; install pulseaudio-utils (PulseAudio/PipeWire "
                          "command-line tools)")
    try:
        r = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"pactl {' '.join(args)} timed out; is the sound server "
                          "responding?") from None
    except OSError as e:  # e.g. EMFILE: no file descriptor left for its pipes
        raise DeviceError(f"cannot run pactl {' '.join(args)}: {e.strerror or e}") from None
    if r.returncode != 0:
        msg = (r.stderr.strip() or r.stdout.strip() or f"exit code {r.returncode}")
        raise DeviceError(f"pactl {' '.join(args)} failed: {msg.splitlines()[0]}")
    return r.stdout


def available() -> bool:
    """True when a PulseAudio-compatible server answers (PulseAudio or pipewire-pulse)."""
    if shutil.which("pactl") is None:
        return False
    try:
        pactl("info", timeout=2.0)
    except DeviceError:
        return False
    return True


def _nodes(kind: str) -> list[PulseNode]:
    out = []
    for line in pactl("list", "short", kind).splitlines():
        parts = line.split("\t")
        if len(parts) >= 5:
            out.append(PulseNode(parts[1], parts[2], parts[3], parts[4]))
        elif len(parts) >= 2:
            out.append(PulseNode(parts[1], parts[2] if len(parts) > 2 else "", "", ""))
    return out


def sinks() -> list[PulseNode]:
    """Playback endpoints (speakers, null sinks such as the virtual mic)."""
    return _nodes("sinks")


def sources() -> list[PulseNode]:
    """Capture endpoints, monitors of sinks included (``NAME.monitor``)."""
    return _nodes("sources")


def default_sink() -> str:
    """Name of the default output (its ``.monitor`` is "what the computer plays")."""
    name = pactl("get-default-sink").strip()
    if not name:
        raise DeviceError("the sound server has no default output; choose one with "
                          "--source device:NAME.monitor")
    return name


def default_source() -> str:
    return pactl("get-default-source").strip()


def has_source(name: str) -> bool:
    return any(s.name == name for s in sources())


def has_sink(name: str) -> bool:
    return any(s.name == name for s in sinks())


def _modules() -> list[tuple[str, str, str]]:
    out = []
    for line in pactl("list", "short", "modules").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            out.append((parts[0], parts[1], parts[2] if len(parts) > 2 else ""))
    return out


def setup_virtual_mic(sink: str = VIRTUAL_MIC_SINK, source: str = VIRTUAL_MIC_SOURCE,
                      description: str = VIRTUAL_MIC_DESCRIPTION, rate: int = 48000
                      ) -> list[str]:
    """Create the null sink the daemon plays into and a microphone source apps can pick.

    Returns what was created (nothing when both exist already). The source is a remap of
    the sink's monitor, so Zoom, Teams and browsers list it as an ordinary microphone.
    """
    created = []
    if not has_sink(sink):
        pactl("load-module", "module-null-sink", f"sink_name={sink}", "channels=1",
              f"rate={rate}", f"sink_properties=device.description={description}-Sink")
        created.append(f"sink {sink}")
    if not has_source(source):
        pactl("load-module", "module-remap-source", f"master={sink}.monitor",
              f"source_name={source}", "channels=1",
              f"source_properties=device.description={description}")
        created.append(f"source {source}")
    return created


def remove_virtual_mic(sink: str = VIRTUAL_MIC_SINK, source: str = VIRTUAL_MIC_SOURCE
                       ) -> list[str]:
    """Unload the modules :func:`setup_virtual_mic` loaded; returns what was removed."""
    removed = []
    for index, module, args in _modules():
        if module == "module-remap-source" and f"source_name={source}" in args:
            pactl("unload-module", index)
            removed.append(f"source {source}")
    for index, module, args in _modules():
        if module == "module-null-sink" and f"sink_name={sink}" in args:
            pactl("unload-module", index)
            removed.append(f"sink {sink}")
    return removed


class PulseEnv:
    """Set ``PULSE_SINK``/``PULSE_SOURCE`` while a PortAudio stream opens, then restore.

    The ALSA pulse plugin reads them at open time, so the variable only needs to hold for
    the duration of the ``open``.
    """

    def __init__(self, **values: str) -> None:
        self.values = values
        self._saved: dict[str, str | None] = {}

    def __enter__(self) -> PulseEnv:
        for k, v in self.values.items():
            self._saved[k] = os.environ.get(k)
            os.environ[k] = v
        return self

    def __exit__(self, *exc: object) -> None:
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
