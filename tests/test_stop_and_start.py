"""Issue 20, "stopping and starting", on the real command in a subprocess with real
signals: Ctrl-C/SIGTERM during start-up, an early stop of a --realtime run, a file render
beside a live daemon, and where the demo writes its mp4.

The runs use ``--a2m dsp`` (the signal-feature lips, no weights file) so that start-up
costs only what these tests are about.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXE = str(Path(sys.executable).parent / "avatar-vcam")
FAST = ["--a2m", "dsp", "--size", "128"]


class Run:
    """``avatar-vcam ARGS`` with its stderr lines and the time each was read."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([EXE, *args], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait_for(self, text: str, timeout: float = 60) -> float:
        """Seconds from the start until a stderr line containing ``text``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, line in list(self.lines):
                if text in line:
                    return t - self.t0
            assert self.proc.poll() is None or self._reader.is_alive(), self.text
            time.sleep(0.02)
        raise AssertionError(f"no line with {text!r} in {timeout} s:\n{self.text}")

    def stop(self, sig: int, timeout: float = 30) -> tuple[int, float, float]:
        """Send ``sig``; (return code, s until the last line, s until the process is gone)."""
        t = time.monotonic()
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        gone = time.monotonic() - t
        self._reader.join(5)
        last = (self.lines[-1][0] - t) if self.lines else gone
        return rc, last, gone

    @property
    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)


def _clean(run: Run) -> None:
    assert "Aborted" not in run.text and "Traceback" not in run.text, run.text
    assert "KeyboardInterrupt" not in run.text, run.text


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("delay", [0.15, 0.6, 1.2])
def test_signal_during_start_up_prints_the_summary(tmp_path, sig, delay):
    """No bare 'Aborted!' and no silent death: one summary line, at once, exit status 0."""
    out = tmp_path / "o.mp4"
    run = Run(["--source", "demo", "--sink", f"file:{out}", *FAST], cwd=tmp_path)
    time.sleep(delay)
    rc, last, gone = run.stop(sig)
    name = "Ctrl-C" if sig == signal.SIGINT else "SIGTERM"
    print(f"{name} at {delay} s: summary {last:.2f} s after it, process gone after "
          f"{gone:.2f} s")
    _clean(run)
    assert rc == 0, run.text
    final = run.lines[-1][1]
    if "<-" in run.text:  # a loaded machine got past start-up: an early stop, said so
        assert f"stopped early by {name}" in run.text, run.text
    else:
        assert f"stopped by {name} during start-up" in final, run.text
        assert len(run.lines) == 1, run.text
        if final.startswith("0 frames"):  # the command line was parsed: the file is named
            assert final.startswith("0 frames for 0.00 s of audio;"), final
            assert f"nothing written to {out}" in final, final
    assert last < 1.0, f"the summary came {last:.2f} s after {name}"
    assert gone < 3.0, f"the process took {gone:.2f} s to exit"
    assert not out.exists()


def test_signal_just_after_start_up(tmp_path):
    """A signal right after the banner (the run's first frames) is a normal early stop."""
    run = Run(["--source", "demo", "--sink", f"file:{tmp_path / 'o.mp4'}", "--realtime",
               *FAST])
    run.wait_for("<-")
    rc, last, gone = run.stop(signal.SIGTERM)
    _clean(run)
    assert rc == 0 and "stopped early by SIGTERM" in run.text, run.text
    assert last < 1.0 and gone < 3.0, (last, gone)


def test_realtime_early_stop_says_so(tmp_path):
    out = tmp_path / "o.mp4"
    run = Run(["--source", "demo", "--sink", f"file:{out}", "--realtime", *FAST])
    run.wait_for("<-")
    time.sleep(1.5)
    rc, last, gone = run.stop(signal.SIGINT)
    _clean(run)
    assert rc == 0, run.text
    summary = next(line for _, line in run.lines if " frames for " in line)
    assert "stopped early by Ctrl-C at " in summary and "before the input ended" in summary
    assert " of 9.5" in summary, summary  # the demo clip's length
    assert run.lines[-1][1] == f"wrote {out}" and out.stat().st_size > 0
    print(f"realtime Ctrl-C: last line {last:.2f} s after it, gone after {gone:.2f} s")
    assert last < 1.0


def test_realtime_run_to_its_end_does_not_say_early(tmp_path):
    r = subprocess.run([EXE, "--source", "demo", "--sink", f"file:{tmp_path / 'o.mp4'}",
                        "--realtime", "--duration", "1", *FAST], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "stopped early" not in r.stderr and "25 frames for 1.00 s" in r.stderr, r.stderr


def test_file_render_runs_beside_a_live_daemon(tmp_path):
    """A file render serves no control API, so it needs no --no-control beside a daemon;
    typing --control asks for one, and then the slot is taken."""
    env = {**os.environ, "AVATAR_VCAM_RUNTIME_DIR": str(tmp_path / "run")}
    daemon = Run(["--source", "demo", "--sink", f"file:{tmp_path / 'live.mp4'}", "--realtime",
                  "--control", *FAST], env=env)
    try:
        daemon.wait_for("<-")
        info = json.loads((tmp_path / "run" / "control.json").read_text())
        assert info["pid"] == daemon.proc.pid
        r = subprocess.run([EXE, "--source", "demo", "--sink", f"file:{tmp_path / 'r.mp4'}",
                            "--duration", "1", *FAST], env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0 and "wrote" in r.stderr, r.stderr
        assert (tmp_path / "r.mp4").stat().st_size > 0
        status = subprocess.run([EXE, "status", "--json"], env=env, capture_output=True,
                                text=True, timeout=60)
        assert json.loads(status.stdout)["pid"] == daemon.proc.pid, status.stderr
        r = subprocess.run([EXE, "--source", "demo", "--sink", f"file:{tmp_path / 'c.mp4'}",
                            "--duration", "1", "--control", *FAST], env=env,
                           capture_output=True, text=True, timeout=120)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1, r.stderr
        assert lines[0].startswith("Error: another avatar-vcam daemon is running"), lines
    finally:
        daemon.stop(signal.SIGINT)
    _clean(daemon)


def test_demo_writes_into_the_callers_folder(tmp_path):
    """scripts/demo.sh (README's quick start) with no camera and no display: the mp4 it
    chooses, and one named on its command line, land in the folder it was run from."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["AVATAR_VCAM_RUNTIME_DIR"] = str(tmp_path / "run")
    before = set(ROOT.glob("*.mp4"))
    r = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh"), "--duration", "0.3",
                        *FAST], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    if "-> file:" in r.stderr:  # no camera here: the default output is an mp4
        assert len(list(tmp_path.glob("avatar-vcam-*.mp4"))) == 1, r.stderr
    r = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh"), "--duration", "0.3",
                        "--sink", "file:named.mp4", *FAST], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "named.mp4").stat().st_size > 0
    assert set(ROOT.glob("*.mp4")) == before, "the demo wrote into the repository"


def test_stop_signals_modes():
    """Start-up: a signal raises Interrupted at once; running: it only sets the event; a
    nested run that ran leaves its outer handler quiet (the process's exit is no start-up)."""
    from vcam.stopping import Interrupted, StopSignals

    old = signal.getsignal(signal.SIGTERM)
    with StopSignals() as outer:
        with pytest.raises(Interrupted) as e, StopSignals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        assert e.value.name == "SIGTERM" and e.value.after_s < 1
        with StopSignals() as inner:
            inner.running()
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            assert inner.stopped and inner.name == "Ctrl-C"
        os.kill(os.getpid(), signal.SIGTERM)  # outer: quiet now, no Interrupted
        time.sleep(0.05)
        assert outer.stopped
    assert signal.getsignal(signal.SIGTERM) is old


def test_third_signal_exits_without_waiting(tmp_path):
    script = ("import os, signal, time\n"
              "from vcam.stopping import StopSignals\n"
              "with StopSignals() as s:\n"
              "    s.running()\n"
              "    print('ready', flush=True)\n"
              "    time.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    for _ in range(3):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.1)
    assert proc.wait(5) == 130
    assert "exiting without cleaning up" in proc.stderr.read()
