"""Seeded mutations of the inputs avatar-vcam reads: audio file headers (WAV, MP3),
avatar.json / landmarks.json, and control API request bodies.

Everything is drawn from one ``random.Random(seed)``, so ``(seed, index)`` names a case
for good: a failure reproduces with the same seed. Valid seed files are built here (WAV
with the ``wave`` module or by hand, MP3 with PyAV's libmp3lame), never downloaded.
"""

from __future__ import annotations

import json
import random
import struct
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Values that tend to break parsers, per field width.
_U16 = (0, 1, 2, 3, 6, 7, 8, 9, 16, 63, 64, 65, 255, 256, 0x7FFF, 0x8000, 0xFFFF)
_U32 = (0, 1, 7, 3999, 4000, 8000, 16000, 44100, 48000, 768000, 768001, 0x7FFFFFFF,
        0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)
_FORMAT_TAGS = (0, 1, 2, 3, 6, 7, 0x11, 0x31, 0x50, 0x55, 0xFFFE, 0xFFFF)


@dataclass
class Case:
    """One fuzz case: ``kind`` is audio, avatar or landmarks; ``path`` the file to read."""

    index: int
    kind: str
    path: Path
    how: str  # the mutation, for the failure message

    def line(self) -> str:
        return json.dumps({"index": self.index, "kind": self.kind, "path": str(self.path),
                           "how": self.how})


# --- audio ---------------------------------------------------------------------------


def _tone(n: int, channels: int) -> np.ndarray:
    x = np.sin(np.arange(n) * 0.07) * 0.4
    return np.repeat(x[:, None], channels, axis=1)


def _wav_pcm(path: Path, channels: int, rate: int, width: int, seconds: float = 0.1) -> Path:
    scale = {1: 127, 2: 32767, 3: 8_388_607, 4: 2_147_483_647}[width]
    x = (_tone(int(rate * seconds), channels) * scale).astype(np.int64)
    if width == 1:
        data = (x + 128).astype(np.uint8).tobytes()
    elif width == 3:
        b = x.astype("<i4").tobytes()
        data = b"".join(b[i:i + 3] for i in range(0, len(b), 4))
    else:
        data = x.astype(f"<i{width}").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)
    return path


def _wav_custom(path: Path, channels: int, rate: int, tag: int, bits: int,
                data: bytes, extensible_mask: int | None = None) -> Path:
    """A WAV with any format tag (3: float; 0xFFFE: extensible with a channel mask)."""
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    if extensible_mask is not None:
        sub = struct.pack("<H", 3 if bits == 32 else 1) + b"\x00\x00\x00\x00\x10\x00\x80\x00" \
            b"\x00\xaa\x00\x38\x9b\x71"
        fmt += struct.pack("<HHI", 22, bits, extensible_mask) + sub
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def _mp3(path: Path, channels: int, rate: int) -> Path:
    import av

    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout=layout)
        x = _tone(rate // 5, channels).astype(np.float32)
        for i in range(0, len(x), 1152):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[i:i + 1152]).reshape(1, -1),
                                               format="flt", layout=layout)
            frame.sample_rate = rate
            for p in stream.encode(frame):
                out.mux(p)
        for p in stream.encode(None):
            out.mux(p)
    return path


def audio_seeds(folder: Path) -> list[Path]:
    """Valid audio files to mutate: PCM 8/16/24/32-bit, float, extensible 7.1, MP3."""
    folder.mkdir(parents=True, exist_ok=True)
    f32 = _tone(1600, 2).astype("<f4").tobytes()
    f32_8 = _tone(4800, 8).astype("<f4").tobytes()
    seeds = [
        _wav_pcm(folder / "mono16.wav", 1, 16000, 2),
        _wav_pcm(folder / "stereo16.wav", 2, 44100, 2),
        _wav_pcm(folder / "s71_16.wav", 8, 48000, 2),
        _wav_pcm(folder / "mono8.wav", 1, 8000, 1),
        _wav_pcm(folder / "stereo24.wav", 2, 48000, 3),
        _wav_pcm(folder / "ch6_32.wav", 6, 22050, 4),
        _wav_custom(folder / "float.wav", 2, 16000, 3, 32, f32),
        _wav_custom(folder / "ext71.wav", 8, 48000, 0xFFFE, 32, f32_8, extensible_mask=0x63F),
    ]
    try:
        seeds += [_mp3(folder / "mono.mp3", 1, 22050), _mp3(folder / "stereo.mp3", 2, 44100)]
    except Exception:  # noqa: BLE001 - an FFmpeg build without libmp3lame: WAV only
        pass
    return seeds


