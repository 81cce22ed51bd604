"""Start a real, headless OBS Studio (29.x, obs-websocket 5.1) under Xvfb for tests.

Library use (the integration fixtures)::

    home = tmp / "home"
    write_obs_config(home, password="pw", port=4455, scripts=[(script, settings)])
    x = Xvfb.start()
    o = Obs(home, x.display, 4455, log_dir=tmp)
    seconds = o.start()          # waits until the websocket port answers
    o.kill(signal.SIGKILL); o.start(); o.stop(); x.stop()

Command line (by hand, or from CI)::

    python tests/support/obs/obs_launcher.py start --run-dir /tmp/obs --password pw \\
        --script obs_scripts/avatar_vcam.py        # prints timings, leaves OBS running
    python tests/support/obs/obs_launcher.py stop --run-dir /tmp/obs

OBS 29 reads its websocket settings from ``global.ini`` [OBSWebSocket] (OBS 30+ moved them
to plugin_config/obs-websocket/config.json, written too); ``--websocket_port`` overrides the
port so several instances can run side by side, each with its own HOME and DISPLAY.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

LAST_VERSION_29_0_2 = 486539266
COLLECTION = PROFILE = "CI"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
        return True
    return False


def write_obs_config(home: Path, password: str, port: int,
                     scenes: tuple[str, ...] = ("Talking", "Idle", "BRB"),
                     current: str = "Talking",
                     scripts: list[tuple[Path, dict]] | tuple = ()) -> Path:
    """Write global.ini (websocket on, auth), a profile and a scene collection into
    ``home/.config/obs-studio``; ``scripts`` are (path, settings) loaded at start."""
    cfg = Path(home) / ".config" / "obs-studio"
    (cfg / "basic" / "profiles" / PROFILE).mkdir(parents=True, exist_ok=True)
    (cfg / "basic" / "scenes").mkdir(parents=True, exist_ok=True)
    (cfg / "global.ini").write_text(f"""[General]
Pre19Defaults=false
Pre21Defaults=false
Pre23Defaults=false
Pre24.1Defaults=false
FirstRun=true
LastVersion={LAST_VERSION_29_0_2}
EnableAutoUpdates=false
ConfirmOnExit=false

[Basic]
Profile={PROFILE}
ProfileDir={PROFILE}
SceneCollection={COLLECTION}
SceneCollectionFile={COLLECTION}
ConfigOnNewProfile=false

[BasicWindow]
SysTrayEnabled=false
SysTrayWhenStarted=false

[OBSWebSocket]
FirstLoad=false
ServerEnabled=true
ServerPort={port}
AlertsEnabled=false
AuthRequired={'true' if password else 'false'}
ServerPassword={password}
DebugEnabled=false
""")
    ws30 = cfg / "plugin_config" / "obs-websocket"
    ws30.mkdir(parents=True, exist_ok=True)
    (ws30 / "config.json").write_text(json.dumps({
        "alerts_enabled": False, "auth_required": bool(password), "first_load": False,
        "server_enabled": True, "server_password": password, "server_port": port}))
    (cfg / "basic" / "profiles" / PROFILE / "basic.ini").write_text(f"""[General]
Name={PROFILE}

[Video]
BaseCX=320
BaseCY=180
OutputCX=320
OutputCY=180
FPSType=1
FPSInt=10

