"""Start-up code of libavatar_engine: run once in the embedded interpreter, at its first call.

Not imported as a module: :mod:`engine.capi.build` bakes it into the library (after
filling in ``SITE_DIRS``/``SOURCE_ROOT``), where cffi runs it with the library's own
``ffi``/``lib``. It binds the ``ae_py_*`` callbacks the C functions call; a failure to load
the engine becomes AVATAR_ENGINE_E_PYTHON with its reason, never a crash.
"""

import site
import sys

from _avatar_engine_cffi import ffi, lib  # the library itself (exists only when embedded)

SITE_DIRS: list[str] = []  # build: site-packages of the Python that built the library
SOURCE_ROOT = ""  # build: the folder holding the engine package

for _d in SITE_DIRS:
    site.addsitedir(_d)  # runs .pth files: editable installs are found
if SOURCE_ROOT and SOURCE_ROOT not in sys.path:
    sys.path.append(SOURCE_ROOT)

E_ARGUMENT, E_PYTHON, E_INTERNAL = -1, -5, -6
try:
    import numpy as np

    from engine.capi import impl
    _engine = impl.CEngine()
    _boot_error = ""
except BaseException as _exc:  # noqa: BLE001 - reported through last_error
    _engine = None
    _msg = str(_exc).strip().splitlines()
    _boot_error = (f"cannot load the engine in the embedded Python {sys.version.split()[0]}: "
                   f"{type(_exc).__name__}: {_msg[0] if _msg else ''} (sys.path: "
                   f"{':'.join(sys.path)}; set PYTHONPATH or rebuild with the right Python)")


def _error(msg: str) -> None:
    lib.ae_set_error(msg.encode("utf-8", "replace"))


def _run(fn_name: str, *args: object) -> int:
    if _engine is None:
        _error(_boot_error)
        return E_PYTHON
    code, msg = impl.status(getattr(_engine, fn_name), *args)
    _error(msg)
    return code


@ffi.def_extern(error=E_INTERNAL)
def ae_py_init(root: object) -> int:
    try:
        text = ffi.string(root).decode("utf-8")
    except UnicodeDecodeError:
        _error("avatar_root is not UTF-8")
        return E_ARGUMENT
    return _run("init", text)


@ffi.def_extern(error=E_INTERNAL)
def ae_py_start() -> int:
    return _run("start")


@ffi.def_extern(error=E_INTERNAL)
def ae_py_push(pcm: object, length: int) -> int:
    if _engine is None:
        return _run("push")
    return _run("push", np.frombuffer(ffi.buffer(pcm, 4 * length), np.float32))


@ffi.def_extern(error=E_INTERNAL)
def ae_py_pull(rgba: object, width: int, height: int) -> int:
    if _engine is None:
        return _run("pull")
    out = np.frombuffer(ffi.buffer(rgba, width * height * 4), np.uint8)
    return _run("pull", out.reshape(height, width, 4))


@ffi.def_extern(error=E_INTERNAL)
def ae_py_stop() -> int:
    return _run("stop")
