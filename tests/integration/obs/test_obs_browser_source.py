"""Real OBS, real daemon: the script's "Add the avatar to this scene" (issue 22).

The script's button and its hotkey ``avatar_vcam.add_browser_source`` run the same
function; the test triggers the hotkey over obs-websocket (a script's properties button
cannot be pressed from outside OBS). With no daemon the script log says so in one line;
with ``avatar-vcam --sink obs`` running, the current scene gets a ``browser_source`` named
avatar-vcam whose URL is ``avatar-vcam obs-url``'s and whose size is the daemon's frame.

Debian's OBS has no obs-browser plugin (it needs CEF): there the source is created with
its settings (OBS keeps sources of missing plugins) and the script log says the plugin is
missing; the page itself is tested in a real browser (tests/integration/live).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemon_target import wait_until
from obs_launcher import free_port

pytestmark = pytest.mark.integration
EXE = str(Path(sys.executable).parent / "avatar-vcam")
HOTKEY = "avatar_vcam.add_browser_source"
NAME = "avatar-vcam"
SIZE = 192


def obs_log(obs) -> str:
    """OBS's output so far (the script log goes there as '[avatar_vcam.py] ...')."""
    o = obs.obs
    text = o.log_path.read_text(errors="replace") if o.log_path.exists() else ""
    logs = o.home / ".config" / "obs-studio" / "logs"
    for f in sorted(logs.glob("*.txt")) if logs.is_dir() else []:
        text += f.read_text(errors="replace")
    return text


def script_line(obs, needle: str, after: int, timeout: float = 10) -> str:
    """The first new script-log line containing ``needle``."""
    found: list[str] = []

    def seen() -> bool:
        lines = [ln for ln in obs_log(obs).splitlines() if "avatar-vcam:" in ln]
        found[:] = [ln for ln in lines[after:] if needle in ln]
        return bool(found)

    wait_until(seen, timeout, f"script log line with {needle!r}\n{obs.obs.log_tail()}", 0.1)
    return found[0]


def script_lines(obs) -> int:
    return sum("avatar-vcam:" in ln for ln in obs_log(obs).splitlines())


def scene_items(obs, scene: str) -> list[str]:
    req = obs.client()
    try:
        return [i["sourceName"] for i in req.get_scene_item_list(scene).scene_items]
    finally:
        req.disconnect()


def remove_source(obs) -> None:
    req = obs.client()
    try:
        if NAME in [i["inputName"] for i in req.get_input_list().inputs]:
            req.remove_input(NAME)
    finally:
        req.disconnect()


def test_add_source_without_daemon_says_so(obs) -> None:
    remove_source(obs)
    n = script_lines(obs)
    req = obs.client()
    try:
        req.trigger_hotkey_by_name(HOTKEY)
    finally:
        req.disconnect()
    line = script_line(obs, "cannot add the browser source", n)
    print(f"\n[obs browser source] {line.strip()}")
    assert "daemon is not running" in line and "--sink obs" in line
    assert NAME not in scene_items(obs, "Talking")


def test_add_source_creates_browser_source_in_current_scene(obs, tmp_path) -> None:
    remove_source(obs)
    obs.set_program_scene("Idle")
    env = {**__import__("os").environ, "AVATAR_VCAM_RUNTIME_DIR": str(obs.runtime_dir),
           "AVATAR_VCAM_CONFIG": str(tmp_path / "none.toml")}
    (tmp_path / "none.toml").write_text("")
    daemon = subprocess.Popen(
        [EXE, "--source", "idle", "--sink", "obs", "--size", str(SIZE), "--a2m", "dsp",
         "--control-port", str(free_port())], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (obs.runtime_dir / "control.json").exists(), 60,
                   "daemon control API up")
        url = subprocess.run([EXE, "obs-url"], env=env, capture_output=True, text=True,
                             timeout=20, check=True).stdout.strip()
        n = script_lines(obs)
        t0 = time.monotonic()
        req = obs.client()
        try:
            req.trigger_hotkey_by_name(HOTKEY)
            wait_until(lambda: NAME in scene_items(obs, "Idle"), 10, "source in scene Idle")
            took = time.monotonic() - t0
            kind = req.get_input_settings(NAME)
            settings, input_kind = kind.input_settings, kind.input_kind
            line = script_line(obs, "browser source 'avatar-vcam' created", n)
            # a second press updates the same source, no duplicate scene item
            m = script_lines(obs)
            req.trigger_hotkey_by_name(HOTKEY)
            again = script_line(obs, "browser source 'avatar-vcam' updated", m)
        finally:
            req.disconnect()
        log = obs_log(obs)
    finally:
        daemon.send_signal(2)
        _, err = daemon.communicate(timeout=30)
        remove_source(obs)
    print(f"\n[obs browser source] hotkey -> source in scene {1000 * took:.0f} ms; "
          f"{line.strip()}")
    assert daemon.returncode == 0, err
    assert input_kind == "browser_source"
    assert settings["url"] == url and url.startswith("http://127.0.0.1:")
    assert settings["width"] == SIZE and settings["height"] == SIZE
    assert settings["reroute_audio"] is False
    assert "added to scene 'Idle'" in line
    assert "already in scene 'Idle'" in again
    if "has no Browser Source plugin" in log:  # Debian's OBS: no obs-browser (CEF)
        print("[obs browser source] this OBS lacks obs-browser: the source keeps its "
              "settings, the script log says so")
    assert scene_items(obs, "Idle").count(NAME) == 1
    assert NAME not in scene_items(obs, "Talking")
