"""Frames per second of the ``warp`` renderer, plus a contact sheet to eyeball quality.

    python bench/warp_fps.py [--avatar leo] [--size 512] [--threads 2] [--seconds 3]
                             [--batches 1,8] [--device cpu|cuda] [--no-copy]
                             [--sheet /tmp/warp_sheet.png]

Animates every channel at once (all 52 blendshapes on smooth random curves up to 0.6,
yaw +-15, pitch +-10, roll +-8 degrees, tx/ty), so the mouth interior and the lash lines
are painted in most frames, and prints one line per batch size with frames/s, the
per-batch latency (median, 95th percentile), the date, the machine and the load average
(other processes share this CPU: compare runs only at similar load). ``--device cuda``
measures GPU batch throughput; ``--no-copy`` keeps frames on the device (no host copy).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from engine.avatar import load_avatar
from engine.motion import BLENDSHAPES, N_CHANNELS, vector
from engine.renderers.warp import WarpRenderer

AVATARS = Path(__file__).resolve().parents[1] / "avatars"

POSES: dict[str, dict[str, float]] = {
    "neutral": {},
    "jaw 0.3": {"jawOpen": 0.3},
    "jaw 0.7": {"jawOpen": 0.7},
    "jaw 1": {"jawOpen": 1.0},
    "jaw .6 close .6": {"jawOpen": 0.6, "mouthClose": 0.6},
    "funnel": {"mouthFunnel": 1.0, "jawOpen": 0.15},
    "pucker": {"mouthPucker": 1.0},
    "smile": {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0},
    "stretch": {"mouthStretchLeft": 1.0, "mouthStretchRight": 1.0, "jawOpen": 0.2},
    "upper up": {"mouthUpperUpLeft": 1, "mouthUpperUpRight": 1},
    "blink": {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0},
    "blink .5": {"eyeBlinkLeft": 0.5, "eyeBlinkRight": 0.5},
    "wink L": {"eyeBlinkLeft": 1.0},
    "brows up": {"browInnerUp": 1.0, "browOuterUpLeft": 1, "browOuterUpRight": 1},
    "brows down": {"browDownLeft": 1.0, "browDownRight": 1.0},
    "look left": {"eyeLookOutRight": 1.0, "eyeLookInLeft": 1.0},
    "yaw +8": {"yaw": 8.0, "jawOpen": 0.3},
    "yaw -8": {"yaw": -8.0},
    "pitch +6": {"pitch": 6.0},
    "roll +6 tx": {"roll": 6.0, "tx": 0.05},
}


def random_motion(n: int, seed: int = 0) -> np.ndarray:
    """Smooth random curves on every channel (blendshapes 0..1, pose a few degrees)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None] / 25.0
    f = rng.uniform(0.3, 2.0, (1, N_CHANNELS))
    ph = rng.uniform(0, 2 * np.pi, (1, N_CHANNELS))
    m = 0.5 + 0.5 * np.sin(2 * np.pi * f * t + ph)
    nb = len(BLENDSHAPES)
    m[:, :nb] *= 0.6
    m[:, nb:nb + 3] = (m[:, nb:nb + 3] - 0.5) * np.array([30.0, 20.0, 16.0])  # degrees
    m[:, nb + 3:] = (m[:, nb + 3:] - 0.5) * 0.06  # tx, ty
    return m.astype(np.float32)


def machine() -> str:
    """One-line description of the CPU and torch build."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} cpus, torch {torch.__version__} "
            f"threads={torch.get_num_threads()}, load {load:.2f}")


def bench(renderer: WarpRenderer, state, batch: int, seconds: float,
          copy: bool = True) -> tuple[float, float, float, float]:
    """(frames/s, median and 95th-percentile ms per batch, CPU ms per frame) for batches
    of ``batch``. CPU time is this process's own, so it hardly depends on other load:
    on a quiet core, 1000 / (CPU ms per frame) is the frame rate one thread reaches."""
    motion = random_motion(max(batch * 64, 256))
    sync = torch.cuda.synchronize if state.device.type == "cuda" else (lambda: None)

    def one(m: np.ndarray) -> None:
        if copy:
            renderer.render(state, m)
        else:
            renderer.render_tensor(state, m)
            sync()

    for k in range(3):  # warm-up
        one(motion[k * batch:(k + 1) * batch])
    times, i, t0, c0 = [], 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        j = (i * batch) % (len(motion) - batch)
        t = time.perf_counter()
        one(motion[j:j + batch])
        times.append(time.perf_counter() - t)
        i += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    ms = np.array(times) * 1000
    n = batch * len(times)
    return n / wall, *np.percentile(ms, [50, 95]), 1000 * cpu / n


def contact_sheet(renderer: WarpRenderer, state, path: Path, crop: float = 0.62) -> None:
    """Grid of named poses, cropped around the face, labelled."""
    motions = np.stack([vector(v) for v in POSES.values()])
    frames = renderer.render(state, motions)
    s = state.size
    eyes = state.lids_src.reshape(-1, 2).mean(0)
    mouth = state.lip_src.mean(0)
    cx, cy = float(0.5 * (eyes[0] + mouth[0])), float(0.5 * (eyes[1] + mouth[1]))
    half = int(crop * s / 2)
    box = (int(cx - half), int(cy - half * 0.9), int(cx + half), int(cy + half * 1.1))
    cols = 5
    rows = (len(frames) + cols - 1) // cols
    tw, th = box[2] - box[0], box[3] - box[1]
    sheet = Image.new("RGB", (cols * tw, rows * (th + 14)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (name, frame) in enumerate(zip(POSES, frames, strict=True)):
        im = Image.fromarray(frame).crop(box)
        x, y = (k % cols) * tw, (k // cols) * (th + 14)
        sheet.paste(im, (x, y + 14))
        draw.text((x + 3, y + 1), name, fill="black")
    sheet.save(path)


def main() -> None:
    """Parse arguments, time batch 1 and 8, write the contact sheet."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--avatar", default="leo")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    ap.add_argument("--no-copy", action="store_true", help="keep frames on the device")
    ap.add_argument("--sheet", default="/tmp/warp_sheet.png", help="'' for none")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    avatar = load_avatar(AVATARS / args.avatar)
    renderer = WarpRenderer(device=args.device, cpu_threads=args.threads)
    t0 = time.perf_counter()
    state = renderer.prepare(avatar, args.size)
    prep = time.perf_counter() - t0
    stamp = dt.datetime.now().isoformat(timespec="seconds")
    active = (np.abs(random_motion(256)) > 0.05).mean()
    print(f"{stamp} every channel animated: {100 * active:.0f}% of channel values > 0.05")
    for batch in (int(b) for b in args.batches.split(",")):
        fps, p50, p95, cpu = bench(renderer, state, batch, args.seconds,
                                   copy=not args.no_copy)
        print(f"{stamp} warp {args.avatar} {args.size}px batch={batch} {fps:7.1f} fps "
              f"({p50:.1f}/{p95:.1f} ms per batch p50/p95, CPU {cpu:.1f} ms/frame, "
              f"prepare {prep:.2f}s) on "
              f"{args.device}: {machine()}", flush=True)
    if args.sheet:
        contact_sheet(renderer, state, Path(args.sheet))
        print(f"contact sheet: {args.sheet}")


if __name__ == "__main__":
    main()
