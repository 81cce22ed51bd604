"""config.toml loading, validation and the merge with command-line flags."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from vcam.cli.control import daemon_options, resolve_settings
from vcam.control.settings import (
    KEYS,
    ConfigError,
    ObsSettings,
    config_path,
    load_config,
    merge,
    parse_scene_flags,
)

EXAMPLE = """
avatar = "leo"
fps = 30
[control]
port = 47001
[obs]
url = "ws://127.0.0.1:4455"
password_env = "OBS_PW"
talking_scene = "Talking"
idle_scene = "Idle"
hold_s = 0.8
[obs.scenes]
"BRB" = "sad"
"Starting Soon" = "smile"
"""


def test_config_path_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("AVATAR_VCAM_CONFIG", str(tmp_path / "c.toml"))
    assert config_path() == tmp_path / "c.toml"
    with pytest.raises(ConfigError, match="no such file"):
        load_config()
    monkeypatch.delenv("AVATAR_VCAM_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_path() == tmp_path / "xdg" / "avatar-vcam" / "config.toml"
    assert load_config() == {}  # the default file may be absent


def test_load_example(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text(EXAMPLE)
    cfg = load_config(p)
    assert cfg["obs.scenes"] == {"BRB": "sad", "Starting Soon": "smile"}
    assert cfg["fps"] == 30 and cfg["control.port"] == 47001 and cfg["obs.hold_s"] == 0.8
    obs = ObsSettings.from_values(merge(cfg, {}), environ={"OBS_PW": "s3cret"})
    assert (obs.host, obs.port, obs.password) == ("127.0.0.1", 4455, "s3cret")
    assert obs.talking_scene == "Talking" and obs.idle_scene == "Idle" and obs.timeout == 2.0


@pytest.mark.parametrize("text, message", [
    ("fsp = 3", "unknown key 'fsp'"),
    ("[obs]\ntimout = 3", "unknown key 'obs.timout'"),
    ("fps = 'fast'", "fps must be an integer, got 'fast'"),
    ("[obs]\nhold_s = true", "obs.hold_s must be a number"),
    ("[obs.scenes]\nBRB = 3", "obs.scenes must be a table of strings"),
    ("fps = ", "not valid TOML"),
    # the ranges the flags allow (a config value skipped them and reached the engine as a
    # traceback); nan fails every range
    ("fps = 0", "fps must be an integer in 1..120, got 0"),
    ("lookahead_ms = nan", "lookahead_ms must be a number in 0..200, got nan"),
    ("delay_ms = -5", "delay_ms must be a number in 0..2000, got -5"),
    ("[control]\nport = 99999", "control.port must be an integer in 0..65535"),
    ("[obs]\nhold_s = -1", "obs.hold_s must be a number in 0..3600"),
    ("[obs]\ntimeout = 0", "obs.timeout must be a number above 0, at most 3600, got 0"),
])
def test_bad_config_is_one_line(tmp_path, text, message):
    p = tmp_path / "config.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_flags_win_and_scenes_merge():
    cfg = {"fps": 30, "obs.url": "ws://a:1", "obs.scenes": {"BRB": "sad", "Away": "wink"}}
    out = merge(cfg, {"fps": 25, "obs.scenes": {"BRB": "laugh"}})
    assert out["fps"] == 25 and out["obs.url"] == "ws://a:1"
    assert out["obs.scenes"] == {"BRB": "laugh", "Away": "wink"}
    assert out["obs.timeout"] == 2.0  # default
    with pytest.raises(ConfigError, match="command line: fps must be an integer"):
        merge({}, {"fps": "x"})


def test_obs_settings_errors():
    assert ObsSettings.from_values({"obs.url": ""}) is None
    for url in ("http://127.0.0.1:4455", "127.0.0.1:4455", "ws://:4455", "ws://h:99999",
                "ws://h:0"):
        with pytest.raises(ConfigError, match="ws://HOST:PORT"):
            ObsSettings.from_values({"obs.url": url})
    with pytest.raises(ConfigError, match="OBS_PW .* is not set"):
        ObsSettings.from_values({"obs.url": "ws://h:1", "obs.password_env": "OBS_PW"},
                                environ={})
    assert ObsSettings.from_values({"obs.url": "ws://h"}, environ={}).port == 4455
    assert parse_scene_flags(["BRB=sad", "A=B=wink"]) == {"BRB": "sad", "A=B": "wink"}
    with pytest.raises(ConfigError, match="SCENE=EXPRESSION"):
        parse_scene_flags(["BRB"])


def test_every_key_is_a_flag():
    from vcam.cli.main import cli

    params = {p.name for p in cli.params}
    missing = [k.name for k in KEYS.values() if k.param not in params]
    assert not missing


def test_resolve_settings_from_click(tmp_path, monkeypatch):
    p = tmp_path / "config.toml"
    p.write_text(EXAMPLE)
    seen = {}

    @click.command()
    @click.option("--fps", default=25, type=int)
    @click.option("--avatar", default="leo")
    @daemon_options
    @click.pass_context
    def cmd(ctx, **kw):
        seen.update(resolve_settings(ctx))

    r = CliRunner().invoke(cmd, ["--config", str(p), "--obs-hold", "0.3", "--obs-scene",
                                 "BRB=wink", "--avatar", "grace"])
    assert r.exit_code == 0, r.output
    assert seen["obs.hold_s"] == 0.3  # flag beats the file
    assert seen["fps"] == 30  # file beats the flag's default
    assert seen["avatar"] == "grace"
    assert seen["obs.scenes"] == {"BRB": "wink", "Starting Soon": "smile"}
    assert seen["obs.url"] == "ws://127.0.0.1:4455" and seen["control.enabled"] is True
    r = CliRunner().invoke(cmd, ["--config", str(tmp_path / "nope.toml")])
    assert isinstance(r.exception, ConfigError)


def test_every_ranged_key_and_its_flag_accept_the_same_values():
    """The file and the command line share one range per key: probe both at the edges."""
    import math

    from vcam.cli.main import cli
    from vcam.control.settings import Span

    params = {p.name: p for p in cli.params}
    ranged = {k: key for k, key in KEYS.items() if isinstance(key.check, Span)}
    assert {"fps", "obs.timeout", "control.port"} <= set(ranged)  # size: test_framing.py
    for name, key in ranged.items():
        span, param = key.check, params[key.param]
        step = 1 if span.integer else 0.5
        probes = [span.lo - step, span.lo, span.lo + step, span.hi - step, span.hi,
                  span.hi + step] + ([] if span.integer else [math.nan, math.inf])
        for v in probes:
            v = int(v) if span.integer else v
            try:
                span(v)
                by_file = True
            except TypeError:
                by_file = False
            try:
                param.type.convert(str(v), param, None)
                by_flag = True
            except click.BadParameter:
                by_flag = False
            assert by_file == by_flag, f"{name}={v}: config {by_file}, --flag {by_flag}"


def test_the_suite_reads_no_config_avatars_or_daemon_of_the_user(own_user_folders, tmp_path):
    """conftest's own_user_folders: config, user avatars and the control file are the
    session's own, in this process and in the avatar-vcam subprocesses the tests start."""
    import subprocess
    import sys

    from avatars import user_avatar_dir
    from vcam.control.api import control_dir

    for path in (config_path(), user_avatar_dir(), control_dir()):
        assert own_user_folders in Path(path).parents, path
    child = subprocess.run(
        [sys.executable, "-c", "from vcam.control.settings import config_path; "
                               "print(config_path())"],
        capture_output=True, text=True, check=True)
    assert own_user_folders in Path(child.stdout.strip()).parents


