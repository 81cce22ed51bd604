"""Build libavatar_engine (the C ABI of avatar_engine.h) with cffi's embedding mode.

    python -m engine.capi.build --out DIR

writes ``DIR/libavatar_engine.so`` and ``DIR/avatar_engine.h``. The library embeds the
Python that ran the build (it links its libpython and finds this environment's packages),
so build it with the Python where avatar-vcam is installed. Needs cffi, a C compiler and
that Python's headers (Debian: python3-dev).
"""

from __future__ import annotations

import argparse
import shutil
import site
import sys
import sysconfig
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEADER = HERE / "avatar_engine.h"
MODULE = "_avatar_engine_cffi"
LIB_NAME = "libavatar_engine"

# The Python callbacks (static: not exported) and the error setter they use.
CDEF = """
extern "Python" int ae_py_init(const char*);
extern "Python" int ae_py_start(void);
extern "Python" int ae_py_push(const float*, int);
extern "Python" int ae_py_pull(uint8_t*, int, int);
extern "Python" int ae_py_stop(void);
void ae_set_error(const char*);
"""

# The exported functions: argument checks and start-up in C, the work in Python.
C_SOURCE = r"""
#include <stdio.h>
#include <string.h>
#include "avatar_engine.h"

#define AE_EXPORT __attribute__((visibility("default")))

static __thread char ae_error[1024];

static void ae_set_error(const char* msg) {
    snprintf(ae_error, sizeof ae_error, "%s", msg ? msg : "");
}

static int ae_py_init(const char*);
static int ae_py_start(void);
static int ae_py_push(const float*, int);
static int ae_py_pull(uint8_t*, int, int);
static int ae_py_stop(void);

/* Starts the embedded Python on the first call; 0 when it is not usable. */
static int ae_python(void) {
    ae_error[0] = 0;
    if (cffi_start_python() != 0) {
        ae_set_error("the embedded Python of libavatar_engine failed to start "
                     "(its traceback is on stderr)");
        return 0;
    }
    return 1;
}

AE_EXPORT int init_avatar_engine(const char* avatar_root) {
    if (!ae_python()) return AVATAR_ENGINE_E_PYTHON;
    if (avatar_root == NULL) {
        ae_set_error("avatar_root is NULL: give an avatar folder or name");
        return AVATAR_ENGINE_E_ARGUMENT;
    }
    return ae_py_init(avatar_root);
}

AE_EXPORT int start_session(void) {
    if (!ae_python()) return AVATAR_ENGINE_E_PYTHON;
    return ae_py_start();
}

AE_EXPORT int push_audio(const float* pcm, int length) {
    if (!ae_python()) return AVATAR_ENGINE_E_PYTHON;
    if (length < 0 || (pcm == NULL && length > 0)) {
        ae_set_error("push_audio: pcm must not be NULL and length must be >= 0");
        return AVATAR_ENGINE_E_ARGUMENT;
    }
    return ae_py_push(pcm, length);
}

AE_EXPORT int pull_frame(uint8_t* rgba_buffer, int width, int height) {
    if (!ae_python()) return AVATAR_ENGINE_E_PYTHON;
    if (rgba_buffer == NULL || width < AVATAR_ENGINE_MIN_SIZE || height < AVATAR_ENGINE_MIN_SIZE
            || width > AVATAR_ENGINE_MAX_SIZE || height > AVATAR_ENGINE_MAX_SIZE
            || width % 2 || height % 2) {
        char msg[160];
        snprintf(msg, sizeof msg, "pull_frame: rgba_buffer must not be NULL and width, height "
                 "must be even numbers in %d..%d (got %dx%d)", AVATAR_ENGINE_MIN_SIZE,
                 AVATAR_ENGINE_MAX_SIZE, width, height);
        ae_set_error(msg);
        return AVATAR_ENGINE_E_ARGUMENT;
    }
    return ae_py_pull(rgba_buffer, width, height);
}

AE_EXPORT int stop_session(void) {
    if (!ae_python()) return AVATAR_ENGINE_E_PYTHON;
    return ae_py_stop();
}

AE_EXPORT const char* last_error(void) {
    return ae_error;
}
"""


class BuildError(Exception):
    """The library cannot be built here; the message says what is missing."""


def boot_source() -> str:
    """The start-up code with this environment's package folders filled in."""
    dirs = [d for d in (*site.getsitepackages(), site.getusersitepackages())
            if Path(d).is_dir()]
    text = (HERE / "boot.py").read_text()
    slots = {"SITE_DIRS: list[str] = []": f"SITE_DIRS: list[str] = {dirs!r}",
             'SOURCE_ROOT = ""': f"SOURCE_ROOT = {str(HERE.parents[1])!r}"}
    for slot, value in slots.items():
        if slot not in text:
            raise BuildError(f"engine/capi/boot.py lost its line {slot!r}")
        text = text.replace(slot, value, 1)
    return text


def _libpython_dir() -> str:
    """The folder of this Python's shared libpython (BuildError when it has none)."""
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    ver = f"{sys.version_info.major}.{sys.version_info.minor}{getattr(sys, 'abiflags', '')}"
    candidates = [Path(libdir), Path(libdir) / (sysconfig.get_config_var("MULTIARCH") or "")]
    for d in candidates:
        if (d / f"libpython{ver}.so").exists():
            return str(d)
    raise BuildError(f"no shared libpython{ver}.so in {libdir}: install the Python "
                     f"development package (Debian: python3-dev) or use a Python built "
                     "with --enable-shared")


def _check_tools() -> None:
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        raise BuildError(f"no Python.h in {include}: install the Python development "
                         "package (Debian: python3-dev)")
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None and shutil.which("cc") is None:
        raise BuildError(f"no C compiler ({cc} or cc) on PATH: install gcc (Debian: gcc "
                         "libc6-dev)")


def build(out_dir: str | Path, *, verbose: bool = False) -> Path:
    """Compile ``libavatar_engine.so`` into ``out_dir`` and copy the header beside it."""
    try:
        import cffi
    except ImportError as exc:
        raise BuildError("cffi is not installed: pip install cffi") from exc
    _check_tools()
    libdir = _libpython_dir()
    out = Path(out_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.embedding_init_code(boot_source())
    ffi.set_source(MODULE, C_SOURCE, include_dirs=[str(HERE)], library_dirs=[libdir],
                   extra_link_args=[f"-Wl,-rpath,{libdir}"])
    with tempfile.TemporaryDirectory(prefix="avatar-engine-build-") as tmp:
        try:
            built = Path(ffi.compile(tmpdir=tmp, target=f"{LIB_NAME}.*", verbose=verbose))
        except Exception as exc:  # cffi wraps compiler and linker failures
            lines = str(exc).strip().splitlines()
            raise BuildError(f"compiling {LIB_NAME} failed: {lines[-1] if lines else exc}"
                             " (rerun with --verbose for the compiler output)") from exc
        target = out / built.name
        shutil.copyfile(built, target)
    shutil.copyfile(HEADER, out / HEADER.name)
    return target


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m engine.capi.build --out DIR [--verbose]``."""
    parser = argparse.ArgumentParser(prog="python -m engine.capi.build",
                                     description="Build libavatar_engine and its header.")
    parser.add_argument("--out", required=True, help="folder for the .so and the header")
    parser.add_argument("--verbose", action="store_true", help="show the compiler's output")
    args = parser.parse_args(argv)
    try:
        lib = build(args.out, verbose=args.verbose)
    except BuildError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    print(f"built {lib} and {lib.parent / HEADER.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
