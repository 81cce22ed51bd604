"""The project as pip installs it from a wheel, not from this checkout.

The suite itself runs on an editable install, which finds files in the checkout that a wheel
may lack (bundled avatars, the demo clip, the Audio2Motion weights). Here a real wheel is
built and installed (``pip install --target``, no dependencies: those of the test venv
serve), and the console script it brings runs the demo from a folder outside the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import av
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_FILES = ("avatars/leo/avatar.json", "avatars/leo/source.png", "avatars/grace/avatar.json",
              "vcam/assets/demo_speech.wav", "engine/audio2motion/weights/tcn_a2m.npz",
              "engine/capi/avatar_engine.h")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out),
                        str(ROOT)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    (whl,) = out.glob("avatar_vcam-*.whl")
    return whl


def test_wheel_holds_the_three_packages_and_their_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"engine", "vcam", "avatars"}
    for f in DATA_FILES:
        assert f in names, f"{f} missing from the wheel"
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "avatar-vcam = vcam.cli.entry:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_installed_wheel_runs_the_demo_outside_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                        str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    # the packages come from the installed wheel, not from the checkout's editable install
    where = subprocess.run(
        [sys.executable, "-c", "import engine, vcam, avatars; "
         "print(engine.__file__, vcam.__file__, avatars.__file__)"],
        capture_output=True, text=True, env=env, cwd=work, timeout=120)
    assert where.returncode == 0, where.stderr
    assert all(p.startswith(str(target)) for p in where.stdout.split()), where.stdout
    out = work / "x.mp4"
    run = subprocess.run([str(target / "bin" / "avatar-vcam"), "--source", "demo", "--sink",
                          f"file:{out.name}", "--duration", "1"],
                         capture_output=True, text=True, env=env, cwd=work, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    with av.open(str(out)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    assert frames == 25
