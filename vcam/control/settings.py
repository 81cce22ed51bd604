"""Configuration file ``config.toml`` and its merge with command-line flags (flags win).

The file lives at ``platformdirs.user_config_path("avatar-vcam") / "config.toml"``
(``~/.config/avatar-vcam/config.toml`` on Linux); ``AVATAR_VCAM_CONFIG`` overrides the path.
Every key is also a flag (see :data:`KEYS`); docs/obs.md lists them with an example.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import platformdirs

from engine.config import HEAD_MOTIONS
from engine.jsonfile import JsonError, check_depth

from ..cli.param_types import Background, FiniteFloatRange, FrameSize, FramingSpec
from ..errors import DeviceError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

APP = "avatar-vcam"
CONFIG_ENV = "AVATAR_VCAM_CONFIG"


class ConfigError(DeviceError):
    """The configuration file or a configuration value is wrong."""


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError("a string")
    return v


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError("an integer")
    return v


def _float(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError("a number")
    return float(v)


@dataclass(frozen=True)
class Span:
    """A number in ``lo..hi`` (``lo`` itself refused when ``lo_open``).

    One rule for a config key and for its flag: :meth:`click_type` is what the flag's
    ``type=`` is, so the file and the command line cannot drift apart (nan fails both).
    """

    integer: bool
    lo: float
    hi: float
    lo_open: bool = False

    def __call__(self, v: Any) -> Any:
        v = _int(v) if self.integer else _float(v)
        above = self.lo < v if self.lo_open else self.lo <= v
        if not (above and v <= self.hi):
            kind = "an integer" if self.integer else "a number"
            if self.lo_open:
                raise TypeError(f"{kind} above {self.lo:g}, at most {self.hi:g}")
            raise TypeError(f"{kind} in {self.lo:g}..{self.hi:g}")
        return v

    def click_type(self) -> click.ParamType:
        """The click type accepting exactly these values."""
        if self.integer:
            return click.IntRange(int(self.lo), int(self.hi), min_open=self.lo_open)
        return FiniteFloatRange(self.lo, self.hi, min_open=self.lo_open)


def _via(param_type: click.ParamType, what: str) -> Callable[[Any], Any]:
    """A config check that is the flag's own click type (one rule for file and flag)."""
    def check(v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (str, int, float, list, tuple)):
            raise TypeError(what)
        try:
            return param_type.convert(str(v) if isinstance(v, float) else v, None, None)
        except click.BadParameter as e:
            raise TypeError(f"{what} ({e.message})") from None
    check.click_type = param_type  # type: ignore[attr-defined]
    return check


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise TypeError("true or false")
    return v


def _str_list(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise TypeError("a list of strings")
    return list(v)


def _str_map(v: Any) -> dict[str, str]:
    if not isinstance(v, Mapping) or not all(isinstance(x, str) for x in v.values()):
        raise TypeError('a table of strings, e.g. { "BRB" = "sad" }')
    return {str(k): x for k, x in v.items()}


@dataclass(frozen=True)
class Key:
    """One configuration key: dotted TOML name, the click parameter (flag) it stands for,
    and its check. What each means is the flag's ``--help``; docs/obs.md has an example
    file with every key (a test keeps it complete)."""

    name: str
    param: str
    check: Callable[[Any], Any]


KEYS: dict[str, Key] = {k.name: k for k in [
    Key("avatar", "avatar", _str),
    Key("source", "source", _str),
    Key("sinks", "sinks", _str_list),
    Key("fps", "fps", Span(True, 1, 120)),
    Key("size", "size", _via(FrameSize(), "N or WIDTHxHEIGHT, e.g. 1280x720")),
    Key("framing", "framing", _via(FramingSpec(), "ZOOM or ZOOM,X,Y")),
    Key("background", "background", _via(Background(), "photo, blur, a colour or an image")),
    Key("renderer", "renderer", _str),
    Key("device", "device", _str),
    Key("lookahead_ms", "lookahead_ms", Span(False, 0, 200)),
    Key("a2m", "a2m", _str),
    Key("head_motion", "head_motion", _via(click.Choice(HEAD_MOTIONS), "speech, idle or off")),
    Key("expression", "expression", _str),
    Key("voice_out", "voice_out", _str),
    Key("delay_ms", "delay_ms", Span(False, 0, 2000)),
    Key("vcam_device", "vcam_device", _str),
    Key("control.enabled", "control", _bool),
    Key("control.port", "control_port", Span(True, 0, 65535)),
    Key("obs.url", "obs", _str),
    Key("obs.password_env", "obs_password_env", _str),
    Key("obs.scenes", "obs_scenes", _str_map),
    Key("obs.scene_avatars", "obs_scene_avatars", _str_map),
    Key("obs.talking_scene", "obs_talking_scene", _str),
    Key("obs.idle_scene", "obs_idle_scene", _str),
    Key("obs.hold_s", "obs_hold", Span(False, 0, 3600)),
    Key("obs.timeout", "obs_timeout", Span(False, 0, 3600, lo_open=True)),
]}



def flag_type(name: str) -> click.ParamType:
    """The click type for key ``name``'s flag: the range its config check enforces."""
    check = KEYS[name].check
    if isinstance(check, Span):
        return check.click_type()
    if hasattr(check, "click_type"):
        return check.click_type
    raise TypeError(f"config key {name} has no flag type")


DEFAULTS: dict[str, Any] = {
    "control.enabled": True, "control.port": 0, "obs.url": "", "obs.password_env": "",
    "obs.scenes": {}, "obs.scene_avatars": {}, "obs.talking_scene": "", "obs.idle_scene": "",
    "obs.hold_s": 1.0, "obs.timeout": 2.0,
}


#: config.toml limits: the file is read whole and tomllib recurses per nesting level.
MAX_CONFIG_BYTES = 1024 * 1024
MAX_CONFIG_DEPTH = 16


def config_path() -> Path:
    """Where config.toml is read from (``AVATAR_VCAM_CONFIG`` overrides)."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    return platformdirs.user_config_path(APP) / "config.toml"


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in table.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping) and name not in KEYS:
            out.update(_flatten(v, name + "."))
        else:
            out[name] = v
    return out


def validate(values: Mapping[str, Any], where: str = "config") -> dict[str, Any]:
    """Check dotted keys and their types; one-line :class:`ConfigError` on the first problem."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        key = KEYS.get(name)
        if key is None:
            raise ConfigError(f"{where}: unknown key {name!r}; known keys: {', '.join(KEYS)}")
        try:
            out[name] = key.check(value)
        except TypeError as e:
            raise ConfigError(f"{where}: {name} must be {e}, got {value!r}") from None
    return out


def load_config(path: Path | None = None) -> dict[str, Any]:
    """Validated dotted keys of ``config.toml``; an absent file is an empty config."""
    explicit = path is not None or bool(os.environ.get(CONFIG_ENV))
    path = Path(path) if path is not None else config_path()
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"config file {path}: no such file") from None
        return {}
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KB; a config.toml "
                          "holds a few settings: is this the right file?")
    try:
        table = tomllib.loads(raw.decode("utf-8"))
        check_depth(table, MAX_CONFIG_DEPTH)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML: {' '.join(str(e).split())}") from None
    except (RecursionError, JsonError):  # tomllib recurses per nested array or table
        raise ConfigError(f"{path}: nested deeper than {MAX_CONFIG_DEPTH} levels; fix it "
                          "(settings are at most two levels deep, e.g. [obs.scenes])") from None
    return validate(_flatten(table), str(path))


