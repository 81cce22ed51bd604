"""A stand-in for a third-party TTS program (tests of ``say --tts``): espeak-ng's library
speaks the text read on stdin into argv[1] as a WAV; with argv[2], its phone timings go
there as JSON in the schema of docs/tts-timings.md (alphabet "espeak")."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from speech import write_wav  # this folder is the script's own: first on sys.path

from engine.tts.espeak import Espeak


def main() -> None:
    text = sys.stdin.read()
    utt = Espeak.get().synth(text, voice="en-us", rate=170)
    write_wav(Path(sys.argv[1]), utt.pcm, utt.sr)
    if len(sys.argv) > 2:
        phones = [{"phone": p.name, "start": p.start, "end": p.end} for p in utt.phones]
        with open(sys.argv[2], "w") as f:
            json.dump({"alphabet": "espeak", "phones": phones}, f)


if __name__ == "__main__":
    main()
