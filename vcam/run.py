"""`avatar-vcam` main job: build engine, source, sinks, voice output, control plane; run.

Offline (a file rendered as fast as it goes) uses :func:`.render_loop.run`; live sources,
``--realtime`` and a voice output use :func:`.live.presenter.run_live`. Everything opened is closed
in reverse order whatever happens; Ctrl-C (or SIGTERM) stops within a second.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape

from engine import Engine
from engine.audio2motion import make_audio2motion
from engine.audio2motion.timed import TimedAudio2Motion
from engine.config import EngineConfig
from engine.errors import EngineError

from .control.status import StatusLine, status_fields
from .errors import DeviceError
from .live.inject import AudioInjector, MixedSource
from .live.presenter import LiveStats, measure_render_s, run_live
from .live.voice_out import VoiceOut, default_delay
from .render_loop import RunStats, run
from .sinks import Mp4Sink, parse_sink
from .sinks.base import finish_or_abort
from .sinks.supervise import SupervisedSink
from .sources import parse_source
from .stopping import StopSignals


@dataclass
class RunOptions:
    """What to run: avatar, input, outputs, limits, voice output and control plane."""

    avatar: str = "leo"
    source: str = "demo"
    sinks: list[str] = field(default_factory=lambda: ["window"])
    duration: float | None = None
    realtime: bool = False
    expression: str = "neutral"
    voice_out: str | None = None  # device / sink name; None or "none": frames asap
    delay_ms: float | None = None  # None: measured (look-ahead + block + render + margin)
    control: bool = False
    control_port: int = 0
    obs: Any = None  # settings.ObsSettings or None


def run_main(config: EngineConfig, opts: RunOptions, console: Console,
             stop: StopSignals | None = None) -> RunStats | LiveStats:
    """Run the pipeline with a status line until the input ends, --duration, or Ctrl-C.

    ``stop``: the caller's signal handlers (installed before its own start-up work); else
    run_main installs them. A signal before the first frame raises
    :class:`~vcam.stopping.Interrupted` once everything opened is closed again.
    """
    with contextlib.ExitStack() as outer:
        if stop is None:
            stop = outer.enter_context(StopSignals())
        return _run(config, opts, console, stop)


def _run(config: EngineConfig, opts: RunOptions, console: Console,
         stop: StopSignals) -> RunStats | LiveStats:
    if opts.control:
        # before the engine loads or a device opens: a second daemon must say so, not fail
        # with 'camera busy' (ControlServer.start checks again, for a daemon started since)
        from .control.api import refuse_second_daemon

        refuse_second_daemon()
    # TTS timings sent with streamed audio drive the mouth where they play (issue 21)
    a2m = TimedAudio2Motion(make_audio2motion(config.a2m, lookahead_ms=config.lookahead_ms))
    engine = Engine(opts.avatar, config, audio2motion=a2m)
    if opts.expression != "neutral":
        try:
            engine.set_expression(opts.expression, 0.0)
        except KeyError as e:
            raise EngineError(str(e.args[0])) from None
    _check_obs_scenes(opts.obs, engine)
    voice_spec = None if opts.voice_out in (None, "", "none") else opts.voice_out
    # each output supervised: a failing one is reported and stopped or retried, the
    # others (and the voice) go on, and the run then ends with an error (exit status 1)
    sinks = [SupervisedSink(parse_sink(s, title=f"avatar-vcam - {engine.avatar.display_name}"),
                            s) for s in opts.sinks]
    # A camera or a window is watched as frames arrive: a file played there runs at the
    # pace of its audio, as --realtime does (unpaced, a clip flashed by in a blink).
    watched = any(getattr(s, "watched_live", False) for s in sinks)
    browser = next((s.sink for s in sinks if getattr(s.sink, "wants_alpha", False)), None)
    if browser is not None:  # --sink obs: frames carry the avatar over transparency
        if not opts.control:
            raise EngineError("--sink obs is served on the control API's port; drop "
                              "--no-control")
        engine.enable_matte()
    realtime = opts.realtime or voice_spec is not None or watched
    source = parse_source(opts.source, realtime=realtime)
    live = bool(getattr(source, "live", False) or realtime)
    for s in sinks:
        if isinstance(s.sink, Mp4Sink):  # a live recording keeps what was written if the
            s.sink.fragmented = live  # disk fills up (a file render can be run again)
    injector = getattr(source, "injector", None)  # pipe: has its own
    if live:  # programs may stream audio in over /v1/audio, mixed into the source's blocks
        if injector is None:
            injector = AudioInjector(source.sample_rate)
            source = MixedSource(source, injector)
        injector.timed = a2m
    with contextlib.ExitStack() as stack:
        stack.callback(engine.close)
        stack.callback(source.close)
        if hasattr(source, "open"):
            source.open()
        for s in sinks:
            # an error (or a stop during start-up) aborts an mp4: the file at its path
            # stays; pushed before open, so a signal inside open() leaves no partial file
            stack.push(lambda kind, _e, _tb, s=s: finish_or_abort(s, kind is not None))
            s.open(*config.frame_size, config.fps)
        voice = None
        delay_s = 0.0
        if voice_spec is not None:
            from .live.audio_devices import resolve_output

            render_s = measure_render_s(engine)
            block_s = getattr(source, "block", 480) / source.sample_rate
            delay_s = (opts.delay_ms / 1000 if opts.delay_ms is not None else
                       default_delay(engine.a2m.lookahead, block_s, render_s, config.fps))
            out = resolve_output(voice_spec)
            _refuse_feedback(source, out)
            voice = VoiceOut(out, source.sample_rate, delay_s)
            stack.callback(voice.close)  # before open: a stop inside it still closes it
            voice.open()
        if injector is not None:
            injector.delay_s = delay_s  # /v1/audio clients are told when they are heard
        runtime = {"source": source, "voice": voice, "delay_s": delay_s, "config": config,
                   "sinks": opts.sinks, "outputs": sinks, "renderer": engine.renderer.name}
        stats = LiveStats() if live else RunStats()
        def extra_status() -> dict[str, Any]:
            return {**status_fields(stats, runtime),
                    **({"browser": browser.status()} if browser is not None else {}),
                    **(injector.status() if injector is not None and live else {})}

        obs = _start_control(stack, engine, opts, extra_status, console,
                             audio_in=injector if live else None, browser=browser)
        console.print(_banner(engine, source, opts.sinks, voice, delay_s, config),
                      soft_wrap=True)
        should_stop = _stopper(stop.event, sinks, voice is not None)
        stop.running()  # start-up is over: a signal now ends the run between two frames
        if live:
            with StatusLine(console, lambda: status_fields(stats, runtime, engine)) as line:
                def on_tick(st: LiveStats) -> None:
                    if obs is not None:
                        obs.on_speaking(st.speaking, st.audio_seconds)
                    line.tick()

                capture_time = getattr(source, "capture_time", lambda pts: None)
                run_live(engine, source.chunks(), sinks, voice=voice, duration=opts.duration,
                         capture_time=capture_time, stats=stats, should_stop=should_stop,
                         on_tick=on_tick)
            console.print(line.final() + _early(stop, sinks, source, stats.audio_seconds,
                                                opts.duration, ";"), soft_wrap=True)
        else:
            with console.status("rendering") as status:
                def progress(st: RunStats) -> None:
                    status.update(f"{st.audio_seconds:6.1f} s audio, {st.frames} frames")

                stats = run(engine, source.chunks(), sinks, duration=opts.duration,
                            on_progress=progress, should_stop=should_stop)
            render_fps = stats.frames / stats.render_seconds if stats.render_seconds else 0.0
            console.print(f"{stats.frames} frames for {stats.audio_seconds:.2f} s of audio in "
                          f"{stats.wall_seconds:.2f} s (render {render_fps:.0f} fps)"
                          + _early(stop, sinks, source, stats.audio_seconds, opts.duration),
                          soft_wrap=True)
    for s in sinks:
        if isinstance(s.sink, Mp4Sink):
            if s.failed:  # said below, with what was kept
                continue
            if s.frames == 0 and stop.stopped:  # the user's stop came before a frame
                console.print(f"nothing written to {escape(str(s.path))}: stopped before the "
                              "first frame", soft_wrap=True)
                continue
            if s.frames == 0:
                raise EngineError(f"nothing written to {s.path}: not one frame was rendered "
                                  f"(give at least {config.frame_duration:g} s of audio)")
            console.print(f"wrote {escape(str(s.path))}", soft_wrap=True)
    failed = [s for s in sinks if s.failed]
    if failed:
        raise DeviceError("; ".join(_failure_text(s) for s in failed))
    return stats


def _failure_text(s: SupervisedSink) -> str:
    """What happened to a sink that failed, for the run's last line."""
    text = f"{s.spec} failed at {s.failed_at:.1f} s: {s.problem}"
    if s.state == "ok":
        text += f" (it came back; {s.failures} failure(s) in all)"
    elif s.state == "retrying":
        text += " (still failing at the end)"
    return text


