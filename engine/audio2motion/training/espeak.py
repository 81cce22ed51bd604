"""espeak-ng through ctypes: moved to the run-time :mod:`engine.tts.espeak` (``avatar-vcam
say`` speaks with it); re-exported here for the corpus, training and evaluation."""

from __future__ import annotations

from ...tts.espeak import Espeak, Phone, Utterance  # noqa: F401
