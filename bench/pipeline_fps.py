"""Frames per second of the whole offline pipeline: audio -> Audio2Motion -> mixer -> warp.

    python bench/pipeline_fps.py [--size 512|1280x720] [--background photo|blur]
                                 [--seconds 30] [--mp4]

Streams the bundled demo clip (looped) through ``pipeline.run`` as ``avatar-vcam --source
file:...`` does, into a sink that drops the frames (or, with ``--mp4``, an H.264 + AAC
file), and prints one line with the date, machine, load and frames per second of wall
time and of this process's CPU time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from engine import Engine, EngineConfig
from engine.audio.decode import decode_audio
from engine.frames import AudioChunk
from vcam.render_loop import run
from vcam.sinks import Mp4Sink
from vcam.sources import demo_clip_path


class Drop:
    name = "drop"

    def send(self, frame) -> None:
        pass

    def audio(self, chunk) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="512", help="N or WIDTHxHEIGHT, e.g. 1280x720")
    ap.add_argument("--background", default="photo")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--mp4", action="store_true", help="encode an mp4 as well")
    args = ap.parse_args()
    clip, rate = decode_audio(demo_clip_path())
    pcm = np.resize(clip, round(args.seconds * rate))
    block = rate // 50
    chunks = [AudioChunk(i / rate, pcm[i:i + block], rate) for i in range(0, len(pcm), block)]
    with tempfile.TemporaryDirectory() as tmp, \
            Engine("leo", EngineConfig(fps=args.fps, size=args.size, seed=0,
                                       background=args.background)) as engine:
        sink = Mp4Sink(Path(tmp) / "bench.mp4") if args.mp4 else Drop()
        if args.mp4:
            sink.open(*engine.config.frame_size, args.fps)
        cpu0, t0 = time.process_time(), time.perf_counter()
        stats = run(engine, iter(chunks), [sink])
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        if args.mp4:
            sink.close()
    print(f"{dt.datetime.now():%Y-%m-%d %H:%M} {platform.node()} {os.cpu_count()} cpus "
          f"load {os.getloadavg()[0]:.2f}: {args.size} {args.background} "
          f"{'mp4' if args.mp4 else 'no sink'}, "
          f"{stats.frames} frames in {wall:.1f} s -> {stats.frames / wall:.0f} fps wall, "
          f"{1000 * cpu / stats.frames:.1f} ms CPU per frame "
          f"({stats.frames / cpu:.0f} fps per busy core)")


if __name__ == "__main__":
    main()
