"""A fresh idle seed per run, so two avatars never blink together; --seed reproduces one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from engine import Engine, EngineConfig
from engine.motion import CHANNEL_INDEX

BLINK = CHANNEL_INDEX["eyeBlinkLeft"]
EXE = str(Path(sys.executable).parent / "avatar-vcam")


def blinks(engine: Engine, seconds: float = 30.0) -> np.ndarray:
    t = np.arange(0, seconds, 0.04)
    return np.array([engine.mixer.idle.blink_at(float(x)) for x in t]) > 0.5


def test_two_engines_without_a_seed_blink_at_different_times():
    a, b = (Engine("leo", EngineConfig(size=64)) for _ in range(2))
    assert a.seed != b.seed
    ba, bb = blinks(a), blinks(b)
    assert ba.any() and bb.any()
    assert np.mean(ba & bb) < 0.5 * min(ba.mean(), bb.mean())  # not together


def test_a_seed_reproduces_the_idle_life():
    a, b = (Engine("leo", EngineConfig(size=64, seed=1234)) for _ in range(2))
    assert a.seed == b.seed == 1234
    t = np.arange(0, 20, 0.04)
    va = np.stack([a.mixer.idle.value_at(float(x)) for x in t])
    vb = np.stack([b.mixer.idle.value_at(float(x)) for x in t])
    assert np.array_equal(va, vb) and np.array_equal(blinks(a), blinks(b))
    v = a.mixer.idle.value_at(3.0)[BLINK]
    assert v == b.mixer.idle.value_at(3.0)[BLINK]


def test_the_run_names_its_seed_and_seed_reproduces_it(tmp_path):
    def run(*extra: str) -> str:
        r = subprocess.run([EXE, "--source", "demo", "--duration", "0.2", "--size", "64",
                            "--sink", f"file:{tmp_path / 'o.mp4'}", *extra],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout + r.stderr

    assert "seed 42)" in run("--seed", "42")
    first, second = run(), run()
    seeds = [s.split("seed ")[1].split(")")[0] for s in (first, second)]
    assert seeds[0] != seeds[1]
    bad = subprocess.run([EXE, "--seed", "-1"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--seed" in bad.stderr
