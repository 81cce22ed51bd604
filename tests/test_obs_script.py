"""obs_scripts/avatar_vcam.py outside OBS: its HTTP route against the real control API."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from vcam.control.api import ControlServer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support" / "obs"))
from daemon_target import RecordingEngine, RecordingTarget  # noqa: E402


@pytest.fixture
def script(monkeypatch):
    spec = importlib.util.spec_from_file_location("avatar_vcam_obs_script",
                                                  ROOT / "obs_scripts" / "avatar_vcam.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.obs is None  # not inside OBS
    return mod


def test_parse_expressions(script):
    assert script.parse_expressions(" smile, sad,,smile\nwink ") == ["smile", "sad", "wink"]
    assert "neutral" in script.parse_expressions(script.DEFAULT_EXPRESSIONS)


def test_control_file_candidates(script, monkeypatch, tmp_path):
    monkeypatch.setenv("AVATAR_VCAM_RUNTIME_DIR", str(tmp_path))
    assert script.control_file_candidates() == [tmp_path / "control.json"]
    monkeypatch.delenv("AVATAR_VCAM_RUNTIME_DIR")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "xdg"))
    assert script.control_file_candidates()[0] == tmp_path / "xdg" / "avatar-vcam" / \
        "control.json"


@pytest.mark.filterwarnings("ignore:XDG_RUNTIME_DIR is not set")
@pytest.mark.parametrize("xdg", [True, False])
@pytest.mark.parametrize("system", ["linux", "win32", "darwin"])
def test_control_file_candidates_match_the_daemons_folder(script, monkeypatch, tmp_path,
                                                          system, xdg):
    """The script finds control.json where the daemon writes it (platformdirs' runtime
    folder) on each system; platformdirs' own class for that system is the reference."""
    import platformdirs.macos
    import platformdirs.unix
    import platformdirs.windows

    monkeypatch.delenv("AVATAR_VCAM_RUNTIME_DIR", raising=False)
    if not xdg:
        monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "Local"))
    monkeypatch.setattr(platformdirs.windows, "get_win_folder",
                        lambda name: str(tmp_path / "Local"))
    monkeypatch.setattr(script.sys, "platform", system)
    cls = {"linux": platformdirs.unix.Unix, "win32": platformdirs.windows.Windows,
           "darwin": platformdirs.macos.MacOS}[system]
    daemon = Path(cls("avatar-vcam").user_runtime_dir) / "control.json"
    assert daemon in script.control_file_candidates()


def test_http_route_uses_no_proxy_and_stays_on_this_machine(script, monkeypatch, tmp_path):
    """urllib would send the bearer token to $http_proxy; the script goes direct, and
    refuses a daemon address on another machine."""
    monkeypatch.setenv("AVATAR_VCAM_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    target = RecordingTarget(RecordingEngine())
    script._config.update(method="http", daemon_url="", control_file="")
    with ControlServer(target):
        assert script.deliver("smile") == "http"
    assert target.engine.expression == "smile"
    with pytest.raises(ValueError, match="not on this machine"):
        script.read_control("", "http://192.0.2.7:8000")


def test_default_expressions_match_engine_presets(script):
    try:
        from engine.expressions import PRESETS
    except ImportError as e:
        pytest.skip(f"engine not importable yet: {e}")
    assert set(script.parse_expressions(script.DEFAULT_EXPRESSIONS)) == set(PRESETS)


def test_http_route_reaches_control_api(script, monkeypatch, tmp_path):
    monkeypatch.setenv("AVATAR_VCAM_RUNTIME_DIR", str(tmp_path))
    target = RecordingTarget(RecordingEngine())
    script._config.update(method="http", daemon_url="", control_file="")
    with ControlServer(target):
        assert script.deliver("smile") == "http"
        assert target.engine.expression == "smile"
        assert script.http_request("GET", "/v1/expressions")["expression"] == "smile"
        assert script.deliver("grin") is None  # unknown: refused by the daemon, said once
    assert script.deliver("sad") is None  # daemon gone
    assert target.engine.expression == "smile"


def test_auto_falls_back_and_reports_both(script, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("AVATAR_VCAM_RUNTIME_DIR", str(tmp_path))
    script._config.update(method="auto")
    assert script.deliver("smile") is None  # no daemon, and no OBS around this process
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("avatar-vcam: smile not delivered: http:") and "websocket:" in line


def test_wrong_token_in_file_is_refused(script, monkeypatch, tmp_path):
    monkeypatch.setenv("AVATAR_VCAM_RUNTIME_DIR", str(tmp_path))
    target = RecordingTarget(RecordingEngine())
    script._config.update(method="http")
    with ControlServer(target) as server:
        info = json.loads(server.path.read_text())
        info["token"] = "forged"
        server.path.write_text(json.dumps(info))
        assert script.deliver("smile") is None
    assert target.engine.expression == "neutral"
