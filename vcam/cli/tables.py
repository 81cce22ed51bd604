"""Where the commands' tables go: stdout, whole when piped.

Rich sizes a table to the terminal, and to 80 columns when stdout is a pipe or a file, so
``avatar-vcam models list | less`` used to cut paths to "liveportrait/base_models/appe…".
Piped (and no ``COLUMNS`` set), tables here take the width their cells need.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console

_UNLIMITED = 10_000  # columns: rich's tables then take their natural width


def stdout_console() -> Console:
    """A console on stdout: the terminal's width, or unlimited when piped."""
    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(width=_UNLIMITED if piped else None)
