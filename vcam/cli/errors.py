"""How every command reports a user's mistake: one line, exit status 1."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from engine.errors import EngineError


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """EngineError (and its kin: DeviceError, ConfigError...) -> one clear line.

    With the root command's ``--verbose`` the traceback is shown instead.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EngineError as e:
            ctx = click.get_current_context()
            if (ctx.find_root().params or {}).get("verbose"):
                raise
            raise click.ClickException(str(e)) from None

    return wrapper
