"""A synthetic lip-sync corpus: espeak-ng speech with phone timings, plus augmentation.

Training clips are random word sequences spoken by the *training* voices; the held-out set
(:func:`heldout_clips`) uses other voices and fixed sentences that never occur in training.
Augmentation (training only): level, resampling to 8-48 kHz, noise of several colours at
0-40 dB SNR, reverb, clipping, DC offset, and negative clips (noise, hum, synthetic music)
whose target is a closed, silent mouth; optionally speaker and channel augmentation
(:mod:`.speaker_aug`: vocal-tract-length warp, random EQ and tilt, breath noise, pitch
flutter, telephone band and mu-law) so that real voices look familiar; breaths, smacks and
knocks in pauses (:mod:`.pause_events`) that must leave the mouth shut. A second
synthesiser, source-filter vowel syllables (:func:`formant_clip`: glottal pulses through
formant resonators), keeps the model from learning espeak-ng's voice alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .espeak import Espeak, Phone
from .pause_events import add_pause_events
from .phones import target_curves
from .speaker_aug import breath, flutter, random_eq, telephone, vtl_warp

TRAIN_VOICES = ("en-us", "en", "en-gb-x-rp", "en-us-nyc", "en-gb-x-gbclan")
TRAIN_VARIANTS = ("", "+m1", "+m2", "+m3", "+m5", "+f1", "+f2", "+f5", "+klatt")
HELDOUT_VOICES = ("en-029", "en-gb-scotland", "en-gb-x-gbcwmd")
HELDOUT_VARIANTS = ("", "+f3", "+m4", "+f4", "+m7")
RATES = (8000, 11025, 16000, 22050, 24000, 44100, 48000)
PAUSE_EVENTS = 0.6  # share of augmented clips with breaths, smacks, sniffs, thumps in pauses

WORDS = """
a about above after again air all almost along also always am an and animal another answer
any apple are area around as ask at away baby back bad ball bank be bear beautiful because bed
been before began begin behind being below best better between big bird black blue boat body
book both bottom box boy bread break bring brother brown build bus busy but buy by call came
can car care carry cat catch change child choose city class clean clear close cloud cold come
common cook cool could country course cover cow cup cut dark day deep did different dinner do
doctor does dog done door down draw dream drink drive during each early earth easy eat egg
eight end enough even evening ever every eye face fact fall family far farm fast father feel
feet few field find fine fire first fish five floor fly food foot for form found four free
friend from front full fun game garden gave get girl give glass go good got great green ground
group grow had half hand happy hard has have he head hear heart heavy help her here high hill
him his hold home hope horse hot hour house how huge hundred idea if in inside is it job join
jump just keep key kind king kitchen knew know lady land large last late laugh learn leave left
less let letter life light like line list listen little live long look lot love low made make
man many map may me mean meet men might mile milk mind minute miss money moon more morning most
mother mountain mouth move much music must my name near need never new next nice night no noise
north nothing now number ocean of off often oh oil old on once one only open or other our out
over own page paper park part pass past pay people perhaps person pick picture piece place plan
plane plant play please point poor possible pull push put queen question quick quiet rain ran
reach read ready real red remember rest rich ride right river road rock room round rule run
said same saw say school sea second see seem sell send serve seven shape she ship shoe shop
short should show side sign simple since sing sister sit six size sky sleep slow small smile
snow so some song soon sound south speak spring stand star start stay step still stone stop
story street strong study such summer sun sure surprise table take talk tall teach tell ten
than thank that the their them then there these they thing think this those though thought
three through time tiny to today together told too took top touch town tree true try turn two
under until up upon us use usual very voice wait walk wall want warm was watch water wave way
we wear weather week well went were what wheel when where which while white who whole why wide
wife will wind window winter wish with without woman wonder wood word work world would write
yellow yes yet you young your zero zoo maybe baby bubble pepper member mumble people problem
bob pam mom pop pip bump map puppy hobby whisper mirror
""".split()

HELDOUT_SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
    "Bring me the map, maybe by Monday.",
    "My mum bought bamboo baskets in Bombay.",
    "Please pass the pepper and the butter, Bob.",
    "Open the window, then move the bump away.",
)


@dataclass
class Clip:
    """Audio ``pcm`` at ``sr`` Hz with its phones (times from the clip's start)."""

    pcm: np.ndarray
    sr: int
    phones: list[Phone]
    voice: str = ""
    text: str = ""

    def targets(self) -> np.ndarray:
        """(frames, N_OUT) target mouth curves at 100 frames/s covering the clip (jaw,
        close, funnel, pucker, stretch, speaking, roll)."""
        n = int(np.floor(len(self.pcm) / self.sr * 100)) + 1
        return target_curves(self.phones, n)


def _concat(parts: list[tuple[np.ndarray, list[Phone]]], sr: int, gaps: list[float]) -> tuple[
        np.ndarray, list[Phone]]:
    """Join utterances with silences ``gaps`` (len(parts) + 1 values: before, between, after)."""
    out, phones, t = [], [], 0.0
    for i, (pcm, ph) in enumerate(parts):
        z = np.zeros(round(gaps[i] * sr), np.float32)
        out.append(z)
        t += len(z) / sr
        phones.append(Phone("_", t - len(z) / sr, t))
        phones += [Phone(p.name, p.start + t, p.end + t) for p in ph]
        out.append(pcm)
        t += len(pcm) / sr
    z = np.zeros(round(gaps[-1] * sr), np.float32)
    phones.append(Phone("_", t, t + len(z) / sr))
    out.append(z)
    return np.concatenate(out), phones


def speak(sentences: list[str], voice: str, rate: int, pitch: int,
          gaps: list[float]) -> Clip:
    """Synthesise sentences one by one and join them with the given silences."""
    es = Espeak.get()
    parts = []
    for s in sentences:
        u = es.synth(s, voice, rate=rate, pitch=pitch)
        parts.append((u.pcm, u.phones))
    pcm, phones = _concat(parts, es.sr, gaps)
    return Clip(pcm, es.sr, phones, voice, " | ".join(sentences))


def random_sentence(rng: np.random.Generator) -> str:
    n = int(rng.integers(3, 12))
    words = [WORDS[i] for i in rng.integers(0, len(WORDS), n)]
    return " ".join(words).capitalize() + str(rng.choice([".", ".", ",", "?", "!"]))


def training_clips(n: int, seed: int = 0) -> Iterator[Clip]:
    """``n`` clean clips of 1-3 random sentences by random training voices, rates, pitches."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        voice = str(rng.choice(TRAIN_VOICES)) + str(rng.choice(TRAIN_VARIANTS))
        k = int(rng.integers(1, 4))
        gaps = list(rng.uniform(0.05, 1.2, k + 1))
        yield speak([random_sentence(rng) for _ in range(k)], voice,
                    rate=int(rng.integers(120, 240)), pitch=int(rng.integers(25, 80)), gaps=gaps)


def heldout_clips(n_voices: int | None = None, seed: int = 1) -> Iterator[Clip]:
    """The held-out set: every held-out voice and variant, two held-out sentences each."""
    rng = np.random.default_rng(seed)
    voices = [v + var for v in HELDOUT_VOICES for var in HELDOUT_VARIANTS][:n_voices]
    sent = list(HELDOUT_SENTENCES)
    for i, voice in enumerate(voices):
        pair = [sent[(2 * i) % len(sent)], sent[(2 * i + 1) % len(sent)]]
        yield speak(pair, voice, rate=int(rng.integers(130, 210)),
                    pitch=int(rng.integers(30, 70)), gaps=[0.6, 0.7, 0.8])


# ---------------------------------------------------------------- augmentation
def resample(x: np.ndarray, sr: int, new_sr: int) -> np.ndarray:
    """Band-limited resampling (scipy's polyphase filter)."""
    from math import gcd

    from scipy.signal import resample_poly

    if new_sr == sr:
        return x
    g = gcd(sr, new_sr)
    return resample_poly(x, new_sr // g, sr // g).astype(np.float32)


def coloured_noise(n: int, sr: int, rng: np.random.Generator, kind: str) -> np.ndarray:
    """Unit-RMS noise: white, pink (1/f), brown (1/f^2) or mains hum with harmonics."""
    if kind == "hum":
        t = np.arange(n) / sr
        f0 = rng.choice([50.0, 60.0])
        y = sum(rng.uniform(0.2, 1.0) / h * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6))
                for h in range(1, 8))
        y = y + 0.05 * rng.standard_normal(n)
    else:
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
        spec *= {"white": 1.0, "pink": f**-0.5, "brown": f**-1.0}[kind]
        y = np.fft.irfft(spec, n)
    return (y / (np.sqrt(np.mean(y**2)) + 1e-12)).astype(np.float32)


def synthetic_music(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Chords of harmonic tones with note envelopes plus noise-burst drums (no voice)."""
    t = np.arange(n) / sr
    y = np.zeros(n)
    note = rng.uniform(0.15, 0.6)
    for start in np.arange(0.0, n / sr, note):
        a, b = round(start * sr), min(n, round((start + note * rng.uniform(0.6, 1.6)) * sr))
        env = np.exp(-np.arange(b - a) / sr / rng.uniform(0.1, 0.8))
        for _ in range(int(rng.integers(1, 4))):
            f0 = 110.0 * 2 ** (rng.integers(0, 30) / 12)
            tone = sum(rng.uniform(0.1, 1) / h * np.sin(2 * np.pi * f0 * h * t[a:b])
                       for h in range(1, 6))
            y[a:b] += env * tone
        if rng.random() < 0.5:
            d = min(b - a, round(0.05 * sr))
            y[a : a + d] += rng.standard_normal(d) * np.exp(-np.arange(d) / (0.01 * sr))
    return (y / (np.abs(y).max() + 1e-9)).astype(np.float32)


def reverb(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Convolve with an exponentially decaying noise impulse response (RT60 0.15-0.8 s)."""
    from scipy.signal import fftconvolve

    rt60 = rng.uniform(0.15, 0.8)
    n = round(rt60 * sr)
    ir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
    ir[0] = 1.0 / rng.uniform(0.3, 1.0)  # the direct sound
    y = fftconvolve(x, ir)[: len(x)]
    return (y * np.abs(x).max() / (np.abs(y).max() + 1e-9)).astype(np.float32)


def speaker_channel(clip: Clip, rng: np.random.Generator) -> Clip:
    """Another speaker and microphone (:mod:`.speaker_aug`); phone times follow the warp."""
    x, sr, phones = clip.pcm.astype(np.float32), clip.sr, clip.phones
    if rng.random() < 0.8:
        sr, phones = vtl_warp(x, sr, phones, rng)
    if rng.random() < 0.3:
        x = flutter(x, rng)
    if rng.random() < 0.5:
        x = breath(x, sr, rng)
    if rng.random() < 0.7:
        x = random_eq(x, sr, rng)
    return Clip(x, sr, phones, clip.voice, clip.text)


def augment(clip: Clip, rng: np.random.Generator, speaker: float = 0.0) -> Clip:
    """One random distortion of a training clip; with probability ``speaker`` also another
    speaker/microphone (:func:`speaker_channel`, then 1 in 6 over a telephone line).
    Targets follow from the returned clip's phones (the speaker warp rescales time)."""
    if speaker and rng.random() < speaker:
        clip = speaker_channel(clip, rng)
        phone_line = rng.random() < 1 / 6
    else:
        phone_line = False
    x, sr = clip.pcm.astype(np.float32), clip.sr
    if rng.random() < PAUSE_EVENTS:
        x = add_pause_events(x, sr, clip.phones, rng)
    if rng.random() < 0.3:
        x = reverb(x, sr, rng)
    if phone_line:
        x, sr = telephone(x, sr, rng)
        new_sr = int(rng.choice([8000, 16000]))
    else:
        new_sr = int(rng.choice(RATES))
    x = resample(x, sr, new_sr)
    sr = new_sr
    peak_db = rng.uniform(-50, 0) if rng.random() < 0.9 else rng.uniform(0, 20)
    x = x * (10 ** (peak_db / 20) / (np.abs(x).max() + 1e-9))
    if rng.random() < 0.5:
        kind = str(rng.choice(["white", "pink", "brown", "hum"]))
        rms = np.sqrt(np.mean(x**2)) + 1e-9
        snr = rng.uniform(0, 40)
        x = x + coloured_noise(len(x), sr, rng, kind) * rms / 10 ** (snr / 20)
    if rng.random() < 0.1:
        x = x + rng.uniform(-0.3, 0.3)
    x = np.clip(x, -1.0, 1.0)
    return Clip(x.astype(np.float32), sr, clip.phones, clip.voice, clip.text)


# Source-filter vowels (a second synthesiser besides espeak-ng): (F1, F2, F3) Hz -> phone.
_VOWELS = {"A:": (730, 1090, 2440), "E": (530, 1840, 2480), "i:": (270, 2290, 3010),
           "O:": (570, 840, 2410), "u:": (300, 870, 2240), "@": (500, 1500, 2500),
           "V": (640, 1190, 2390), "I": (390, 1990, 2550)}


def formant_vowel(formants: tuple[float, float, float], dur: float, sr: int, f0: float,
                  rng: np.random.Generator) -> np.ndarray:
    """A glottal pulse train with jitter and vibrato through three formant resonators."""
    from scipy.signal import lfilter

    n = round(dur * sr)
    t = np.arange(n) / sr
    glide = np.linspace(1.0, rng.uniform(0.8, 1.2), n)  # intonation
    vib = 1 + rng.uniform(0, 0.03) * np.sin(2 * np.pi * rng.uniform(3, 7) * t)
    phase = np.cumsum(f0 * glide * vib) / sr
    src = np.diff(np.floor(phase), prepend=0.0)
    src = lfilter([1.0], [1.0, -rng.uniform(0.9, 0.99)], src)
    y = np.diff(src, prepend=0.0) + rng.uniform(0, 0.02) * rng.standard_normal(n)  # breath
    scale = rng.uniform(0.9, 1.2)  # vocal tract length
    for f, bw in zip(formants, (rng.uniform(60, 120), rng.uniform(80, 140), 170.0),
                     strict=True):
        r = np.exp(-np.pi * bw / sr)
        fc = min(f * scale, 0.45 * sr)
        y = lfilter([1 - r], [1.0, -2 * r * np.cos(2 * np.pi * fc / sr), r * r], y)
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / rng.uniform(0.01, 0.05))
    return (y / (np.abs(y).max() + 1e-9) * ramp).astype(np.float32)


def formant_clip(rng: np.random.Generator) -> Clip:
    """Syllables of source-filter vowels separated by silences (stop closures, pauses)."""
    sr = int(rng.choice(RATES))
    f0 = rng.uniform(80, 260)
    parts, phones, t = [], [], 0.0
    pre = rng.uniform(0.1, 1.0)
    parts.append(np.zeros(round(pre * sr), np.float32))
    phones.append(Phone("_", 0.0, pre))
    t = pre
    for _ in range(int(rng.integers(2, 9))):
        name = str(rng.choice(list(_VOWELS)))
        dur = rng.uniform(0.08, 0.6)
        v = formant_vowel(_VOWELS[name], dur, sr, f0, rng) * rng.uniform(0.3, 1.0)
        parts.append(v)
        phones.append(Phone(name, t, t + dur))
        t += dur
        gap = rng.uniform(0.04, 0.8)
        closure = "p" if gap < 0.15 else "_"
        parts.append(np.zeros(round(gap * sr), np.float32))
        phones.append(Phone(closure, t, t + gap))
        t += gap
    x = np.concatenate(parts)
    return Clip(x, sr, phones, "formant", "")


def negative_clip(rng: np.random.Generator) -> Clip:
    """A clip with no speech at all: noise, hum or music, between silences."""
    sr = int(rng.choice(RATES))
    dur = rng.uniform(2.0, 6.0)
    n = round(dur * sr)
    kind = str(rng.choice(["white", "pink", "brown", "hum", "music", "music"]))
    y = synthetic_music(n, sr, rng) if kind == "music" else coloured_noise(n, sr, rng, kind)
    y = y * 10 ** (rng.uniform(-50, -3) / 20) / (np.abs(y).max() + 1e-9)
    pre = np.zeros(round(rng.uniform(0, 1) * sr), np.float32)
    x = np.clip(np.concatenate([pre, y, pre[: len(pre) // 2]]), -1, 1).astype(np.float32)
    return Clip(x, sr, [Phone("_", 0.0, len(x) / sr)], "", kind)
