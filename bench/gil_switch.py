"""How long a "frame" waits for the GIL while another thread runs pure Python (CPU stand-in).

While the LivePortrait decoder compiles in a background thread, Dynamo's tracing holds the
GIL; the thread serving frames takes it back after every GIL-free call and may wait up to
``sys.getswitchinterval()`` each time. This times a frame of short GIL-releasing torch
calls, alone and beside a busy pure-Python thread, at Python's default interval (5 ms)
and at the one the runtime sets while compiling.

    python bench/gil_switch.py
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from avatar_vcam.engine.renderers.liveportrait.runtime import (  # noqa: E402
    COMPILE_SWITCH_INTERVAL_S,
)


def _busy(stop: threading.Event) -> None:
    while not stop.is_set():
        total = 0
        for i in range(20000):  # pure-Python work, like tracing
            total += i


def _frame(x: torch.Tensor) -> None:
    for _ in range(6):
        torch.mm(x, x)


def _times(x: torch.Tensor, n: int = 50) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        _frame(x)
        out.append((time.perf_counter() - t0) * 1e3)
    return sorted(out)


def main() -> None:
    x = torch.randn(256, 256)
    print(f"{'switch interval':<18}{'alone ms':>10}{'busy median':>13}{'busy p90':>10}")
    for interval in (0.005, COMPILE_SWITCH_INTERVAL_S):
        sys.setswitchinterval(interval)
        _times(x, 5)
        alone = statistics.median(_times(x))
        stop = threading.Event()
        th = threading.Thread(target=_busy, args=(stop,))
        th.start()
        busy = _times(x)
        stop.set()
        th.join()
        print(f"{interval * 1e3:>6.1f} ms{'':<9}{alone:>10.2f}{statistics.median(busy):>13.2f}"
              f"{busy[int(0.9 * len(busy))]:>10.2f}")


if __name__ == "__main__":
    main()
