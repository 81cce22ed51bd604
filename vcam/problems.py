"""One log line per kind of problem, rate-limited: what a flood of failures prints.

A hostile client, a failing device or a full disk can raise the same error hundreds of
times a second. Each kind is logged once, then at most once per ``every_s`` with the
count of those not printed since, and never with a traceback (that goes to debug).
"""

from __future__ import annotations

import logging
import threading
import time


class Problems:
    """Rate-limited one-line reports, keyed by the kind of problem."""

    def __init__(self, logger: logging.Logger, every_s: float = 30.0) -> None:
        self.log = logger
        self.every_s = every_s
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}  # kind -> when it was last printed
        self._quiet: dict[str, int] = {}  # kind -> reports not printed since
        self.counts: dict[str, int] = {}  # kind -> reports in all

    def report(self, kind: str, message: str, level: int = logging.WARNING,
               exc: BaseException | None = None) -> bool:
        """Log ``message`` unless ``kind`` was logged less than ``every_s`` ago.

        Returns True when it was printed. ``exc``'s traceback goes to debug only.
        """
        now = time.monotonic()
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            last = self._last.get(kind)
            if last is not None and now - last < self.every_s:
                self._quiet[kind] = self._quiet.get(kind, 0) + 1
                return False
            quiet = self._quiet.pop(kind, 0)
            self._last[kind] = now
        if quiet:
            message += f" ({quiet} more like it in the last {now - last:.0f} s)"
        self.log.log(level, "%s", " ".join(message.split()))
        if exc is not None:
            self.log.debug("%s", kind, exc_info=(type(exc), exc, exc.__traceback__))
        return True
