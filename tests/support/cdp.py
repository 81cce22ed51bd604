"""A headless Chromium driven over the DevTools protocol (websockets' sync client): load
a page, evaluate JavaScript, take screenshots with a transparent default background."""

from __future__ import annotations

import base64
import io
import itertools
import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


class Chromium:
    """``with Chromium(exe, folder, (w, h)) as b: b.open(url); b.screenshot()``."""

    def __init__(self, exe: str, folder: Path, size: tuple[int, int]) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--remote-debugging-port=0", f"--user-data-dir={folder}",
             f"--window-size={size[0]},{size[1]}", "--hide-scrollbars", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._ids = itertools.count(1)
        self.size = size
        self.ws: Any = None

    def __enter__(self) -> Chromium:
        from websockets.sync.client import connect

        port_file = self.folder / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            assert self.proc.poll() is None, "chromium exited"
            assert time.monotonic() < deadline, "chromium's DevTools did not start"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
            pages = [t for t in json.load(r) if t.get("type") == "page"]
        self.ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=64 << 20).__enter__()
        self.call("Emulation.setDeviceMetricsOverride", width=self.size[0],
                  height=self.size[1], deviceScaleFactor=1, mobile=False)
        self.call("Emulation.setDefaultBackgroundColorOverride",
                  color={"r": 0, "g": 0, "b": 0, "a": 0})
        return self

    def __exit__(self, *exc: object) -> None:
        if self.ws is not None:
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; its result (events meanwhile are dropped)."""
        i = next(self._ids)
        self.ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == i:
                assert "error" not in msg, msg
                return msg.get("result", {})

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def js(self, expression: str) -> Any:
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return r.get("result", {}).get("value")

    def screenshot(self) -> np.ndarray:
        """(H, W, 4) uint8 RGBA of the viewport."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGBA"))
