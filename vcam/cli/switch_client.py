"""Client side of live avatar switching: ask the daemon, then wait for the new face."""

from __future__ import annotations

import time
from typing import Any

from ..control.api import ControlClient, ControlError

POLL_S = 0.05


def use_avatar(name: str, wait: bool = True, timeout: float = 60.0,
               client: ControlClient | None = None) -> dict[str, Any]:
    """POST /v1/avatar, then (``wait``) poll /v1/avatars until ``name`` is shown.

    Returns the daemon's last answer (with ``last_switch`` once shown). ControlError with
    one line when the name is unknown (the daemon lists the available ones), the switch
    failed, another request replaced this one, or ``timeout`` passed.
    """
    client = client or ControlClient.from_runtime_file()
    reply = client.use_avatar(name)
    if not wait or reply.get("state") == "current":
        return reply
    deadline = time.monotonic() + timeout
    while True:
        info = client.avatars()
        if info.get("avatar") == name and not info.get("pending"):
            return info
        if info.get("error") and not info.get("pending"):
            raise ControlError(str(info["error"]))
        if info.get("pending") not in (None, name):
            raise ControlError(f"another request (avatar {info['pending']!r}) replaced this "
                               "one")
        if time.monotonic() > deadline:
            raise ControlError(f"avatar {name!r} was not shown within {timeout:g} s "
                               f"(state {info.get('state')})")
        time.sleep(POLL_S)
