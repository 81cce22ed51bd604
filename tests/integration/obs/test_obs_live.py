"""End to end against a real OBS 29 + obs-websocket 5.1 (see conftest.py)."""

from __future__ import annotations

import signal
import threading
import time

import pytest
from click.testing import CliRunner
from daemon_target import wait_until

from vcam.cli.control import register
from vcam.control.api import ControlServer
from vcam.control.obs import ObsController

pytestmark = pytest.mark.integration


def controller(obs, target, **kw) -> ObsController:
    c = ObsController(obs.url, obs.password, target, **kw)
    target.obs = c
    c.start()
    wait_until(lambda: c.connected, 10, f"connect to OBS ({c.status()['error']})")
    return c


def report(capsys, line: str) -> None:
    with capsys.disabled():
        print(f"\n[obs timing] {line}")


def test_program_scene_sets_and_restores_expression(obs, target, capsys):
    target.set_expression("smile")
    c = controller(obs, target, scene_expressions={"BRB": "sad"})
    try:
        t0 = time.monotonic()
        obs.set_program_scene("BRB")
        target.wait_expression("sad")
        report(capsys, f"OBS scene change -> expression: {(time.monotonic() - t0) * 1e3:.0f} ms")
        assert c.status()["scene"] == "BRB"
        obs.set_program_scene("Idle")
        target.wait_expression("smile")  # leaving the mapped scene restores
        assert [n for _, n in target.history] == ["smile", "sad", "smile"]
    finally:
        c.close()


def test_connect_while_in_mapped_scene_applies_it(obs, target):
    obs.set_program_scene("BRB")
    c = controller(obs, target, scene_expressions={"BRB": "wink"})
    try:
        target.wait_expression("wink")
    finally:
        c.close()


def test_hotkey_reaches_daemon_over_control_api(obs, target, capsys):
    """No OBS controller here: the only route into the daemon is the HTTP control API."""
    with ControlServer(target, runtime_dir=obs.runtime_dir):
        req = obs.client()
        try:
            t0 = time.monotonic()
            req.trigger_hotkey_by_name("avatar_vcam.expr.wink")
            target.wait_expression("wink")
            report(capsys, f"hotkey -> control API -> expression: "
                           f"{(time.monotonic() - t0) * 1e3:.0f} ms")
            req.trigger_hotkey_by_name("avatar_vcam.expr.neutral")
            target.wait_expression("neutral")
        finally:
            req.disconnect()


def test_hotkey_falls_back_to_custom_event(obs, target):
    """No control API running: the script broadcasts a CustomEvent the controller gets."""
    assert not (obs.runtime_dir / "control.json").exists()
    c = controller(obs, target)
    req = obs.client()
    try:
        req.trigger_hotkey_by_name("avatar_vcam.expr.laugh")
        target.wait_expression("laugh")
    finally:
        req.disconnect()
        c.close()


def test_custom_event_from_any_client_and_unknown_name(obs, target):
    c = controller(obs, target)
    req = obs.client()
    try:
        req.broadcast_custom_event({"eventData": {"avatar-vcam": {"expression": "surprised"}}})
        target.wait_expression("surprised")
        req.broadcast_custom_event({"eventData": {"avatar-vcam": {"expression": "nope"}}})
        wait_until(lambda: c.last_event_error, 3, "unknown expression reported")
        assert "unknown expression 'nope'" in c.last_event_error
        req.broadcast_custom_event({"eventData": {"other-tool": {"expression": "sad"}}})
        time.sleep(0.3)
        assert target.engine.expression == "surprised" and c.connected
    finally:
        req.disconnect()
        c.close()


def test_speaking_switches_program_scene(obs, target, capsys):
    obs.set_program_scene("Idle")
    c = controller(obs, target, talking_scene="Talking", idle_scene="Idle", hold_s=0.5)
    try:
        t0 = time.monotonic()
        c.on_speaking(True, 10.0)
        wait_until(lambda: obs.program_scene() == "Talking", 3, "switch to Talking")
        report(capsys, f"speaking -> OBS Talking scene: {(time.monotonic() - t0) * 1e3:.0f} ms")
        c.on_speaking(False, 10.2)  # within the hold time
        time.sleep(0.4)
        assert obs.program_scene() == "Talking"
        c.on_speaking(False, 10.6)
        wait_until(lambda: obs.program_scene() == "Idle", 3, "back to Idle after the hold")
        # the streamer's own scene is left alone
        obs.set_program_scene("BRB")
        wait_until(lambda: c.status()["scene"] == "BRB", 3, "controller sees BRB")
        c.on_speaking(True, 11.0)
        time.sleep(0.5)
        assert obs.program_scene() == "BRB"
    finally:
        c.close()


