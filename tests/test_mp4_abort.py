"""A render that fails part-way keeps the file already at the output path (it used to be
replaced by the frames rendered so far), and leaves no unfinished file behind."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from engine import Engine, EngineConfig
from engine.frames import VideoFrame
from vcam.sinks.base import writing
from vcam.sinks.mp4 import Mp4Sink

OLD = b"an earlier recording"


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if ".partial" in p.name]


def test_a_block_that_raises_aborts_and_one_that_ends_finishes(tmp_path):
    out = tmp_path / "take.mp4"
    out.write_bytes(OLD)
    sink = Mp4Sink(out)
    sink.open(64, 64, 25)
    with pytest.raises(RuntimeError), writing(sink):
        for k in range(10):
            sink.send(VideoFrame(k / 25, k, np.zeros((64, 64, 3), np.uint8)))
        raise RuntimeError("the renderer failed")
    assert out.read_bytes() == OLD and not _leftovers(tmp_path)
    sink = Mp4Sink(out)
    sink.open(64, 64, 25)
    with writing(sink):
        for k in range(10):
            sink.send(VideoFrame(k / 25, k, np.zeros((64, 64, 3), np.uint8)))
    assert out.read_bytes() != OLD and out.stat().st_size > 1000


def test_a_run_that_fails_part_way_keeps_the_existing_mp4(tmp_path, monkeypatch):
    from vcam.run import RunOptions, run_main

    out = tmp_path / "talk.mp4"
    out.write_bytes(OLD)
    calls = {"n": 0}
    render = Engine.render

    def failing(self, motions):
        calls["n"] += 1
        if calls["n"] > 20:
            raise RuntimeError("out of GPU memory")
        return render(self, motions)

    monkeypatch.setattr(Engine, "render", failing)
    opts = RunOptions(source="demo", sinks=[f"file:{out}"], control=False)
    with pytest.raises(RuntimeError, match="out of GPU memory"):
        run_main(EngineConfig(size=64), opts, Console(quiet=True))
    assert calls["n"] > 20, "the run ended before the failure"
    assert out.read_bytes() == OLD and not _leftovers(tmp_path)


def test_an_idle_preview_that_fails_keeps_the_existing_video(tmp_path):
    from avatars import load
    from vcam.avatar_preview import idle_video

    class Failing:
        def __init__(self, renderer):
            self.renderer, self.batches = renderer, 0

        def render(self, state, motions):
            self.batches += 1
            if self.batches > 2:
                raise RuntimeError("renderer failed")
            return self.renderer.render(state, motions)

    out = tmp_path / "idle.mp4"
    out.write_bytes(OLD)
    with Engine("leo", EngineConfig(size=64)) as engine:
        failing = Failing(engine.renderer)
        with pytest.raises(RuntimeError):
            idle_video(failing, engine._state, load("leo"), 64, out, seconds=2.0)
    assert failing.batches == 3
    assert out.read_bytes() == OLD and not _leftovers(tmp_path)
