"""Speech with phone timings from the espeak-ng C library (ctypes): ``avatar-vcam say``,
and the training corpus and evaluation.

espeak-ng reports a phoneme event (its ASCII mnemonic, e.g. ``oU``, and the output sample
where it starts) along with the audio it synthesises, so every clip comes with exact
ground-truth phone timings: no aligner needed. The library is the one Debian's
``espeak-ng`` package installs (``libespeak-ng.so.1``); only ``say`` and the corpus need it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from dataclasses import dataclass

import numpy as np

from ..audio2motion.phones import Phone
from ..errors import EngineError

_EV_LIST_TERMINATED = 0
_EV_PHONEME = 7
_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4
_POS_CHARACTER = 1
_CHARS_UTF8 = 1


class _Id(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _Id)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


@dataclass
class Utterance:
    """Synthesised speech: mono float32 ``pcm`` at ``sr`` Hz and its phone timings."""

    pcm: np.ndarray
    sr: int
    phones: list[Phone]


class Espeak:
    """The espeak-ng library, initialised once per process (it is global C state)."""

    _lock = threading.Lock()
    _instance: Espeak | None = None

    def __init__(self) -> None:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self._lib = ctypes.CDLL(name)
        except OSError:
            raise EngineError("espeak-ng library not found: install it "
                              "(Debian/Ubuntu: sudo apt install espeak-ng)") from None
        self.sr = int(self._lib.espeak_Initialize(_OUTPUT_SYNCHRONOUS, 0, None,
                                                  _INIT_PHONEME_EVENTS))
        if self.sr <= 0:
            raise EngineError("espeak-ng failed to initialise: reinstall espeak-ng-data")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[str, int]] = []
        self._cb = _CALLBACK(self._on_synth)  # keep a reference: C holds only the pointer
        self._lib.espeak_SetSynthCallback(self._cb)

    @classmethod
    def get(cls) -> Espeak:
        """The process-wide instance."""
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _on_synth(self, wav: ctypes.Array, n: int, events: ctypes.Array) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while events[i].type != _EV_LIST_TERMINATED:
            e = events[i]
            if e.type == _EV_PHONEME:
                self._events.append((e.id.string.decode("ascii", "replace"), int(e.sample)))
            i += 1
        return 0

    def synth(self, text: str, voice: str = "en-us", rate: int = 170, pitch: int = 50,
              pitch_range: int = 50) -> Utterance:
        """Speak ``text`` with ``voice`` (e.g. ``en-gb-x-rp+f3``), ``rate`` in words/min.

        Returns the audio and the phone list; a phone ends where the next one starts, the
        last one at the end of the audio.
        """
        with self._lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise EngineError(f"espeak-ng has no voice {voice!r}: list them with "
                                  "`espeak-ng --voices`")
            for p, v in ((_PARAM_RATE, rate), (_PARAM_PITCH, pitch),
                         (_PARAM_RANGE, pitch_range), (_PARAM_VOLUME, 100)):
                self._lib.espeak_SetParameter(p, int(v), 0)
            self._chunks, self._events = [], []
            data = text.encode("utf-8") + b"\0"
            self._lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8,
                                   None, None)
            self._lib.espeak_Synchronize()
            chunks, events = self._chunks, self._events
        pcm = (np.concatenate(chunks).astype(np.float32) / 32768.0 if chunks
               else np.zeros(0, np.float32))
        n = len(pcm)
        phones = []
        for i, (name, s) in enumerate(events):
            e = events[i + 1][1] if i + 1 < len(events) else n
            if e > s:
                phones.append(Phone(name, s / self.sr, min(e, n) / self.sr))
        return Utterance(pcm, self.sr, phones)
