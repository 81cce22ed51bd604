"""avatar-vcam hotkeys for OBS Studio: one hotkey per expression ("Avatar: smile", ...).

Load it in OBS: Tools -> Scripts -> "+" -> this file (see docs/obs.md). Bind the hotkeys in
Settings -> Hotkeys. A press reaches the avatar-vcam daemon by one of two routes:

- http: POST to the daemon's local control API, with the port and token from the
  daemon's control.json in the user's runtime folder;
- websocket: obs-websocket's BroadcastCustomEvent ``{"avatar-vcam": {"expression": NAME}}``
  through its in-process API; a daemon started with ``--obs`` receives it.

"auto" (the default) tries http first, then websocket. Only the standard library is used:
OBS runs this file with its own Python.

Avatars too: one hotkey per avatar ("Avatar: use grace", ``avatar_vcam.avatar.grace``)
switches the daemon live (POST /v1/avatar, or the CustomEvent ``{"avatar": NAME}``). The
list comes from the daemon (GET /v1/avatars), else from the user's avatars folder.

"Add the avatar to this scene" (a button, and the hotkey ``avatar_vcam.add_browser_source``)
creates the transparent Browser Source of a daemon run with ``--sink obs``: its URL and
size come from GET /v1/obs-url, and it is added to the current scene.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

try:
    import obspython as obs
except ImportError:  # imported outside OBS (tests)
    obs = None

DEFAULT_EXPRESSIONS = "neutral, smile, laugh, surprised, sad, angry, wink, thinking, skeptical"
HOTKEY_PREFIX = "avatar_vcam.expr."
AVATAR_HOTKEY_PREFIX = "avatar_vcam.avatar."
EVENT_KEY = "avatar-vcam"
METHODS = ("auto", "http", "websocket")
HTTP_TIMEOUT_S = 1.5

_settings = None
_hotkeys: dict[str, int] = {}
_callbacks: dict[str, object] = {}
_avatar_hotkeys: dict[str, int] = {}
_avatar_callbacks: dict[str, object] = {}
_config = {"method": "auto", "daemon_url": "", "control_file": ""}
SOURCE_NAME = "avatar-vcam"  # the Browser Source the button creates
BROWSER_KIND = "browser_source"
ADD_SOURCE_HOTKEY = "avatar_vcam.add_browser_source"
_add_source_hotkey: list[int] = []


def log(msg: str) -> None:
    """One line in OBS's script log."""
    print(f"avatar-vcam: {msg}", flush=True)


def parse_expressions(text: str) -> list[str]:
    """'smile, sad' -> ['smile', 'sad'] (order kept, blanks and repeats dropped)."""
    names = [n.strip() for n in text.replace("\n", ",").split(",")]
    return list(dict.fromkeys(n for n in names if n))


def control_file_candidates() -> list[Path]:
    """Where the daemon writes control.json: platformdirs' user runtime folder for
    "avatar-vcam" on each system (OBS's Python may not have platformdirs itself)."""
    env = os.environ.get("AVATAR_VCAM_RUNTIME_DIR")
    if env:
        return [Path(env).expanduser() / "control.json"]
    app = "avatar-vcam"
    dirs = []
    if sys.platform == "win32":  # %LOCALAPPDATA%\Temp\<author>\<app>, author = app
        local = Path(os.environ.get("LOCALAPPDATA", "~/AppData/Local")).expanduser()
        dirs.append(local / "Temp" / app / app)
    elif os.environ.get("XDG_RUNTIME_DIR"):  # honoured on macOS too
        dirs.append(Path(os.environ["XDG_RUNTIME_DIR"]) / app)
    if sys.platform == "darwin":
        dirs.append(Path("~/Library/Caches/TemporaryItems").expanduser() / app)
    elif sys.platform != "win32":
        if hasattr(os, "getuid"):
            dirs += [Path(f"/run/user/{os.getuid()}") / app,
                     Path(tempfile.gettempdir()) / f"runtime-{os.getuid()}" / app]
    return [d / "control.json" for d in dirs]


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def read_control(control_file: str = "", daemon_url: str = "") -> tuple[str, str]:
    """(base URL, token) of the running daemon; OSError/ValueError if there is none.

    The daemon listens on this machine only; a ``daemon_url`` elsewhere is refused, so
    the token never leaves the machine in clear text.
    """
    if daemon_url and urllib.parse.urlsplit(daemon_url).hostname not in LOOPBACK:
        raise ValueError(f"daemon address {daemon_url!r} is not on this machine; the daemon "
                         "listens on 127.0.0.1 only (leave the address empty)")
    paths = [Path(control_file).expanduser()] if control_file else control_file_candidates()
    for path in paths:
        if path.is_file():
            info = json.loads(path.read_text())
            url = daemon_url.rstrip("/") or f"http://127.0.0.1:{int(info['port'])}"
            return url, str(info["token"])
    raise FileNotFoundError(f"no control.json (looked in {', '.join(map(str, paths))})")


