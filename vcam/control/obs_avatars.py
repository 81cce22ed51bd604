"""OBS program scene -> avatar (``--obs-scene-avatar SCENE=NAME``, config ``[obs.scene_avatars]``).

Entering a mapped scene switches to its avatar (prepared in the background, shown at a
frame boundary); leaving it for an unmapped scene switches back to the avatar shown before
the first mapped scene, unless someone chose another avatar meanwhile. The same rule as
scene -> expression (:class:`.obs.SceneExpressions`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class SceneAvatars:
    """Applies the scene -> avatar map; ``use`` asks for a switch, ``current`` tells the
    avatar now shown or on its way (the newest request)."""

    def __init__(self, mapping: dict[str, str], use: Callable[[str], object],
                 current: Callable[[], str | None],
                 notify: Callable[[str], None] | None = None) -> None:
        self.mapping = dict(mapping)
        self.use = use
        self.current = current
        self.notify = notify or (lambda msg: log.warning("%s", msg))
        self._restore: str | None = None
        self._applied: str | None = None
        self._lock = threading.Lock()

    def scene_changed(self, scene: str | None) -> None:
        """OBS's program scene is now ``scene``."""
        with self._lock:
            name = self.mapping.get(scene) if scene is not None else None
            if name is not None:
                if self._applied is None:
                    self._restore = self.current()
                self._switch(name)
                self._applied = name
            elif self._applied is not None:
                if self.current() == self._applied and self._restore:
                    self._switch(self._restore)
                self._applied = self._restore = None

    def _switch(self, name: str) -> None:
        try:
            self.use(name)
        except KeyError as e:  # an avatar removed since start-up: say so, go on
            self.notify(f"OBS scene asked for {e.args[0] if e.args else name}")


def check_scene_avatars(mapping: dict[str, str], names: list[str]) -> None:
    """KeyError (one line) when a mapped avatar does not exist."""
    for scene, name in mapping.items():
        if name not in names:
            raise KeyError(f"--obs-scene-avatar {scene}={name}: no avatar {name!r}; "
                           f"available: {', '.join(names) or '(none)'}")
