"""A private PulseAudio server with null sinks: "system audio", a virtual mic, recorders.

:class:`PipeWireServer` is the same on PipeWire (a private session bus, ``pipewire``,
``wireplumber`` and ``pipewire-pulse``): what most Linux desktops now run, reached by the
daemon through the same PulseAudio protocol and ALSA plugin.

Started by the live tests (and usable by hand: ``python tests/support/pulse_server.py``
prints the environment to export). Null sinks stand in for sound cards: speech played
into ``sysaudio`` is what the computer plays; the daemon captures ``sysaudio.monitor``
and plays the delayed voice into ``avatar_mic``, whose monitor is what Zoom would hear.

:class:`Recorder` captures a source with ``parecord`` and timestamps every read with
``time.monotonic()``, so recorded samples can be placed on the same clock as the camera
frames (the v4l2 shim stamps each frame with CLOCK_MONOTONIC).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SINKS = ("sysaudio", "avatar_mic")


class PulseServer:
    """``pulseaudio`` with its own runtime folder; ``env`` reaches it from subprocesses."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="avatar-vcam-pulse-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(self.root),
                    "PULSE_RUNTIME_PATH": str(self.root / "pulse")}
        self.env.pop("PULSE_SERVER", None)
        self.proc: subprocess.Popen | None = None
        self.modules: dict[str, str] = {}

    def pactl(self, *args: str) -> str:
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True,
                              check=True, timeout=10).stdout

    def start(self) -> PulseServer:
        """Start the server with its sinks; a start that fails stops what it started."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> PulseServer:
        exe = shutil.which("pulseaudio")
        if exe is None:
            raise FileNotFoundError("pulseaudio")
        config = self.root / "test.pa"
        config.write_text("load-module module-native-protocol-unix\n"
                          "load-module module-always-sink\n")
        self.proc = subprocess.Popen(
            [exe, "--daemonize=no", "-n", "-F", str(config), "--exit-idle-time=-1",
             "--disallow-exit", "--disable-shm=yes",
             f"--log-target=file:{self.root / 'pulse.log'}"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.pactl("info")
                break
            except subprocess.CalledProcessError as e:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("pulseaudio did not start; its log ends: "
                                       f"{self.log_tail('pulse.log')}") from e
                time.sleep(0.05)
        for name in SINKS:
            self.load_sink(name)
        self.pactl("set-default-sink", "sysaudio")
        return self

    def log_tail(self, name: str, lines: int = 8) -> str:
        """A log's last lines, for an error: a failed start removes the folder it is in."""
        log = getattr(self, "_log", None)
        if log is not None and not log.closed:
            log.flush()
        path = self.root / name
        text = path.read_text(errors="replace").splitlines() if path.exists() else []
        return " | ".join(text[-lines:]) or "(empty)"

    def load_sink(self, name: str, timeout: float = 10) -> None:
        """Load a null sink and return once the server lists it: PipeWire answers the
        load before the sink's node exists, and a ``set-default-sink`` right after it
        failed (a clean-clone run, 2026-11-24)."""
        channels = "1" if name == "avatar_mic" else "2"
        self.modules[name] = self.pactl("load-module", "module-null-sink", f"sink_name={name}",
                                        f"channels={channels}", "rate=48000").strip()
        deadline = time.monotonic() + timeout
        while name not in self.sinks():
            if time.monotonic() > deadline:
                raise RuntimeError(f"sink {name} was loaded but never listed; sinks: "
                                   f"{self.sinks()}")
            time.sleep(0.05)

    def sinks(self) -> list[str]:
        """The names of the sinks the server lists now."""
        return [ln.split("\t")[1] for ln in self.pactl("list", "short", "sinks").splitlines()
                if ln.count("\t") >= 1]

    def unload_sink(self, name: str) -> None:
        self.pactl("unload-module", self.modules.pop(name))

    def play(self, wav: Path, sink: str = "sysaudio") -> subprocess.Popen:
        return subprocess.Popen(["paplay", "-d", sink, "--latency-msec=10", str(wav)],
                                env=self.env)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)