# No proxy: urllib follows http_proxy even for 127.0.0.1, and would hand the proxy the token.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_request(method: str, path: str, body: dict | None = None) -> dict:
    """One request to the daemon's control API; raises OSError/ValueError on failure."""
    url, token = read_control(_config["control_file"], _config["daemon_url"])
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with _DIRECT.open(req, timeout=HTTP_TIMEOUT_S) as r:
            return json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            msg = json.loads(e.read()).get("error")
        except ValueError:
            msg = None
        raise ValueError(f"daemon said HTTP {e.code}: {msg}") from None


# -- obs-websocket in-process API through ctypes (obspython cannot pass its void* handler) --
class _CallData(ctypes.Structure):
    _fields_ = [("stack", ctypes.c_void_p), ("size", ctypes.c_size_t),
                ("capacity", ctypes.c_size_t), ("fixed", ctypes.c_bool)]


class _WsResponse(ctypes.Structure):
    # pointers as c_void_p: they are freed with bfree, so they must not be copied as bytes
    _fields_ = [("status_code", ctypes.c_uint), ("comment", ctypes.c_void_p),
                ("response_data", ctypes.c_void_p)]


_lib = None


def _libobs():
    global _lib
    if _lib is not None:
        return _lib
    names = ["obs.dll"] if sys.platform == "win32" else ["libobs.so.0", None]
    if sys.platform == "darwin":
        names = ["@rpath/libobs.framework/Versions/A/libobs", None]
    err: Exception | None = None
    for name in names:
        try:
            lib = ctypes.CDLL(name)
            lib.obs_get_proc_handler.restype = ctypes.c_void_p
            break
        except (OSError, AttributeError) as e:
            err = e
    else:
        raise OSError(f"libobs not found: {err}")
    lib.proc_handler_call.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                      ctypes.POINTER(_CallData)]
    lib.proc_handler_call.restype = ctypes.c_bool
    for fn in (lib.calldata_get_data, lib.calldata_set_data):
        fn.argtypes = [ctypes.POINTER(_CallData), ctypes.c_char_p, ctypes.c_void_p,
                       ctypes.c_size_t]
    lib.calldata_get_data.restype = ctypes.c_bool
    lib.bfree.argtypes = [ctypes.c_void_p]
    lib.obs_initialized.restype = ctypes.c_bool
    _lib = lib
    return lib


def _cd_set_str(lib, cd: _CallData, name: str, value: str) -> None:
    b = ctypes.create_string_buffer(value.encode())
    lib.calldata_set_data(ctypes.byref(cd), name.encode(), b, len(b))


def _cd_get_ptr(lib, cd: _CallData, name: str) -> int | None:
    out = ctypes.c_void_p()
    ok = lib.calldata_get_data(ctypes.byref(cd), name.encode(), ctypes.byref(out),
                               ctypes.sizeof(out))
    return out.value if ok else None