def test_the_documented_example_config_is_valid_and_has_every_key(tmp_path):
    """docs/obs.md's config.toml example loads, and names every key there is."""
    import re

    doc = (Path(__file__).parent.parent / "docs" / "obs.md").read_text()
    example = re.search(r"## Configuration file.*?```toml\n(.*?)```", doc, re.S)
    assert example, "docs/obs.md lost its config.toml example"
    (tmp_path / "config.toml").write_text(example.group(1))
    keys = load_config(tmp_path / "config.toml")
    assert set(keys) == set(KEYS), f"not in the example: {sorted(set(KEYS) - set(keys))}"


def test_an_ipv6_obs_address_reaches_the_socket():
    """ws://[::1]:PORT: obsws builds ws://{host}:{port}, so the host keeps its brackets,
    and a closed port is 'connection refused', not an invalid host retried for ever."""
    from obsws_python import ReqClient

    from vcam.control.settings import parse_ws_url

    host, port = parse_ws_url("ws://[::1]:9")
    assert (host, port) == ("[::1]", 9)
    assert parse_ws_url("ws://127.0.0.1") == ("127.0.0.1", 4455)
    try:
        ReqClient(host=host, port=port, timeout=0.5)
    except ConnectionRefusedError:
        pass  # what a closed port says, on a machine with IPv6 loopback
    except OSError as e:  # no IPv6 here: the address family, never the host's syntax
        assert "hostname" not in str(e).lower(), e
    else:
        pytest.fail("something answered as OBS on [::1]:9")
