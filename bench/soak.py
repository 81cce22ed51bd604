"""Soak and fault run of the live daemon, measured from the outside (issue 20).

    python bench/soak.py --minutes 60 [--size 128] [--pipewire] [--json out.json]

Starts a private sound server (tests/support/pulse_server.py: null sinks ``sysaudio``
and ``avatar_mic``) and ``avatar-vcam --source system --sink vcam:/dev/video10 --sink
file:rec.mp4 --voice-out avatar_mic --control`` with pyvirtualcam writing through the v4l2
shim into a FIFO (a reader process measures the lips of every frame; the shim stamps each
frame's arrival). Speech plays into ``sysaudio`` in a loop; the virtual mic's monitor and
the played audio are recorded with monotonic times. Faults are injected in turn: input
and voice-out sink unload/reload, SIGSTOP 2 s, camera writes failing (shim flag file),
a full disk under the mp4 (RLIMIT_FSIZE set on the running daemon with prlimit, once),
a CPU hog (two busy processes), a slow-connection flood (tests/support/flood.py).

Measured: A/V offset (lips vs the virtual mic) and input->camera delay (lips vs what was
played) per 20-s window without a fault, drift (last windows vs first), camera gaps,
RSS growth, recovery per fault, and whether the daemon's voice ever played on another
sink (``pactl subscribe`` + its sink inputs). Prints a markdown table for BENCHMARKS.md
and the verdict; exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SUPPORT = ROOT / "tests" / "support"
sys.path.insert(0, str(SUPPORT))
from avsync import av_lag  # noqa: E402

RATE = 16000  # recordings (parecord resamples): an hour of two recorders stays small
SCRIPT = [(0.3, "hello there, how are you"), (2.6, "papa bought a map"),
          (4.8, "one more time, please")]
FAULTS = ("input_reload", "voice_reload", "sigstop", "camera_fail", "disk_full", "flood",
          "hog")


@dataclass
class Fault:
    """One injected fault: when, and what the outside saw."""

    kind: str
    start: float
    end: float = 0.0
    recovery_s: float | None = None  # fault end -> healthy again (None: never)
    max_gap_ms: float = 0.0  # longest camera gap from the start to 3 s after the end
    note: str = ""
    e2e_ms: float | None = None  # hog: input -> camera from the outside, during the hog
    gaps_over_3: int = 0  # hog: camera gaps longer than 3 frames during it


@dataclass
class Report:
    minutes: float
    load: list[float] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    windows: list[dict] = field(default_factory=list)
    rss_mb: list[tuple[float, float]] = field(default_factory=list)
    wrong_device: list[str] = field(default_factory=list)
    rc: int | None = None
    last_line: str = ""
    idle_delay_ms: float | None = None


# -- the camera reader (a process of its own) ---------------------------------------------
def read_camera(fifo: str, out: str, size: int) -> None:
    """Read I420 frames from ``fifo`` (re-opened after each writer closes) and append
    each frame's lip openness (float32) to ``out``."""
    from mouth import mouth_box

    box = mouth_box("leo", size)
    n = size * size * 3 // 2
    with contextlib_suppress():
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(20))  # a prompt reader
    with open(out, "ab", buffering=0) as sink:
        while True:
            with open(fifo, "rb", buffering=0) as f:
                buf = b""
                while True:
                    data = f.read(n - len(buf))
                    if not data:
                        break  # the writer closed (camera re-opened): wait for it again
                    buf += data
                    if len(buf) == n:
                        y = np.frombuffer(buf[:size * size], np.uint8).reshape(size, size)
                        sink.write(np.float32((y[box] < 60).mean()).tobytes())
                        buf = b""