class PipeWireServer(PulseServer):
    """PipeWire with its PulseAudio server, session manager and a private D-Bus."""

    TOOLS = ("dbus-daemon", "pipewire", "wireplumber", "pipewire-pulse")

    def _start(self) -> PipeWireServer:
        for tool in self.TOOLS:
            if shutil.which(tool) is None:
                raise FileNotFoundError(tool)
        self.root.chmod(0o700)
        bus = self.root / "bus"
        self.env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={bus}"
        self.env["PIPEWIRE_RUNTIME_DIR"] = str(self.root)
        self.procs: list[subprocess.Popen] = []
        log = open(self.root / "pipewire.log", "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.procs.append(subprocess.Popen(
            ["dbus-daemon", "--session", f"--address=unix:path={bus}", "--nofork",
             "--nopidfile"], env=self.env, stdout=log, stderr=log))
        self._wait(bus.exists, "dbus-daemon")
        self.procs.append(subprocess.Popen(["pipewire"], env=self.env, stdout=log, stderr=log))
        self._wait((self.root / "pipewire-0").exists, "pipewire")
        self.procs.append(subprocess.Popen(["wireplumber"], env=self.env, stdout=log,
                                           stderr=log))

        def answers() -> bool:
            try:
                return "PipeWire" in self.pactl("info")
            except subprocess.CalledProcessError:
                return False

        # pipewire-pulse exited at start once in a CI run of the whole suite (not seen by
        # hand, even under load); a second try is logged and its failure still raises.
        for attempt in (1, 2):
            self.proc = subprocess.Popen(["pipewire-pulse"], env=self.env, stdout=log,
                                         stderr=log)
            self.procs.append(self.proc)
            try:
                self._wait(answers, "pipewire-pulse")
                break
            except RuntimeError:
                if attempt == 2 or self.proc.poll() is None:
                    raise
                log.write(f"--- pipewire-pulse exited ({self.proc.returncode}); "
                          "starting it again\n".encode())
                log.flush()
                self.procs.remove(self.proc)
        for name in SINKS:
            self.load_sink(name)
        self.pactl("set-default-sink", "sysaudio")
        return self

    def _wait(self, ready, what: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [p.args[0] for p in self.procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start ({', '.join(dead) or 'timeout'}); "
                                   f"its log ends: {self.log_tail('pipewire.log')}")
            time.sleep(0.05)

    def stop(self) -> None:
        for p in reversed(getattr(self, "procs", [])):
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs, self.proc = [], None
        if getattr(self, "_log", None):
            self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)


class Recorder:
    """Record a PulseAudio source (mono, 48 kHz) with a monotonic time for every sample."""

    def __init__(self, server: PulseServer, source: str, rate: int = 48000) -> None:
        self.rate = rate
        self.proc = subprocess.Popen(
            ["parecord", "-d", source, "--raw", "--format=s16le", f"--rate={rate}",
             "--channels=1", "--latency-msec=10"], env=server.env, stdout=subprocess.PIPE)
        self.blocks: list[bytes] = []
        self.arrivals: list[tuple[float, int]] = []  # (monotonic, samples so far)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        total = 0
        fd = self.proc.stdout.fileno()
        while True:
            data = os.read(fd, 4096)
            now = time.monotonic()
            if not data:
                return
            self.blocks.append(data)
            total += len(data)
            self.arrivals.append((now, total // 2))

    def stop(self) -> tuple[np.ndarray, float]:
        """(samples float32, monotonic time of sample 0)."""
        self.proc.terminate()
        self.proc.wait(5)
        self._thread.join(5)
        pcm = np.frombuffer(b"".join(self.blocks), "<i2").astype(np.float32) / 32768
        # Data arrives no earlier than it was captured: the earliest arrival relative to its
        # sample count bounds the capture clock (lower envelope of arrival - n / rate).
        t0 = min(t - n / self.rate for t, n in self.arrivals[10:] or self.arrivals)
        return pcm, t0


if __name__ == "__main__":
    import sys

    s = (PipeWireServer() if "--pipewire" in sys.argv else PulseServer()).start()
    print(f"export XDG_RUNTIME_DIR={s.root}  # server pid {s.proc.pid}; Ctrl-C stops it")
    try:
        s.proc.wait()
    except KeyboardInterrupt:
        s.stop()
