"""The soak harness in CI (issue 20): bench/soak.py for 3 minutes with every fault.

A private PulseAudio, the live daemon with the camera shim, an mp4 and the virtual mic;
input and voice-out sink unload/reload, SIGSTOP 2 s, camera writes failing, a full disk
under the mp4, a slow-connection flood and a CPU hog, each measured from the outside.
Asserts the harness's verdict: drift <= 1 frame, RSS growth < 5 %, each fault recovered
within 3 s (the hog: D back at idle within 15 s, input->camera <= 150 ms, no camera gap
over 3 frames), nothing played on a wrong device. A missing tool fails in CI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "support"))
from needs import require  # noqa: E402

pytestmark = pytest.mark.integration


def test_three_minute_soak_with_every_fault(tmp_path):
    for tool, why in (("gcc", "builds the v4l2 shim"), ("pulseaudio", "the sound server"),
                      ("pactl", "sound server control"), ("parecord", "records the mic"),
                      ("paplay", "plays the speech"), ("espeak-ng", "speaks the phrases"),
                      ("prlimit", "fills the disk of the running daemon")):
        require(tool, why)
    out = tmp_path / "soak.json"
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--minutes", "3",
                        "--gap-s", "5", "--hog-s", "15", "--flood", "1000", "--json",
                        str(out)], capture_output=True, text=True, timeout=400)
    print(p.stdout[-6000:])
    assert out.exists(), p.stdout[-3000:] + p.stderr[-3000:]
    report = json.loads(out.read_text())
    kinds = {f["kind"] for f in report["faults"]}
    assert kinds == {"input_reload", "voice_reload", "sigstop", "camera_fail", "disk_full",
                     "flood", "hog"}, kinds
    assert not report["wrong_device"], report["wrong_device"]
    assert "Traceback" not in "\n".join(report["daemon_tail"]), report["daemon_tail"]
    assert report["ok"], report["table"]
    assert p.returncode == 0
