"""Learned Audio2Motion: phone-timed corpus, features, streaming == offline network, ONNX,
training smoke run, lip-sync quality of the shipped weights on held-out voices."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.audio2motion import make_audio2motion
from engine.audio2motion.features import (
    N_FEATURES,
    N_MELS,
    Normaliser,
    features,
    frame_powers,
    windows,
)
from engine.audio2motion.learned import WEIGHTS, LearnedAudio2Motion
from engine.audio2motion.stream import N_OUT, ROLL, SPEAK
from engine.audio2motion.tcn import export_onnx, torch_from_npz
from engine.audio2motion.training.corpus import Clip, heldout_clips, resample
from engine.audio2motion.training.espeak import Espeak
from engine.audio2motion.training.evaluation import Scores, stream_clip
from engine.audio2motion.training.phones import pose, target_curves
from engine.audio2motion.training.train import TrainConfig, build_dataset, fit, train
from engine.errors import EngineError


def _espeak_or_skip() -> Espeak:
    try:
        return Espeak.get()
    except EngineError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def speech() -> Clip:
    """Two held-out sentences by a held-out voice (espeak-ng, with phone timings)."""
    _espeak_or_skip()
    return next(heldout_clips(1))


def test_espeak_phone_timings() -> None:
    es = _espeak_or_skip()
    u = es.synth("Bob may pay.", "en-us", rate=150)
    names = [p.name for p in u.phones]
    assert names.count("b") == 2 and "m" in names and "p" in names
    starts = [p.start for p in u.phones]
    assert starts == sorted(starts) and u.phones[-1].end <= len(u.pcm) / u.sr + 1e-9
    # the first /b/ of "Bob" is a near-silent closure, the vowel after it is loud
    b = u.phones[names.index("b")]
    v = u.phones[names.index("b") + 1]
    rms = [np.sqrt(np.mean(u.pcm[round(p.start * u.sr) : round(p.end * u.sr)] ** 2))
           for p in (b, v)]
    assert rms[1] > 2 * rms[0]
    with pytest.raises(EngineError, match="voice"):
        es.synth("x", "no-such-voice")


def test_targets_from_phones(speech: Clip) -> None:
    t = speech.targets()
    assert t.shape == (math.floor(len(speech.pcm) / speech.sr * 100) + 1, N_OUT)
    assert t.min() >= 0 and t.max() <= 1
    assert t[:40].max() < 0.01  # the 0.6 s lead-in is silent
    for p in speech.phones:
        k = round((p.start + p.end) / 2 * 100)
        if p.name in ("p", "b", "m"):
            assert t[k, 0] == 0.0 and t[k, 1] == 1.0  # lips shut at the closure's centre
    assert pose("A:")[0] > pose("@")[0] > pose("i:")[0] > pose("m")[0] == 0.0
    assert pose("u:")[3] > 0.5 and pose("i:")[4] > 0.5
    assert pose("f")[5] > 0.5 and pose("v")[5] > 0.5 and pose("s")[5] == pose("A:")[5] == 0


def test_labiodental_targets_roll_the_lower_lip() -> None:
    u = _espeak_or_skip().synth("Five vivid fish have voices.", "en-us", rate=150)
    t = target_curves(u.phones, math.floor(u.phones[-1].end * 100) + 1)
    fv = [p for p in u.phones if p.name in ("f", "v")]
    assert len(fv) >= 4
    for p in fv:  # the lower lip tucks under the upper teeth, the jaw nearly shut
        k = round((p.start + p.end) / 2 * 100)
        assert t[k, ROLL] > 0.4 and t[k, 0] < 0.35
    vowels = [p for p in u.phones if pose(p.name)[0] >= 0.5]
    assert max(t[round((p.start + p.end) / 2 * 100), ROLL] for p in vowels) < 0.2
    assert target_curves([], 10).max() == 0.0


def test_features_do_not_depend_on_sample_rate(speech: Clip) -> None:
    ref = features(resample(speech.pcm, speech.sr, 16000), 16000)
    for sr in (22050, 48000):
        got = features(resample(speech.pcm, speech.sr, sr), sr)
        n = min(len(ref), len(got))
        assert np.median(np.abs(got[:n] - ref[:n])) < 0.05  # 1 dB in feature units
    assert ref.shape[1] == N_FEATURES and np.isfinite(ref).all()


def test_normaliser_is_streamable_and_levels_out(speech: Clip) -> None:
    bands = frame_powers(windows(speech.pcm, speech.sr, 500), speech.sr)
    whole = Normaliser()(bands)
    n = Normaliser()
    parts = np.concatenate([n(bands[a:b]) for a, b in ((0, 7), (7, 8), (8, 333), (333, 500))])
    np.testing.assert_allclose(parts, whole, atol=1e-6)
    quiet = features(speech.pcm * 0.01, speech.sr)  # -40 dB: same relative mel bands
    loud = features(speech.pcm, speech.sr)
    talk = loud[:, N_MELS + 1] > 1.0  # frames well above the floor
    assert np.median(np.abs(quiet[talk, 40] - loud[talk, 40])) < 0.05  # level re peak
    assert np.median(np.abs(quiet[talk, :40] - loud[talk, :40])) < 0.1


def test_streaming_equals_offline_network(speech: Clip) -> None:
    x, sr = speech.pcm, speech.sr
    model = torch_from_npz(WEIGHTS)
    with torch.no_grad():
        ref = torch.sigmoid(model(torch.from_numpy(features(x, sr)).T[None]))[0].numpy()
    for la_ms, head in ((0, 0), (60, 3), (200, 7)):
        m = LearnedAudio2Motion(la_ms)
        a = m._ahead  # noqa: SLF001
        assert model.dims.lookaheads[head] == a == round(m.lookahead * 100)
        rng = np.random.default_rng(la_ms)
        i = 0
        while i < len(x):
            b = int(rng.integers(1, 3000))
            m.push(x[i : i + b], i / sr, sr)
            i += b
        ks = np.arange(m._hist_end - 300, m._hist_end)  # noqa: SLF001
        got = m._hist[ks % m._cap][:, [0, 1, 2, 3, 4, ROLL]]  # noqa: SLF001
        net = ref[head][:, ks + a].T.copy()  # (frames, N_OUT)
        lo, hi = m.speech_gate  # shapes open as far as the net's speech head allows
        gate = np.clip((net[:, SPEAK] - lo) / (hi - lo), 0, 1)
        shapes = [0, 2, 3, 4, ROLL]
        net[:, shapes] *= gate[:, None]
        want = np.clip((net[:, [0, 1, 2, 3, 4, ROLL]] - m.dead_zone) / (1 - m.dead_zone), 0, 1)
        jaw = (net[:, 0] - m.jaw_dead_zone) / (1 - m.jaw_dead_zone)  # the jaw's own
        want[:, 0] = np.minimum(np.clip(jaw, 0, 1) * m.jaw_gain, 1.0)
        assert gate.min() < 0.5 < gate.max()  # the clip has speech and pauses
        np.testing.assert_allclose(got, want, atol=2e-5)


def test_lookahead_choice_and_bad_weights(tmp_path: Path) -> None:
    assert make_audio2motion("learned", 60).lookahead == pytest.approx(0.06)
    assert make_audio2motion("learned", 55).lookahead == pytest.approx(0.04)
    assert make_audio2motion("learned", 0).lookahead == 0.0
    assert make_audio2motion("learned", 500).lookahead == pytest.approx(0.2)
    with pytest.raises(EngineError, match="train-a2m"):
        LearnedAudio2Motion(weights=tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(EngineError, match="unreadable"):
        LearnedAudio2Motion(weights=bad)


@pytest.mark.parametrize("lookahead_ms", [0.0, 60.0, 200.0])
def test_learned_uses_no_audio_beyond_lookahead(speech: Clip, lookahead_ms: float) -> None:
    x, sr = speech.pcm, speech.sr
    y = x.copy()
    cut = round(3.0 * sr)
    y[cut:] = 0.0
    n = 600
    a = stream_clip(LearnedAudio2Motion(lookahead_ms), x, sr, n)
    b = stream_clip(LearnedAudio2Motion(lookahead_ms), y, sr, n)
    before = np.arange(n) / 100 <= 3.0 - lookahead_ms / 1000 + 1e-9
    np.testing.assert_allclose(a[before], b[before], atol=1e-6)
    assert np.abs(a[~before, 0] - b[~before, 0]).max() > 0.2  # they do differ afterwards


def test_onnx_export_matches_torch(tmp_path: Path, speech: Clip) -> None:
    ort = pytest.importorskip("onnxruntime")
    out = export_onnx(WEIGHTS, tmp_path / "a2m.onnx")
    f = features(speech.pcm, speech.sr)[None].transpose(0, 2, 1).copy()
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"features": f})[0]
    with torch.no_grad():
        want = torch.sigmoid(torch_from_npz(WEIGHTS)(torch.from_numpy(f))).numpy()
    assert got.shape == want.shape and got.shape[-1] == f.shape[-1]
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_tiny_training_run_learns_and_writes_usable_weights(tmp_path: Path) -> None:
    _espeak_or_skip()
    cfg = TrainConfig(clips=6, steps=60, batch=8, frames=128, channels=16, lr=1e-2)
    x, y = build_dataset(cfg, log=lambda _: None)
    assert x.shape[1] == N_FEATURES and len(x) == len(y) > 1000
    losses: list[str] = []
    _, final = fit(x, y, cfg, log=losses.append)
    first = float(losses[0].split("loss ")[1].split()[0])
    assert final < 0.8 * first, (first, final)
    out = train(TrainConfig(clips=3, steps=3, batch=4, frames=128, channels=16),
                tmp_path / "w.npz", log=lambda _: None)
    assert out.stat().st_size < 200_000
    m = make_audio2motion("learned", 60, weights=out)
    m.push(np.zeros(16000, np.float32), 0.0, 16000)
    assert m.ready_until() > 0.9 and math.isfinite(m.motion_at(0.5)["jawOpen"])


def test_shipped_weights_are_small_and_track_heldout_speech() -> None:
    _espeak_or_skip()
    assert WEIGHTS.stat().st_size < 2_000_000
    sc = Scores(lookahead=0.06)
    for clip in heldout_clips(3):
        sc.add(stream_clip(make_audio2motion("learned", 60), clip.pcm, clip.sr,
                           len(clip.targets())), clip)
    s = sc.summary()
    assert s["r_jaw"] > 0.8, s
    assert s["silence_closed"] == 1.0, s
    assert s["closure_recall"] >= 0.8, s
    assert abs(s["onset_lag_ms"]) <= 40, s


def test_train_a2m_command(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from vcam.cli.a2m import train_a2m

    _espeak_or_skip()
    out = tmp_path / "w.npz"
    res = CliRunner().invoke(train_a2m, ["--out", str(out), "--clips", "3", "--steps", "2",
                                         "--real", "none"])
    assert res.exit_code == 0, res.output
    assert out.is_file() and LearnedAudio2Motion(weights=out).lookahead == pytest.approx(0.06)
    extra = tmp_path / "rec"
    extra.mkdir()
    (extra / "take1.wav").write_bytes(b"RIFF")
    res = CliRunner().invoke(train_a2m, ["--out", str(out), "--clips", "3", "--steps", "2",
                                         "--real", "none", "--extra", str(extra)])
    assert res.exit_code == 1
    assert "take1.phones" in res.output and "Traceback" not in res.output


def test_learned_opens_on_source_filter_vowels_too() -> None:
    """Not only espeak-ng: vowels from the tests' own glottal-pulse + formant synthesiser."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "support"))
    from speech import syllables

    sr = 16000
    x = syllables(sr, [(0.8, 0.4), (1.8, 0.25), (2.4, 0.5)], 3.4, v="a")
    out = stream_clip(make_audio2motion("learned", 60), x, sr, 340)
    for start, dur in [(0.8, 0.4), (1.8, 0.25), (2.4, 0.5)]:
        a, b = round((start + 0.06) * 100), round((start + dur - 0.03) * 100)
        assert out[a:b, 0].min() > 0.3 and out[a:b, 5].all()
    assert out[:70, 0].max() < 0.02 and out[300:, 0].max() < 0.02
    for v in "iu":  # other vowels open the jaw less than /a/
        y = syllables(sr, [(0.5, 0.5)], 1.5, v=v)
        o = stream_clip(make_audio2motion("learned", 60), y, sr, 150)
        assert 0.1 < o[60:95, 0].mean() < out[88:115, 0].mean()
        shape = o[60:95].mean(axis=0)
        if v == "i":  # spread lips
            assert shape[4] > 0.3 and shape[3] < 0.1
        else:  # rounded lips
            assert shape[3] > 0.3 and shape[2] > 0.2 and shape[4] < 0.1


