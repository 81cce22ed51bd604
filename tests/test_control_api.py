"""Local control API: token file, auth, loopback only, the CLI commands over it."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from vcam.control.api import (
    NOT_RUNNING,
    ControlClient,
    ControlError,
    ControlServer,
    EngineTarget,
)
from vcam.errors import DeviceError

sys.path.insert(0, str(Path(__file__).parent / "support" / "obs"))
from daemon_target import RecordingEngine, RecordingTarget, client_cli  # noqa: E402


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    d = tmp_path / "run"
    monkeypatch.setenv("AVATAR_VCAM_RUNTIME_DIR", str(d))
    return d


@pytest.fixture
def target():
    return RecordingTarget(RecordingEngine())


@pytest.fixture
def server(runtime, target):
    s = ControlServer(target).start()
    yield s
    s.close()


def raw(port: int, method: str, path: str, headers: dict | None = None,
        body: bytes | None = None) -> tuple[int, dict]:
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = json.loads(r.read() or b"{}")
    c.close()
    return r.status, data


def test_runtime_file_is_private_and_removed_on_close(runtime, target):
    s = ControlServer(target).start()
    path = runtime / "control.json"
    info = json.loads(path.read_text())
    assert info["port"] == s.port and info["pid"] == os.getpid()
    assert info["token"] == s.token and len(s.token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o700
    s.close()
    assert not path.exists()


def test_tokens_are_random(runtime, target, tmp_path):
    a = ControlServer(target, runtime_dir=tmp_path / "a").start()
    b = ControlServer(target, runtime_dir=tmp_path / "b").start()
    try:
        assert a.token != b.token
    finally:
        a.close()
        b.close()


def test_refuses_missing_and_wrong_token(server, target):
    status, body = raw(server.port, "GET", "/v1/status")
    assert status == 401 and "missing token" in body["error"]
    status, body = raw(server.port, "GET", "/v1/status", {"Authorization": "Bearer nope"})
    assert status == 403
    wrong = server.token[:-1] + ("A" if server.token[-1] != "A" else "B")
    status, _ = raw(server.port, "POST", "/v1/expression",
                    {"Authorization": f"Bearer {wrong}", "Content-Type": "application/json"},
                    json.dumps({"name": "smile"}).encode())
    assert status == 403
    assert target.engine.expression == "neutral" and target.history == []
    status, body = raw(server.port, "GET", "/v1/status",
                       {"Authorization": f"Bearer {server.token}"})
    assert status == 200 and body["expression"] == "neutral"


def test_client_with_wrong_token_gets_one_line(server):
    c = ControlClient(server.port, "x" * 43)
    with pytest.raises(ControlError, match="refused the token"):
        c.status()


def test_bound_to_loopback_only(server):
    assert server._server.server_address[0] == "127.0.0.1"
    others = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            others.add(s.getsockname()[0])
        except OSError:
            pass
    try:
        others |= {ai[4][0] for ai in socket.getaddrinfo(socket.gethostname(), None,
                                                         socket.AF_INET)}
    except OSError:
        pass
    others = {a for a in others if not a.startswith("127.")}
    if not others:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    for addr in others:
        with pytest.raises(OSError):
            socket.create_connection((addr, server.port), 1).close()


def test_non_loopback_host_is_refused(target, tmp_path):
    for host in ("0.0.0.0", "192.0.2.1", "example.org"):
        with pytest.raises(ControlError, match="loopback"):
            ControlServer(target, host=host, runtime_dir=tmp_path)


def test_client_round_trip(server, target):
    c = ControlClient.from_runtime_file()
    assert c.set_expression("smile") == {"ok": True, "expression": "smile"}
    assert target.engine.expression == "smile"
    info = c.expressions()
    assert info["expression"] == "smile" and "wink" in info["expressions"]
    st = c.status()
    assert st["pid"] == os.getpid() and st["obs"] is None and st["expression"] == "smile"
    with pytest.raises(ControlError, match="unknown expression 'grin'"):
        c.set_expression("grin")
    with pytest.raises(ControlError, match="OBS is not configured"):
        c.set_scene("BRB")
    assert target.engine.expression == "smile"


def test_bad_requests_are_400_404(server):
    auth = {"Authorization": f"Bearer {server.token}"}
    assert raw(server.port, "GET", "/nope", auth)[0] == 404
    assert raw(server.port, "POST", "/v1/expression", auth, b"not json")[0] == 400
    assert raw(server.port, "POST", "/v1/expression", auth, b'{"name": 3}')[0] == 400
    assert raw(server.port, "POST", "/v1/expression", auth, b"[1]")[0] == 400


def test_no_daemon_messages(runtime):
    with pytest.raises(ControlError) as e:
        ControlClient.from_runtime_file()
    assert str(e.value) == NOT_RUNNING
    assert isinstance(e.value, DeviceError)
    # a stale file from a dead daemon
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    runtime.mkdir(parents=True)
    (runtime / "control.json").write_text(json.dumps({"port": 1, "token": "t",
                                                      "pid": dead.pid}))
    with pytest.raises(ControlError) as e:
        ControlClient.from_runtime_file()
    assert str(e.value) == NOT_RUNNING


def test_daemon_gone_but_file_left(runtime, target):
    s = ControlServer(target).start()
    c = ControlClient.from_runtime_file()
    s._server.shutdown()
    s._server.server_close()  # simulate a crash: the port closes, the file stays
    with pytest.raises(ControlError) as e:
        c.status()
    assert str(e.value) == NOT_RUNNING


def test_second_daemon_is_refused(server, target):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        info = json.loads(server.path.read_text())
        info["pid"] = other.pid
        server.path.write_text(json.dumps(info))
        with pytest.raises(ControlError, match="another avatar-vcam daemon is running") as e:
            ControlServer(target).start()
        assert "--no-control" in str(e.value)  # a file render beside a live daemon needs it
    finally:
        other.kill()
        other.wait()


def test_a_control_port_in_use_names_the_fix(runtime, target):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(ControlError) as e:
            ControlServer(target, port=busy.getsockname()[1]).start()
    assert "--control-port" in str(e.value) and "\n" not in str(e.value)


def test_cli_commands(server, target):
    runner = CliRunner()
    r = runner.invoke(client_cli(), ["expr", "smile"])
    assert r.exit_code == 0 and r.output.strip() == "expression: smile"
    assert target.engine.expression == "smile"
    r = runner.invoke(client_cli(), ["expr", "list"])
    assert r.exit_code == 0
    assert "* smile" in r.output.splitlines() and "  wink" in r.output.splitlines()
    r = runner.invoke(client_cli(), ["expr"])
    assert r.output.strip() == "smile"
    r = runner.invoke(client_cli(), ["expr", "neutral"])
    assert r.exit_code == 0 and target.engine.expression == "neutral"
    r = runner.invoke(client_cli(), ["status", "--json"])
    st = json.loads(r.output)
    assert st["expression"] == "neutral" and st["pid"] == os.getpid()
    r = runner.invoke(client_cli(), ["status"])
    assert "expression: neutral" in r.output and "obs: not configured" in r.output
    r = runner.invoke(client_cli(), ["expr", "grin"])
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == [
        f"Error: unknown expression 'grin'; known: {', '.join(target.expressions())}"]
    r = runner.invoke(client_cli(), ["scene", "BRB"])
    assert r.exit_code == 1 and "OBS is not configured" in r.output


def test_cli_without_daemon_is_one_line(runtime):
    r = CliRunner().invoke(client_cli(), ["status"])
    assert r.exit_code == 1
    assert r.output.strip() == f"Error: {NOT_RUNNING}"


def test_engine_target_status_and_errors():
    t = EngineTarget(RecordingEngine(), extra_status=lambda: {"frames": 12})
    t.set_expression("sad")
    st = t.status()
    assert st["expression"] == "sad" and st["frames"] == 12 and st["obs"] is None
    with pytest.raises(KeyError):
        t.set_expression("nope")
    with pytest.raises(ControlError):
        t.set_scene("X")


def test_engine_target_over_real_engine(runtime):
    from daemon_target import make_engine

    engine, kind = make_engine()
    if kind != "engine":
        pytest.skip("Engine('leo') cannot be built yet")
    t = EngineTarget(engine)
    with ControlServer(t):
        c = ControlClient.from_runtime_file()
        c.set_expression("smile")
        assert engine.expression == "smile" and c.status()["avatar"] == "leo"
        with pytest.raises(ControlError, match="unknown expression"):
            c.set_expression("grin")


def test_status_reads_as_text_not_python():
    from vcam.cli.control import format_status

    text = format_status({"pid": 7, "avatar": "leo", "obs": None, "av_offset_ms": None,
                          "sinks": ["file:o.mp4", "vcam"]})
    assert "av_offset_ms: -" in text and "sinks: file:o.mp4, vcam" in text
    assert "None" not in text and "[" not in text