def ws_call(request_type: str, request_data: dict) -> tuple[int, str | None]:
    """Run an obs-websocket request inside OBS; (status code, comment). 100 = success."""
    if obs is None:
        raise OSError("not running inside OBS")
    lib = _libobs()
    if not lib.obs_initialized():
        raise OSError("libobs is not initialized")
    cd = _CallData()
    ok = lib.proc_handler_call(lib.obs_get_proc_handler(), b"obs_websocket_api_get_ph",
                               ctypes.byref(cd))
    ph = _cd_get_ptr(lib, cd, "ph") if ok else None
    lib.bfree(cd.stack)
    if not ph:
        raise OSError("obs-websocket is not loaded in this OBS")
    cd = _CallData()
    _cd_set_str(lib, cd, "request_type", request_type)
    _cd_set_str(lib, cd, "request_data", json.dumps(request_data))
    ok = lib.proc_handler_call(ph, b"call_request", ctypes.byref(cd))
    rp = _cd_get_ptr(lib, cd, "response")
    lib.bfree(cd.stack)
    if not ok or not rp:
        raise OSError(f"obs-websocket call_request {request_type} failed")
    r = ctypes.cast(rp, ctypes.POINTER(_WsResponse)).contents
    result = (int(r.status_code),
              ctypes.string_at(r.comment).decode() if r.comment else None)
    lib.bfree(r.comment)  # like obs_websocket_request_response_free()
    lib.bfree(r.response_data)
    lib.bfree(rp)
    return result


# -- delivery ------------------------------------------------------------------------------
def send_http(name: str) -> None:
    http_request("POST", "/v1/expression", {"name": name})


def send_event(name: str) -> None:
    code, comment = ws_call("BroadcastCustomEvent",
                            {"eventData": {EVENT_KEY: {"expression": name}}})
    if code != 100:
        raise OSError(f"BroadcastCustomEvent returned {code}: {comment}")


def deliver(name: str) -> str | None:
    """Send expression ``name`` by the configured route; the route used, or None."""
    method = _config["method"] if _config["method"] in METHODS else "auto"
    routes = {"http": [("http", send_http)], "websocket": [("websocket", send_event)],
              "auto": [("http", send_http), ("websocket", send_event)]}[method]
    errors = []
    for route, send in routes:
        try:
            send(name)
            log(f"{name} -> daemon ({route})")
            return route
        except (OSError, ValueError, KeyError) as e:
            errors.append(f"{route}: {e}")
    log(f"{name} not delivered: {'; '.join(errors)}")
    return None


# -- avatars -------------------------------------------------------------------------------
def avatars_folder() -> Path:
    """The user's avatars folder, as the daemon finds it (``AVATAR_VCAM_AVATARS``, else
    platformdirs' user data folder for "avatar-vcam" on each system)."""
    env = os.environ.get("AVATAR_VCAM_AVATARS")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", "~/AppData/Local")).expanduser()
        return base / "avatar-vcam" / "avatar-vcam" / "avatars"
    if sys.platform == "darwin":
        return Path("~/Library/Application Support/avatar-vcam/avatars").expanduser()
    data = os.environ.get("XDG_DATA_HOME") or "~/.local/share"
    return Path(data).expanduser() / "avatar-vcam" / "avatars"


def folder_avatars(folder: Path | None = None) -> list[str]:
    """Names of the avatar packages in the user's avatars folder (bundled ones are known
    to the daemon only)."""
    folder = folder or avatars_folder()
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if not p.name.startswith(".") and (p / "avatar.json").is_file())


def list_avatars() -> list[str]:
    """The avatars the daemon can switch to; the avatars folder's when it is not running."""
    try:
        return list(http_request("GET", "/v1/avatars")["avatars"])
    except (OSError, ValueError, KeyError) as e:
        log(f"cannot list avatars from the daemon ({e}); using {avatars_folder()}")
        return folder_avatars()


def send_avatar_http(name: str) -> None:
    http_request("POST", "/v1/avatar", {"name": name})


def send_avatar_event(name: str) -> None:
    code, comment = ws_call("BroadcastCustomEvent",
                            {"eventData": {EVENT_KEY: {"avatar": name}}})
    if code != 100:
        raise OSError(f"BroadcastCustomEvent returned {code}: {comment}")