def _banner(engine: Any, source: Any, sinks: list[str], voice: Any, delay_s: float,
            config: EngineConfig) -> str:
    """The run's first line, as rich markup; names the user chose are escaped."""
    voice_part = (f" + voice -> {escape(str(voice.endpoint.label))} "
                  f"(D {1000 * delay_s:.0f} ms)" if voice else "")
    return (f"[bold]{escape(str(engine.avatar.display_name))}[/] <- {escape(str(source.name))}"
            f" -> {escape(', '.join(sinks))}{voice_part}"
            f" ({escape(str(engine.renderer.name))} on {engine.renderer.device}, "
            f"{_size_text(config)}, {config.fps} fps, "
            f"seed {engine.seed})")


def _size_text(config: EngineConfig) -> str:
    w, h = config.frame_size
    return f"{w}px" if w == h else f"{w}x{h}"


def _obs_notify(console: Console) -> Any:
    """OBS controller messages (they quote scene names from OBS) -> the console."""
    def notify(msg: str) -> None:
        console.print(f"[yellow]OBS:[/] {escape(str(msg))}", soft_wrap=True)

    return notify


def _check_obs_scenes(obs: Any, engine: Engine) -> None:
    """Each --obs-scene SCENE=EXPRESSION names an expression this avatar has (a typo would
    otherwise surface only when that scene goes on program, as an error in OBS's log)."""
    known = engine.expressions
    for scene, expression in (getattr(obs, "scenes", None) or {}).items():
        if expression not in known:
            raise EngineError(f"--obs-scene {scene}={expression}: {engine.avatar.display_name} "
                              f"has no expression {expression!r}; known: {', '.join(known)}")


