"""The main command end to end, as a user runs it: audio file in, mp4 / camera / window out.

Speech is espeak-ng phrases between silences at known times, so each test knows where
the mouth must move and where it must stay closed, and can check A/V alignment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "support"))
from mouth import i420_frames, mouth_box, mouth_openness  # noqa: E402
from needs import require  # noqa: E402
from speech import phrases, write_wav  # noqa: E402

FPS = 25
SCRIPT = [(0.8, "hello there"), (2.4, "papa"), (3.5, "one more")]  # (start s, text)
TOTAL = 5.2
EXE = str(Path(sys.executable).parent / "avatar-vcam")


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> tuple[Path, list[tuple[float, float]]]:
    """(wav path, where speech is)."""
    require("espeak-ng", "speaks the test phrases")
    sr = 22050
    pcm, spans = phrases(sr, SCRIPT, TOTAL)
    return write_wav(tmp_path_factory.mktemp("audio") / "speech.wav", pcm, sr), spans


@pytest.fixture(scope="module")
def speech_wav(speech) -> Path:
    return speech[0]


def avatar_vcam(*args: str, env: dict | None = None, cwd: Path | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)


def check_mouth_follows_speech(openness: np.ndarray, spans: list[tuple[float, float]],
                               fps: int = FPS) -> None:
    """Opens during every phrase, closed well away from speech; one value per frame."""
    t = np.arange(len(openness)) / fps
    for start, end in spans:
        inside = (t >= start) & (t <= end)
        assert openness[inside].max() > 0.1, f"mouth never opens in the speech at {start} s"
        assert np.mean(openness[inside] > 0.05) > 0.3, f"mouth barely moves at {start} s"
    away = np.ones(len(t), bool)
    for start, end in spans:
        away &= (t < start - 0.2) | (t > end + 0.2)
    assert away.sum() > FPS, "the test needs silence"
    assert openness[away].max() < 0.05, "mouth open where there is no speech"


def lag_frames(a: np.ndarray, b: np.ndarray, max_lag: int = 6) -> int:
    """Lag (in frames) at which ``b`` best matches ``a``: > 0 means b comes later."""
    a = (a - a.mean()) / (a.std() + 1e-9)
    b = (b - b.mean()) / (b.std() + 1e-9)
    scores = {k: float(np.dot(a[max(0, -k): len(a) - max(0, k)],
                              b[max(0, k): len(b) - max(0, -k)])) for k in
              range(-max_lag, max_lag + 1)}
    return max(scores, key=scores.get)


def test_file_to_mp4_mouth_follows_the_voice_and_av_is_aligned(speech, tmp_path):
    speech_wav, spans = speech
    out = tmp_path / "out.mp4"
    r = avatar_vcam("--avatar", "leo", "--source", f"file:{speech_wav}", "--sink", f"file:{out}")
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}" in " ".join(r.stderr.split())
    box = mouth_box("leo", 512)
    with av.open(str(out)) as c:
        assert {s.type for s in c.streams} == {"video", "audio"}
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == round(TOTAL * FPS)
    assert frames[0].shape == (512, 512, 3)
    openness = np.array([mouth_openness(f, box) for f in frames])
    check_mouth_follows_speech(openness, spans)
    # The voice in the file, as a player decodes it (edit list applied), per video frame.
    with av.open(str(out)) as c:
        chunks, t0 = [], None
        for f in c.decode(audio=0):
            t0 = float(f.time) if t0 is None else t0
            chunks.append(f.to_ndarray().mean(axis=0))
        rate = c.streams.audio[0].rate
    voice = np.concatenate(chunks)
    start = round(-t0 * rate) if t0 < 0 else 0
    voice = voice[start:]
    spf = rate // FPS
    env = np.array([np.sqrt(np.mean(voice[k * spf:(k + 1) * spf] ** 2))
                    for k in range(len(frames))])
    assert abs(lag_frames(env, openness)) <= 1


def test_virtual_camera_through_pyvirtualcams_own_v4l2_backend(speech, tmp_path, fake_v4l2):
    """pyvirtualcam's native v4l2loopback code writes the frames a viewer would get."""
    speech_wav, spans = speech
    cam = tmp_path / "cam.yuv"
    r = avatar_vcam("--source", f"file:{speech_wav}", "--sink", "vcam:/dev/video10",
                    "--size", "256", env=fake_v4l2("/dev/video10", cam))
    assert r.returncode == 0, r.stderr
    y = i420_frames(cam, 256, 256)
    assert len(y) == round(TOTAL * FPS)
    box = mouth_box("leo", 256)
    check_mouth_follows_speech(np.array([mouth_openness(f, box) for f in y]), spans)


