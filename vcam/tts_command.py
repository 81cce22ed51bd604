"""Any text-to-speech program as the voice of ``avatar-vcam say --tts COMMAND``.

The command is split like a shell line (no shell runs it) and its placeholders are filled:
``{text}`` the text, ``{wav}`` the audio file it must write (any format the decoder reads),
``{timings}`` an optional JSON file of phone or viseme timings in the schema of
docs/tts-timings.md (``{"alphabet": "arpabet", "phones": [{"phone", "start", "end"}]}`` or
``{"visemes": [{"viseme", "start", "end"}]}``, seconds from the audio's start). The text is
also given on standard input, for programs such as piper that read it there. Without a
timings file the lips follow the daemon's estimate from the audio.
"""

from __future__ import annotations

import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import EngineError

TIMEOUT_S = 120.0
ALPHABETS = ("arpabet", "ipa", "espeak")
MAX_ITEMS = 100_000


@dataclass
class Speech:
    """What a TTS command produced: mono audio, and timings when it wrote any."""

    pcm: np.ndarray
    rate: int
    kind: str = ""  # "phones", "visemes" or "" (no timings)
    alphabet: str = "arpabet"
    items: list[tuple[str, float, float | None]] = field(default_factory=list)


def _fill(command: str, text: str, wav: Path, timings: Path) -> list[str]:
    try:
        parts = shlex.split(command)
    except ValueError as e:
        raise EngineError(f"--tts COMMAND cannot be split into words ({e}); quote it as in "
                          "a shell") from None
    if not parts:
        raise EngineError("--tts COMMAND is empty; e.g. --tts 'espeak-ng -w {wav} {text}'")
    if not any("{wav}" in p for p in parts):
        raise EngineError("--tts COMMAND must write its audio to {wav}, e.g. "
                          "--tts 'espeak-ng -w {wav} {text}'")
    return [p.replace("{text}", text).replace("{wav}", str(wav))
            .replace("{timings}", str(timings)) for p in parts]


def _items(raw: object, key: str, where: Path) -> list[tuple[str, float, float | None]]:
    """Validated (name, start, end) items of a timings file's list under ``key``."""
    if not isinstance(raw, list) or len(raw) > MAX_ITEMS:
        raise EngineError(f"{where}: '{key}s' must be a list of at most {MAX_ITEMS} items")
    out = []
    for i, it in enumerate(raw):
        if not isinstance(it, dict) or not isinstance(it.get(key), str):
            raise EngineError(f"{where}: item {i} of '{key}s' needs a \"{key}\" name")
        start, end = it.get("start"), it.get("end")
        if not isinstance(start, int | float) or (end is not None
                                                  and not isinstance(end, int | float)):
            raise EngineError(f"{where}: item {i} of '{key}s' needs a numeric \"start\" "
                              "(and \"end\", if given) in seconds")
        out.append((it[key], float(start), None if end is None else float(end)))
    return out


def read_timings(path: Path) -> tuple[str, str, list[tuple[str, float, float | None]]]:
    """(kind, alphabet, items) of a timings file written by a TTS command."""
    from engine import jsonfile

    try:
        data = jsonfile.read(path)
    except (OSError, ValueError) as e:
        raise EngineError(f"the TTS command's timings {path} are unreadable: "
                          f"{' '.join(str(e).split())}") from None
    if not isinstance(data, dict) or not ({"phones", "visemes"} & set(data)):
        raise EngineError(f"{path}: a timings file is an object with \"phones\" or "
                          "\"visemes\" (see docs/tts-timings.md)")
    alphabet = data.get("alphabet", "arpabet")
    if alphabet not in ALPHABETS:
        raise EngineError(f"{path}: alphabet {alphabet!r} is not one of {', '.join(ALPHABETS)}")
    if "phones" in data:
        return "phones", alphabet, _items(data["phones"], "phone", path)
    return "visemes", alphabet, _items(data["visemes"], "viseme", path)


def synthesise(command: str, text: str, timeout: float = TIMEOUT_S) -> Speech:
    """Run ``command`` for ``text`` and read back its audio (and timings, if written)."""
    from engine.audio.decode import decode_audio

    with tempfile.TemporaryDirectory(prefix="avatar-vcam-tts-") as tmp:
        wav, timings = Path(tmp) / "speech.wav", Path(tmp) / "timings.json"
        args = _fill(command, text, wav, timings)
        try:
            run = subprocess.run(args, input=text, text=True, capture_output=True,
                                 timeout=timeout, check=False)
        except FileNotFoundError:
            raise EngineError(f"the TTS command {args[0]!r} was not found; install it or give "
                              "its full path") from None
        except subprocess.TimeoutExpired:
            raise EngineError(f"the TTS command took longer than {timeout:g} s; "
                              "say less at once") from None
        if run.returncode != 0:
            last = (run.stderr.strip().splitlines() or ["no message"])[-1]
            raise EngineError(f"the TTS command failed (exit status {run.returncode}): "
                              f"{last[:300]}")
        if not wav.is_file() or wav.stat().st_size == 0:
            raise EngineError("the TTS command wrote no audio to {wav}; check that it writes "
                              "the file its {wav} placeholder names")
        pcm, rate = decode_audio(wav)
        if not timings.is_file():
            return Speech(pcm, rate)
        kind, alphabet, items = read_timings(timings)
        return Speech(pcm, rate, kind, alphabet, items)
