"""A hostile local client: ``python flood.py PORT N HOLD_S [nowait]`` opens N slow
connections (with ``nowait``, connects do not wait for the server to accept them).

Each connection sends the start of a request (no token, headers never finished) and
trickles a byte now and then; all are held ``HOLD_S`` seconds and then dropped at once.
Prints one JSON line: {"opened", "refused", "open_s", "t_start", "t_end"} (monotonic).
Runs as its own process, as an attacker would, so its work is not the daemon's.
"""

from __future__ import annotations

import contextlib
import errno
import json
import resource
import socket
import sys
import time


def flood(port: int, n: int, hold_s: float, wait: bool = True) -> dict[str, float]:
    """Open ``n`` slow connections to ``port``, hold them ``hold_s`` s, drop them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, n + 64) if hard != resource.RLIM_INFINITY else n + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    t_start = time.monotonic()
    socks: list[socket.socket] = []
    refused = 0
    for _ in range(n):
        s = socket.socket()
        if wait:
            s.settimeout(5)
        else:  # a server that stops accepting cannot slow the flood down
            s.setblocking(False)
        try:
            code = s.connect_ex(("127.0.0.1", port))
        except OSError:
            code = -1
        if code not in (0, errno.EINPROGRESS):
            refused += 1
            s.close()
            continue
        s.setblocking(False)
        socks.append(s)
        with contextlib.suppress(OSError):
            s.send(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")
    open_s = time.monotonic() - t_start
    end = time.monotonic() + hold_s
    while time.monotonic() < end:  # trickle: one header byte per connection now and then
        for s in socks:
            with contextlib.suppress(OSError):
                s.send(b"X")
        time.sleep(0.5)
    for s in socks:
        s.close()
    return {"opened": len(socks), "refused": refused, "open_s": round(open_s, 3),
            "t_start": t_start, "t_end": time.monotonic()}


if __name__ == "__main__":
    print(json.dumps(flood(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]),
                           wait="nowait" not in sys.argv[4:])), flush=True)
