"""Fixtures: a real OBS 29 (obs-websocket 5.1) under Xvfb, started by tests/support/obs/.

One OBS per session (its own HOME, DISPLAY and websocket port), with three scenes
(Talking, Idle, BRB), websocket auth, and obs_scripts/avatar_vcam.py loaded from the scene
collection. ``obs`` makes sure it runs (tests may kill it) and resets the program scene.
"""

from __future__ import annotations

import secrets
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "support" / "obs"))

from daemon_target import make_engine, make_target, require  # noqa: E402
from obs_launcher import Obs, Xvfb, free_port, write_obs_config  # noqa: E402

SCRIPT = ROOT / "obs_scripts" / "avatar_vcam.py"
SCENES = ("Talking", "Idle", "BRB")
HOTKEY_SAD = "avatar_vcam.expr.sad"  # bound to Ctrl+Shift+F9 in the script's settings



@dataclass
class ObsInstance:
    obs: Obs
    xvfb: Xvfb
    port: int
    password: str
    runtime_dir: Path
    start_seconds: list[float]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def client(self, timeout: float = 5.0):
        import obsws_python as obsws

        return obsws.ReqClient(host="127.0.0.1", port=self.port, password=self.password,
                               timeout=timeout)

    def program_scene(self) -> str:
        req = self.client()
        try:
            return req.get_current_program_scene().current_program_scene_name
        finally:
            req.disconnect()

    def set_program_scene(self, name: str) -> None:
        req = self.client()
        try:
            req.set_current_program_scene(name)
        finally:
            req.disconnect()

    def ensure_running(self) -> None:
        if not self.obs.alive:
            self.start_seconds.append(self.obs.start())


@pytest.fixture(scope="session")
def obs_session(tmp_path_factory):
    require("obs", "OBS Studio with obs-websocket (apt-get install obs-studio)")
    require("Xvfb", "virtual X display for OBS")
    base = tmp_path_factory.mktemp("obs")
    runtime = base / "runtime"
    runtime.mkdir(mode=0o700)
    password = secrets.token_urlsafe(12)
    port = free_port()
    write_obs_config(base / "home", password, port, scenes=SCENES, current="Talking",
                     scripts=[(SCRIPT, {"method": "auto",
                                        "expressions": "neutral, smile, laugh, sad, wink",
                                        HOTKEY_SAD: [{"key": "OBS_KEY_F9", "control": True,
                                                      "shift": True}]})])
    xvfb = Xvfb.start(base)
    obs = Obs(base / "home", xvfb.display, port, base,
              env={"AVATAR_VCAM_RUNTIME_DIR": str(runtime)})
    inst = ObsInstance(obs, xvfb, port, password, runtime, [])
    try:
        inst.start_seconds.append(obs.start())
        yield inst
    finally:
        obs.stop()
        xvfb.stop()
        print(f"\n[obs timing] OBS launch -> websocket port open, per start: "
              f"{', '.join(f'{t:.2f} s' for t in inst.start_seconds)}")


@pytest.fixture
def obs(obs_session):
    """The running OBS, program scene reset to Talking."""
    obs_session.ensure_running()
    obs_session.obs.kill(signal.SIGCONT)
    deadline = time.monotonic() + 10
    while True:
        try:
            obs_session.set_program_scene("Talking")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    for f in obs_session.runtime_dir.glob("*"):
        f.unlink()
    return obs_session


@pytest.fixture(scope="session")
def engine():
    """One Engine("leo") for the session (a RecordingEngine until the engine builds)."""
    e, _kind = make_engine()
    return e


@pytest.fixture
def target(engine):
    t, _kind = make_target(engine)
    return t
