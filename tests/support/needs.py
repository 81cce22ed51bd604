"""``require(tool, why)``: the path of a system tool a test needs.

Skips on a developer machine that lacks it, but FAILS when ``CI=true``: in CI a missing
Xvfb, gcc, PulseAudio, espeak-ng or OBS is a broken setup, not a reason to skip.
"""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(tool: str, why: str) -> str:
    """Path of ``tool``; skip without it locally, fail without it in CI."""
    path = shutil.which(tool)
    if path is None:
        msg = f"{tool} not found ({why}); .ci/run installs it"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path