def test_virtual_camera_paced_by_the_audio_clock_without_asking(speech_wav, tmp_path,
                                                                fake_v4l2):
    """A camera is watched live: a file played to it runs at the pace of its audio without
    --realtime (README: `--source demo --sink vcam`), where an mp4 is written at once."""
    cam = tmp_path / "cam.yuv"
    t0 = time.monotonic()
    r = avatar_vcam("--source", f"file:{speech_wav}", "--sink", "vcam:/dev/video10",
                    "--size", "128", "--duration", "2", env=fake_v4l2("/dev/video10", cam))
    wall = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert len(i420_frames(cam, 128, 128)) == 2 * FPS
    assert wall > 2.0, "frames to a camera must take (at least) real time"
    t0 = time.monotonic()
    r = avatar_vcam("--source", f"file:{speech_wav}", "--sink", f"file:{tmp_path / 'o.mp4'}",
                    "--size", "128", "--duration", "2")
    assert r.returncode == 0 and time.monotonic() - t0 < wall, "an mp4 need not wait"


def test_preview_window_shows_the_avatar(speech_wav, tmp_path, xvfb_display):
    importer = require("import", "imagemagick screenshots the virtual display")
    env = {**os.environ, "DISPLAY": xvfb_display, "SDL_VIDEODRIVER": "x11"}
    proc = subprocess.Popen([EXE, "--source", f"file:{speech_wav}", "--sink", "window",
                             "--realtime", "--size", "256"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    shot = tmp_path / "shot.png"
    try:
        while "<-" not in proc.stderr.readline():  # the start line: the window is open
            assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.5)
        subprocess.run([importer, "-display", xvfb_display, "-window", "root", str(shot)],
                       check=True, timeout=20)
    finally:
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    from PIL import Image

    screen = np.asarray(Image.open(shot).convert("RGB"))
    from avatars import load

    face = np.asarray(Image.fromarray(load("leo").image).resize((256, 256))).astype(np.float32)
    # The window is the only thing on the black root window: crop it and compare.
    ys, xs = np.nonzero(screen.sum(axis=-1) > 0)
    assert len(ys), "nothing on the screen"
    window = screen[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32)
    assert window.shape == (256, 256, 3)
    assert np.abs(window - face).mean() < 10, "the window does not show the avatar"


def test_default_output_without_camera_or_display_is_an_mp4(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    r = avatar_vcam("--duration", "0.5", "--size", "128", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    written = list(tmp_path.glob("avatar-vcam-*.mp4"))
    assert len(written) == 1 and f"wrote {written[0].name}" in r.stderr.replace("\n", "")


BAD = {
    "corrupt audio": (["--source", "file:{corrupt}"], "corrupt or not audio"),
    "empty audio": (["--source", "file:{empty}"], "is empty"),
    "text file": (["--source", "file:{text}"], "not audio"),
    "missing audio": (["--source", "file:{missing}"], "not found"),
    "unknown source": (["--source", "nonsense"], "unknown source"),
    "unknown avatar": (["--avatar", "nobody"], "known avatars: grace, leo"),
    "escaping avatar": (["--avatar", "{escaping}"], "has no avatar.json"),
    "path-like name": (["--avatar", "a/b"], "does not exist"),
    "unwritable output": (["--sink", "file:{missing}/x.mp4"], "does not exist"),
    "not a video name": (["--sink", "file:{text}"], ".mp4"),
    "no display": (["--sink", "window"], "no display"),
    "no camera": (["--sink", "vcam:/dev/video63"], "modprobe v4l2loopback"),
    "unknown expression": (["--expression", "grumpy"], "known: "),
    "odd size": (["--size", "257"], "even"),
    "unknown device": (["--device", "bogus"], "unknown device 'bogus'"),
    "absent GPU": (["--device", "cuda:63"], "CUDA GPU"),
    "nan look-ahead": (["--lookahead-ms", "nan"], "not a finite number"),
    "nan delay": (["--delay-ms", "nan"], "not a finite number"),
    "OBS scene of no expression": (["--obs", "ws://127.0.0.1:9", "--obs-scene", "BRB=nosuch"],
                                   "has no expression 'nosuch'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_clear_line(case, tmp_path):
    from click.testing import CliRunner

    from vcam.cli.main import cli

    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + os.urandom(300))
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("hello\n")
    paths = {"corrupt": tmp_path / "corrupt.wav", "empty": tmp_path / "empty.wav",
             "text": tmp_path / "notes.txt", "missing": tmp_path / "missing",
             # A "../.." name that reaches a real folder which is no avatar, wherever the
             # checkout lies (a fixed "../../etc" only exists two levels below /).
             "escaping": os.path.relpath(tmp_path, os.getcwd())}
    args, expected = BAD[case]
    args = [a.format(**paths) for a in args]
    if "--sink" not in args:
        args += ["--sink", f"file:{tmp_path / 'ok.mp4'}"]
    env = {"DISPLAY": "", "WAYLAND_DISPLAY": ""}
    result = CliRunner().invoke(cli, args + ["--duration", "0.2"], env=env)
    assert result.exit_code != 0
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    message = " ".join(lines)
    assert expected in message, message
    assert "Traceback" not in message
    assert len(lines) <= 2 and lines[-1].startswith("Error:") or "Usage:" in message


def test_a_display_that_does_not_answer_is_one_clear_line(tmp_path):
    """A stale DISPLAY made SDL open an invisible window: the run "succeeded" and showed
    nothing, and with no --sink the frames went nowhere."""
    num = next(n for n in range(80, 90) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    env = {**os.environ, "DISPLAY": f":{num}"}
    r = avatar_vcam("--sink", "window", "--duration", "0.3", "--size", "128", env=env)
    assert r.returncode == 1 and f"DISPLAY=:{num} does not answer" in r.stderr, r.stderr
    r = avatar_vcam("--duration", "0.3", "--size", "128", env=env, cwd=tmp_path)
    assert r.returncode == 0 and list(tmp_path.glob("avatar-vcam-*.mp4")), r.stderr


def test_a_render_shorter_than_a_frame_says_so_and_claims_no_file(tmp_path):
    out = tmp_path / "o.mp4"
    r = avatar_vcam("--duration", "1e-9", "--size", "128", "--sink", f"file:{out}")
    assert r.returncode == 1 and "not one frame was rendered" in r.stderr, r.stderr
    assert "wrote" not in r.stderr and list(tmp_path.iterdir()) == []


def test_file_paths_may_start_with_a_tilde(tmp_path):
    """``file:~/x`` reaches the program unexpanded (the shell expands only a leading ~)."""
    from vcam.sources import demo_clip_path

    (tmp_path / "speech.wav").write_bytes(Path(demo_clip_path()).read_bytes())
    env = {**os.environ, "HOME": str(tmp_path)}
    r = avatar_vcam("--source", "file:~/speech.wav", "--sink", "file:~/o.mp4", "--duration",
                    "0.3", "--size", "128", env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o.mp4").stat().st_size > 0


def test_train_a2m_checks_what_would_fail_after_training(tmp_path):
    """Minutes of training were lost to an unwritable --out, found only at the end."""
    (tmp_path / "empty").mkdir()
    cases = [(["--out", "/proc/avatar-vcam-test.npz"], "cannot write /proc"),
             (["--out", str(tmp_path / "a.npz"), "--onnx", str(tmp_path / "no" / "a.onnx")],
              "does not exist"),
             (["--out", str(tmp_path / "a.npz"), "--extra", str(tmp_path / "empty")],
              "no NAME.wav recordings")]
    for args, expected in cases:
        t = time.monotonic()
        r = avatar_vcam("train-a2m", *args, "--clips", "3", "--steps", "1")
        assert r.returncode == 1 and expected in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and time.monotonic() - t < 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_verbose_shows_the_traceback(tmp_path):
    r = avatar_vcam("--avatar", "nobody", "--sink", f"file:{tmp_path / 'x.mp4'}", "-v")
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_help_on_every_command():
    from click.testing import CliRunner

    from vcam.cli.main import cli

    def walk(group, path):
        yield path
        for name, sub in getattr(group, "commands", {}).items():
            yield from walk(sub, [*path, name])

    for path in walk(cli, []):
        r = CliRunner().invoke(cli, [*path, "--help"])
        assert r.exit_code == 0 and "Usage:" in r.output, path


def test_mp4_player_tools_agree(speech_wav, tmp_path):
    """ffprobe (if present) reads the same duration as PyAV: the file is standard."""
    ffprobe = require("ffprobe", "an independent player's reading of the mp4")
    out = tmp_path / "o.mp4"
    assert avatar_vcam("--source", f"file:{speech_wav}", "--sink", f"file:{out}", "--size",
                       "128").returncode == 0
    dur = float(subprocess.run([ffprobe, "-v", "error", "-show_entries", "format=duration",
                                "-of", "csv=p=0", str(out)], capture_output=True, text=True,
                               check=True).stdout)
    assert dur == pytest.approx(TOTAL, abs=0.05)


def test_piped_tables_keep_whole_paths_and_commands(tmp_path):
    """Piped into a file, a table is not cut to 80 columns: paths and fix commands stay whole
    (rich ellipsises or wraps them otherwise, and a wrapped command cannot be pasted)."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["XDG_CACHE_HOME"] = str(tmp_path / ("a-cache-folder-with-a-rather-long-name" * 2))
    listed = avatar_vcam("models", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "liveportrait/retargeting_models/stitching_retargeting_module.pth" in listed.stdout
    assert "…" not in listed.stdout
    doctor = avatar_vcam("doctor", env={**env, "PULSE_SERVER": str(tmp_path / "none")})
    assert "doctor" not in doctor.stderr, doctor.stderr  # no usage error
    from vcam.cli.live_setup import find_cameras

    fix = [ln for ln in doctor.stdout.splitlines() if "v4l2loopback" in ln]
    if not find_cameras():  # no camera here (CI has none): its fix is on one line
        assert fix and "sudo modprobe v4l2loopback devices=1 exclusive_caps=1" in fix[0], fix


def test_names_with_rich_markup_are_printed_as_typed(tmp_path):
    """A display name is free text: '[/x]' or '[bold]' in it is shown, not parsed as
    rich markup (which raised MarkupError)."""
    import json
    import shutil

    from avatars import available

    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}
    mine = tmp_path / "avatar-vcam" / "avatars" / "marked"
    shutil.copytree(available()["leo"][0], mine)
    meta = json.loads((mine / "avatar.json").read_text())
    meta.update(name="marked", display_name="Dr [/x] [bold]Leo[/bold]")
    (mine / "avatar.json").write_text(json.dumps(meta))
    listed = avatar_vcam("avatars", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "Dr [/x] [bold]Leo[/bold]" in listed.stdout
