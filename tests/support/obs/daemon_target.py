"""A daemon-like control target for the OBS / control API tests.

``make_target()`` wraps a real ``Engine("leo")`` in the daemon's
:class:`~vcam.control.api.EngineTarget` when the engine can be built, else a small
:class:`RecordingEngine` with the same control surface (``set_expression`` raising KeyError,
``expression``, ``expressions``). Either way the history of expressions is recorded.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from vcam.control.api import EngineTarget

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from needs import require  # noqa: E402,F401  (conftest.py of the OBS tests imports it from here)

FALLBACK_EXPRESSIONS = ["neutral", "smile", "laugh", "surprised", "sad", "angry", "wink",
                        "thinking", "skeptical"]


class _Avatar:
    name = "recording"


class RecordingEngine:
    """Stand-in for Engine's control surface."""

    def __init__(self, expressions: list[str] | None = None) -> None:
        self.avatar = _Avatar()
        self._names = sorted(expressions or FALLBACK_EXPRESSIONS)
        self.expression = "neutral"
        self._lock = threading.Lock()

    @property
    def expressions(self) -> list[str]:
        return list(self._names)

    def set_expression(self, name: str, pts: float | None = None) -> None:
        if name not in self._names:
            raise KeyError(f"unknown expression {name!r}; known: {', '.join(self._names)}")
        with self._lock:
            self.expression = name


class RecordingTarget(EngineTarget):
    """EngineTarget that also records (time, expression) of every change."""

    def __init__(self, engine: Any) -> None:
        super().__init__(engine)
        self.history: list[tuple[float, str]] = []
        self.changed = threading.Condition()

    def set_expression(self, name: str) -> None:
        super().set_expression(name)
        with self.changed:
            self.history.append((time.monotonic(), name))
            self.changed.notify_all()

    def wait_expression(self, name: str, timeout: float = 5.0) -> float:
        """Seconds until the expression is ``name``; AssertionError after ``timeout``."""
        t0 = time.monotonic()
        with self.changed:
            ok = self.changed.wait_for(lambda: self.engine.expression == name, timeout)
        assert ok, (f"expression is {self.engine.expression!r}, not {name!r}, after "
                    f"{timeout} s; history {[n for _, n in self.history]}")
        return time.monotonic() - t0


_warned: list[bool] = []


def make_engine() -> tuple[Any, str]:
    """(engine, kind): kind is "engine" for a real Engine("leo"), else "recording"."""
    try:
        from engine import Engine

        return Engine("leo"), "engine"
    except Exception as e:  # the engine may not be buildable yet
        if not _warned:
            _warned.append(True)
            print(f"daemon_target: Engine('leo') unavailable ({type(e).__name__}: {e}); "
                  f"using RecordingEngine", file=sys.stderr)
        return RecordingEngine(), "recording"


def make_target(engine: Any = None) -> tuple[RecordingTarget, str]:
    """(target, kind) around ``engine`` (reset to neutral) or a new one."""
    kind = "given"
    if engine is None:
        engine, kind = make_engine()
    engine.set_expression("neutral")
    return RecordingTarget(engine), kind


def wait_until(pred: Callable[[], Any], timeout: float, what: str, step: float = 0.02) -> float:
    """Seconds until ``pred()`` is truthy; AssertionError naming ``what`` otherwise."""
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(step)
    return time.monotonic() - t0


def client_cli() -> Any:
    """The control client commands (expr, status, scene) on a bare click group, as the
    main command registers them."""
    import click

    from vcam.cli.control import register

    @click.group()
    @click.option("-v", "--verbose", is_flag=True)
    def cli(verbose: bool) -> None:
        pass

    register(cli)
    return cli
