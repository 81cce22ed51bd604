"""``say --tts COMMAND``: any TTS program's audio and timings, read back (vcam.tts_command).

The TTS programs are real: espeak-ng's command line (audio only) and a small program over
espeak-ng's library that also writes phone timings (tests/support/fake_tts.py)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from engine.errors import EngineError
from vcam.tts_command import read_timings, synthesise

SUPPORT = Path(__file__).parent / "support"
sys.path.insert(0, str(SUPPORT))
from needs import require  # noqa: E402

FAKE = f"{shlex.quote(sys.executable)} {shlex.quote(str(SUPPORT / 'fake_tts.py'))}"


def test_espeak_command_line_gives_audio_without_timings() -> None:
    require("espeak-ng", "a TTS command line")
    s = synthesise("espeak-ng -w {wav} {text}", "Hello there, how are you?")
    assert s.kind == "" and s.items == []
    assert s.rate > 8000 and 0.8 < len(s.pcm) / s.rate < 4.0
    assert abs(s.pcm).max() > 0.05  # speech, not silence


def test_a_program_that_writes_timings(tmp_path: Path) -> None:
    require("espeak-ng", "the test TTS program's voice")
    s = synthesise(f"{FAKE} {{wav}} {{timings}}", "Peter Piper picked a peck.")
    assert s.kind == "phones" and s.alphabet == "espeak"
    names = [n for n, _, _ in s.items]
    assert names.count("p") >= 3 and all(e is None or e >= a for _, a, e in s.items)
    assert s.items[-1][1] <= len(s.pcm) / s.rate + 0.05  # timings on the audio's clock
    only_audio = synthesise(f"{FAKE} {{wav}}", "Peter Piper picked a peck.")
    assert only_audio.kind == "" and len(only_audio.pcm) == len(s.pcm)


@pytest.mark.parametrize(("command", "says"), [
    ("", "empty"),
    ("espeak-ng {text}", "must write its audio to {wav}"),
    ("no-such-tts-program -w {wav}", "was not found"),
    (f"{shlex.quote(sys.executable)} -c 'import sys; sys.exit(\"voice model missing\")' "
     "{wav}", "failed (exit status 1): voice model missing"),
    (f"{shlex.quote(sys.executable)} -c pass {{wav}}", "wrote no audio"),
    ("espeak-ng -w {wav} 'unclosed", "cannot be split"),
])
def test_bad_commands_are_one_line(command: str, says: str) -> None:
    with pytest.raises(EngineError) as e:
        synthesise(command, "hello")
    assert says in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(("data", "says"), [
    ("not json", "unreadable"),
    ("[1, 2]", "\"phones\" or \"visemes\""),
    ('{"alphabet": "klingon", "phones": []}', "alphabet 'klingon'"),
    ('{"phones": [{"phone": "p"}]}', "numeric \"start\""),
    ('{"visemes": [{"start": 0.1}]}', "needs a \"viseme\" name"),
    ("[" * 100 + "]" * 100, "unreadable"),
])
def test_bad_timings_files_are_one_line(tmp_path: Path, data: str, says: str) -> None:
    p = tmp_path / "t.json"
    p.write_text(data)
    with pytest.raises(EngineError) as e:
        read_timings(p)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_visemes_are_read(tmp_path: Path) -> None:
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"visemes": [{"viseme": "PP", "start": 0.1, "end": 0.18},
                                         {"viseme": "aa", "start": 0.18}]}))
    assert read_timings(p) == ("visemes", "arpabet", [("PP", 0.1, 0.18), ("aa", 0.18, None)])
