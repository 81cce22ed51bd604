"""Fuzz worker: reads cases from a manifest, prints one JSON result line per case.

    python fuzz_worker.py MANIFEST.jsonl START PACKAGE_DIR

It does what the command does with each input, without the command's start-up cost:
audio through :func:`engine.audio.decode.decode_audio` (what ``--source file:`` calls) and
:func:`iter_audio_blocks`, avatar.json / landmarks.json through :func:`load_avatar` and the
``avatars`` listing. Outcomes: ``ok``; ``error`` (an EngineError: the command would print
its one ``Error:`` line); ``crash`` (any other exception: the command would print a
traceback). A signal kills the worker: the parent sees no line for that case, names it and
starts a new worker after it.
"""

from __future__ import annotations

import json
import shutil
import sys
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.audio.decode import decode_audio, iter_audio_blocks  # noqa: E402
from engine.avatar import load_avatar  # noqa: E402
from engine.errors import EngineError  # noqa: E402
from vcam.cli.main import _display_name  # noqa: E402

LEO = ROOT / "avatars" / "leo"


def _audio(path: Path) -> str:
    pcm, rate = decode_audio(path)
    if pcm.dtype != np.float32 or pcm.ndim != 1 or not len(pcm) or rate <= 0:
        raise AssertionError(f"bad decode: {pcm.dtype} {pcm.shape} at {rate} Hz")
    if not np.isfinite(pcm).all() or np.abs(pcm).max() > 1.0:
        raise AssertionError("decoded samples outside [-1, 1] or not finite")
    blocks = sum(len(c.pcm) for c in iter_audio_blocks(path, 0.02, 16000))
    return f"{len(pcm)} samples at {rate} Hz; {blocks} at 16 kHz"


def _package(folder: Path) -> Path:
    """A copy of leo to write mutated JSON into (the image is linked, not copied)."""
    pkg = folder / "pkg"
    if not pkg.is_dir():
        pkg.mkdir(parents=True)
        for f in LEO.iterdir():
            try:
                (pkg / f.name).hardlink_to(f)
            except OSError:
                shutil.copy2(f, pkg / f.name)
    for name in ("avatar.json", "landmarks.json"):
        (pkg / name).unlink(missing_ok=True)
        shutil.copy2(LEO / name, pkg / name)
    return pkg


def _json_doc(kind: str, path: Path, workdir: Path) -> str:
    pkg = _package(workdir)
    target = pkg / ("avatar.json" if kind == "avatar" else "landmarks.json")
    target.write_bytes(path.read_bytes())
    _, problem = _display_name(pkg, "pkg")  # the `avatars` listing of this package
    avatar = load_avatar(pkg)
    return f"loaded {avatar.name}" + (f" (listing: {problem})" if problem else "")


def run_case(case: dict, workdir: Path) -> dict:
    """One case -> {"index", "outcome", "detail"}."""
    path = Path(case["path"])
    try:
        detail = _audio(path) if case["kind"] == "audio" else \
            _json_doc(case["kind"], path, workdir)
        outcome = "ok"
    except EngineError as e:
        detail, outcome = str(e), "error"
        if "\n" in detail or not detail:
            outcome = "crash"
            detail = f"error message is not one line: {detail!r}"
    except Exception:  # noqa: BLE001 - the point: anything else is a failure to report
        outcome = "crash"
        detail = traceback.format_exc()[-1500:]
    return {"index": case["index"], "outcome": outcome, "detail": detail}


def main() -> None:
    manifest, start, workdir = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    cases = [json.loads(line) for line in manifest.read_text().splitlines()]
    for case in cases[start:]:
        print(json.dumps(run_case(case, workdir)), flush=True)


if __name__ == "__main__":
    main()