class contextlib_suppress:
    """Suppress OSError (scheduling the reader is best effort)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, *_: object) -> bool:
        return kind is not None and issubclass(kind, OSError)  # type: ignore[arg-type]


# -- watching from the outside ----------------------------------------------------------
class WrongDevice(threading.Thread):
    """Every sink input of the daemon that is on another sink than ``avatar_mic``."""

    def __init__(self, server, pid: int) -> None:
        super().__init__(daemon=True)
        self.server, self.pid, self.seen = server, pid, []
        self.stop = threading.Event()
        self.sub = subprocess.Popen(["pactl", "subscribe"], env=server.env,
                                    stdout=subprocess.PIPE, text=True)
        self.poke = threading.Event()
        threading.Thread(target=self._events, daemon=True).start()

    def _events(self) -> None:
        for line in self.sub.stdout:
            if "sink-input" in line:
                self.poke.set()

    def run(self) -> None:
        while not self.stop.is_set():
            self.poke.wait(0.5)
            self.poke.clear()
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the server is being changed under us
                continue

    def check(self) -> None:
        sinks = {ln.split("\t")[0]: ln.split("\t")[1] for ln in
                 self.server.pactl("list", "short", "sinks").splitlines() if "\t" in ln}
        block: dict[str, str] = {}
        for line in self.server.pactl("list", "sink-inputs").splitlines() + ["Sink Input #"]:
            line = line.strip()
            if line.startswith("Sink Input #"):
                if block.get("pid") == str(self.pid) and block.get("sink") != "avatar_mic":
                    self.seen.append(f"{time.monotonic():.2f}: voice on {block.get('sink')}")
                block = {}
            elif line.startswith("Sink:"):
                block["sink"] = sinks.get(line.split()[1], line.split()[1])
            elif line.startswith("application.process.id"):
                block["pid"] = line.split("=")[1].strip().strip('"')

    def close(self) -> None:
        self.stop.set()
        self.sub.terminate()


class StatusPoller(threading.Thread):
    """``/v1/status`` and the daemon's RSS every 0.5 s."""

    def __init__(self, runtime: Path, pid: int) -> None:
        super().__init__(daemon=True)
        self.runtime, self.pid = runtime, pid
        self.seen: list[tuple[float, dict]] = []
        self.rss: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        from vcam.control.api import ControlClient

        client = None
        while not self.stop.wait(0.5):
            now = time.monotonic()
            try:
                for ln in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if ln.startswith("VmRSS:"):
                        self.rss.append((now, int(ln.split()[1]) / 1024))
            except OSError:
                pass
            try:
                client = client or ControlClient.from_runtime_file(self.runtime, timeout=2)
                self.seen.append((time.monotonic(), client.status()))
            except Exception:  # noqa: BLE001 - stopped, flooded or starting
                client = None

    def first(self, after: float, test) -> float | None:
        return next((t for t, f in list(self.seen) if t >= after and test(f)), None)


class Recording:
    """A source recorded in segments (parecord ends when its sink is unloaded)."""

    def __init__(self, server, source: str) -> None:
        from pulse_server import Recorder

        self.server, self.source, self.Recorder = server, source, Recorder
        self.done: list[tuple[np.ndarray, float]] = []
        self.rec = Recorder(server, source, RATE)

    def restart(self) -> None:
        self.done.append(self.rec.stop())
        self.rec = self.Recorder(self.server, self.source, RATE)

    def stop(self) -> list[tuple[np.ndarray, float]]:
        self.done.append(self.rec.stop())
        return [(p, t) for p, t in self.done if len(p)]


def slice_at(segments: list[tuple[np.ndarray, float]], a: float, b: float
             ) -> tuple[np.ndarray, float] | None:
    """The recorded samples from monotonic ``a`` to ``b`` (one segment that covers it)."""
    for pcm, t0 in segments:
        if t0 <= a and t0 + len(pcm) / RATE >= b:
            i, j = round((a - t0) * RATE), round((b - t0) * RATE)
            return pcm[i:j], t0 + i / RATE
    return None