def _set(data: bytearray, offset: int, fmt: str, value: int) -> str:
    size = struct.calcsize(fmt)
    if offset + size <= len(data):
        data[offset:offset + size] = struct.pack(fmt, value)
    return f"{fmt}@{offset}={value}"


def _mutate_wav(data: bytearray, rng: random.Random) -> str:
    field = rng.choice(("channels", "rate", "bits", "tag", "align", "byterate", "datasize",
                        "riffsize", "fmtsize", "bytes", "truncate", "mask"))
    if field == "channels":
        return _set(data, 22, "<H", rng.choice(_U16))
    if field == "rate":
        return _set(data, 24, "<I", rng.choice(_U32))
    if field == "bits":
        return _set(data, 34, "<H", rng.choice(_U16))
    if field == "tag":
        return _set(data, 20, "<H", rng.choice(_FORMAT_TAGS))
    if field == "align":
        return _set(data, 32, "<H", rng.choice(_U16))
    if field == "byterate":
        return _set(data, 28, "<I", rng.choice(_U32))
    if field == "datasize":
        at = data.find(b"data")
        return _set(data, at + 4 if at >= 0 else 40, "<I", rng.choice(_U32))
    if field == "riffsize":
        return _set(data, 4, "<I", rng.choice(_U32))
    if field == "fmtsize":
        return _set(data, 16, "<I", rng.choice((0, 2, 14, 16, 18, 40, 0xFFFF, 0xFFFFFFFF)))
    if field == "mask":
        return _set(data, 40, "<I", rng.choice((0, 1, 3, 0x3F, 0x63F, 0xFFFFFFFF)))
    if field == "truncate":
        cut = rng.randrange(0, min(len(data), 80))
        del data[cut:]
        return f"truncate@{cut}"
    return _flip(data, rng, 64)


def _flip(data: bytearray, rng: random.Random, span: int) -> str:
    hits = []
    for _ in range(rng.randint(1, 6)):
        if not data:
            break
        i = rng.randrange(0, min(len(data), span))
        data[i] = rng.randrange(256)
        hits.append(i)
    return f"bytes@{hits}"


def _mutate_mp3(data: bytearray, rng: random.Random) -> str:
    syncs = [i for i in range(min(len(data), 8192) - 1)
             if data[i] == 0xFF and data[i + 1] & 0xE0 == 0xE0]
    choice = rng.random()
    if syncs and choice < 0.6:  # a frame header: version, layer, bitrate, rate, mode bits
        at = rng.choice(syncs[:8])
        for _ in range(rng.randint(1, 3)):
            j = at + rng.randrange(1, 4)
            if j < len(data):
                data[j] ^= 1 << rng.randrange(8)
        return f"frameheader@{at}"
    if choice < 0.8:
        return _flip(data, rng, 4096)
    cut = rng.randrange(0, min(len(data), 2048))
    del data[cut:]
    return f"truncate@{cut}"


