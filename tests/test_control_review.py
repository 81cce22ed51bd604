"""Control API review fixes: unusable runtime folders, early replies on keep-alive
connections, deeply nested bodies, a stale port answered by another service, the
second-daemon check before any device opens, and rich markup in user-provided names."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from vcam.control.api import ControlClient, ControlError, ControlServer

sys.path.insert(0, str(Path(__file__).parent / "support" / "obs"))
from daemon_target import RecordingEngine, RecordingTarget, client_cli  # noqa: E402


@pytest.fixture
def target():
    return RecordingTarget(RecordingEngine())


@pytest.fixture
def server(tmp_path, monkeypatch, target):
    monkeypatch.setenv("AVATAR_VCAM_RUNTIME_DIR", str(tmp_path / "run"))
    s = ControlServer(target).start()
    yield s
    s.close()


def _one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


# 1. runtime folder --------------------------------------------------------------------


@pytest.fixture
def file_parent(tmp_path) -> Path:
    f = tmp_path / "plain-file"
    f.write_text("not a folder")
    return f


def test_runtime_dir_under_a_regular_file_daemon(file_parent, monkeypatch, target):
    monkeypatch.setenv("AVATAR_VCAM_RUNTIME_DIR", str(file_parent / "run"))
    with pytest.raises(ControlError) as e:
        ControlServer(target).start()
    msg = str(e.value)
    assert "\n" not in msg and "AVATAR_VCAM_RUNTIME_DIR" in msg and "--no-control" in msg


def test_runtime_dir_under_a_regular_file_client(file_parent, monkeypatch):
    monkeypatch.setenv("AVATAR_VCAM_RUNTIME_DIR", str(file_parent / "run"))
    line = _one_error_line(CliRunner().invoke(client_cli(), ["status"]))
    assert "not a folder" in line and "AVATAR_VCAM_RUNTIME_DIR" in line


@pytest.fixture
def platformdirs_refuses(monkeypatch):
    """platformdirs raises PermissionError, as its user_runtime_path documents for a
    /tmp/runtime-<uid> fallback that another user owns (or that is not a folder). Its own
    checks that lead there differ between releases (4.14.8 changed them), so the test
    stands on that documented contract, not on the internals."""
    import platformdirs

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/tmp/runtime-0")

    monkeypatch.delenv("AVATAR_VCAM_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(platformdirs, "user_runtime_path", refuse)


def test_platformdirs_permission_error_daemon(platformdirs_refuses, target):
    s = ControlServer(target)
    with pytest.raises(ControlError) as e:
        s.start()
    msg = str(e.value)
    assert "\n" not in msg and "XDG_RUNTIME_DIR" in msg and "AVATAR_VCAM_RUNTIME_DIR" in msg
    s.close()  # nothing was started; closing must not raise either


def test_platformdirs_permission_error_client(platformdirs_refuses):
    line = _one_error_line(CliRunner().invoke(client_cli(), ["status"]))
    assert "XDG_RUNTIME_DIR" in line and "AVATAR_VCAM_RUNTIME_DIR" in line


# 2. protocol --------------------------------------------------------------------------


def _send_raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.sendall(data)
        s.settimeout(3)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:
            pass
        return out


def _authorized_smile(token: str) -> bytes:
    """A valid, authorized request: as the body of a refused one, it must never be served."""
    return (f"POST /v1/expression HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: 17\r\n\r\n"
            '{"name": "smile"}').encode()


@pytest.mark.parametrize("auth", ["", "Authorization: Bearer wrong\r\n"])
def test_early_reply_does_not_run_the_body_as_a_request(server, target, auth):
    # the body of a refused POST is itself a valid request: it must never be served
    smuggled = _authorized_smile(server.token)
    req = (f"POST /v1/expression HTTP/1.1\r\nHost: x\r\n{auth}"
           f"Content-Length: {len(smuggled)}\r\n\r\n").encode() + smuggled
    out = _send_raw(server.port, req)
    assert out.startswith((b"HTTP/1.1 401", b"HTTP/1.1 403"))
    assert out.count(b"HTTP/1.1 ") == 1
    assert target.engine.expression == "neutral" and target.history == []


def test_early_404_on_post_keeps_the_stream_in_step(server, target):
    smuggled = _authorized_smile(server.token)
    req = (f"GET /nope HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}\r\n"
           f"Content-Length: {len(smuggled)}\r\n\r\n").encode() + smuggled
    out = _send_raw(server.port, req)
    assert out.startswith(b"HTTP/1.1 404") and out.count(b"HTTP/1.1 ") == 1
    assert target.engine.expression == "neutral"


def test_keep_alive_still_works_after_a_full_request(server, target):
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    auth = {"Authorization": f"Bearer {server.token}"}
    for name in ("smile", "wink"):
        c.request("POST", "/v1/expression", body=json.dumps({"name": name}).encode(),
                  headers=auth)
        r = c.getresponse()
        assert r.status == 200 and json.loads(r.read())["expression"] == name
    c.close()


def test_deeply_nested_body_is_a_400(server, capfd):
    auth = {"Authorization": f"Bearer {server.token}"}
    body = b"[" * 20_000 + b"]" * 20_000
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    c.request("POST", "/v1/expression", body=body, headers=auth)
    r = c.getresponse()
    assert r.status == 400 and "nested" in json.loads(r.read())["error"]
    c.close()
    assert "Traceback" not in capfd.readouterr().err
    assert ControlClient(server.port, server.token).status()["expression"] == "neutral"


class _OtherService:
    """A loopback service that is not the daemon: replies `reply` to any connection."""

    def __init__(self, reply: bytes) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    conn.sendall(self.reply)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("reply", [b"SSH-2.0-OpenSSH_9.6\r\n", b"",
                                   b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                                   b"HTTP/1.1 404 Not Found\r\nContent-Length: 14\r\n\r\n"
                                   b"<html>\n</html>"])
def test_stale_port_used_by_another_service(reply, tmp_path, monkeypatch):
    other = _OtherService(reply)
    try:
        run = tmp_path / "run"
        run.mkdir()
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            (run / "control.json").write_text(json.dumps(
                {"port": other.port, "token": "t", "pid": sleeper.pid}))
            monkeypatch.setenv("AVATAR_VCAM_RUNTIME_DIR", str(run))
            line = _one_error_line(CliRunner().invoke(client_cli(), ["status"]))
            assert f"no avatar-vcam daemon answers on 127.0.0.1:{other.port}" in line
        finally:
            sleeper.kill()
            sleeper.wait()
    finally:
        other.close()


# 3. second daemon refused before any device opens -------------------------------------


class _Built(Exception):
    """Raised by the stub Engine: run_main got as far as loading the engine."""


@pytest.fixture
def other_daemon(tmp_path, monkeypatch):
    """control.json of another live daemon (a live pid, a listening loopback port)."""
    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setenv("AVATAR_VCAM_RUNTIME_DIR", str(run))
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        (run / "control.json").write_text(json.dumps(
            {"port": busy.getsockname()[1], "token": "t", "pid": sleeper.pid}))
        yield
    sleeper.kill()
    sleeper.wait()


@pytest.fixture
def stub_run(monkeypatch):
    """Engine, sources and sinks of run.py that record being used instead of opening."""
    from vcam import run

    opened: list[str] = []

    def engine(*a, **k):
        opened.append("engine")
        raise _Built

    def opener(kind):
        def fn(*a, **k):
            opened.append(kind)
            raise _Built
        return fn

    monkeypatch.setattr(run, "Engine", engine)
    monkeypatch.setattr(run, "parse_source", opener("source"))
    monkeypatch.setattr(run, "parse_sink", opener("sink"))
    return opened


def test_second_daemon_refused_before_the_engine_or_a_device(other_daemon, stub_run):
    from rich.console import Console

    from engine.config import EngineConfig
    from vcam.run import RunOptions, run_main

    with pytest.raises(ControlError, match="another avatar-vcam daemon is running"):
        run_main(EngineConfig(), RunOptions(sinks=["vcam"], control=True), Console())
    assert stub_run == []


def test_no_control_skips_the_second_daemon_check(other_daemon, stub_run):
    from rich.console import Console

    from engine.config import EngineConfig
    from vcam.run import RunOptions, run_main

    with pytest.raises(_Built):
        run_main(EngineConfig(), RunOptions(sinks=["vcam"], control=False), Console())
    assert stub_run == ["engine"]


def test_unusable_runtime_dir_stops_the_daemon_first(file_parent, monkeypatch, stub_run):
    from rich.console import Console

    from engine.config import EngineConfig
    from vcam.run import RunOptions, run_main

    monkeypatch.setenv("AVATAR_VCAM_RUNTIME_DIR", str(file_parent / "run"))
    with pytest.raises(ControlError, match="AVATAR_VCAM_RUNTIME_DIR") as e:
        run_main(EngineConfig(), RunOptions(sinks=["vcam"], control=True), Console())
    assert "--no-control" in str(e.value) and "\n" not in str(e.value)
    assert stub_run == []


# 4. rich markup in user-provided names ------------------------------------------------

MARKUP = "Ana [/bold] [red]x[/"


def _console():
    import io

    from rich.console import Console

    buf = io.StringIO()
    return Console(file=buf, width=300, color_system=None), buf


def test_banner_escapes_names():
    from types import SimpleNamespace as NS

    from engine.config import EngineConfig
    from vcam.run import _banner

    engine = NS(avatar=NS(display_name=MARKUP), renderer=NS(name="warp", device="cpu"), seed=7)
    voice = NS(endpoint=NS(label="Speakers [/x]"))
    console, buf = _console()
    console.print(_banner(engine, NS(name="file:a[/b].wav"), ["file:o[/p].mp4", "vcam"],
                          voice, 0.2, EngineConfig()), soft_wrap=True)
    out = buf.getvalue()
    assert MARKUP in out and "file:a[/b].wav" in out and "file:o[/p].mp4, vcam" in out
    assert "Speakers [/x]" in out and "seed 7" in out


def test_obs_notify_escapes_scene_names():
    from vcam.run import _obs_notify

    console, buf = _console()
    _obs_notify(console)(f"scene {MARKUP!r} is not in OBS")
    assert f"OBS: scene {MARKUP!r} is not in OBS" in buf.getvalue()


def test_avatar_preview_prints_a_path_with_markup(tmp_path):
    from vcam.cli.main import cli

    (tmp_path / "a[").mkdir()
    out = tmp_path / "a[" / "x]sheet.png"  # the path text reads 'a[/x]sheet.png'
    res = CliRunner().invoke(cli, ["avatar", "preview", "leo", "--out", str(out),
                                   "--no-video", "--size", "64"])
    assert res.exit_code == 0, res.output
    assert out.exists() and str(out) in res.output
