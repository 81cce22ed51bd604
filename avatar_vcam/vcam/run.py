"""`avatar-vcam` main job: build engine, source and sinks, run, report."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field

from rich.console import Console

from ..engine import Engine
from ..engine.config import EngineConfig
from .pipeline import RunStats, run
from .sinks import Mp4Sink, parse_sink
from .sources import parse_source


@dataclass
class RunOptions:
    """What to run: avatar, input, outputs and limits."""

    avatar: str = "leo"
    source: str = "demo"
    sinks: list[str] = field(default_factory=lambda: ["window"])
    duration: float | None = None
    realtime: bool = False
    expression: str = "neutral"


def run_main(config: EngineConfig, opts: RunOptions, console: Console) -> RunStats:
    """Run the pipeline with a progress line; Ctrl-C stops cleanly."""
    engine = Engine(opts.avatar, config)
    if opts.expression != "neutral":
        try:
            engine.set_expression(opts.expression, 0.0)
        except KeyError as e:
            from ..engine.errors import EngineError

            raise EngineError(str(e.args[0])) from None
    source = parse_source(opts.source, realtime=opts.realtime)
    sinks = [parse_sink(s, title=f"avatar-vcam - {engine.avatar.display_name}")
             for s in opts.sinks]
    opened = []
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        for s in sinks:
            s.open(config.size, config.size, config.fps)
            opened.append(s)
        console.print(f"[bold]{engine.avatar.display_name}[/] <- {source.name} -> "
                      f"{', '.join(opts.sinks)} ({config.renderer}, {config.size}px, "
                      f"{config.fps} fps)")
        with console.status("rendering") as status:
            def progress(st: RunStats) -> None:
                status.update(f"{st.audio_seconds:6.1f} s audio, {st.frames} frames, "
                              f"dropped {st.dropped}")

            stats = run(engine, source.chunks(), opened, duration=opts.duration,
                        live=opts.realtime, on_progress=progress,
                        should_stop=lambda: stop.is_set() or any(
                            getattr(s, "closed_by_user", False) for s in opened))
    finally:
        signal.signal(signal.SIGINT, previous)
        for s in opened:
            s.close()
        source.close()
        engine.close()
    render_fps = stats.frames / stats.render_seconds if stats.render_seconds else 0.0
    console.print(f"{stats.frames} frames for {stats.audio_seconds:.2f} s of audio in "
                  f"{stats.wall_seconds:.2f} s (render {render_fps:.0f} fps, "
                  f"dropped {stats.dropped})")
    for s in opened:
        if isinstance(s, Mp4Sink):
            console.print(f"wrote {s.path}")
    return stats
