"""Real OBS, real daemon: an OBS scene switches the avatar live (issue 22).

The daemon runs live (a file in real time) into the v4l2 shim with ``--obs`` and
``--obs-scene-avatar BRB=grace``. Putting BRB on program switches to grace; going back to
Idle switches back to leo. The camera keeps one frame per tick through both switches and
shows the other face.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from daemon_target import wait_until

SUPPORT = Path(__file__).resolve().parents[2] / "support"
sys.path.insert(0, str(SUPPORT))
from switch_run import first_new_face, frame_times, luma_frames, max_gap  # noqa: E402

pytestmark = pytest.mark.integration
EXE = str(Path(sys.executable).parent / "avatar-vcam")
SIZE, FPS = 160, 25


def status(env: dict) -> dict:
    r = subprocess.run([EXE, "status", "--json"], env=env, capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_obs_scene_switches_the_avatar_live(obs, fake_v4l2, tmp_path):
    cam, times = tmp_path / "cam.yuv", tmp_path / "cam.times"
    env = fake_v4l2("/dev/video10", cam, times)
    env.update({"AVATAR_VCAM_RUNTIME_DIR": str(obs.runtime_dir), "OBS_PW": obs.password,
                "AVATAR_VCAM_CONFIG": str(tmp_path / "none.toml")})
    (tmp_path / "none.toml").write_text("")
    obs.set_program_scene("Idle")
    daemon = subprocess.Popen(
        [EXE, "--source", "idle", "--sink", "vcam:/dev/video10", "--size", str(SIZE),
         "--a2m", "dsp", "--obs", obs.url, "--obs-password-env", "OBS_PW",
         "--obs-scene-avatar", "BRB=grace"], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (obs.runtime_dir / "control.json").exists(), 60,
                   "daemon control API up")
        wait_until(lambda: (status(env).get("obs") or {}).get("connected"), 10,
                   "daemon connected to OBS")
        time.sleep(1.5)
        assert status(env)["avatar"] == "leo"
        t_brb = time.monotonic()
        obs.set_program_scene("BRB")
        wait_until(lambda: status(env)["avatar"] == "grace", 30, "BRB -> grace")
        time.sleep(1.5)
        t_idle = time.monotonic()
        obs.set_program_scene("Idle")
        wait_until(lambda: status(env)["avatar"] == "leo", 30, "Idle -> leo again")
        time.sleep(1.5)
        sw = status(env)["avatar_switch"]
    finally:
        daemon.send_signal(2)
        _, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
    assert sw["switches"] == 2 and sw["error"] is None, sw
    t = frame_times(times)
    y = luma_frames(cam, SIZE, SIZE)[: len(t)]
    t = t[: len(y)]
    for asked in (t_brb, t_idle):
        i = first_new_face(y, t, asked)
        assert i is not None, "the face did not change on the camera"
        gap = max_gap(t, asked - 0.5, float(t[i]) + 1.0)
        print(f"\n[obs scene -> avatar] new face {1000 * (t[i] - asked):.0f} ms after the "
              f"scene change, longest camera gap {1000 * gap:.0f} ms")
        assert gap <= 2 / FPS + 0.01, f"camera gap {1000 * gap:.0f} ms"
    assert np.isfinite(y.mean())