def deliver_avatar(name: str) -> str | None:
    """Ask the daemon to switch to avatar ``name``; the route used, or None."""
    method = _config["method"] if _config["method"] in METHODS else "auto"
    routes = {"http": [("http", send_avatar_http)],
              "websocket": [("websocket", send_avatar_event)],
              "auto": [("http", send_avatar_http), ("websocket", send_avatar_event)]}[method]
    errors = []
    for route, send in routes:
        try:
            send(name)
            log(f"avatar {name} -> daemon ({route})")
            return route
        except (OSError, ValueError, KeyError) as e:
            errors.append(f"{route}: {e}")
    log(f"avatar {name} not delivered: {'; '.join(errors)}")
    return None


def _make_avatar_callback(name: str):
    def on_hotkey(pressed: bool) -> None:
        if pressed:
            threading.Thread(target=deliver_avatar, args=(name,), daemon=True).start()

    return on_hotkey


def register_avatar_hotkeys(settings, names: list[str]) -> None:
    """(Re-)register one frontend hotkey per avatar, keeping saved bindings."""
    if list(_avatar_hotkeys) == names:
        return
    if _avatar_hotkeys:
        _save_avatar_bindings(settings)
        unregister_avatar_hotkeys()
    for name in names:
        cb = _make_avatar_callback(name)
        hk = obs.obs_hotkey_register_frontend(AVATAR_HOTKEY_PREFIX + name,
                                              f"Avatar: use {name}", cb)
        arr = obs.obs_data_get_array(settings, AVATAR_HOTKEY_PREFIX + name)
        obs.obs_hotkey_load(hk, arr)
        obs.obs_data_array_release(arr)
        _avatar_hotkeys[name], _avatar_callbacks[name] = hk, cb


def _save_avatar_bindings(settings) -> None:
    for name, hk in _avatar_hotkeys.items():
        arr = obs.obs_hotkey_save(hk)
        obs.obs_data_set_array(settings, AVATAR_HOTKEY_PREFIX + name, arr)
        obs.obs_data_array_release(arr)


def unregister_avatar_hotkeys() -> None:
    for hk in _avatar_hotkeys.values():
        try:
            obs.obs_hotkey_unregister(hk)
        except (AttributeError, TypeError) as e:
            log(f"cannot unregister hotkey: {e}")
    _avatar_hotkeys.clear()
    _avatar_callbacks.clear()


def _on_refresh_avatars(props, prop) -> bool:
    names = list_avatars()
    if _settings is not None:
        obs.obs_data_set_string(_settings, "avatars", ", ".join(names))
        register_avatar_hotkeys(_settings, names)
    log(f"avatars: {', '.join(names) or '(none)'}")
    return True


# -- the transparent browser source (--sink obs) ---------------------------------------------
def page_info() -> dict:
    """The daemon's page: {"url", "width", "height"}; ValueError with a readable reason when
    there is no daemon, it does not answer, or it runs without ``--sink obs``."""
    try:
        info = http_request("GET", "/v1/obs-url")
    except FileNotFoundError as e:
        raise ValueError(f"the avatar-vcam daemon is not running ({e}); start it with "
                         "'avatar-vcam --sink obs'") from None
    except OSError as e:
        reason = getattr(e, "reason", None) or e
        raise ValueError(f"the avatar-vcam daemon does not answer ({reason}); is it "
                         "running? start it with 'avatar-vcam --sink obs'") from None
    if not isinstance(info.get("url"), str):
        raise ValueError(f"the daemon gave no page URL: {info}")
    return info


