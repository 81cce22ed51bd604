"""Drive the avatar from your own program: push audio as it comes, pull frames as they are
ready, change the expression on the way (see docs/sdk.md). tests/test_sdk_example.py runs
this file, so it stays in step with the engine.

    python docs/examples/talking_head.py [WAV] [--out DIR] [--seconds S]

Feeds WAV (default: the demo clip) in 20 ms blocks as a microphone or a TTS would, and
writes one PNG per second of video to DIR.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from PIL import Image

from engine import Engine, EngineConfig, Session
from engine.audio.decode import decode_audio

DEMO = Path(__file__).resolve().parents[2] / "vcam" / "assets" / "demo_speech.wav"


def main() -> None:
    """Render WAV with the bundled avatar leo and report the cost per frame."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wav", nargs="?", default=str(DEMO))
    ap.add_argument("--out", default="frames", help="folder for the PNGs")
    ap.add_argument("--seconds", type=float, default=None, help="use only the first S s")
    args = ap.parse_args()

    rate = 16000
    pcm, _ = decode_audio(args.wav, sample_rate=rate)  # mono float32, resampled
    if args.seconds is not None:
        pcm = pcm[: int(args.seconds * rate)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # seed: reproducible blinks and head motion; renderer "auto": LivePortrait on a GPU
    # with its weights installed, else the embedded warp renderer on the CPU.
    with Engine("leo", EngineConfig(seed=7)) as engine:
        session = Session(engine, sample_rate=rate)  # the clock: samples pushed / rate
        block = rate // 50  # 20 ms
        frames, busy = 0, 0.0
        for i in range(0, len(pcm), block):
            t0 = time.perf_counter()
            session.push(pcm[i : i + block])
            if i == 2 * rate:  # two seconds in: smile (blended over expression_blend_ms)
                engine.set_expression("smile")
            while (frame := session.pull()) is not None:  # every frame that is ready now
                if frame.index % engine.config.fps == 0:
                    Image.fromarray(frame.image).save(out / f"frame_{frame.index:05d}.png")
                frames += 1
            busy += time.perf_counter() - t0
        # the last look-ahead of audio has no frames yet: they come once more audio (or
        # silence) is pushed, as a live stream would.
        print(f"{frames} frames of {engine.config.frame_size[0]}x"
              f"{engine.config.frame_size[1]} ({len(pcm) / rate:.2f} s of audio), "
              f"{1000 * busy / max(frames, 1):.1f} ms per frame, PNGs in {out}")


if __name__ == "__main__":
    main()