def audio_cases(rng: random.Random, seeds: list[Path], folder: Path, n: int,
                start: int = 0) -> list[Case]:
    """``n`` mutated copies of the seed files (1-3 mutations each)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(n):
        seed = seeds[k % len(seeds)]
        data = bytearray(seed.read_bytes())
        mutate = _mutate_mp3 if seed.suffix == ".mp3" else _mutate_wav
        how = [mutate(data, rng) for _ in range(rng.randint(1, 3))]
        path = folder / f"a{start + k:04d}{seed.suffix}"
        path.write_bytes(bytes(data))
        out.append(Case(start + k, "audio", path, f"{seed.name}: {'; '.join(how)}"))
    return out


# --- JSON documents ------------------------------------------------------------------

_ODD_VALUES: list[object] = [
    None, True, False, 0, -1, 1e308, -1e308, 2**63, -(2**63) - 1, "", "x" * 5000, "../../etc",
    "/etc/passwd", "\u0000", "\udcff", [], {}, [1, 2, 3], {"a": 1}, [[[]]], 0.5, "source.png",
]


def _odd_value(rng: random.Random) -> str:
    """JSON text of an awkward value (also things json.dumps cannot make)."""
    r = rng.random()
    if r < 0.1:
        return rng.choice(("NaN", "Infinity", "-Infinity", "1e999", "-0", "1" * 5000))
    if r < 0.2:
        depth = rng.choice((33, 100, 999, 1001, 5000, 100_000))
        return "[" * depth + "]" * depth
    if r < 0.25:
        depth = rng.choice((33, 2000))
        return '{"a":' * depth + "1" + "}" * depth
    return json.dumps(rng.choice(_ODD_VALUES))


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every key path inside a JSON value (dict keys and list indices)."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:4]):
            out += _paths(v, (*prefix, i))
    return out


_MARK = "\u2063FUZZ\u2063"


def _replace_at(value: object, path: tuple) -> object:
    """``value`` with the item at ``path`` replaced by a marker string."""
    if not path:
        return _MARK
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: (_replace_at(v, rest) if k == head else v) for k, v in value.items()}
    return [(_replace_at(v, rest) if i == head else v) for i, v in enumerate(value)]


def mutate_json(text: str, rng: random.Random) -> tuple[str, str]:
    """A mutated JSON document and a short description of what was done."""
    value = json.loads(text)
    r = rng.random()
    if r < 0.55:  # swap one value (or a whole subtree) for an awkward one
        path = rng.choice(_paths(value))
        odd = _odd_value(rng)
        doc = json.dumps(_replace_at(value, path)).replace(json.dumps(_MARK), odd, 1)
        return doc, f"set {list(path)} = {odd[:40]}"
    if r < 0.65:  # drop a key
        paths = [p for p in _paths(value) if p and isinstance(p[-1], str)]
        path = rng.choice(paths)
        doc = json.dumps(_replace_at(value, path)).replace(f'"{path[-1]}": {json.dumps(_MARK)}',
                                                           '"_dropped": 0', 1)
        return doc, f"drop {list(path)}"
    data = bytearray(text.encode())
    if r < 0.8:
        return data.decode("utf-8", "replace") if rng.random() < 0.5 else \
            bytes(data).decode("latin-1"), _flip(data, rng, len(data))
    if r < 0.9:
        cut = rng.randrange(len(text))
        return text[:cut], f"truncate@{cut}"
    depth = rng.choice((40, 3000, 200_000))
    return "[" * depth + text, f"prefix {depth} '['"


def json_cases(rng: random.Random, base: Path, kind: str, folder: Path, n: int,
               start: int) -> list[Case]:
    """``n`` mutated copies of the JSON file ``base`` (kind: avatar or landmarks)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = base.read_text()
    out = []
    for k in range(n):
        doc, how = mutate_json(text, rng)
        path = folder / f"{kind[0]}{start + k:04d}.json"
        path.write_bytes(doc.encode("utf-8", "surrogatepass"))
        out.append(Case(start + k, kind, path, how))
    return out


# --- control API bodies --------------------------------------------------------------


def control_bodies(rng: random.Random, n: int, expressions: list[str]) -> list[tuple[str, bytes]]:
    """``n`` (path, body) pairs for POSTs to the control API."""
    good = json.dumps({"name": rng.choice(expressions)})
    out = []
    for _ in range(n):
        path = rng.choice(("/v1/expression", "/v1/expression", "/v1/scene", "/v1/nope"))
        r = rng.random()
        if r < 0.5:
            doc, _ = mutate_json(good, rng)
            body = doc.encode("utf-8", "surrogatepass")
        elif r < 0.7:
            body = json.dumps({"name": rng.choice(expressions)}).encode()
        elif r < 0.85:
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
        else:
            depth = rng.choice((7, 8, 9, 1000, 30_000))
            body = ('{"name":' + "[" * depth + "]" * depth + "}").encode()
        out.append((path, body))
    return out
