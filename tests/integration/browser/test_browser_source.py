"""``--sink obs``: a real headless Chromium (Debian's chromium) loads the page while the
daemon speaks the demo clip (issue 22).

Screenshots through the DevTools protocol, with a transparent default background, must
show transparent pixels around the avatar, opaque face pixels and a mouth that changes
with the speech; the page must come back by itself when the daemon restarts; and the
page's own latency (due -> drawn) is measured. ``CI=true`` fails without chromium.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

SUPPORT = Path(__file__).resolve().parents[2] / "support"
sys.path.insert(0, str(SUPPORT))
from cdp import Chromium  # noqa: E402
from needs import require  # noqa: E402

EXE = str(Path(sys.executable).parent / "avatar-vcam")
SIZE = 256
ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.integration


class Daemon:
    """``avatar-vcam`` in the background; its output kept for failure messages."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen([EXE, *args], env=env, stdout=log.open("w"),
                                     stderr=subprocess.STDOUT)

    @property
    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_url(self, env: dict[str, str], timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, self.text
            assert time.monotonic() < deadline, "no page: " + self.text
            r = subprocess.run([EXE, "obs-url"], env=env, capture_output=True, text=True)
            if r.returncode == 0:
                return r.stdout.strip()
            time.sleep(0.3)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mouth_box() -> tuple[slice, slice]:
    pts = np.array(json.loads((ROOT / "avatars/leo/landmarks.json").read_text())["points"])
    k = SIZE / 512
    cx, cy = (pts[13, :2] + pts[14, :2]) / 2 * k
    r = 0.07 * SIZE
    return slice(int(cy - r), int(cy + r)), slice(int(cx - r), int(cx + r))


def _wait(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_page_is_transparent_speaks_and_reconnects(tmp_path):
    exe = require("chromium", "the browser that loads the OBS page")
    port = _free_port()
    env = {**os.environ, "AVATAR_VCAM_RUNTIME_DIR": str(tmp_path / "run")}
    args = ["--source", "demo", "--sink", "obs", "--size", str(SIZE), "--control-port",
            str(port), "--seed", "1"]
    d = Daemon(args + ["--duration", "9"], env, tmp_path / "d1.log")
    try:
        url = d.wait_url(env)
        assert url.startswith(f"http://127.0.0.1:{port}/obs?k=")
        with Chromium(exe, tmp_path / "chromium", (SIZE, SIZE)) as b:
            b.open(url)
            _wait(lambda: (b.js("window.avatarStats && window.avatarStats.frames") or 0) > 5,
                  30, "the page drew no frame: " + d.text)
            shots = []
            for _ in range(25):
                shots.append(b.screenshot())
                time.sleep(0.1)
            lat = b.js("window.avatarStats.latency")
            status = json.loads(subprocess.run([EXE, "status", "--json"], env=env,
                                               capture_output=True, text=True).stdout)
            first = b.js("window.avatarStats.frames")
            assert d.stop() in (0, 130), d.text

            # the daemon restarts on the same port: the page comes back by itself
            d = Daemon(args + ["--duration", "6"], env, tmp_path / "d2.log")
            assert d.wait_url(env) == url  # same URL across the restart
            _wait(lambda: b.js("window.avatarStats.connects") >= 2, 60,
                  "the page did not reconnect: " + d.text)
            before = b.js("window.avatarStats.frames")
            _wait(lambda: b.js("window.avatarStats.frames") > before + 10, 30,
                  "no frames after the reconnect")
    finally:
        d.stop()

    img = shots[-1]
    assert img.shape[:2] == (SIZE, SIZE)
    a = np.stack([s[..., 3] for s in shots])
    # transparent around the avatar: the top corners, beside the head
    for y, x in ((3, 3), (3, SIZE - 4), (SIZE // 3, 4), (SIZE // 3, SIZE - 5)):
        assert (a[:, y, x] == 0).all(), (y, x, a[:, y, x])
    # opaque face: forehead and cheeks
    for y, x in ((int(0.33 * SIZE), SIZE // 2), (int(0.5 * SIZE), int(0.38 * SIZE))):
        assert (a[:, y, x] == 255).all(), (y, x)
    assert (a == 0).mean() > 0.15 and (a == 255).mean() > 0.4
    # the mouth changes with the speech (frame to frame, as the lips move)
    ys, xs = _mouth_box()
    mouth = np.stack([s[ys, xs, :3].astype(np.float32) for s in shots])
    change = np.abs(np.diff(mouth, axis=0)).mean(axis=(1, 2, 3))
    assert change.max() > 4.0, change
    assert np.abs(mouth - mouth.mean(0)).mean() > 2.0
    # latency: due -> drawn in the page, and what the daemon heard from it
    assert first > 20
    med = float(np.median(lat))
    assert 0 <= med < 100, lat
    assert status["browser"]["pages"] == 1 and status["browser"]["latency_ms"] is not None
    print(f"page latency median {med:.1f} ms, p95 {np.percentile(lat, 95):.1f} ms; "
          f"daemon: {status['browser']}")
