"""Click parameter types the commands share."""

from __future__ import annotations

import math
from typing import Any

import click


class FiniteFloatRange(click.FloatRange):
    """A :class:`click.FloatRange` that also refuses ``nan`` and ``inf``.

    Plain ``FloatRange`` lets ``nan`` through (every comparison with it is false), and a
    nan duration or delay silently means "no limit" or worse further down.
    """

    name = "float range"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return rv


class _Parsed(click.ParamType):
    """A parameter read by one of the engine's parsers; its ValueError is the one line."""

    def parse(self, value: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        try:
            return self.parse(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


class FrameSize(_Parsed):
    """``512`` (a square) or ``1280x720``: even numbers in 64..2048 -> (width, height)."""

    name = "N|WxH"

    def parse(self, value: Any) -> tuple[int, int]:
        from engine.framing import parse_size

        return parse_size(value if isinstance(value, (tuple, list, int)) else str(value))


class FramingSpec(_Parsed):
    """``ZOOM`` or ``ZOOM,X,Y``: zoom 1..3 and offsets within +-0.5 of the frame."""

    name = "ZOOM[,X,Y]"

    def parse(self, value: Any) -> tuple[float, float, float]:
        from engine.framing import parse_framing

        if isinstance(value, (tuple, list)):
            value = ",".join(str(v) for v in value)
        return parse_framing(str(value))


class Background(_Parsed):
    """``photo``, ``blur``, a colour (``#00ff00``, ``green``) or an image file."""

    name = "photo|blur|COLOR|IMAGE"

    def parse(self, value: Any) -> str:
        from engine.framing import check_background

        return check_background(str(value))