# -- the run ------------------------------------------------------------------------------
class Soak:
    """The daemon, the sound server, the player, the recorders and the faults."""

    def __init__(self, args: argparse.Namespace) -> None:
        from pulse_server import PipeWireServer, PulseServer
        from speech import phrases, write_wav

        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="avatar-vcam-soak-"))
        self.shim = self.tmp / "fakev4l2.so"
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(self.shim),
                        str(SUPPORT / "fakev4l2.c"), "-ldl"], check=True)
        pcm, _ = phrases(48000, SCRIPT, 7.0)
        self.wav = write_wav(self.tmp / "speech.wav", pcm, 48000)
        self.server = (PipeWireServer if args.pipewire else PulseServer)(self.tmp / "pulse")
        self.report = Report(args.minutes)
        self.stopping = threading.Event()

    def log(self, msg: str) -> None:
        print(f"[soak {time.monotonic() - self.t0:7.1f} s] {msg}", flush=True)

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.server.start()
        fifo, self.times = self.tmp / "cam.fifo", self.tmp / "cam.times"
        os.mkfifo(fifo)
        self.lips_file = self.tmp / "lips.f32"
        self.reader = subprocess.Popen([sys.executable, __file__, "--read-camera", str(fifo),
                                        str(self.lips_file), str(self.args.size)])
        self.flag, self.rec = self.tmp / "camera-broken", self.tmp / "rec.mp4"
        self.runtime = self.tmp / "run"
        env = {**self.server.env, "FAKE_V4L2_DEVICE": "/dev/video10",
               "FAKE_V4L2_OUT": str(fifo), "FAKE_V4L2_TIMES": str(self.times),
               "FAKE_V4L2_FAIL": str(self.flag), "LD_PRELOAD": str(self.shim),
               "AVATAR_VCAM_RUNTIME_DIR": str(self.runtime), "PYTHONUNBUFFERED": "1"}
        exe = str(Path(sys.executable).parent / "avatar-vcam")
        self.errlog = open(self.tmp / "daemon.log", "w")  # noqa: SIM115 - closed in finish
        self.daemon = subprocess.Popen(
            [exe, "--source", "system", "--sink", "vcam:/dev/video10", "--sink",
             f"file:{self.rec}", "--voice-out", "avatar_mic", "--control", "--size",
             str(self.args.size), "--duration", str(60 * self.args.minutes)],
            env=env, stdout=self.errlog, stderr=subprocess.STDOUT)
        self.poller = StatusPoller(self.runtime, self.daemon.pid)
        self.poller.start()
        deadline = time.monotonic() + 90
        while not self.poller.seen:
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the daemon did not start: "
                                   + (self.tmp / "daemon.log").read_text()[-2000:])
            time.sleep(0.2)
        self.wrong = WrongDevice(self.server, self.daemon.pid)
        self.wrong.start()
        self.mic = Recording(self.server, "avatar_mic.monitor")
        self.played = Recording(self.server, "sysaudio.monitor")
        threading.Thread(target=self._player, daemon=True).start()
        self.log(f"daemon {self.daemon.pid} up; files in {self.tmp}")

    def _player(self) -> None:
        """The speech into ``sysaudio`` in a loop (paplay dies with its sink: again)."""
        while not self.stopping.is_set():
            p = subprocess.Popen(["paplay", "-d", "sysaudio", "--latency-msec=60",
                                  str(self.wav)], env=self.server.env,
                                 stderr=subprocess.DEVNULL)
            p.wait()
            if p.returncode:
                self.stopping.wait(0.2)

    # -- faults ------------------------------------------------------------------------------
    def frames_since(self) -> np.ndarray:
        rows = [ln.split() for ln in self.times.read_text().splitlines() if ln.strip()]
        return np.array([float(r[0]) for r in rows if len(r) == 2])

    def inject(self, kind: str) -> Fault:
        f = Fault(kind, time.monotonic())
        st = self.poller
        if kind in ("input_reload", "voice_reload"):
            sink = "sysaudio" if kind == "input_reload" else "avatar_mic"
            self.server.unload_sink(sink)
            time.sleep(2.0)
            self.server.load_sink(sink)
            if sink == "sysaudio":
                self.server.pactl("set-default-sink", "sysaudio")
            f.end = time.monotonic()
            (self.played if sink == "sysaudio" else self.mic).restart()
            key = "input" if sink == "sysaudio" else "voice_state"
            back = self._wait(lambda s: s.get(key) == "live", f.end, 10)
            f.recovery_s = None if back is None else back - f.end
        elif kind == "sigstop":
            os.kill(self.daemon.pid, signal.SIGSTOP)
            time.sleep(2.0)
            os.kill(self.daemon.pid, signal.SIGCONT)
            f.end = time.monotonic()
            f.recovery_s = self._camera_back(f.end)
        elif kind == "camera_fail":
            self.flag.touch()
            time.sleep(2.0)
            self.flag.unlink()
            f.end = time.monotonic()
            f.recovery_s = self._camera_back(f.end)
        elif kind == "flood":
            port = json.loads((self.runtime / "control.json").read_text())["port"]
            out = subprocess.run([sys.executable, str(SUPPORT / "flood.py"), str(port),
                                  str(self.args.flood), "5"], capture_output=True, text=True,
                                 timeout=120)
            f.end = time.monotonic()
            f.note = out.stdout.strip()[:120]
            back = self._wait(lambda s: True, f.end, 10)
            f.recovery_s = None if back is None else back - f.end
        elif kind == "hog":
            hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                    for _ in range(2)]
            time.sleep(self.args.hog_s)
            for h in hogs:
                h.kill()
                h.wait()
            f.end = time.monotonic()
            during = [s for t, s in st.seen if f.start + 3 < t < f.end]
            e2e = [s["e2e_delay_ms"] for s in during if s.get("e2e_delay_ms") is not None]
            peak = max((s.get("delay_ms") or 0 for s in during), default=0)
            half = any(s.get("half_rate") for s in during)
            idle = self.report.idle_delay_ms or 0
            back = self._wait(lambda s: (s.get("delay_ms") or 1e9) <= idle + 0.5, f.end, 30)
            f.recovery_s = None if back is None else back - f.end
            f.note = (f"D peak {peak:.0f} ms (idle {idle:.0f}), status in->cam median "
                      f"{np.median(e2e) if e2e else float('nan'):.0f} ms, half rate {half}")
        elif kind == "disk_full":
            # the recording is written under a partial name until it is finished
            files = [*self.tmp.glob(f"*{self.rec.name}*"), self.times]
            size = max(p.stat().st_size for p in files if p.exists())
            limit = size + 64 * 1024
            subprocess.run(["prlimit", f"--pid={self.daemon.pid}", f"--fsize={limit}:"],
                           check=True)
            stopped = self._wait(lambda s: "stopped" in json.dumps(s.get("sink_problems")).lower(),
                                 f.start, 60)
            subprocess.run(["prlimit", f"--pid={self.daemon.pid}", "--fsize=unlimited:"],
                           check=True)
            f.end = stopped or time.monotonic()
            f.recovery_s = self._camera_back(f.end) if stopped else None
            f.note = "mp4 stopped, kept" if stopped else "the mp4 never failed"
        time.sleep(3.0)
        t = self.frames_since()
        sel = t[(t > f.start - 0.5) & (t < f.end + 3.0)]
        f.max_gap_ms = float(1000 * np.diff(sel).max()) if len(sel) > 1 else float("inf")
        if len(sel) > 1:
            f.note += f" (longest gap at +{sel[int(np.argmax(np.diff(sel)))] - f.start:.1f} s)"
        rec = "never" if f.recovery_s is None else f"{f.recovery_s:.2f} s"
        self.log(f"{kind}: recovered in {rec}, camera gap max {f.max_gap_ms:.0f} ms {f.note}")
        return f

    def _wait(self, test, after: float, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            t = self.poller.first(after, test)
            if t is not None:
                return t
            time.sleep(0.1)
        return None

    def _camera_back(self, after: float, timeout: float = 10) -> float | None:
        """Fault end -> the first camera frame after it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            t = self.frames_since()
            later = t[t >= after]
            if len(later):
                return float(later[0] - after)
            time.sleep(0.05)
        return None

    # -- the schedule ------------------------------------------------------------------------
    def run(self) -> None:
        end = self.t0 + 60 * self.args.minutes - 5
        time.sleep(max(0.0, 25 - (time.monotonic() - self.t0)))  # warm-up, settle
        idle = [s["delay_ms"] for _, s in self.poller.seen[-10:] if s.get("delay_ms")]
        self.report.idle_delay_ms = float(np.median(idle)) if idle else None
        order = [k for k in self.args.faults.split(",") if k]
        i, disk_done = 0, False
        while order:
            kind = order[i % len(order)]
            i += 1
            need = {"hog": self.args.hog_s + 35, "flood": 45}.get(kind, 25)
            if time.monotonic() > end - need:
                break
            if kind == "disk_full" and disk_done:
                continue
            disk_done |= kind == "disk_full"
            self.report.faults.append(self.inject(kind))
            self.report.load.append(os.getloadavg()[0])
            time.sleep(self.args.gap_s)
        self.log("faults done; running on to the end")
        while self.daemon.poll() is None and time.monotonic() < end + 60:
            time.sleep(1.0)
            self.report.load.append(os.getloadavg()[0])

    def finish(self) -> None:
        self.stopping.set()
        if self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGINT)
            try:
                self.daemon.wait(10)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
        self.report.rc = self.daemon.returncode
        self.poller.stop.set()
        self.wrong.close()
        self.mic_segments = self.mic.stop()
        self.played_segments = self.played.stop()
        self.reader.terminate()
        self.server.stop()
        self.errlog.close()
        lines = [ln for ln in (self.tmp / "daemon.log").read_text().splitlines()
                 if ln.strip() and not ln.startswith("[fakev4l2]")]
        self.report.last_line = lines[-1] if lines else ""
        self.report.wrong_device = self.wrong.seen
        self.report.rss_mb = self.poller.rss
        self.daemon_lines = lines

    # -- analysis ----------------------------------------------------------------------------
    def analyse(self, window: float = 15.0) -> None:
        t = self.frames_since()
        lips = np.fromfile(self.lips_file, np.float32)
        n = min(len(t), len(lips))
        self.t_frames, lips = t[:n], lips[:n]
        self.gaps = np.diff(self.t_frames)
        fps = 25
        # windows in the quiet spans between faults (1 s before each to 5 s after it)
        edges = [self.t0 + 30] + [x for f in self.report.faults
                                  for x in (f.start - 1, f.end + 5)] + [self.t_frames[-1]]
        spans = list(zip(edges[::2], edges[1::2], strict=True))
        starts = [a + i * window for a, b in spans for i in range(int((b - a) // window))]
        for a in starts:
            b = a + window
            sel = (self.t_frames >= a) & (self.t_frames < b)
            row = {"t": round(a - self.t0, 1)}
            for name, segs in (("av_ms", self.mic_segments),
                               ("e2e_ms", self.played_segments)):
                got = slice_at(segs, a - 0.5, b + 0.5)
                if got is not None and sel.sum() > 100 and lips[sel].std() > 0.01:
                    r = av_lag(lips[sel], self.t_frames[sel], got[0], got[1], RATE, fps,
                               max_lag=0.5, step=0.002)
                    if r.corr > 0.4:
                        row[name] = round(1000 * r.lag_s * (1 if name == "av_ms" else -1))
            if len(row) > 1:
                self.report.windows.append(row)
        for f in self.report.faults:  # under the CPU hog: delay and gaps from the outside
            if f.kind != "hog":
                continue
            a, b = f.start + 3, f.end
            sel = (self.t_frames >= a) & (self.t_frames < b)
            got = slice_at(self.played_segments, a - 0.5, b + 0.5)
            if got is not None and sel.sum() > 50:
                r = av_lag(lips[sel], self.t_frames[sel], got[0], got[1], RATE, fps,
                           max_lag=0.5, step=0.002)
                f.e2e_ms = round(-1000 * r.lag_s) if r.corr > 0.3 else None
            gaps = np.diff(self.t_frames[sel])
            f.gaps_over_3 = int((gaps > 3 / fps).sum())
            f.note += (f"; outside: in->cam {f.e2e_ms} ms, {f.gaps_over_3} gaps > 3 frames "
                       f"(longest {1000 * gaps.max(initial=0):.0f} ms)")

    def table(self) -> tuple[str, bool]:
        """The markdown table and whether every goal held."""
        r = self.report
        av = [w["av_ms"] for w in r.windows if "av_ms" in w]
        e2e = [w["e2e_ms"] for w in r.windows if "e2e_ms" in w]
        k = max(1, min(5, len(av) // 3))
        drift = abs(np.median(av[-k:]) - np.median(av[:k])) if len(av) >= 2 else float("nan")
        rss = [m for _, m in r.rss_mb]
        t_rss = [t for t, _ in r.rss_mb]
        early = [m for tt, m in r.rss_mb if t_rss[0] + 60 <= tt <= t_rss[0] + 120] or rss[:10]
        growth = 100 * (np.median(rss[-20:]) / np.median(early) - 1) if rss else float("nan")
        frame_ms = 1000 / 25
        long_gaps = int((self.gaps > 3 * frame_ms / 1000).sum())
        rows = [
            "| measure | value | goal |",
            "|---|---|---|",
            f"| run | {r.minutes:g} min, {len(self.t_frames)} camera frames, load "
            f"{np.mean(r.load) if r.load else float('nan'):.1f} on {os.cpu_count()} cores, "
            f"{type(self.server).__name__} | |",
            f"| A/V offset (voice later than lips; Audio2Motion's own lag included), per "
            f"15-s window | median "
            f"{np.median(av) if av else float('nan'):+.0f} ms, range "
            f"{min(av, default=0):+.0f}..{max(av, default=0):+.0f} ({len(av)} windows) | |",
            f"| drift (last vs first windows) | "
            f"{f'{drift:.0f} ms' if len(av) >= 2 else 'not measured: one window'} | "
            f"<= {frame_ms:.0f} ms |",
            f"| input -> camera (lips vs played) | median "
            f"{np.median(e2e) if e2e else float('nan'):.0f} ms | |",
            f"| RSS | {early and np.median(early):.0f} -> {rss and np.median(rss[-20:]):.0f} MiB"
            f" ({growth:+.1f} %) | < 5 % |",
            f"| camera gaps > 3 frames | {long_gaps} (longest "
            f"{1000 * self.gaps.max():.0f} ms), all faults included | |",
            f"| voice on a wrong device | {len(r.wrong_device)} | 0 |",
            f"| exit | rc {r.rc}: {r.last_line[:90]} | |",
        ]
        # a run with one fault-free window (the 3-minute CI run) has no drift to judge;
        # every longer run has many windows, and then drift counts
        drift_ok = drift <= frame_ms if len(av) >= 2 else r.minutes < 10
        ok = drift_ok and growth < 5 and not r.wrong_device
        by_kind: dict[str, list[Fault]] = {}
        for f in r.faults:
            by_kind.setdefault(f.kind, []).append(f)
        for kind, fs in by_kind.items():
            rec = [f.recovery_s for f in fs]
            worst = None if None in rec else max(rec)
            if kind == "hog":  # D back at idle within 15 s, <= 150 ms, no gap over 3 frames
                good = (worst is not None and worst <= 15.0
                        and all(f.e2e_ms is not None and f.e2e_ms <= 150 for f in fs)
                        and not any(f.gaps_over_3 for f in fs))
            else:
                good = worst is not None and worst <= 3.0
            ok &= good
            notes = "; ".join(sorted({f.note for f in fs if f.note}))[:160]
            goal = ("D idle <= 15 s, in->cam <= 150 ms, gaps <= 3 frames" if kind == "hog"
                    else "<= 3 s")
            rows.append(f"| fault {kind} x{len(fs)} | recovery worst "
                        f"{'never' if worst is None else f'{worst:.2f} s'}, camera gap max "
                        f"{max(f.max_gap_ms for f in fs):.0f} ms {notes} | "
                        f"{goal} |")
        return "\n".join(rows), bool(ok)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--pipewire", action="store_true")
    ap.add_argument("--faults", default=",".join(FAULTS))
    ap.add_argument("--gap-s", type=float, default=25.0, help="quiet time between faults")
    ap.add_argument("--hog-s", type=float, default=30.0)
    ap.add_argument("--flood", type=int, default=3000)
    ap.add_argument("--json", type=Path, help="write the report here too")
    ap.add_argument("--read-camera", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.read_camera:
        read_camera(args.read_camera[0], args.read_camera[1], int(args.read_camera[2]))
        return 0
    for tool in ("gcc", "pactl", "parecord", "paplay", "espeak-ng", "prlimit"):
        if shutil.which(tool) is None:
            print(f"soak: {tool} is missing", file=sys.stderr)
            return 2
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    soak = Soak(args)
    try:
        soak.start()
        soak.run()
    finally:
        soak.finish()
    soak.analyse()
    table, ok = soak.table()
    print(f"\n## Soak {dt.date.today()} ({platform.node()}, {os.cpu_count()} cores)\n")
    print(table)
    print(f"\nverdict: {'all goals held' if ok else 'GOALS MISSED'}")
    if args.json:
        args.json.write_text(json.dumps({**asdict(soak.report), "ok": ok, "table": table,
                                         "daemon_tail": soak.daemon_lines[-30:]}, indent=1))
    shutil.rmtree(soak.tmp, ignore_errors=True) if ok else print(f"files kept in {soak.tmp}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
