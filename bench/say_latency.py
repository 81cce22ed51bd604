"""`avatar-vcam say`: time to the first mouth motion on the camera, and the lips' error
against espeak-ng's own phone timings, on real PulseAudio and the v4l2 shim.

    python bench/say_latency.py [--n 6] [--size 512] [--fps 25] [--pipewire]

Starts a private PulseAudio (null sink ``avatar_mic``), runs ``avatar-vcam --source idle
--sink vcam:/dev/video10 --voice-out avatar_mic`` with pyvirtualcam's v4l2 backend writing
through the test shim (each frame time-stamped), then runs ``avatar-vcam say --json`` for
each sentence while recording the virtual mic. Per sentence: the time from starting the
``say`` process to the first camera frame whose mouth opens (and to the voice on the mic),
and the lips' timing error against the phones as heard (cross-correlation of the mouth on
the camera with the phones' jaw curve, placed where the utterance is found in the mic
recording); then the same with ``--no-timings`` (lips from the audio estimate) for
comparison. Needs gcc, pulseaudio, espeak-ng, scipy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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
from avsync import av_lag, camera_frames, lips  # noqa: E402
from pulse_server import PipeWireServer, PulseServer, Recorder  # noqa: E402
from tts_lips import find_in_recording, phone_sync  # noqa: E402

RATE = 48000
SENTENCES = ["Peter Piper picked a peck of pickled peppers.",
             "Five fine vans moved by the pier.",
             "Hello there, how are you today?",
             "Would you like a cup of coffee or some tea?",
             "My mother bought a map of Boston.",
             "She sells sea shells by the sea shore."]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=len(SENTENCES))
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--pipewire", action="store_true")
    args = ap.parse_args()
    sentences = (SENTENCES * 4)[:args.n]
    tmp = Path(tempfile.mkdtemp(prefix="avatar-vcam-bench-"))
    shim = tmp / "fakev4l2.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(shim),
                    str(ROOT / "tests" / "support" / "fakev4l2.c"), "-ldl"], check=True)
    server = (PipeWireServer if args.pipewire else PulseServer)().start()  # a 0700 folder
    cam, times = tmp / "cam.yuv", tmp / "cam.times"
    env = {**server.env, "FAKE_V4L2_DEVICE": "/dev/video10", "FAKE_V4L2_OUT": str(cam),
           "FAKE_V4L2_TIMES": str(times), "LD_PRELOAD": str(shim)}
    exe = str(Path(sys.executable).parent / "avatar-vcam")
    seconds = 8 + 2 * len(sentences) * 4.5
    mic = Recorder(server, "avatar_mic.monitor")
    daemon = subprocess.Popen([exe, "--source", "idle", "--sink", "vcam:/dev/video10",
                               "--voice-out", "avatar_mic", "--duration", str(seconds),
                               "--size", str(args.size), "--fps", str(args.fps)],
                              env=env, stderr=subprocess.PIPE, text=True)
    runs = []
    try:
        runtime = Path(server.env["XDG_RUNTIME_DIR"]) / "avatar-vcam" / "control.json"
        while not runtime.exists():
            assert daemon.poll() is None, daemon.stderr.read()
            time.sleep(0.1)
        time.sleep(4.0)  # null sinks settle
        for timings in (True, False):
            for text in sentences:
                spawned = time.monotonic()
                r = subprocess.run([exe, "say", "--json", *([] if timings else
                                                            ["--no-timings"]), text],
                                   env=env, capture_output=True, text=True, timeout=60)
                if r.returncode:
                    raise SystemExit(r.stderr)
                runs.append((spawned, timings, json.loads(r.stdout)))
                time.sleep(1.0)
        daemon.terminate()
        _, err = daemon.communicate(timeout=60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
        voice, t_voice = mic.stop()
        server.stop()
    from engine.tts.espeak import Espeak

    frames, t_frames = camera_frames(cam, times, args.size)
    openness = lips(frames, args.size)
    rows = []
    after = 0
    for spawned, timings, said in runs:
        utt = Espeak.get().synth(said["text"], rate=170)
        after = max(after, round((spawned - t_voice) * RATE))
        at, match = find_in_recording(utt.pcm, utt.sr, voice, RATE, after=after)
        phones = [tuple(p) for p in (said["phones"] or [(p.name, p.start, p.end)
                                                       for p in utt.phones])]
        heard = t_voice + at / RATE
        sel = (t_frames > heard - 1.0) & (t_frames < heard + said["audio_s"] + 0.5)
        sync = phone_sync(openness[sel], t_frames[sel], heard, phones, said["audio_s"])
        loud = av_lag(openness[sel], t_frames[sel], voice, t_voice, RATE, args.fps)
        rows.append({"timings": timings, "match": match, "lag_ms": 1000 * sync.lag_s,
                     "corr": sync.corr, "av_ms": 1000 * loud.lag_s,
                     "first_ms": 1000 * ((sync.first_motion or np.nan) - spawned),
                     "first_inproc_ms": 1000 * ((sync.first_motion or np.nan)
                                                - said["t_start"]),
                     "heard_ms": 1000 * (heard - spawned), "underruns": said["underruns"],
                     "synth_ms": 1000 * (said["t_open"] - said["t_start"]),
                     "sent_to_heard_ms": 1000 * (heard - said["t_first_audio"])})
        after = at + round(said["audio_s"] * RATE)
    print(f"date {dt.date.today()} machine {platform.node()} {os.cpu_count()} cpus, load "
          f"{os.getloadavg()[0]:.2f}; {args.size}px {args.fps} fps, {len(sentences)} sentences "
          f"x (timings, no timings); {'PipeWire' if args.pipewire else 'PulseAudio'}")
    for r in rows:
        print(f"  {'timings' if r['timings'] else 'audio  '} found {r['match']:.2f} | lips vs "
              f"phones {r['lag_ms']:+5.0f} ms (corr {r['corr']:.2f}) | A/V {r['av_ms']:+4.0f} ms"
              f" | say -> heard {r['heard_ms']:4.0f} ms, -> first mouth motion "
              f"{r['first_ms']:4.0f} ms ({r['first_inproc_ms']:4.0f} ms from say's start "
              f"after imports) | underruns {r['underruns']}")
    for timings in (True, False):
        sub = [r for r in rows if r["timings"] == timings]
        lag = np.array([r["lag_ms"] for r in sub])
        print(f"{'with timings' if timings else 'audio only  '}: lips vs phones median "
              f"{np.median(lag):+.0f} ms, max |{np.abs(lag).max():.0f}| ms, corr median "
              f"{np.median([r['corr'] for r in sub]):.2f}; say -> first mouth motion median "
              f"{np.nanmedian([r['first_ms'] for r in sub]):.0f} ms; say -> voice heard median "
              f"{np.median([r['heard_ms'] for r in sub]):.0f} ms (espeak-ng + connect "
              f"{np.median([r['synth_ms'] for r in sub]):.0f} ms; first audio sent -> heard "
              f"{np.median([r['sent_to_heard_ms'] for r in sub]):.0f} ms)")
    status = [ln for ln in err.splitlines() if "fps |" in ln]
    if status:
        print("daemon status: " + status[-1])


if __name__ == "__main__":
    main()
