"""The ``avatar-vcam`` console script: stop signals first, then the (slower) imports.

Importing the command line (click, rich, numpy, the engine) takes a few hundred
milliseconds; a Ctrl-C or SIGTERM then would end in a KeyboardInterrupt traceback or in
silence. Here the handlers of :mod:`vcam.stopping` (standard library only) are installed
before anything else is imported, so any moment of start-up ends with the usual line, and
they stay for the interpreter's own exit, which a late SIGTERM would otherwise cut short.
"""

from __future__ import annotations

import sys
import time

from ..stopping import Interrupted, StopSignals, startup_summary

_T0 = time.monotonic()


def main() -> None:
    """Console-script entry point (``vcam.cli.main:main`` behind stop handlers)."""
    stop = StopSignals(started_at=_T0).__enter__()
    try:
        from . import main as cli_main

        cli_main.STARTED_AT = _T0
        cli_main.main()
    except Interrupted as e:
        sys.stderr.write(startup_summary(e) + "\n")
    finally:
        stop.keep()
