"""The DSP lip-sync model on real human voices: the mouth moves with the syllables.

These recordings have no phone labels, so the measures follow loudness: the DSP model's
own principle. The default (learned) model follows phones, and its guard on real voices
is tests/test_lipsync_real_aligned.py, against force-aligned phones. Recordings: the
alsa-utils speaker-test voice (installed by .ci/run) and the 30 s telephone conversation
inside the pyannote.audio wheel (fetched from PyPI once).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from engine.audio2motion import make_audio2motion
from engine.audio2motion.training.real_voices import (
    ALSA_SOUNDS,
    alsa_clips,
    fetch_pyannote_sample,
    pyannote_clip,
    score,
)

sys.path.insert(0, str(Path(__file__).parent / "support"))
from needs import IN_CI  # noqa: E402


def check(s: dict[str, float], pauses: float) -> None:
    assert s["jaw_voiced"] > 0.35, f"mouth barely opens while a person talks: {s}"
    assert s["r_energy"] > 0.5, f"mouth does not follow the syllables: {s}"
    assert s["open_in_pauses"] < pauses, f"mouth open in pauses: {s}"


def test_dsp_model_on_the_alsa_speaker_test_voice():
    if not ALSA_SOUNDS.is_dir():
        msg = f"{ALSA_SOUNDS} missing (apt install alsa-utils; .ci/run does)"
        pytest.fail(msg) if IN_CI else pytest.skip(msg)
    clips = alsa_clips()
    assert len(clips) >= 6
    for clip in clips:
        check(score(make_audio2motion("dsp"), clip), pauses=0.05)


def test_dsp_model_on_a_telephone_conversation(tmp_path_factory):
    cache = Path(os.environ.get("AVATAR_VCAM_TEST_CACHE") or tmp_path_factory.mktemp("voices"))
    try:
        folder = fetch_pyannote_sample(cache)
    except Exception as e:  # no network to PyPI
        msg = f"cannot fetch the pyannote.audio sample from PyPI: {e}"
        pytest.fail(msg) if IN_CI else pytest.skip(msg)
    check(score(make_audio2motion("dsp"), pyannote_clip(folder)), pauses=0.15)
