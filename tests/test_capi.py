"""The engine's C ABI (issue 21): libavatar_engine built with cffi's embedding mode, linked
by a plain C program (tests/c/push_wav.c) that pushes the demo clip and checks the lips of
the bundled avatar ``leo`` move with the speech and not in the silence before it.

Needs a C compiler and the Python headers: skipped locally without them, FAILS in CI.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.capi import impl

ROOT = Path(__file__).resolve().parents[1]
C_PROGRAM = Path(__file__).parent / "c" / "push_wav.c"
DEMO_WAV = ROOT / "vcam" / "assets" / "demo_speech.wav"
HEADER = ROOT / "engine" / "capi" / "avatar_engine.h"


def test_the_header_and_the_python_side_agree_on_codes_and_clock():
    text = HEADER.read_text()
    defines = {m[1]: int(m[2]) for m in
               re.finditer(r"#define AVATAR_ENGINE_(\w+) \(?(-?\d+)\)?", text)}
    for name, code in impl.CODES.items():
        assert defines[name] == code, name
    assert defines["SAMPLE_RATE"] == impl.SAMPLE_RATE and defines["FPS"] == impl.FPS
    assert defines["MAX_QUEUED_S"] == impl.MAX_QUEUED_S
    for proto in ("int init_avatar_engine(const char* avatar_root);",
                  "int start_session(void);", "int push_audio(const float* pcm, int length);",
                  "int pull_frame(uint8_t* rgba_buffer, int width, int height);",
                  "int stop_session(void);", "const char* last_error(void);"):
        assert proto in text


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """libavatar_engine.so + avatar_engine.h, built by the documented command."""
    from needs import IN_CI, require

    require("cc", "C compiler for libavatar_engine and the C test program")
    out = tmp_path_factory.mktemp("capi")
    run = subprocess.run([sys.executable, "-m", "engine.capi.build", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    if run.returncode and run.stderr.startswith("Error: no ") and not IN_CI:
        pytest.skip(run.stderr.strip())  # no Python.h / libpython here; CI must have them
    assert run.returncode == 0, run.stderr
    assert (out / "libavatar_engine.so").is_file() and (out / "avatar_engine.h").is_file()
    return out


def _compile(built: Path) -> Path:
    exe = built / "push_wav"
    cc = subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(exe),
                         str(C_PROGRAM), f"-I{built}", f"-L{built}", "-lavatar_engine",
                         f"-Wl,-rpath,{built}"], capture_output=True, text=True, timeout=120)
    assert cc.returncode == 0, cc.stderr
    return exe


def test_a_c_program_pushes_a_wav_and_the_lips_move(built):
    from mouth import mouth_box

    exe = _compile(built)
    rows, cols = mouth_box("leo", 512)
    run = subprocess.run([str(exe), "leo", str(DEMO_WAV), "512", "512", str(rows.start),
                          str(rows.stop), str(cols.start), str(cols.stop)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = run.stdout.strip().splitlines()[-1].split()
    assert summary[0] == "summary", run.stdout[-500:]
    m = {k: float(v) for k, v in zip(summary[1::2], summary[2::2], strict=True)}
    print(" ".join(summary))  # the measured cost of the calls, for the log
    assert m["frames"] >= 25 * (1.0 + 9.5)  # every frame of the silence + clip + tail
    assert m["silence_open"] < 0.02  # lips closed over the silence (idle life only)
    assert m["speech_open"] > 0.08  # and open on the speech
    assert m["speech_diff"] > 3 * m["silence_diff"]  # idle sway moves the box a little


def test_the_library_reports_errors_not_crashes(built, tmp_path):
    """A program that links the library but calls it wrong gets codes and one-line messages
    (the positive path and the call-order checks are in push_wav.c)."""
    src = tmp_path / "misuse.c"
    src.write_text(r"""
#include <stdio.h>
#include <string.h>
#include "avatar_engine.h"
int main(void) {
    uint8_t px[64 * 64 * 4];
    int a = push_audio(NULL, 1), b = stop_session(), c = init_avatar_engine("");
    int d = pull_frame(px, 64, 64);
    printf("%d %d %d %d|%s\n", a, b, c, d, last_error());
    return strchr(last_error(), '\n') != NULL;
}
""")
    exe = tmp_path / "misuse"
    cc = subprocess.run(["cc", "-o", str(exe), str(src), f"-I{built}", f"-L{built}",
                         "-lavatar_engine", f"-Wl,-rpath,{built}"], capture_output=True,
                        text=True, timeout=120)
    assert cc.returncode == 0, cc.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    codes, msg = run.stdout.strip().split("|")
    assert [int(c) for c in codes.split()] == [impl.E_ARGUMENT, impl.OK, impl.E_ARGUMENT,
                                               impl.E_STATE]
    assert msg == "no avatar: call init_avatar_engine() first"


def test_an_engine_that_cannot_load_is_an_error_code_with_its_reason(built, tmp_path):
    """The embedded Python cannot import the engine (a broken package shadows it here):
    every call returns E_PYTHON and last_error says why, the program goes on."""
    fake = tmp_path / "shadow" / "engine"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('broken on purpose')\n")
    src = tmp_path / "noload.c"
    src.write_text(r"""
