"""The real `avatar-vcam` daemon (a subprocess) against the real OBS of conftest.py.

One run: the daemon speaks a file in real time into the v4l2 shim with ``--obs``, a scene
map and speaking-driven scene switching; the test drives OBS like a streamer would and
checks what `avatar-vcam status` says and what the camera shows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from daemon_target import wait_until

SUPPORT = Path(__file__).resolve().parents[2] / "support"
sys.path.insert(0, str(SUPPORT))
from mouth import i420_frames, mouth_box  # noqa: E402
from needs import require  # noqa: E402
from speech import phrases, write_wav  # noqa: E402

pytestmark = pytest.mark.integration
EXE = str(Path(sys.executable).parent / "avatar-vcam")
SIZE, FPS = 192, 25
SPEECH_AT = 9.0  # seconds into the run: silence before, so scene tests are not disturbed


def status(env: dict) -> dict:
    r = subprocess.run([EXE, "status", "--json"], env=env, capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def frame_times(path: Path) -> np.ndarray:
    return np.array([float(line.split()[0]) for line in path.read_text().splitlines()])


def test_daemon_follows_obs_scenes_hotkeys_and_drives_the_talking_scene(obs, fake_v4l2,
                                                                       tmp_path, capsys):
    require("espeak-ng", "speaks the test phrase")
    pcm, spans = phrases(22050, [(SPEECH_AT, "hello there, this is the avatar speaking")],
                         SPEECH_AT + 6.0)
    wav = write_wav(tmp_path / "speech.wav", pcm, 22050)
    cam, times = tmp_path / "cam.yuv", tmp_path / "cam.times"
    env = fake_v4l2("/dev/video10", cam, times)
    env.update({"AVATAR_VCAM_RUNTIME_DIR": str(obs.runtime_dir), "OBS_PW": obs.password,
                "AVATAR_VCAM_CONFIG": str(tmp_path / "none.toml")})
    (tmp_path / "none.toml").write_text("")
    obs.set_program_scene("Idle")
    daemon = subprocess.Popen(
        [EXE, "--source", f"file:{wav}", "--realtime", "--sink", "vcam:/dev/video10",
         "--size", str(SIZE), "--obs", obs.url, "--obs-password-env", "OBS_PW",
         "--obs-scene", "BRB=sad", "--obs-talking-scene", "Talking", "--obs-idle-scene",
         "Idle", "--obs-hold", "0.8"], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (obs.runtime_dir / "control.json").exists(), 60,
                   "daemon control API up")
        wait_until(lambda: (status(env).get("obs") or {}).get("connected"), 10,
                   "daemon connected to OBS")
        time.sleep(1.0)  # a second of neutral frames to compare with
        t_start = time.monotonic()
        assert status(env)["expression"] == "neutral"

        # 1. A mapped scene on program sets the expression; leaving restores it.
        obs.set_program_scene("BRB")
        t_brb = time.monotonic()
        wait_until(lambda: status(env)["expression"] == "sad", 3, "BRB -> sad")
        time.sleep(0.8)  # the 200 ms blend is over and frames show it
        t_sad = time.monotonic()
        obs.set_program_scene("Idle")
        wait_until(lambda: status(env)["expression"] == "neutral", 3, "leaving BRB restores")

        # 2. The OBS script's hotkey reaches the daemon (control API from inside OBS).
        req = obs.client()
        try:
            req.trigger_hotkey_by_name("avatar_vcam.expr.smile")
        finally:
            req.disconnect()
        wait_until(lambda: status(env)["expression"] == "smile", 3, "hotkey -> smile")
        assert time.monotonic() - t_start < SPEECH_AT - 2, "setup too slow for the script"

        # 3. Speech switches OBS to Talking, silence back to Idle after the hold.
        wait_until(lambda: obs.program_scene() == "Talking", SPEECH_AT + 5,
                   "speaking -> Talking scene")
        t_talk = time.monotonic()
        wait_until(lambda: obs.program_scene() == "Idle", 10, "silence -> Idle scene")
        with capsys.disabled():
            print(f"\n[obs daemon] OBS switched to Talking {t_talk - t_start:.2f} s into the "
                  f"run (speech starts at {spans[0][0]:.2f} s of the file); back to Idle "
                  f"{time.monotonic() - t_talk:.2f} s later")
        assert daemon.wait(30) == 0, daemon.stderr.read()
    finally:
        if daemon.poll() is None:
            daemon.kill()
    # The camera frames show the sad expression while BRB was on program.
    y = i420_frames(cam, SIZE, SIZE).astype(np.float32)
    t = frame_times(times)[: len(y)]
    rows, cols = mouth_box("leo", SIZE)
    early = y[(t > t_brb - 0.8) & (t < t_brb - 0.45)]
    before = y[(t > t_brb - 0.45) & (t < t_brb - 0.1)]
    during = y[(t > t_sad - 0.3) & (t < t_sad)]
    assert len(early) and len(before) and len(during)
    change = np.abs(during.mean(0) - before.mean(0))[rows, cols].mean()
    still = np.abs(early.mean(0) - before.mean(0))[rows, cols].mean()  # idle life alone
    assert change > 3 * still + 1.0, f"sad not visible on camera ({change:.2f} vs {still:.2f})"
    assert os.path.getsize(cam) > 0
