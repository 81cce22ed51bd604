"""Live avatar switches on the real daemon, measured on the camera (issue 22).

Used by tests/integration/live/test_avatar_switch.py and bench/avatar_switch.py. The daemon
runs ``--source system --sink vcam:DEV --voice-out avatar_mic --control`` on a private
PulseAudio, its camera through pyvirtualcam's v4l2 code and the preload shim (which
writes every frame and the CLOCK_MONOTONIC time it got it). Switches are asked through the
control API (the request time taken just before the POST) or the real CLI command; the
camera's frames then tell when the new face came out and the longest wait between frames.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

EXE = str(Path(sys.executable).parent / "avatar-vcam")
FPS = 25
CHANGED = 12.0  # mean |luma difference| of the face box: another face (idle motion < 4)


@dataclass
class Switch:
    """One switch as measured."""

    avatar: str
    asked_at: float  # time.monotonic() just before the request (or the CLI's spawn)
    by: str  # "api" or "cli"
    reply: dict = field(default_factory=dict)
    shown_at: float | None = None  # camera time of the first frame with the new face
    gap_s: float = 0.0  # longest wait between camera frames around the switch
    status_after: dict = field(default_factory=dict)

    @property
    def to_face_ms(self) -> float | None:
        return None if self.shown_at is None else 1000 * (self.shown_at - self.asked_at)


class Daemon:
    """``avatar-vcam`` as a subprocess, its stderr collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([EXE, *args], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.started = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())
            if "<-" in line:
                self.started.set()

    def wait_started(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not self.started.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("daemon did not start:\n" + self.text)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def frame_times(path: Path) -> np.ndarray:
    rows = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    return np.array([float(r[0]) for r in rows])


def luma_frames(path: Path, width: int, height: int) -> np.ndarray:
    """Y planes of the camera's I420 frames, (N, h, w) float32, every ``step``-th pixel
    (at most ~192 across), read through a memory map (a 720p run is gigabytes)."""
    frame = width * height * 3 // 2
    n = path.stat().st_size // frame
    raw = np.memmap(path, np.uint8, "r", shape=(n, frame))
    step = max(1, width // 192)
    y = raw[:, : width * height].reshape(n, height, width)[:, ::step, ::step]
    return np.ascontiguousarray(y, np.float32)


def max_gap(t: np.ndarray, start: float, end: float) -> float:
    """Longest wait between camera frames over [start, end]."""
    inside = t[(t >= start) & (t <= end)]
    return float(np.diff(np.concatenate([[start], inside, [end]])).max())


def first_new_face(y: np.ndarray, t: np.ndarray, asked: float) -> int | None:
    """Index of the first frame after ``asked`` whose face box differs from the last frame
    before it by more than :data:`CHANGED` and stays different (not one odd frame)."""
    n = len(y)
    box = (slice(y.shape[1] // 6, 5 * y.shape[1] // 6),
           slice(y.shape[2] // 6, 5 * y.shape[2] // 6))
    before = np.flatnonzero(t < asked)
    if not len(before):
        return None
    ref = y[before[-1]][box]
    for i in range(before[-1] + 1, n):
        if np.abs(y[i][box] - ref).mean() > CHANGED:
            later = y[i + 1: i + 4]
            if all(np.abs(f[box] - ref).mean() > CHANGED for f in later):
                return i
    return None


def client(runtime: Path):
    from vcam.control.api import ControlClient

    return ControlClient.from_runtime_file(runtime, timeout=5)


def wait_shown(runtime: Path, name: str, timeout: float = 60) -> dict:
    """/v1/avatars once ``name`` is shown and nothing is pending."""
    deadline = time.monotonic() + timeout
    while True:
        info = client(runtime).avatars()
        if info["avatar"] == name and not info["pending"]:
            return info
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} not shown within {timeout} s: {info}")
        time.sleep(0.05)


def run_switches(pulse_env: dict[str, str], shim_env: Callable[..., dict[str, str]],
                 folder: Path, plan: list[tuple[str, str]], size: str = "192",
                 settle_s: float = 4.5, between_s: float = 2.5,
                 extra: list[str] | None = None) -> dict:
    """Start the daemon, switch avatars as ``plan`` says ([(name, "api"|"cli")...]), stop.

    Returns {"switches": [Switch...], "status_before", "status_end", "times", "luma",
    "rc", "stderr", "black_frames"}. ``shim_env(device, out, times, base)`` is the v4l2
    shim's environment (tests' ``fake_v4l2`` fixture, or :func:`build_shim`'s).
    """
    cam, times = folder / "cam.yuv", folder / "cam.times"
    runtime = folder / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = shim_env("/dev/video10", cam, times, base=pulse_env)
    env["AVATAR_VCAM_RUNTIME_DIR"] = str(runtime)
    env["AVATAR_VCAM_CONFIG"] = str(folder / "none.toml")
    (folder / "none.toml").write_text("")
    d = Daemon(["--source", "system", "--sink", "vcam:/dev/video10", "--voice-out",
                "avatar_mic", "--control", "--size", str(size), "--a2m", "dsp",
                *(extra or [])], env)
    switches: list[Switch] = []
    try:
        d.wait_started()
        time.sleep(settle_s)  # null sinks settle into low-latency mode, D and A/V measured
        before = client(runtime).status()
        quiet = (time.monotonic() - 1.5, time.monotonic())  # no switch: the baseline
        for name, by in plan:
            if by == "cli":
                asked = time.monotonic()
                r = subprocess.run([EXE, "avatar", "use", name, "--json"], env=env,
                                   capture_output=True, text=True, timeout=90)
                if r.returncode != 0:
                    raise RuntimeError(f"avatar use {name}: {r.stderr}")
                reply = json.loads(r.stdout)
            else:
                c = client(runtime)
                asked = time.monotonic()
                reply = c.use_avatar(name)
            s = Switch(name, asked, by, reply)
            wait_shown(runtime, name)
            time.sleep(between_s)
            s.status_after = client(runtime).status()
            switches.append(s)
        end = client(runtime).status()
    finally:
        rc = d.stop()
    t = frame_times(times)
    w, _, h = size.partition("x")
    y = luma_frames(cam, int(w), int(h or w))
    n = min(len(t), len(y))
    t, y = t[:n], y[:n]
    for s in switches:
        i = first_new_face(y, t, s.asked_at)
        s.shown_at = None if i is None else float(t[i])
        end_at = (s.shown_at or s.asked_at) + 1.0
        s.gap_s = max_gap(t, s.asked_at - 0.5, end_at)
    black = int((y.mean(axis=(1, 2)) < 16).sum())
    return {"switches": switches, "baseline_gap_s": max_gap(t, *quiet),
            "status_before": before, "status_end": end, "times": t, "luma": y,
            "rc": rc, "stderr": d.text, "black_frames": black, "pid": d.proc.pid}


def build_shim(folder: Path) -> Callable[..., dict[str, str]]:
    """Compile the v4l2 preload shim (as the tests' fixture does); returns its env maker."""
    so = folder / "fakev4l2.so"
    src = Path(__file__).with_name("fakev4l2.c")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(so), str(src), "-ldl"],
                   check=True)

    def env(device: str, out: Path, times: Path | None = None,
            base: dict[str, str] | None = None) -> dict[str, str]:
        extra = {"FAKE_V4L2_TIMES": str(times)} if times is not None else {}
        return {**(base or os.environ), "FAKE_V4L2_DEVICE": device,
                "FAKE_V4L2_OUT": str(out), "LD_PRELOAD": str(so), **extra}

    return env
