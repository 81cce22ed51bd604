"""Ctrl-C and SIGTERM for the main job, from the first line of start-up to the last frame.

Start-up (settings, engine, devices, control API: seconds) is plain sequential code with
nothing to poll a flag, so there a signal raises :class:`Interrupted` at once: every
``with`` block closes what it opened and the command prints its one-line summary instead
of click's bare ``Aborted!`` (SIGINT) or dying without a word (SIGTERM). Once frames flow
(:meth:`StopSignals.running`), a signal only sets :attr:`StopSignals.event`, which the
render loops poll, so the run ends between two frames with every file finished.

A third signal while stopping is taken as "now": the process exits at once (status 130 for
SIGINT, 143 for SIGTERM) without waiting for devices to close.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
FORCE_AFTER = 3  # signals: the third exits without cleaning up


class Interrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an error
    """A stop signal arrived during start-up. BaseException: ``except Exception`` in the
    code it interrupts does not swallow it."""

    def __init__(self, signum: int, after_s: float) -> None:
        super().__init__(f"{signal_name(signum)} during start-up")
        self.signum = signum
        self.after_s = after_s

    @property
    def name(self) -> str:
        return signal_name(self.signum)


def startup_summary(e: Interrupted, sinks: list[str] | tuple[str, ...] | None = None) -> str:
    """The one-line summary of a run stopped before its first frame (``sinks`` None: the
    command line was not parsed yet, so it may not even be a run)."""
    stopped = f"stopped by {e.name} during start-up, after {e.after_s:.1f} s"
    if sinks is None:
        return stopped
    files = [s.partition(":")[2] for s in sinks if s.startswith("file:")]
    nothing = f"; nothing written to {', '.join(files)}" if files else ""
    return f"0 frames for 0.00 s of audio; {stopped}{nothing}"


def default_handlers() -> None:
    """Python's own SIGINT (KeyboardInterrupt) and SIGTERM handling, for commands other
    than the main job (they were written for it)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def signal_name(signum: int) -> str:
    """'Ctrl-C' for SIGINT, 'SIGTERM', or the signal's own name."""
    try:
        return _NAMES.get(signum) or signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class StopSignals:
    """SIGINT/SIGTERM handlers for one run; restores the previous handlers on exit.

    Outside the main thread (a library caller's worker) it installs nothing and only
    offers :attr:`event`.
    """

    def __init__(self, started_at: float | None = None) -> None:
        self.event = threading.Event()
        self.signum: int | None = None  # the first signal received
        self.count = 0
        self.started_at = time.monotonic() if started_at is None else started_at
        self._running = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            outer = getattr(handler, "__self__", None)
            if (self._running or self.signum is not None) and isinstance(outer, StopSignals):
                outer._running = True  # the job ran or was stopped: no start-up follows
            signal.signal(sig, handler)
        self._old.clear()

    @property
    def stopped(self) -> bool:
        return self.event.is_set()

    @property
    def name(self) -> str:
        return signal_name(self.signum) if self.signum is not None else "a stop request"

    def running(self) -> None:
        """Start-up is over: from now on a signal only sets :attr:`event`.

        A signal that came during start-up but was not raised (it arrived in code that
        swallowed it) is raised here, before the first frame.
        """
        self.check()
        self._running = True

    def keep(self) -> None:
        """For the process's own exit, once the job is over: ignore stop signals from now
        on (the interpreter resets Python handlers while it finalises, and a SIGTERM then
        would kill it mid-cleanup). Nothing is restored afterwards."""
        self._running = True
        self._old.clear()
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                signal.signal(sig, signal.SIG_IGN)

    def check(self) -> None:
        """Raise :class:`Interrupted` if a signal came during start-up (a safe point)."""
        if not self._running and self.signum is not None:
            raise Interrupted(self.signum, time.monotonic() - self.started_at)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.count >= FORCE_AFTER:
            sys.stderr.write(f"\n{signal_name(signum)} again: exiting without cleaning up\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        first = self.signum is None
        if first:
            self.signum = signum
        self.event.set()
        if first and not self._running:
            raise Interrupted(signum, time.monotonic() - self.started_at)