def add_browser_source(name: str = SOURCE_NAME) -> bool:
    """Create (or update) the Browser Source ``name`` showing the daemon's transparent page
    and add it to the current scene; one line in the script log either way."""
    try:
        info = page_info()
    except ValueError as e:
        log(f"cannot add the browser source: {e}")
        return False
    width, height = int(info.get("width") or 0), int(info.get("height") or 0)
    settings = obs.obs_data_create()
    obs.obs_data_set_string(settings, "url", info["url"])
    if width > 0 and height > 0:
        obs.obs_data_set_int(settings, "width", width)
        obs.obs_data_set_int(settings, "height", height)
    obs.obs_data_set_bool(settings, "reroute_audio", False)
    source = obs.obs_get_source_by_name(name)
    scene_source = None
    try:
        if source is None:
            source = obs.obs_source_create(BROWSER_KIND, name, settings, None)
            what = "created"
        elif obs.obs_source_get_id(source) != BROWSER_KIND:
            log(f"cannot add the browser source: a {obs.obs_source_get_id(source)} source is "
                f"already named {name!r}; rename it")
            return False
        else:
            obs.obs_source_update(source, settings)
            what = "updated"
        if source is None:
            log(f"cannot add the browser source: OBS could not create a {BROWSER_KIND}")
            return False
        scene_source = obs.obs_frontend_get_current_scene()
        scene = obs.obs_scene_from_source(scene_source) if scene_source else None
        if scene is None:
            log("cannot add the browser source: OBS has no current scene")
            return False
        scene_name = obs.obs_source_get_name(scene_source)
        if obs.obs_scene_find_source(scene, name) is None:
            obs.obs_scene_add(scene, source)
            where = f"added to scene {scene_name!r}"
        else:
            where = f"already in scene {scene_name!r}"
        log(f"browser source {name!r} {what} ({info['url'].split('?')[0]}, "
            f"{width}x{height}), {where}")
        if not obs.obs_source_get_display_name(BROWSER_KIND):
            log("this OBS has no Browser Source plugin (obs-browser): the source stays empty "
                "until it is installed; use the avatar-vcam camera meanwhile")
        return True
    finally:
        obs.obs_data_release(settings)
        if source is not None:
            obs.obs_source_release(source)
        if scene_source is not None:
            obs.obs_source_release(scene_source)


def _on_add_source(props, prop) -> bool:
    add_browser_source()
    return False


def _on_add_source_hotkey(pressed: bool) -> None:
    if pressed:
        threading.Thread(target=add_browser_source, daemon=True).start()


def register_add_source_hotkey(settings) -> None:
    """One frontend hotkey that does what the button does (bindable; websocket clients can
    trigger it by name)."""
    if _add_source_hotkey:
        return
    hk = obs.obs_hotkey_register_frontend(ADD_SOURCE_HOTKEY,
                                          "Avatar: add the browser source to this scene",
                                          _on_add_source_hotkey)
    arr = obs.obs_data_get_array(settings, ADD_SOURCE_HOTKEY)
    obs.obs_hotkey_load(hk, arr)
    obs.obs_data_array_release(arr)
    _add_source_hotkey.append(hk)


# -- hotkeys -------------------------------------------------------------------------------
def _make_callback(name: str):
    def on_hotkey(pressed: bool) -> None:
        if pressed:
            threading.Thread(target=deliver, args=(name,), daemon=True).start()

    return on_hotkey


def _save_bindings(settings) -> None:
    for name, hk in _hotkeys.items():
        arr = obs.obs_hotkey_save(hk)
        obs.obs_data_set_array(settings, HOTKEY_PREFIX + name, arr)
        obs.obs_data_array_release(arr)


def register_hotkeys(settings, names: list[str]) -> None:
    """(Re-)register one frontend hotkey per expression, keeping saved bindings."""
    if list(_hotkeys) == names:
        return
    if _hotkeys:
        _save_bindings(settings)
        unregister_hotkeys()
    for name in names:
        cb = _make_callback(name)
        hk = obs.obs_hotkey_register_frontend(HOTKEY_PREFIX + name, f"Avatar: {name}", cb)
        arr = obs.obs_data_get_array(settings, HOTKEY_PREFIX + name)
        obs.obs_hotkey_load(hk, arr)
        obs.obs_data_array_release(arr)
        _hotkeys[name], _callbacks[name] = hk, cb


def unregister_hotkeys() -> None:
    for hk in _hotkeys.values():
        try:
            obs.obs_hotkey_unregister(hk)
        except (AttributeError, TypeError) as e:
            log(f"cannot unregister hotkey: {e}")
    _hotkeys.clear()
    _callbacks.clear()


