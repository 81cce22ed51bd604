"""Live A/V sync, end-to-end delay and CPU use of the daemon, on real PulseAudio.

    python bench/live_av_sync.py [--seconds 40] [--size 512] [--fps 25]

Starts a private PulseAudio (null sinks ``sysaudio`` and ``avatar_mic``), runs
``avatar-vcam --source system --sink vcam:/dev/video10 --voice-out avatar_mic`` with
pyvirtualcam's v4l2 backend writing through the test shim (each frame time-stamped),
plays espeak-ng phrases into the system sink, records the virtual mic's monitor, and
prints one line per measure: A/V offset (each phrase, median and spread), what the live
path adds over a file render of the same audio, end-to-end delay (played -> lips on the
camera), the daemon's CPU use and its own status. Needs gcc, pulseaudio, espeak-ng.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
from avsync import av_lag, camera_frames, lips, offline_lag  # noqa: E402
from pulse_server import PipeWireServer, PulseServer, Recorder  # noqa: E402
from speech import phrases, write_wav  # noqa: E402

RATE = 48000
SCRIPT = [(0.3, "hello there, how are you"), (2.6, "papa bought a map"),
          (4.8, "one more time, please")]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--pipewire", action="store_true",
                    help="run the sound server as PipeWire + pipewire-pulse, not PulseAudio")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="avatar-vcam-bench-"))
    shim = tmp / "fakev4l2.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(shim),
                    str(ROOT / "tests" / "support" / "fakev4l2.c"), "-ldl"], check=True)
    pcm, _ = phrases(RATE, SCRIPT, 7.0)
    wav = write_wav(tmp / "speech.wav", pcm, RATE)
    server = (PipeWireServer if args.pipewire else PulseServer)(tmp / "pulse").start()
    cam, times = tmp / "cam.yuv", tmp / "cam.times"
    env = {**server.env, "FAKE_V4L2_DEVICE": "/dev/video10", "FAKE_V4L2_OUT": str(cam),
           "FAKE_V4L2_TIMES": str(times), "LD_PRELOAD": str(shim)}
    mic, played = Recorder(server, "avatar_mic.monitor"), Recorder(server, "sysaudio.monitor")
    exe = str(Path(sys.executable).parent / "avatar-vcam")
    daemon = subprocess.Popen([exe, "--source", "system", "--sink", "vcam:/dev/video10",
                               "--voice-out", "avatar_mic", "--duration", str(args.seconds),
                               "--size", str(args.size), "--fps", str(args.fps),
                               "--no-control"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(6.0)  # start-up and null-sink settling
        cpu0, wall0 = cpu_seconds(daemon.pid), time.monotonic()
        plays = []
        while time.monotonic() - wall0 < args.seconds - 14:
            plays.append(time.monotonic())
            server.play(wav).wait(30)
        cpu1, wall1 = cpu_seconds(daemon.pid), time.monotonic()
        _, err = daemon.communicate(timeout=args.seconds + 30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
        voice, t_voice = mic.stop()
        orig, t_orig = played.stop()
        server.stop()
    frames, t_frames = camera_frames(cam, times, args.size)
    openness = lips(frames, args.size)
    per_play = []
    for start in plays:
        sel = (t_frames >= start) & (t_frames < start + 7.0)
        if sel.sum() > 50:
            per_play.append(av_lag(openness[sel], t_frames[sel], voice, t_voice, RATE,
                                   args.fps).lag_s)
    whole = av_lag(openness, t_frames, voice, t_voice, RATE, args.fps)
    e2e = av_lag(openness, t_frames, orig, t_orig, RATE, args.fps)
    model = offline_lag(pcm, RATE, args.fps, min(args.size, 256))
    lags = 1000 * np.array(per_play)
    gaps = np.diff(t_frames)
    status = [ln for ln in err.splitlines() if "fps |" in ln]
    print(f"date {dt.date.today()} machine {platform.node()} {platform.processor() or ''} "
          f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}; {args.size}px {args.fps} fps, "
          f"{args.seconds:.0f} s, {len(plays)} plays")
    print(f"A/V offset (audio later than lips): whole run {1000 * whole.lag_s:+.0f} ms; per "
          f"play median {np.median(lags):+.0f} ms, sd {lags.std():.1f} ms, range "
          f"{lags.min():+.0f}..{lags.max():+.0f} ms (corr {whole.corr:.2f})")
    print(f"same measure on a file render (Audio2Motion's own lag): {1000 * model.lag_s:+.0f} "
          f"ms -> live path adds {np.median(lags) - 1000 * model.lag_s:+.0f} ms")
    print(f"end-to-end delay, played into system audio -> lips on the camera: "
          f"{-1000 * e2e.lag_s:.0f} ms")
    print(f"camera: {len(frames)} frames, median interval {1000 * np.median(gaps):.1f} ms, "
          f"max {1000 * gaps.max():.0f} ms")
    print(f"daemon CPU: {100 * (cpu1 - cpu0) / (wall1 - wall0):.0f} % of one core")
    if status:
        print("daemon status: " + status[-1])


if __name__ == "__main__":
    main()