[Audio]
SampleRate=48000
ChannelSetup=Stereo
""")
    collection = {
        "name": COLLECTION, "current_scene": current, "current_program_scene": current,
        "scene_order": [{"name": s} for s in scenes],
        "sources": [{"id": "scene", "versioned_id": "scene", "name": s,
                     "settings": {"custom_size": False, "id_counter": 0, "items": []},
                     "enabled": True, "flags": 0, "mixers": 0, "volume": 1.0}
                    for s in scenes],
        "groups": [], "transitions": [], "current_transition": "Cut",
        "transition_duration": 0, "quick_transitions": [], "saved_projectors": [],
        "preview_locked": False, "scaling_enabled": False,
        "modules": {"scripts-tool": [{"path": str(Path(p).resolve()), "settings": st}
                                     for p, st in scripts]} if scripts else {},
    }
    (cfg / "basic" / "scenes" / f"{COLLECTION}.json").write_text(json.dumps(collection))
    return cfg


class Xvfb:
    """A private X display."""

    def __init__(self, proc: subprocess.Popen, display: str) -> None:
        self.proc, self.display = proc, display

    @classmethod
    def start(cls, log_dir: Path | None = None, timeout: float = 10.0) -> Xvfb:
        exe = shutil.which("Xvfb")
        if exe is None:
            raise FileNotFoundError("Xvfb not found (apt-get install xvfb)")
        for num in range(140, 240):
            if not Path(f"/tmp/.X11-unix/X{num}").exists() and \
                    not Path(f"/tmp/.X{num}-lock").exists():
                break
        out = open(Path(log_dir) / "xvfb.log", "wb") if log_dir else subprocess.DEVNULL
        proc = subprocess.Popen([exe, f":{num}", "-screen", "0", "1280x720x24", "-nolisten",
                                 "tcp"], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not Path(f"/tmp/.X11-unix/X{num}").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"Xvfb :{num} did not start")
            time.sleep(0.02)
        return cls(proc, f":{num}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Obs:
    """One OBS process with its own HOME; restartable."""

    def __init__(self, home: Path, display: str, port: int, log_dir: Path,
                 env: dict[str, str] | None = None, scene: str | None = None) -> None:
        self.home, self.display, self.port = Path(home), display, port
        self.log_dir = Path(log_dir)
        self.env = env or {}
        self.scene = scene
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"obs-{self.starts}.log"

    def start(self, timeout: float = 60.0) -> float:
        """Launch OBS and wait for its websocket port; seconds from launch to port open."""
        exe = shutil.which("obs")
        if exe is None:
            raise FileNotFoundError("obs not found (apt-get install obs-studio)")
        if port_open(self.port):
            raise RuntimeError(f"port {self.port} is already in use")
        self.starts += 1
        env = {**os.environ, "HOME": str(self.home), "DISPLAY": self.display,
               "LIBGL_ALWAYS_SOFTWARE": "1", "QT_QPA_PLATFORM": "xcb",
               "XDG_CONFIG_HOME": str(self.home / ".config"), **self.env}
        cmd = [exe, "--minimize-to-tray", "--multi", "--disable-missing-files-check",
               "--collection", COLLECTION, "--profile", PROFILE,
               "--websocket_port", str(self.port)]
        if self.scene:
            cmd += ["--scene", self.scene]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.home)
        deadline = t0 + timeout
        while not port_open(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"OBS exited with {self.proc.returncode} before its "
                                   f"websocket answered; log: {self.log_path}\n"
                                   f"{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill(signal.SIGKILL)
                raise RuntimeError(f"OBS websocket :{self.port} not up after {timeout} s; "
                                   f"log: {self.log_path}\n{self.log_tail()}")
            time.sleep(0.05)
        return time.monotonic() - t0

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive:
            self.proc.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                self.proc.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        """Clean shutdown (SIGINT: OBS saves and unloads scripts), SIGKILL if it hangs."""
        if not self.alive:
            return
        self.proc.send_signal(signal.SIGCONT)
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("start", help="write config, start Xvfb + OBS, wait for websocket")
    st.add_argument("--run-dir", type=Path, required=True, help="pids, logs and OBS's HOME")
    st.add_argument("--password", default="")
    st.add_argument("--port", type=int, default=4455)
    st.add_argument("--script", type=Path, action="append", default=[],
                    help="OBS script to load (repeatable)")
    st.add_argument("--scene", action="append", default=[], help="scene name (repeatable)")
    sp = sub.add_parser("stop", help="SIGINT OBS, stop Xvfb")
    sp.add_argument("--run-dir", type=Path, required=True)
    args = ap.parse_args(argv)
    run = args.run_dir.resolve()
    if args.cmd == "stop":
        for name, sig in (("obs.pid", signal.SIGINT), ("xvfb.pid", signal.SIGTERM)):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int((run / name).read_text()), sig)
                time.sleep(1.0 if name == "obs.pid" else 0)
        return 0
    run.mkdir(parents=True, exist_ok=True)
    scenes = tuple(args.scene) or ("Talking", "Idle", "BRB")
    write_obs_config(run / "home", args.password, args.port, scenes=scenes, current=scenes[0],
                     scripts=[(p, {}) for p in args.script])
    t0 = time.monotonic()
    x = Xvfb.start(run)
    t_x = time.monotonic() - t0
    o = Obs(run / "home", x.display, args.port, run)
    t_obs = o.start()
    (run / "xvfb.pid").write_text(str(x.proc.pid))
    (run / "obs.pid").write_text(str(o.proc.pid))
    print(f"xvfb_ready_s={t_x:.3f} ws_ready_after_obs_launch_s={t_obs:.3f} "
          f"display={x.display} port={args.port} log={o.log_path}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
