"""Prepare avatars in a helper process, so the render thread never waits for the GIL.

A renderer on the CPU prepares an avatar with thousands of small numpy steps that hold
the GIL; in the daemon's own process they slow every frame rendered meanwhile (at 1280x720
on 2 cores, enough for late frames and a raised voice delay). The helper is this module
run as ``python -m vcam.live.prepare_process`` at niceness 10, started at the first switch
and kept for the next ones. Per request it loads the package, runs the renderer's
``prepare`` and writes the :class:`~engine.switch.PreparedAvatar` with ``torch.save`` to a
private file; the daemon loads it (tens of ms) and removes it.

Protocol (one JSON line each way): the first line in is ``{"config": <base64 pickle of
EngineConfig>, "renderer": NAME}``; then ``{"avatar": FOLDER, "matte": null|bool, "out":
PATH}`` -> ``{"ok": true, "prepare_s": S}`` or ``{"ok": false, "error": LINE}``.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from engine.switch import PreparedAvatar

NICE = 10


class PrepareProcess:
    """The daemon's side: one helper process, one request at a time (the caller's thread)."""

    def __init__(self, config: Any, renderer: str) -> None:
        self.config, self.renderer = config, renderer
        self._proc: subprocess.Popen | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="avatar-vcam-prepare-"))
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vcam.live.prepare_process"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            preexec_fn=_nice if sys.platform.startswith("linux") else None)  # noqa: PLW1509
        head = {"config": base64.b64encode(pickle.dumps(self.config)).decode(),
                "renderer": self.renderer}
        proc.stdin.write(json.dumps(head) + "\n")
        proc.stdin.flush()
        return proc

    def start(self) -> None:
        """Start the helper now (it imports torch and builds its renderer while the daemon
        runs), so the first switch does not wait for that."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._start()

    def prepare(self, folder: Path, matte: bool | None) -> PreparedAvatar:
        """The prepared avatar of package ``folder``; RuntimeError with one line on failure."""
        import torch

        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._start()
            out = self._dir / "prepared.pt"
            req = {"avatar": str(folder), "matte": matte, "out": str(out)}
            try:
                self._proc.stdin.write(json.dumps(req) + "\n")
                self._proc.stdin.flush()
                line = self._proc.stdout.readline()
            except OSError as e:
                raise RuntimeError(f"the prepare helper failed: {e}") from None
            if not line:
                raise RuntimeError("the prepare helper ended (out of memory?)")
            reply = json.loads(line)
            if not reply.get("ok"):
                raise RuntimeError(reply.get("error") or "the prepare helper failed")
            try:
                data = out.read_bytes()
            finally:
                with contextlib.suppress(OSError):
                    out.unlink()
        prepared = torch.load(io.BytesIO(data), weights_only=False)
        prepared.prepare_s = float(reply["prepare_s"])
        return prepared

    def close(self) -> None:
        """End the helper at once: it keeps nothing worth saving, and waiting for it to
        read the end of its input (it may still be importing torch) and tear its
        interpreter down held a Ctrl-C of the daemon for up to 5 s."""
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            proc.terminate()
            try:
                proc.wait(1.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with contextlib.suppress(OSError):
            for f in self._dir.iterdir():
                f.unlink()
            self._dir.rmdir()


def _nice() -> None:
    with contextlib.suppress(OSError):
        os.nice(NICE)


class _Stand:
    """What :func:`engine.switch.prepare_for` reads of an engine."""

    def __init__(self, config: Any, renderer: Any) -> None:
        self.config, self.renderer, self.matte = config, renderer, None


def _serve() -> None:
    """The helper: read requests from stdin until it closes."""
    import torch

    from engine.renderers import make_renderer
    from engine.switch import prepare_avatar

    head = json.loads(sys.stdin.readline())
    config = pickle.loads(base64.b64decode(head["config"]))
    stand = _Stand(config, make_renderer(head["renderer"], config.device,
                                         backend=getattr(config, "backend", "torch")))
    for line in sys.stdin:
        req = json.loads(line)
        t0 = time.perf_counter()
        try:
            overlay = req.get("matte")
            stand.matte = None if overlay is None else SimpleNamespace(overlay=bool(overlay))
            prepared = prepare_avatar(stand, Path(req["avatar"]), warm_up=False)
            matte = prepared.extra.get("matte")
            if matte is not None:  # the daemon renders it with its own renderer
                matte.renderer = None
            torch.save(prepared, req["out"])
            reply = {"ok": True, "prepare_s": time.perf_counter() - t0}
        except Exception as e:
            reply = {"ok": False, "error": " ".join((str(e) or type(e).__name__).split())}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _serve()
