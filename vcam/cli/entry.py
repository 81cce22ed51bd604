"""The ``avatar-vcam`` console script: stop signals first, then the (slower) imports.

Importing the command line (click, rich, numpy, the engine) takes a few hundred
milliseconds; a Ctrl-C or SIGTERM then would end in a KeyboardInterrupt traceback or in
silence. Here the handlers of :mod:`vcam.stopping` (standard library only) are installed
before anything else is imported, so any moment of start-up ends with the usual line, and
they stay for the interpreter's own exit, which a late SIGTERM would otherwise cut short.

Once a command has finished (its files closed, its last line printed), the process ends
at once (:func:`_exit_now`): the interpreter's own teardown with torch and mediapipe loaded
took 2-4 s on a busy 2-core machine, which made a Ctrl-C look slow. An uncaught exception
still takes the normal path, traceback and all.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from ..stopping import Interrupted, StopSignals, startup_summary

_T0 = time.monotonic()


def main() -> None:
    """Console-script entry point (``vcam.cli.main:main`` behind stop handlers)."""
    stop = StopSignals(started_at=_T0).__enter__()
    code: object = 0
    try:
        from . import main as cli_main

        cli_main.STARTED_AT = _T0
        cli_main.main()
    except SystemExit as e:
        code = e.code
    except Interrupted as e:
        sys.stderr.write(startup_summary(e) + "\n")
    finally:
        stop.keep()
    _exit_now(code)


def _exit_now(code: object) -> None:
    """End the process with ``code`` (as ``sys.exit`` reads it) once the output is out,
    without the interpreter's teardown."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): printed, status 1
        sys.stderr.write(f"{code}\n")
        status = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(status & 0xFF)
