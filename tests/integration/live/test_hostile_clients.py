"""Issue 20, "hostile local clients cannot hurt the stream", on a real running daemon.

The daemon runs live (``--source system`` on a private PulseAudio, the camera through
pyvirtualcam's v4l2 code and the preload shim, which stamps each frame the camera gets)
with its control API. Another process then floods the control port with slow
connections that never finish a request. Measured from the camera's frame times: the
flood must cost no gap over 2 frames; afterwards the API answers at once, no thread of
the daemon has died, and stderr holds a few rate-limited lines, not tracebacks.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

SUPPORT = Path(__file__).resolve().parents[2] / "support"
sys.path.insert(0, str(SUPPORT))
sys.path.insert(0, str(Path(__file__).parent))
from needs import require  # noqa: E402
from test_live_pulse import Daemon  # noqa: E402

from vcam.control.api import ControlClient  # noqa: E402

pytestmark = pytest.mark.integration
FPS = 25
FAST = ["--a2m", "dsp", "--size", "128"]


@pytest.fixture(scope="module")
def pulse():
    """A private PulseAudio with the ``sysaudio`` sink (only one server kind: this test is
    about the control port, not the sound server)."""
    require("pulseaudio", "sound server for the live daemon")
    require("pactl", "sound server control")
    from pulse_server import PulseServer

    server = PulseServer().start()
    yield server
    server.stop()


def _frame_times(path: Path) -> np.ndarray:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return np.array([float(r[0]) for r in rows])


def _max_gap(t: np.ndarray, start: float, end: float) -> float:
    """Longest wait between camera frames over [start, end] (monotonic times)."""
    inside = t[(t >= start) & (t <= end)]
    edges = np.concatenate([[start], inside, [end]])
    return float(np.diff(edges).max())


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def _status_after(runtime: Path, within_s: float = 3.0) -> tuple[dict, float]:
    """The daemon's status once it answers again, and how long that took."""
    t0 = time.monotonic()
    while True:
        try:
            return ControlClient.from_runtime_file(runtime, timeout=2).status(), \
                time.monotonic() - t0
        except Exception:
            if time.monotonic() - t0 > within_s:
                raise
            time.sleep(0.1)


def _flood(port: int, n: int, hold_s: float, *more: str) -> dict:
    r = subprocess.run([sys.executable, str(SUPPORT / "flood.py"), str(port), str(n),
                        str(hold_s), *more], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _start(pulse, fake_v4l2, tmp_path: Path, limit: int | None = None) -> tuple[Daemon, Path]:
    times = tmp_path / "cam.times"
    env = fake_v4l2("/dev/video10", Path("/dev/null"), times, base=pulse.env)
    env["AVATAR_VCAM_RUNTIME_DIR"] = str(tmp_path / "run")
    d = Daemon(["--source", "system", "--sink", "vcam:/dev/video10", "--control", *FAST],
               env)
    if limit is not None:
        resource.prlimit(d.proc.pid, resource.RLIMIT_NOFILE, (limit, limit))
    d.wait_started()
    time.sleep(2.0)  # frames flowing, input settled
    return d, times


def _stop(d: Daemon) -> int:
    if d.proc.poll() is None:
        d.proc.send_signal(signal.SIGINT)
    try:
        return d.wait(30)
    finally:
        if d.proc.poll() is None:
            d.proc.kill()


def test_3000_slow_connections_cost_the_camera_no_gap(pulse, fake_v4l2, tmp_path):
    d, times = _start(pulse, fake_v4l2, tmp_path)
    try:
        port = json.loads((tmp_path / "run" / "control.json").read_text())["port"]
        threads = _threads(d.proc.pid)
        before = time.monotonic()
        time.sleep(3.0)
        f = _flood(port, 3000, 3.0)
        time.sleep(1.0)
        status, answer_s = _status_after(tmp_path / "run")
        threads_after = _threads(d.proc.pid)
        time.sleep(0.5)
    finally:
        rc = _stop(d)
    t = _frame_times(times)
    base_gap = _max_gap(t, before, f["t_start"])
    gap = _max_gap(t, f["t_start"], f["t_end"] + 1.0)
    in_flood = int(((t >= f["t_start"]) & (t <= f["t_end"])).sum())
    api_lines = [ln for ln in d.lines if "control API" in ln]
    print(f"\n[flood] {f['opened']} slow connections opened in {f['open_s']:.2f} s "
          f"({f['refused']} refused at connect), held, dropped; camera: {in_flood} frames "
          f"in {f['t_end'] - f['t_start']:.1f} s, longest gap {1000 * gap:.0f} ms (before "
          f"the flood {1000 * base_gap:.0f} ms); API answered {1000 * answer_s:.0f} ms after; "
          f"threads {threads} -> {threads_after}; {len(api_lines)} control API line(s)")
    assert rc == 0, d.text
    assert f["opened"] + f["refused"] == 3000
    assert "Traceback" not in d.text, d.text
    assert len(api_lines) <= 4, d.text
    assert status["frames"] > 0 and answer_s < 1.0
    assert threads_after >= threads, f"threads {threads} -> {threads_after}"
    assert gap <= 2 / FPS + 0.01, (f"camera gap {1000 * gap:.0f} ms during the flood "
                                   f"(before it {1000 * base_gap:.0f} ms)")


def test_out_of_file_descriptors_kills_no_thread(pulse, fake_v4l2, tmp_path):
    """1,010 connections against a 1,024 open-file limit, then the limit squeezed to what
    the daemon already holds (so accept() and the input watcher's pactl meet EMFILE for
    real): every thread lives on, the camera keeps going, the API answers again."""
    d, times = _start(pulse, fake_v4l2, tmp_path, limit=1024)
    pid = d.proc.pid
    try:
        port = json.loads((tmp_path / "run" / "control.json").read_text())["port"]
        threads = _threads(pid)
        f = _flood(port, 1010, 2.0)
        status, _ = _status_after(tmp_path / "run")
        assert status["frames"] > 0
        held = len(os.listdir(f"/proc/{pid}/fd"))
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (held + 2, 1024))
        squeezed = _flood(port, 200, 3.0, "nowait")  # the input watcher polls pactl every second
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (1024, 1024))
        time.sleep(1.5)
        status, answer_s = _status_after(tmp_path / "run")
        threads_after = _threads(pid)
    finally:
        rc = _stop(d)
    t = _frame_times(times)
    gap = _max_gap(t, f["t_start"], squeezed["t_end"] + 1.0)
    print(f"\n[EMFILE] 1010 connections under a 1024-file limit, then 200 with {held + 2} "
          f"files allowed: threads {threads} -> {threads_after}, longest camera gap "
          f"{1000 * gap:.0f} ms, API answered {1000 * answer_s:.0f} ms after the limit "
          f"was back; stderr:\n" + "\n".join(d.lines[1:]))
    assert rc == 0, d.text
    assert "Traceback" not in d.text, d.text
    assert threads_after >= threads, f"threads {threads} -> {threads_after}\n{d.text}"
    assert status["input"] == "live", status
    assert gap < 0.2, f"camera gap {1000 * gap:.0f} ms"
