"""``avatar-vcam say TEXT``: speak through the running daemon with exact lips.

espeak-ng (its C library) synthesises the text with its phoneme events; the audio and the
phone timings go to the daemon's ``/v1/audio`` together, so the mouth follows the phones
and the voice reaches the virtual mic delay-matched as from a mic. ``--tts COMMAND`` uses
any other TTS program instead (:mod:`vcam.tts_command`), with its timings when it writes
them.
"""

from __future__ import annotations

import json
import time

import click

from engine.errors import EngineError

from .errors import user_errors

MAX_TEXT = 10_000


@click.command("say")
@click.argument("text")
@click.option("--voice", default="en-us", show_default=True,
              help="espeak-ng voice (list them: espeak-ng --voices), e.g. en-gb+f3.")
@click.option("--wpm", type=click.IntRange(80, 450), default=170, show_default=True,
              help="Speaking rate in words per minute.")
@click.option("--timings/--no-timings", default=True, show_default=True,
              help="Send espeak-ng's phone timings, which the lips follow exactly; without, "
                   "the lips follow the daemon's estimate from the audio.")
@click.option("--json", "as_json", is_flag=True, help="Print what was said as JSON "
              "(phones, and when the daemon played it on its clock).")
@click.option("--tts", "tts", metavar="COMMAND",
              help="Another TTS program: it writes the audio to {wav} (and phone or viseme "
                   "timings as JSON to {timings}, if it can); {text} is the text, also given "
                   "on stdin. E.g. --tts 'piper -m voice.onnx -f {wav}'. See "
                   "docs/tts-timings.md.")
@user_errors
def say_cmd(text: str, voice: str, wpm: int, timings: bool, as_json: bool,
            tts: str | None) -> None:
    """Speak TEXT through the running daemon (camera and virtual mic), lips exact."""
    t_start = time.monotonic()
    if not text.strip():
        raise EngineError("nothing to say: give TEXT, e.g. avatar-vcam say \"hello\"")
    if len(text) > MAX_TEXT:
        raise EngineError(f"TEXT has {len(text)} characters; say at most {MAX_TEXT} at once")
    from ..control.audio_client import AudioClient

    client = AudioClient.from_runtime_file()  # before synthesis: no daemon, no wait
    if tts is not None:
        from ..tts_command import synthesise

        speech = synthesise(tts, text)
        pcm, rate, alphabet = speech.pcm, speech.rate, speech.alphabet
        kind = speech.kind or "phones"
        phones = [(n, round(a, 6), None if b is None else round(b, 6))
                  for n, a, b in speech.items]
        source = "the TTS command's timings" if speech.kind else "the audio (no timings)"
    else:
        from engine.tts.espeak import Espeak

        utt = Espeak.get().synth(text, voice=voice, rate=wpm)
        pcm, rate, kind, alphabet = utt.pcm, utt.sr, "phones", "espeak"
        phones = [(p.name, round(p.start, 6), round(p.end, 6)) for p in utt.phones]
        source = "espeak-ng's phone timings"
    timings = timings and bool(phones)
    with client:
        t_open = time.monotonic()
        ready = client.open("f32le", rate, alphabet=alphabet)
        if timings:
            client.send_phones(phones, kind)
        t_sent = time.monotonic()
        client.stream(pcm)
        done = client.end()
    audio_s = len(pcm) / rate
    if as_json:
        click.echo(json.dumps({
            "text": text, "audio_s": round(audio_s, 6), "rate": rate,
            "phones": phones if timings else [], "timings": timings,
            "delay_ms": ready.get("delay_ms"), "started_pts": done.get("started_pts"),
            "ended_pts": done.get("ended_pts"), "underruns": done.get("underruns"),
            "t_start": t_start, "t_open": t_open, "t_first_audio": t_sent,
            "t_done": time.monotonic()}))
        return
    lips = f"lips from {source}" if timings else "lips from the audio"
    heard = (f"; the virtual mic hears it {ready['delay_ms']:.0f} ms later"
             if ready.get("delay_ms") else "")
    click.echo(f"said {audio_s:.2f} s of speech ({len(phones)} phones, {lips}){heard}")


def register(cli_group: click.Group) -> None:
    """Add `say` to the main group."""
    cli_group.add_command(say_cmd)
