"""Lip sync on real human voices: recordings that ship in registry packages.

The learned model is trained and evaluated on espeak-ng speech; users speak into
microphones. This checks both models on real recordings whose speech/silence layout is
known, with measures that need no phone labels:

- ``jaw_voiced``: mean ``jawOpen`` over voiced frames (a mouth that barely moves while a
  person talks reads as mumbling);
- ``r_energy``: correlation of ``jawOpen`` with log loudness inside speech (syllables);
- ``open_in_pauses``: fraction of frames in pauses (>= 0.3 s from any speech) with
  ``jawOpen`` > 0.2, and ``speaking_in_pauses`` for the speaking flag.

Sources (fetched once into a cache folder; both free to use):
- Debian/Ubuntu ``alsa-utils``: ``/usr/share/sounds/alsa/*.wav``, a studio voice saying
  "Front Left", "Rear Center"... (speech = frames within 20 dB of the clip's peak);
- the PyPI wheel ``pyannote.audio==4.0.7`` (MIT): ``pyannote/audio/sample/sample.wav``, 30 s
  of a two-person telephone conversation with utterance times in ``sample.stm``.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...audio.decode import decode_audio
from ..base import Audio2Motion

ALSA_SOUNDS = Path("/usr/share/sounds/alsa")
PYANNOTE = "pyannote.audio==4.0.7"
STEP = 0.02  # seconds between motion samples


@dataclass
class RealClip:
    name: str
    pcm: np.ndarray
    sr: int
    speech: np.ndarray  # bool per STEP frame: someone is talking
    voiced: np.ndarray  # bool per STEP frame: loud enough to be a syllable nucleus


def _frames_db(pcm: np.ndarray, sr: int, n: int) -> np.ndarray:
    hop = round(STEP * sr)
    x = np.zeros(n * hop, np.float32)
    x[: min(len(pcm), n * hop)] = pcm[: n * hop]
    rms = np.sqrt(np.mean(x.reshape(n, hop).astype(np.float64) ** 2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-7))


def alsa_clips(folder: Path = ALSA_SOUNDS) -> list[RealClip]:
    """The alsa-utils speaker-test voice (half a second of silence before each word)."""
    clips = []
    for wav in sorted(folder.glob("*.wav")):
        if wav.stem == "Noise":
            continue
        pcm, sr = decode_audio(wav)
        pcm = np.concatenate([np.zeros(sr // 2, np.float32), pcm, np.zeros(sr, np.float32)])
        n = int(len(pcm) / sr / STEP)
        db = _frames_db(pcm, sr, n)
        voiced = db > db.max() - 20
        speech = np.zeros(n, bool)
        idx = np.flatnonzero(voiced)
        speech[idx.min():idx.max() + 1] = True
        clips.append(RealClip(wav.stem, pcm, sr, speech, voiced))
    return clips


def fetch_pyannote_sample(cache: Path) -> Path:
    """``sample.wav`` + ``sample.stm`` from the pyannote.audio wheel (pip download, once)."""
    out = cache / "pyannote-sample"
    if (out / "sample.stm").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d",
                    str(cache), PYANNOTE], check=True)
    wheel = next(cache.glob("pyannote_audio-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        for name in ("sample.wav", "sample.stm"):
            (out / name).write_bytes(z.read(f"pyannote/audio/sample/{name}"))
    return out


def pyannote_clip(folder: Path) -> RealClip:
    pcm, sr = decode_audio(folder / "sample.wav")
    n = int(len(pcm) / sr / STEP)
    t = np.arange(n) * STEP
    speech = np.zeros(n, bool)
    for line in (folder / "sample.stm").read_text().splitlines():
        start, end = (float(v) for v in line.split()[3:5])
        speech |= (t >= start) & (t <= end)
    db = _frames_db(pcm, sr, n)
    return RealClip("pyannote-telephone", pcm, sr, speech, speech & (db > db.max() - 25))


def stream(model: Audio2Motion, pcm: np.ndarray, sr: int, n: int) -> tuple[np.ndarray,
                                                                          np.ndarray]:
    """(jawOpen, speaking) every STEP s, streaming 20 ms blocks as the live loop does."""
    block = sr // 50
    x = np.concatenate([pcm, np.zeros(sr, np.float32)])
    jaw, speaking, k = [], [], 0
    for i in range(0, len(x), block):
        model.push(x[i:i + block], i / sr, sr)
        while k < n and k * STEP <= model.ready_until():
            f = model.motion_at(k * STEP)
            jaw.append(f["jawOpen"])
            speaking.append(f.speaking)
            k += 1
    return np.array(jaw), np.array(speaking, bool)


def score(model: Audio2Motion, clip: RealClip) -> dict[str, float]:
    """The measures of the module docstring for one clip."""
    n = len(clip.speech)
    jaw, speaking = stream(model, clip.pcm, clip.sr, n)
    db = _frames_db(clip.pcm, clip.sr, n)
    near = np.convolve(clip.speech, np.ones(31), mode="same") > 0  # within 0.3 s of speech
    pauses = ~near
    inside = clip.speech
    r = float(np.corrcoef(jaw[inside], db[inside])[0, 1]) if inside.sum() > 2 else float("nan")
    return {
        "jaw_voiced": float(jaw[clip.voiced].mean()),
        "r_energy": r,
        "open_in_pauses": float((jaw[pauses] > 0.2).mean()) if pauses.any() else float("nan"),
        "speaking_in_pauses": float(speaking[pauses].mean()) if pauses.any() else float("nan"),
    }