def _refuse_feedback(source: Any, out: Any) -> None:
    """The voice output must not be what the input listens to (the voice would echo)."""
    endpoint = getattr(source, "endpoint", None)
    heard = getattr(endpoint, "pulse_name", None)
    if out.pulse_name and heard in (out.pulse_name + ".monitor", out.pulse_name):
        raise EngineError(f"the input {heard} is the monitor of the voice output "
                          f"{out.pulse_name}, so the voice would loop; choose another "
                          "--source (e.g. device:NAME) or --voice-out")


def _early(stop: StopSignals, sinks: list, source: Any, done_s: float,
           duration: float | None, sep: str = ",") -> str:
    """', stopped before the input ended ...' when a signal or a closed window ended a
    file's run before its end (or --duration); '' otherwise (a live input has no end)."""
    closed = any(getattr(s, "closed_by_user", False) for s in sinks)
    if not (stop.stopped or closed) or getattr(source, "live", False):
        return ""
    total = getattr(source, "duration", None)
    end = min(x for x in (total, duration, float("inf")) if x is not None)
    if end != float("inf") and done_s >= end - 0.05:
        return ""  # it had reached the end anyway
    by = "the window was closed" if closed and not stop.stopped else f"{stop.name}"
    of = f" of {end:.2f} s" if end != float("inf") else ""
    return f"{sep} stopped early by {by} at {done_s:.2f} s{of}, before the input ended"


def _stopper(event: threading.Event, sinks: list, voice: bool = False) -> Any:
    """Stop on a signal, a closed window, or when no output is left (every sink stopped
    after a failure, and no voice output)."""
    def should_stop() -> bool:
        return (event.is_set() or any(getattr(s, "closed_by_user", False) for s in sinks)
                or (not voice and bool(sinks)
                    and all(getattr(s, "state", "ok") == "stopped" for s in sinks)))

    return should_stop


def _start_control(stack: contextlib.ExitStack, engine: Engine, opts: RunOptions,
                   extra_status: Any, console: Console, audio_in: Any = None,
                   browser: Any = None) -> Any:
    """Control API (and OBS controller) for this run; returns the OBS controller or None.

    ``audio_in``: the live run's :class:`~.live.inject.AudioInjector`, which ``/v1/audio``
    streams into (None: the route says this run takes no streamed audio)."""
    from .control.api import ControlServer, EngineTarget

    target = EngineTarget(engine, extra_status=extra_status)
    target.audio_in = audio_in
    target.switcher = _start_switcher(stack, engine, opts, console)
    obs = None
    if opts.obs is not None:
        from .control.obs import ObsController

        o = opts.obs
        obs = ObsController(o.url, o.password, target, scene_expressions=o.scenes,
                            talking_scene=o.talking_scene, idle_scene=o.idle_scene,
                            hold_s=o.hold_s, timeout=o.timeout,
                            notify=_obs_notify(console),
                            scene_avatars=getattr(o, "scene_avatars", None))
        target.obs = obs
        stack.callback(obs.close)
        obs.start()
    port = opts.control_port
    if browser is not None:  # the page's URL (port, token) outlives a restart
        from .control.api import control_dir
        from .sinks.browser import DEFAULT_PORT, page_token

        browser.token = page_token(control_dir())
        target.browser = browser
        port = port or DEFAULT_PORT
    if opts.control:
        server = ControlServer(target, port=port)
        stack.callback(server.close)  # before start: control.json goes even if stopped in it
        server.start()
        if browser is not None:
            from .control.page import page_url

            console.print(f"OBS browser source: {escape(page_url(server.port, browser.token))}"
                          , soft_wrap=True)
    return obs



def _start_switcher(stack: contextlib.ExitStack, engine: Engine, opts: RunOptions,
                    console: Console) -> Any:
    """Live avatar switching (``avatar-vcam avatar use``, OBS scenes and hotkeys): the worker
    that prepares the next avatar off the render thread; checks --obs-scene-avatar names."""
    from .control.obs_avatars import check_scene_avatars
    from .live.avatar_switch import AvatarSwitcher

    def notify(msg: str) -> None:
        console.print(escape(msg), soft_wrap=True)

    switcher = AvatarSwitcher(engine, notify=notify)
    try:
        check_scene_avatars(getattr(opts.obs, "scene_avatars", None) or {}, switcher.names())
    except KeyError as e:
        raise EngineError(str(e.args[0])) from None
    stack.callback(switcher.close)
    return switcher.start()