# -- OBS script API ------------------------------------------------------------------------
def script_description() -> str:
    return ("<b>avatar-vcam</b>: one hotkey per avatar expression (Settings -> Hotkeys -> "
            "\"Avatar: ...\"). A press goes to the running avatar-vcam daemon.")


def script_defaults(settings) -> None:
    obs.obs_data_set_default_string(settings, "expressions", DEFAULT_EXPRESSIONS)
    obs.obs_data_set_default_string(settings, "method", "auto")
    obs.obs_data_set_default_string(settings, "daemon_url", "")
    obs.obs_data_set_default_string(settings, "control_file", "")
    obs.obs_data_set_default_string(settings, "avatars", "")


def _on_refresh(props, prop) -> bool:
    try:
        names = http_request("GET", "/v1/expressions")["expressions"]
    except (OSError, ValueError, KeyError) as e:
        log(f"cannot load expressions from the daemon: {e}")
        return False
    if _settings is not None:
        obs.obs_data_set_string(_settings, "expressions", ", ".join(names))
        register_hotkeys(_settings, names)
    log(f"expressions from the daemon: {', '.join(names)}")
    return True


def _on_test(props, prop) -> bool:
    threading.Thread(target=deliver, args=("neutral",), daemon=True).start()
    return False


def script_properties():
    props = obs.obs_properties_create()
    obs.obs_properties_add_text(props, "expressions", "Expressions (comma-separated)",
                                obs.OBS_TEXT_DEFAULT)
    obs.obs_properties_add_button(props, "refresh", "Load expressions from the daemon",
                                  _on_refresh)
    obs.obs_properties_add_text(props, "avatars", "Avatars (comma-separated, one hotkey "
                                "each)", obs.OBS_TEXT_DEFAULT)
    obs.obs_properties_add_button(props, "refresh_avatars", "Load avatars from the daemon",
                                  _on_refresh_avatars)
    methods = obs.obs_properties_add_list(props, "method", "Send presses by",
                                          obs.OBS_COMBO_TYPE_LIST,
                                          obs.OBS_COMBO_FORMAT_STRING)
    for value, label in (("auto", "auto (control API, else obs-websocket)"),
                         ("http", "control API (HTTP)"),
                         ("websocket", "obs-websocket CustomEvent")):
        obs.obs_property_list_add_string(methods, label, value)
    obs.obs_properties_add_text(props, "daemon_url",
                                "Daemon address (empty: from control.json)",
                                obs.OBS_TEXT_DEFAULT)
    obs.obs_properties_add_path(props, "control_file", "control.json (empty: auto)",
                                obs.OBS_PATH_FILE, "control.json (control.json)", None)
    obs.obs_properties_add_button(props, "test", "Test: send 'neutral'", _on_test)
    obs.obs_properties_add_button(props, "add_source",
                                  "Add the avatar to this scene (Browser Source, --sink obs)",
                                  _on_add_source)
    return props


def script_update(settings) -> None:
    global _settings
    _settings = settings
    for key in _config:
        _config[key] = obs.obs_data_get_string(settings, key).strip()
    register_hotkeys(settings, parse_expressions(obs.obs_data_get_string(settings,
                                                                         "expressions")))
    avatars = parse_expressions(obs.obs_data_get_string(settings, "avatars"))
    register_avatar_hotkeys(settings, avatars or folder_avatars())
    register_add_source_hotkey(settings)


def script_load(settings) -> None:
    script_update(settings)
    log(f"loaded: {len(_hotkeys)} hotkeys ({', '.join(_hotkeys)}), method {_config['method']}")


def script_save(settings) -> None:
    _save_bindings(settings)
    _save_avatar_bindings(settings)
    for hk in _add_source_hotkey:
        arr = obs.obs_hotkey_save(hk)
        obs.obs_data_set_array(settings, ADD_SOURCE_HOTKEY, arr)
        obs.obs_data_array_release(arr)


def script_unload() -> None:
    unregister_hotkeys()
    unregister_avatar_hotkeys()
    for hk in _add_source_hotkey:
        obs.obs_hotkey_unregister(hk)
    _add_source_hotkey.clear()