def test_obs_killed_and_restarted(obs, target, capsys):
    c = controller(obs, target, scene_expressions={"BRB": "sad"})
    errors: list[BaseException] = []
    stop = threading.Event()

    def render_loop() -> None:  # what the run loop does each frame while OBS is gone
        pts = 0.0
        while not stop.is_set():
            try:
                c.on_speaking(int(pts) % 2 == 0, pts)
                target.status()
            except BaseException as e:  # noqa: BLE001 - any failure fails the test
                errors.append(e)
            pts += 0.04
            time.sleep(0.04)

    loop = threading.Thread(target=render_loop, daemon=True)
    loop.start()
    try:
        obs.obs.kill(signal.SIGKILL)
        t_kill = time.monotonic()
        detect = wait_until(lambda: not c.connected, 5, "notice OBS died")
        st = c.status()
        assert st["state"] == "disconnected" and st["error"] and "\n" not in st["error"]
        assert target.status()["obs"]["connected"] is False
        time.sleep(1.5)  # OBS stays away a while: the controller keeps retrying
        t_restart = time.monotonic()
        start_s = obs.obs.start()
        t_port = time.monotonic()
        wait_until(lambda: c.connected, 10, "reconnect")
        reconnect = time.monotonic() - t_port
        report(capsys, f"SIGKILL noticed in {detect:.2f} s; OBS restart (port open) "
                       f"{start_s:.2f} s; reconnect after port open {reconnect:.2f} s; "
                       f"total outage {time.monotonic() - t_kill:.2f} s "
                       f"(restart began {t_restart - t_kill:.2f} s after kill)")
        assert reconnect < 3.0
        assert c.status()["connects"] >= 2
        obs.set_program_scene("BRB")
        target.wait_expression("sad")
    finally:
        stop.set()
        loop.join(2)
        c.close()
    assert not errors, errors


def test_frozen_obs_is_detected_and_recovered(obs, target, capsys):
    c = controller(obs, target, timeout=1.0, keepalive_s=0.5)
    try:
        obs.obs.kill(signal.SIGSTOP)
        detect = wait_until(lambda: not c.connected, 6, "notice frozen OBS")
        assert "did not answer within 1 s" in c.status()["error"]
        obs.obs.kill(signal.SIGCONT)
        back = wait_until(lambda: c.connected, 8, "reconnect after SIGCONT")
        report(capsys, f"frozen OBS noticed in {detect:.2f} s, reconnected {back:.2f} s "
                       f"after SIGCONT")
    finally:
        obs.obs.kill(signal.SIGCONT)
        c.close()


def test_wrong_password_is_one_line(obs, target, capfd):
    c = ObsController(obs.url, "wrong-" + obs.password, target).start()
    try:
        wait_until(lambda: c.status()["error"], 5, "error reported")
        err = c.status()["error"]
        assert "refused the password" in err and "\n" not in err
        assert not c.connected
    finally:
        c.close()
    out = capfd.readouterr()
    assert "Traceback" not in out.err + out.out


def test_obs_absent_is_one_line(target, capfd):
    from obs_launcher import free_port

    c = ObsController(f"ws://127.0.0.1:{free_port()}", "pw", target).start()
    try:
        wait_until(lambda: c.status()["error"], 5, "error reported")
        err = c.status()["error"]
        assert "connection refused" in err and "\n" not in err
    finally:
        c.close()
    out = capfd.readouterr()
    assert "Traceback" not in out.err + out.out


def test_cli_scene_and_status_through_daemon(obs, target, monkeypatch):
    import click

    monkeypatch.setenv("AVATAR_VCAM_RUNTIME_DIR", str(obs.runtime_dir))
    c = controller(obs, target)

    @click.group()
    def cli() -> None:
        pass

    register(cli)
    try:
        with ControlServer(target, runtime_dir=obs.runtime_dir):
            runner = CliRunner()
            r = runner.invoke(cli, ["scene", "Idle"])
            assert r.exit_code == 0, r.output
            wait_until(lambda: obs.program_scene() == "Idle", 3, "CLI scene switch")
            r = runner.invoke(cli, ["scene", "NoSuchScene"])
            assert r.exit_code == 1
            lines = r.output.strip().splitlines()
            assert lines == ["Error: OBS has no scene 'NoSuchScene'; scenes: Talking, Idle, BRB"]
            r = runner.invoke(cli, ["status"])
            assert r.exit_code == 0 and "obs: connected" in r.output and "'Idle'" in r.output
            r = runner.invoke(cli, ["expr", "smile"])
            assert r.exit_code == 0
            assert target.engine.expression == "smile"
    finally:
        c.close()


def test_obs_quits_cleanly_and_comes_back(obs, target):
    """SIGINT: OBS sends ExitStarted and shuts down; the controller waits for it."""
    c = controller(obs, target)
    try:
        obs.obs.stop()
        wait_until(lambda: not c.connected, 5, "notice OBS quit")
        assert c.status()["error"]
        obs.ensure_running()
        wait_until(lambda: c.connected, 5, "reconnect after OBS restart")
    finally:
        c.close()


def test_real_key_press_through_x(obs, target, capsys):
    """xdotool presses Ctrl+Shift+F9 on OBS's X display; the saved binding fires."""
    import os
    import subprocess

    from daemon_target import require

    xdotool = require("xdotool", "presses a real key on the Xvfb display")
    with ControlServer(target, runtime_dir=obs.runtime_dir):
        env = {**os.environ, "DISPLAY": obs.xvfb.display}
        t0 = time.monotonic()
        subprocess.run([xdotool, "key", "ctrl+shift+F9"], env=env, check=True, timeout=10)
        target.wait_expression("sad")
        report(capsys, f"X key press -> expression: {(time.monotonic() - t0) * 1e3:.0f} ms")
