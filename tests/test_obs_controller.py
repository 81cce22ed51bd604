"""OBS controller logic without OBS: speaking -> scene, scene -> expression, errors."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import pytest

from vcam.control.obs import (
    ObsController,
    ObsError,
    SceneExpressions,
    SpeakingSwitch,
    describe,
    quiet_obsws_logger,
)

sys.path.insert(0, str(Path(__file__).parent / "support" / "obs"))
from daemon_target import RecordingEngine, RecordingTarget, wait_until  # noqa: E402


def test_speaking_switch_hold_time():
    s = SpeakingSwitch("Talking", "Idle", hold_s=1.0)
    assert s.update(False, 0.0) and s.wanted == "Idle"  # silent at start: idle
    assert not s.update(False, 0.04)
    assert s.update(True, 0.08) and s.wanted == "Talking"
    assert not s.update(True, 0.12)
    assert not s.update(False, 0.5)  # within hold
    assert not s.update(True, 0.9)  # speaking again resets the hold
    assert not s.update(False, 1.8)
    assert s.update(False, 1.95) and s.wanted == "Idle"
    assert s.seq == 3


def test_speaking_switch_clock_restart_and_single_scene():
    s = SpeakingSwitch("Talking", None, hold_s=0.5)
    assert s.update(True, 100.0)
    assert not s.update(False, 0.0)  # the clock restarted: no idle jump
    assert not s.update(False, 0.4)
    assert not s.update(False, 0.6)  # no idle scene configured: nothing wanted
    assert s.wanted == "Talking" and s.state == "idle"
    assert s.update(True, 0.7)


def test_scene_expressions_enter_leave_restore():
    engine = RecordingEngine()
    m = SceneExpressions({"BRB": "sad", "Soon": "smile"}, engine.set_expression,
                         lambda: engine.expression)
    engine.set_expression("wink")
    m.scene_changed("BRB")
    assert engine.expression == "sad"
    m.scene_changed("Soon")  # mapped -> mapped keeps the original to restore
    assert engine.expression == "smile"
    m.scene_changed("Talking")
    assert engine.expression == "wink"
    m.scene_changed("BRB")
    engine.set_expression("laugh")  # changed by hand while in BRB: kept on leave
    m.scene_changed("Idle")
    assert engine.expression == "laugh"


def test_unknown_expression_in_mapping_is_refused():
    t = RecordingTarget(RecordingEngine())
    with pytest.raises(ObsError, match="unknown expression 'away'"):
        ObsController("ws://127.0.0.1:1", "", t, scene_expressions={"BRB": "away"})


def test_describe_is_one_line():
    from obsws_python.error import OBSSDKError, OBSSDKRequestError, OBSSDKTimeoutError
    from websocket import WebSocketAddressException, WebSocketConnectionClosedException

    url = "ws://127.0.0.1:4455"
    cases = {
        ConnectionRefusedError(111, "Connection refused"): "connection refused",
        OBSSDKError("failed to identify client with the server, please check connection "
                    "settings"): "refused the password",
        OBSSDKError("authentication enabled but no password provided"): "--obs-password-env",
        OBSSDKTimeoutError("Timeout while trying to send the request"): "within 2 s",
        OBSSDKRequestError("SetCurrentProgramScene", 600, "No source was found"):
            "No source was found",
        WebSocketConnectionClosedException("x"): "lost the connection",
        OSError(113, "No route to host"): "No route to host",
        WebSocketAddressException("[Errno -2] Name or service not known"):
            "cannot resolve the host name",
    }
    for exc, part in cases.items():
        text = describe(exc, url, 2.0)
        assert part in text and "\n" not in text, text


def test_obsws_logger_prints_no_traceback(capfd):
    quiet_obsws_logger()
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("obsws_python.reqs.ReqClient").exception("request failed")
    out = capfd.readouterr()
    assert "Traceback" not in out.err and "boom" not in out.err


def test_verbose_logs_never_show_the_obs_password(caplog):
    """obsws logs its connect parameters, password included; -v must not print it, nor
    the reconnect attempts once a second while OBS is away."""
    from obsws_python import ReqClient

    quiet_obsws_logger()
    with caplog.at_level(logging.DEBUG):  # as -v sets it
        for secret in ("s3cret", "it's a 'quoted' pass word"):
            with pytest.raises(ConnectionRefusedError):  # nothing listens on port 9
                ReqClient(host="127.0.0.1", port=9, password=secret, timeout=0.5)
            # what -v prints: ours (obsws' own records stop at its logger, which pytest's
            # capture taps too, so they are left out here)
            text = "\n".join(r.getMessage() for r in caplog.records
                             if r.name.startswith("vcam."))
            assert "Connecting with parameters" in text  # the line is still there
            assert secret not in text and "password=***" in text
    assert logging.getLogger("obsws_python").propagate is False


def test_absent_obs_status_and_set_scene(capfd):
    t = RecordingTarget(RecordingEngine())
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    msgs: list[str] = []
    c = ObsController(f"ws://127.0.0.1:{port}", "pw", t, notify=msgs.append).start()
    t.obs = c
    try:
        wait_until(lambda: c.status()["error"], 3, "error reported")
        assert c.status()["state"] == "disconnected" and not c.connected
        with pytest.raises(ObsError, match="not connected to OBS: OBS is not reachable"):
            c.set_scene("BRB")
        c.on_speaking(True, 0.0)  # never blocks or raises while OBS is away
        assert t.status()["obs"]["connected"] is False
        time.sleep(1.5)  # several retries
    finally:
        c.close()
    assert len(msgs) == 1, msgs  # the same error is said once, not per retry
    assert "Traceback" not in capfd.readouterr().err