#include <stdio.h>
#include "avatar_engine.h"
int main(void) {
    int a = init_avatar_engine("leo"), b = start_session();
    printf("%d %d|%s\\n", a, b, last_error());
    return 0;
}
""")
    exe = tmp_path / "noload"
    cc = subprocess.run(["cc", "-o", str(exe), str(src), f"-I{built}", f"-L{built}",
                         "-lavatar_engine", f"-Wl,-rpath,{built}"], capture_output=True,
                        text=True, timeout=120)
    assert cc.returncode == 0, cc.stderr
    env = {**os.environ, "PYTHONPATH": str(fake.parent)}
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    codes, msg = run.stdout.strip().split("|")
    assert [int(c) for c in codes.split()] == [impl.E_PYTHON, impl.E_PYTHON]
    assert msg.startswith("cannot load the engine in the embedded Python")
    assert "ImportError: broken on purpose" in msg


@pytest.fixture(scope="module")
def cengine():
    e = impl.CEngine()
    e.init("leo")
    return e


def test_pull_fits_the_frame_to_the_size_asked(cengine):
    """Same size: as rendered; another square: scaled; another shape: composed with the
    photo's backdrop (the avatar stays whole, as with --size WxH). Alpha is 255."""
    cengine.start()
    try:
        cengine.push(np.zeros(impl.SAMPLE_RATE // 2, np.float32))
        for w, h in ((512, 512), (256, 256), (640, 360)):
            out = np.zeros((h, w, 4), np.uint8)
            assert cengine.pull(out) == impl.OK
            assert (out[..., 3] == 255).all()
            assert out[..., :3].std() > 20  # a picture, not a blank
        with pytest.raises(impl.CallError) as err:
            cengine.pull(np.zeros((100, 63, 4), np.uint8))
        assert err.value.code == impl.E_ARGUMENT
    finally:
        cengine.stop()


def test_frames_follow_the_sample_clock(cengine):
    """Frame n is ready once n / fps + the look-ahead of audio is in; a whole file may be
    pushed first (it is queued, not lost); a new session starts at 0 again."""
    out = np.zeros((512, 512, 4), np.uint8)
    cengine.start()
    try:
        assert cengine.pull(out) == impl.NO_FRAME
        cengine.push(np.zeros(impl.SAMPLE_RATE * 10, np.float32))  # 10 s at once
        n = 0
        while cengine.pull(out) == impl.OK:
            n += 1
        lookahead = cengine.engine.a2m.lookahead
        assert abs(n - (10.0 - lookahead) * impl.FPS) <= 2
        with pytest.raises(impl.CallError) as err:
            cengine.push(np.zeros(int(impl.SAMPLE_RATE * (impl.MAX_QUEUED_S + 1)), np.float32))
        assert err.value.code == impl.E_BACKLOG
    finally:
        cengine.stop()
    cengine.start()
    try:
        assert cengine.session.next_pts == 0.0 and cengine.session.samples_pushed == 0
    finally:
        cengine.stop()


def test_two_c_threads_push_and_pull_at_once(built, tmp_path):
    """One thread pushes 2 s of audio while another pulls: every frame arrives once, and
    last_error belongs to the thread that made the call."""
    src = tmp_path / "threads.c"
    src.write_text(r"""
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "avatar_engine.h"
static float block[320];
static volatile int pushed_all = 0;
static void* pusher(void* arg) {
    (void)arg;
    for (int i = 0; i < 100; i++) push_audio(block, 320);   /* 100 x 20 ms */
    push_audio(NULL, 5);                                      /* fails in this thread */
    pushed_all = 1;
    return strstr(last_error(), "push_audio") ? (void*)1 : NULL;
}
int main(void) {
    static uint8_t px[128 * 128 * 4];
    if (init_avatar_engine("leo") || start_session()) { puts(last_error()); return 1; }
    pthread_t t;
    pthread_create(&t, NULL, pusher, NULL);
    int frames = 0, rc;
    for (;;) {
        rc = pull_frame(px, 128, 128);
        if (rc == AVATAR_ENGINE_OK) frames++;
        else if (rc == AVATAR_ENGINE_NO_FRAME) { if (pushed_all) break; }
        else { puts(last_error()); return 1; }
    }
    while ((rc = pull_frame(px, 128, 128)) == AVATAR_ENGINE_OK) frames++;
    void* own_error;
    pthread_join(t, &own_error);
    printf("%d %d %d\n", frames, own_error != NULL, last_error()[0] == 0);
    return stop_session();
}
""")
    exe = tmp_path / "threads"
    cc = subprocess.run(["cc", "-pthread", "-o", str(exe), str(src), f"-I{built}", f"-L{built}",
                         "-lavatar_engine", f"-Wl,-rpath,{built}"], capture_output=True,
                        text=True, timeout=120)
    assert cc.returncode == 0, cc.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    frames, pusher_saw_its_error, main_error_clear = (int(v) for v in run.stdout.split())
    assert abs(frames - 2.0 * 25) <= 2  # 2 s less the look-ahead, every frame once
    assert pusher_saw_its_error and main_error_clear