def test_a2m_choice_in_config_and_cli(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from engine.config import EngineConfig
    from vcam.cli.main import cli

    assert EngineConfig().a2m == "learned" and EngineConfig().lookahead_ms == 40.0
    assert EngineConfig(a2m="dsp").a2m == "dsp"
    with pytest.raises(ValueError, match="npz"):
        EngineConfig(a2m="bogus")
    own = tmp_path / "mine.npz"
    own.write_bytes(WEIGHTS.read_bytes())
    m = make_audio2motion(str(own), 60)
    assert isinstance(m, LearnedAudio2Motion) and m.lookahead == pytest.approx(0.06)
    res = CliRunner().invoke(cli, ["--a2m", str(tmp_path / "missing.npz"), "--duration", "1"])
    assert res.exit_code == 2 and "train-a2m" in res.output and "Traceback" not in res.output


def test_gaps_long_gaps_and_bounded_memory(speech: Clip) -> None:
    import tracemalloc

    x, sr = speech.pcm, speech.sr
    m = LearnedAudio2Motion(40)
    n = round(0.02 * sr)
    base = 0.0
    tracemalloc.start()
    try:
        for rep in range(20):  # 20 x 6.4 s of speech, each after a 0.5 s hole
            for i in range(0, len(x), n):
                m.push(x[i : i + n], base + i / sr, sr)
            base += len(x) / sr + 0.5
            if rep == 1:
                after = tracemalloc.get_traced_memory()[0]
        grown = tracemalloc.get_traced_memory()[0] - after
    finally:
        tracemalloc.stop()
    assert grown < 100_000, grown
    assert m._buf.size < sr  # noqa: SLF001
    assert m.ready_until() > base - 0.6
    for i in range(0, len(x), n):  # an hour later
        m.push(x[i : i + n], 3600.0 + i / sr, sr)
        if i == 20 * n:  # the hour in between reads as silence (within the kept history)
            assert m.ready_until() > 3600.3
            assert m.motion_at(3599.0)["jawOpen"] == 0.0 and not m.motion_at(3599.0).speaking
    assert m.ready_until() > 3600.0 + len(x) / sr - 0.1
    talk = [p for p in speech.phones if p.name == "A:" or p.name == "a"]
    assert talk and max(m.motion_at(3600.0 + (p.start + p.end) / 2)["jawOpen"]
                        for p in talk) > 0.4


@pytest.mark.parametrize("sr", [8000, 11025, 32000, 44100, 96000])
def test_sample_rates_give_similar_curves(speech: Clip, sr: int) -> None:
    ref_x = resample(speech.pcm, speech.sr, 16000)
    n = int(len(ref_x) / 16000 * 100)
    ref = stream_clip(LearnedAudio2Motion(40), ref_x, 16000, n)
    got = stream_clip(LearnedAudio2Motion(40), resample(speech.pcm, speech.sr, sr), sr, n)
    assert np.isfinite(got).all()
    assert np.corrcoef(got[:, 0], ref[:, 0])[0, 1] > 0.95
    assert np.abs(got[:, 0] - ref[:, 0]).mean() < 0.05


@pytest.mark.parametrize("sr", [8000, 16000, 48000])
def test_voicing_feature_tells_voice_from_breath(sr: int) -> None:
    """The last feature is periodicity: a 90-400 Hz pulse train reads voiced, noise (a
    breath, room) does not, at every rate."""
    rng = np.random.default_rng(sr)
    t = np.arange(sr) / sr
    f0 = 90.0 + 60.0 * t  # an intonation glide
    pulses = np.diff(np.floor(np.cumsum(f0) / sr), prepend=0.0)
    voice = np.convolve(pulses, np.exp(-np.arange(sr // 200) / (sr / 2000)), "same")
    voiced = features(voice.astype(np.float32) * 0.3, sr)[20:, -1]
    noise = features(rng.standard_normal(sr).astype(np.float32) * 0.05, sr)[20:, -1]
    assert np.median(voiced) > 0.8 and np.median(noise) < 0.35
    assert features(np.zeros(sr, np.float32), sr)[:, -1].max() == 0.0  # silence: 0
