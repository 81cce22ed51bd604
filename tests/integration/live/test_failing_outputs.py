"""Issue 20, "failing outputs are loud and contained", on the real command.

The camera fails through pyvirtualcam's own v4l2 code (the preload shim makes its frame
writes fail with EIO while a flag file exists), and the disk fills up under a live
recording for real: the daemon runs under an RLIMIT_FSIZE (Python ignores SIGXFSZ, so
writes past the limit fail with EFBIG, as on a full disk). Each failure is one warning
line and shows in the status; the other output goes on; the exit status is 1 with one
Error line; the recording keeps what fit as a finished, playable mp4.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from vcam.control.api import ControlClient

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
from speech import write_wav  # noqa: E402

EXE = str(Path(sys.executable).parent / "avatar-vcam")
FAST = ["--a2m", "dsp", "--size", "128"]
FPS = 25
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory) -> Path:
    """The demo clip twice (19 s): long enough to fail part-way and go on."""
    from engine.audio.decode import decode_audio
    from vcam.sources import demo_clip_path

    pcm, rate = decode_audio(demo_clip_path())
    pcm = np.concatenate([pcm, pcm])
    return write_wav(tmp_path_factory.mktemp("audio") / "long.wav", pcm, rate)


def _frame_times(path: Path) -> np.ndarray:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return np.array([float(r[0]) for r in rows])


def _run(args: list[str], env: dict[str, str], fsize: int | None = None,
         during=None) -> tuple[int, list[str]]:
    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    p = subprocess.Popen([EXE, *args], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, preexec_fn=limit)
    if during is not None:
        threading.Thread(target=during, daemon=True).start()
    try:
        _, err = p.communicate(timeout=180)
    finally:
        if p.poll() is None:
            p.kill()
    return p.returncode, [ln for ln in err.splitlines() if ln.strip()
                          and not ln.startswith("[fakev4l2]")]


def _decoded(path: Path) -> tuple[int, float, float]:
    """(video frames, video seconds, audio seconds) as a player decodes the file."""
    with av.open(str(path)) as c:
        assert {s.type for s in c.streams} == {"video", "audio"}
        frames = sum(1 for _ in c.decode(video=0))
    with av.open(str(path)) as c:
        audio = sum(f.samples for f in c.decode(audio=0)) / c.streams.audio[0].rate
    return frames, frames / FPS, audio


def test_camera_write_errors_are_one_line_retried_and_fail_the_run(fake_v4l2, tmp_path):
    times, flag, rec = tmp_path / "cam.times", tmp_path / "broken", tmp_path / "rec.mp4"
    env = fake_v4l2("/dev/video10", Path("/dev/null"), times)
    env.update(FAKE_V4L2_FAIL=str(flag), AVATAR_VCAM_RUNTIME_DIR=str(tmp_path / "run"))
    seen: dict = {}

    def break_camera() -> None:
        deadline = time.monotonic() + 60
        while (not times.exists() or len(times.read_text().splitlines()) < 50) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        flag.touch()
        seen["broken"] = time.monotonic()
        time.sleep(1.5)
        try:
            seen["status"] = ControlClient.from_runtime_file(tmp_path / "run").status()
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            seen["status"] = repr(e)
        time.sleep(1.5)
        flag.unlink()
        seen["fixed"] = time.monotonic()

    rc, lines = _run(["--source", "demo", "--sink", "vcam:/dev/video10", "--sink",
                      f"file:{rec}", "--control", *FAST], env, during=break_camera)
    text = "\n".join(lines)
    t = _frame_times(times)
    down = t[(t > seen["broken"] - 0.2) & (t < seen["fixed"] + 3)]
    outage = float(np.diff(down).max())
    print(f"\n[camera EIO] {len(lines)} stderr lines; camera outage {outage:.2f} s "
          f"(broken for {seen['fixed'] - seen['broken']:.2f} s); status during: "
          f"{json.dumps(seen['status'].get('sink_problems'))}; last line: {lines[-1]}")
    assert rc == 1, text
    assert "Traceback" not in text and "errorerror" not in text, text
    warnings = [ln for ln in lines if "vcam:/dev/video10 failed at" in ln
                and ln.startswith("WARNING")]
    assert len(warnings) == 1, text
    assert sum("is back after" in ln for ln in lines) == 1, text
    assert len(re.findall("error writing frame", text)) < 10, text  # not one per frame
    problems = seen["status"]["sink_problems"]
    assert "FAILED, retrying" in problems["vcam:/dev/video10"], seen["status"]
    assert "Input/output error" in problems["vcam:/dev/video10"]
    assert lines[-1].startswith("Error: vcam:/dev/video10 failed at "), text
    assert "Input/output error" in lines[-1] and "came back" in lines[-1]
    assert f"wrote {rec}" in text, text
    frames, video_s, _ = _decoded(rec)  # the recording never noticed
    assert frames >= 9.5 * FPS - 2, frames
    assert 2.5 < outage < 3.0 + 2.5, outage  # down while broken, back within a retry
    assert len(t[t > seen["fixed"] + 2.5]) > 0, "the camera did not come back"


def test_full_disk_keeps_the_recording_and_the_camera(fake_v4l2, tmp_path, long_wav):
    times, rec = tmp_path / "cam.times", tmp_path / "rec.mp4"
    env = fake_v4l2("/dev/video10", Path("/dev/null"), times)
    env["AVATAR_VCAM_RUNTIME_DIR"] = str(tmp_path / "run")
    limit = 150_000
    t0 = time.monotonic()
    rc, lines = _run(["--source", f"file:{long_wav}", "--sink", "vcam:/dev/video10",
                      "--sink", f"file:{rec}", *FAST], env, fsize=limit)
    text = "\n".join(lines)
    t = _frame_times(times)
    frames, video_s, audio_s = _decoded(rec)
    m = re.search(r"the first ([\d.]+) s (?:\(all that fit\) )?are kept", lines[-1])
    print(f"\n[disk full] file limit {limit} B: {lines[-1]}\n  kept {rec.stat().st_size} B, "
          f"{frames} frames ({video_s:.2f} s video, {audio_s:.2f} s audio); camera "
          f"{len(t)} frames, longest gap {1000 * np.diff(t).max():.0f} ms; run "
          f"{time.monotonic() - t0:.1f} s")
    assert rc == 1, text
    assert "Traceback" not in text, text
    assert sum(ln.startswith("WARNING") and "stopped at" in ln for ln in lines) == 1, text
    assert lines[-1].startswith(f"Error: file:{rec} failed at "), text
    assert "File too large" in lines[-1] and m is not None, lines[-1]
    assert rec.exists() and not list(tmp_path.glob(".*partial*")), os.listdir(tmp_path)
    assert 3.0 < video_s < 19.0 and abs(video_s - float(m.group(1))) < 0.1, (video_s, text)
    assert abs(audio_s - video_s) < 0.3, (audio_s, video_s)
    assert rec.stat().st_size <= limit
    assert len(t) >= 19 * FPS - 5, f"the camera stopped: {len(t)} frames\n{text}"
    assert np.diff(t).max() < 0.2, "the camera stalled when the disk filled up"
