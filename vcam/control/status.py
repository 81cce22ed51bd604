"""The live status line: fps, late/skipped frames, input level, D, A/V offset, state.

On a terminal it is one line redrawn a few times a second (rich); in a log (no
terminal) it prints a plain line every few seconds so unattended runs stay readable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text


def status_fields(stats: Any, runtime: dict[str, Any], engine: Any = None) -> dict[str, Any]:
    """Everything worth showing about a run, as plain values (also served by the API)."""
    out: dict[str, Any] = {}
    summary = getattr(stats, "summary", None)
    if summary is not None:
        out.update(summary())
    else:
        out.update({"frames": stats.frames, "audio_seconds": round(stats.audio_seconds, 2)})
    config = runtime.get("config")
    if config is not None:
        out.update({"renderer": runtime.get("renderer", config.renderer),
                    "size": list(config.frame_size), "target_fps": config.fps})
    source = runtime.get("source")
    if source is not None:
        out["source"] = source.name
        out["input"] = getattr(source, "state", "file")
        out["input_problem"] = getattr(source, "problem", None)
        out["input_losses"] = getattr(source, "losses", 0)
        level = getattr(source, "level_db", None)
        out["level_db"] = None if level is None else round(level, 1)
    voice = runtime.get("voice")
    out["voice_out"] = voice.endpoint.label if voice is not None else None
    out["delay_ms"] = round(1000 * voice.delay_s, 1) if voice is not None else None
    if voice is not None:
        out["voice_drift_samples"] = voice.stats.drift_samples
        out["voice_resyncs"] = voice.stats.resyncs
        out["voice_state"] = getattr(voice, "state", "live")
        out["voice_problem"] = getattr(voice, "problem", None)
        out["voice_losses"] = getattr(voice, "losses", 0)
        known = getattr(voice, "latency_measured", True)
        out["voice_latency_ms"] = (round(1000 * voice.output_latency, 1) if known
                                   and out["voice_state"] == "live" else None)
        if not getattr(voice, "av_known", True):  # never a figure from before the loss
            out["av_offset_ms"] = out["av_offset_sd_ms"] = None
    if source is not None and getattr(source, "live", False):
        if out.get("input") != "live" or not getattr(source, "latency_measured", True):
            out["e2e_delay_ms"] = None  # where the input is cannot be known now
        out["input_latency_ms"] = (round(1000 * source.input_latency, 1)
                                   if out.get("input") == "live"
                                   and getattr(source, "latency_measured", True) else None)
    out["sinks"] = runtime.get("sinks")
    from ..sinks.supervise import sink_states

    out["sink_problems"] = sink_states(runtime.get("outputs") or [])
    if source is not None and getattr(source, "live", False) or voice is not None:
        from ..live.audio_devices import alsa_messages

        out["audio_xruns"] = alsa_messages()
        from ..live.priority import summary as priorities

        out["priority"] = priorities()  # what the OS granted each live thread
    if engine is not None:
        out["expression"] = engine.expression
    return out


def format_line(f: dict[str, Any]) -> str:
    """One compact line of the fields a user watches."""
    parts = [f"{spec} {state}" for spec, state in (f.get("sink_problems") or {}).items()]
    parts.append(f"{f.get('fps', 0):4.1f} fps")
    parts.append(f"late {f.get('late', 0)} skipped {f.get('skipped', 0)}")
    if f.get("level_db") is not None:
        parts.append(f"in {f['level_db']:5.1f} dB")
    if f.get("input") == "lost":
        parts.append(f"INPUT LOST ({f.get('input_problem')}) - idling")
    if f.get("voice_state") == "lost":
        parts.append(f"VOICE OUT LOST ({f.get('voice_problem')}) - camera goes on")
    if f.get("delay_ms") is not None:
        parts.append(f"D {f['delay_ms']:.0f} ms")
        # measured or unknown: never the intended offset or one from before a loss
        av = f.get("av_offset_ms")
        parts.append("A/V ?" if av is None else f"A/V {av:+.1f} ms")
    if f.get("e2e_delay_ms") is not None:
        parts.append(f"in->cam {f['e2e_delay_ms']:.0f} ms")
    elif f.get("input") in ("live", "lost"):
        parts.append("in->cam ?")
    if f.get("audio_xruns"):
        parts.append(f"xruns {f['audio_xruns']}")
    if f.get("render_ms") is not None:
        parts.append(f"render {f['render_ms']:.1f} ms"
                     + (" HALF RATE" if f.get("half_rate") else ""))
    parts.append(f"{f.get('renderer', '?')}")
    if f.get("expression"):
        parts.append(f"expr {f['expression']}")
    parts.append("speaking" if f.get("speaking") else "quiet")
    return " | ".join(parts)


class StatusLine:
    """Redraws :func:`format_line` of ``fields()`` while a live run goes on."""

    def __init__(self, console: Console, fields: Callable[[], dict[str, Any]],
                 every_s: float = 0.25, log_every_s: float = 5.0) -> None:
        self.console = console
        self.fields = fields
        self.every_s = every_s if console.is_terminal else log_every_s
        self._next = 0.0
        self._live: Live | None = None

    def __enter__(self) -> StatusLine:
        if self.console.is_terminal:
            self._live = Live(Text(""), console=self.console, transient=True,
                              auto_refresh=False)
            self._live.__enter__()
        self._next = time.monotonic() + self.every_s
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def tick(self) -> None:
        """Cheap unless it is time to redraw."""
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every_s
        line = format_line(self.fields())
        if self._live is not None:
            self._live.update(Text(line), refresh=True)
        else:
            self.console.print(line, highlight=False, soft_wrap=True)

    def final(self) -> str:
        f = self.fields()
        return (f"{f.get('frames', 0)} frames for {f.get('audio_seconds', 0):.2f} s of audio; "
                + format_line(f))
