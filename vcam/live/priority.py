"""Thread priorities for the live path, where the OS allows them (issue 20).

The audio threads (libpulse's mainloop threads of the capture and voice-out streams, and
the presenter that sends each frame on the voice's clock) ask for real time: SCHED_FIFO
when this process may set it (root, CAP_SYS_NICE or an RLIMIT_RTPRIO), else through
rtkit on the system D-Bus (``busctl``), else a lower niceness, else nothing. The render
thread only asks for a slightly lower niceness than other programs (it always yields to
the audio threads). What each role got is kept in :data:`GRANTED` for the status and said
in one log line per role.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import subprocess
import sys
import threading

log = logging.getLogger(__name__)

AUDIO_RT_PRIORITY = 10  # low in the real-time range: above every normal thread, below IRQs
AUDIO_NICE = -11  # what PulseAudio itself asks for when real time is refused
RENDER_NICE = -4  # the render thread: ahead of ordinary programs, behind the audio threads
GRANTED: dict[str, str] = {}  # role -> what was granted ("SCHED_FIFO 10", "nice -11", ...)
_lock = threading.Lock()
_promoted: set[int] = set()  # native thread ids already handled


def _rtkit(tid: int, priority: int) -> bool:
    """Ask rtkit (org.freedesktop.RealtimeKit1) to make thread ``tid`` real time."""
    busctl = shutil.which("busctl")
    if busctl is None:
        return False
    try:
        # rtkit refuses a process without a bounded RLIMIT_RTTIME (a runaway guard)
        soft, hard = resource.getrlimit(resource.RLIMIT_RTTIME)
        if soft == resource.RLIM_INFINITY or soft > 200_000:
            resource.setrlimit(resource.RLIMIT_RTTIME, (200_000, hard))
        r = subprocess.run([busctl, "--system", "call", "org.freedesktop.RealtimeKit1",
                            "/org/freedesktop/RealtimeKit1", "org.freedesktop.RealtimeKit1",
                            "MakeThreadRealtime", "tu", str(tid), str(priority)],
                           capture_output=True, timeout=2)
    except (OSError, ValueError, subprocess.SubprocessError):
        return False
    return r.returncode == 0


def _nice(tid: int, nice: int) -> str | None:
    """Set thread ``tid``'s niceness to ``nice`` or the lowest the OS allows above it."""
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
    except OSError:
        return None
    for value in range(nice, current):
        try:
            os.setpriority(os.PRIO_PROCESS, tid, value)
            return f"nice {value}"
        except OSError:
            continue
    return None


def promote_audio_thread(role: str, tid: int | None = None) -> str:
    """Real time (or the best the OS allows) for an audio thread; returns what was granted.

    ``tid``: a native thread id (default: the calling thread). Each thread is handled
    once; rtkit runs off the calling thread, so an audio callback never waits on D-Bus.
    """
    tid = tid or threading.get_native_id()
    with _lock:
        if tid in _promoted:
            return GRANTED.get(role, "")
        _promoted.add(tid)
    if not sys.platform.startswith("linux"):
        return _note(role, "normal (not Linux)")
    try:
        os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(AUDIO_RT_PRIORITY))
        return _note(role, f"SCHED_FIFO {AUDIO_RT_PRIORITY}")
    except (OSError, AttributeError):
        pass

    def fallback() -> None:
        if _rtkit(tid, AUDIO_RT_PRIORITY):
            _note(role, f"SCHED_FIFO {AUDIO_RT_PRIORITY} (rtkit)")
        else:
            _note(role, _nice(tid, AUDIO_NICE) or "normal (refused)")

    threading.Thread(target=fallback, daemon=True, name="avatar-vcam-rtkit").start()
    return GRANTED.get(role, "pending")


def promote_render_thread() -> str:
    """A slightly lower niceness for the calling (render) thread, where permitted."""
    tid = threading.get_native_id()
    if not sys.platform.startswith("linux"):
        return _note("render", "normal (not Linux)")
    return _note("render", _nice(tid, RENDER_NICE) or "normal (refused)")


def _note(role: str, what: str) -> str:
    if GRANTED.get(role) != what:
        GRANTED[role] = what
        log.info("priority: %s thread %s", role, what)
    return what


def summary() -> str | None:
    """'capture SCHED_FIFO 10, voice SCHED_FIFO 10, render nice -4' (None: none asked)."""
    return ", ".join(f"{k} {v}" for k, v in sorted(GRANTED.items())) or None
