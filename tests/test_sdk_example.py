"""docs/examples/talking_head.py runs as documented (docs/sdk.md): it cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "talking_head.py"


def test_the_sdk_example_renders_frames(tmp_path):
    run = subprocess.run([sys.executable, str(EXAMPLE), "--out", str(tmp_path),
                          "--seconds", "3"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    m = re.match(r"(\d+) frames of 512x512 \(3\.00 s of audio\), [\d.]+ ms per frame",
                 run.stdout)
    assert m, run.stdout
    assert 72 <= int(m[1]) <= 75  # 3 s at 25 fps less the look-ahead
    pngs = sorted(tmp_path.glob("frame_*.png"))
    assert [p.name for p in pngs] == ["frame_00000.png", "frame_00025.png", "frame_00050.png"]
    speaking = np.asarray(Image.open(pngs[-1]))
    assert speaking.shape == (512, 512, 3) and speaking.std() > 20