def parse_scene_flags(items: tuple[str, ...] | list[str], flag: str = "--obs-scene",
                      what: str = "EXPRESSION") -> dict[str, str]:
    """``--obs-scene BRB=sad`` (or ``--obs-scene-avatar Chat=grace``) values as a mapping."""
    out: dict[str, str] = {}
    for item in items:
        scene, sep, expr = item.rpartition("=")
        if not sep or not scene or not expr:
            raise ConfigError(f"{flag} wants SCENE={what}, got {item!r}")
        out[scene] = expr
    return out


def merge(config: Mapping[str, Any], flags: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted values: defaults, then the file, then flags given on the command line.

    ``flags`` maps dotted keys to values the user typed (leave out flags left at default).
    """
    given = validate(flags, "command line")
    out = {**DEFAULTS, **config, **given}
    for key in ("obs.scenes", "obs.scene_avatars"):  # flags add to (or override) the table
        if key in given:
            out[key] = {**config.get(key, {}), **given[key]}
    return out


def explicit_flags(ctx: Any) -> dict[str, Any]:
    """Dotted keys of the click parameters the user typed in ``ctx`` (not defaults)."""
    from click.core import ParameterSource

    by_param = {k.param: k.name for k in KEYS.values()}
    out: dict[str, Any] = {}
    for param, value in ctx.params.items():
        name = by_param.get(param)
        if name is None or ctx.get_parameter_source(param) is not ParameterSource.COMMANDLINE:
            continue
        if name == "obs.scenes":
            value = parse_scene_flags(value)
        elif name == "obs.scene_avatars":
            value = parse_scene_flags(value, "--obs-scene-avatar", "AVATAR")
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


@dataclass
class ObsSettings:
    """What the OBS controller needs, resolved from dotted values."""

    url: str
    host: str
    port: int
    password: str = ""
    scenes: dict[str, str] = field(default_factory=dict)
    scene_avatars: dict[str, str] = field(default_factory=dict)
    talking_scene: str | None = None
    idle_scene: str | None = None
    hold_s: float = 1.0
    timeout: float = 2.0

    @classmethod
    def from_values(cls, values: Mapping[str, Any],
                    environ: Mapping[str, str] | None = None) -> ObsSettings | None:
        """None when no OBS address is configured; ConfigError on a bad one."""
        url = values.get("obs.url") or ""
        if not url:
            return None
        host, port = parse_ws_url(url)
        env = os.environ if environ is None else environ
        var = values.get("obs.password_env") or ""
        password = ""
        if var:
            if var not in env:
                raise ConfigError(f"environment variable {var} (--obs-password-env) is not set; "
                                  f"export {var}=<OBS websocket password>")
            password = env[var]
        hold = float(values.get("obs.hold_s", 1.0))
        timeout = float(values.get("obs.timeout", 2.0))
        for name, value in (("obs.hold_s", hold), ("obs.timeout", timeout)):
            validate({name: value})  # values built in code (not merged) get the same check
        return cls(url=url, host=host, port=port, password=password,
                   scenes=dict(values.get("obs.scenes") or {}),
                   scene_avatars=dict(values.get("obs.scene_avatars") or {}),
                   talking_scene=values.get("obs.talking_scene") or None,
                   idle_scene=values.get("obs.idle_scene") or None,
                   hold_s=hold, timeout=timeout)


def parse_ws_url(url: str) -> tuple[str, int]:
    """``ws://host:port`` as (host, port); ConfigError otherwise.

    An IPv6 host comes back in brackets (``[::1]``): obsws-python builds
    ``ws://{host}:{port}`` from it, which needs them.
    """
    parts = urlsplit(url)
    try:
        port = parts.port
        bad_port = port == 0
    except ValueError:
        port, bad_port = None, True
    if parts.scheme != "ws" or not parts.hostname or parts.path not in ("", "/") or bad_port:
        raise ConfigError(f"--obs wants ws://HOST:PORT (e.g. ws://127.0.0.1:4455), got {url!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return host, port or 4455
