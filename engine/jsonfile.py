"""JSON with limits: every JSON document the project reads goes through here.

Python's ``json`` module recurses once per nesting level, so ``[[[[...]]]]`` a few thousand
deep raises RecursionError (not ValueError), and a document that parses at depth 900 can
still blow the stack later in ``repr`` or ``json.dumps``. Files and request bodies are also
read whole. :func:`loads` and :func:`read` refuse a document that is larger than
``max_bytes`` or nested deeper than ``max_depth`` with :class:`JsonError`, a ValueError
whose message is a short reason ("nested deeper than 32 levels", "not valid JSON (...)").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Containers inside containers: avatar.json needs 3, landmarks.json 2, a request body 1.
MAX_DEPTH = 32
#: Bytes: avatar.json is ~2 KB, landmarks.json ~40 KB, a control request under 100 bytes.
MAX_BYTES = 4 * 1024 * 1024


class JsonError(ValueError):
    """A JSON document is too large, too deep, or not valid JSON; ``str`` is the reason."""


def _size_text(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 and n % (1024 * 1024) == 0 \
        else f"{n} bytes"


def check_depth(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """JsonError if ``value`` nests lists/dicts deeper than ``max_depth`` (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item \
            if isinstance(item, list) else None
        if children is None:
            continue
        if depth > max_depth:
            raise JsonError(f"nested deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children)


def loads(data: str | bytes, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES) -> Any:
    """Parse ``data`` like :func:`json.loads`, within the limits; JsonError otherwise."""
    if len(data) > max_bytes:
        raise JsonError(f"larger than {_size_text(max_bytes)}")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise JsonError("not UTF-8 text") from None
    try:
        value = json.loads(data)
    except json.JSONDecodeError as e:
        raise JsonError(f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") \
            from None
    except RecursionError:
        raise JsonError(f"nested deeper than {max_depth} levels") from None
    except ValueError as e:  # e.g. an integer of more than 4300 digits
        raise JsonError(f"not usable JSON ({' '.join(str(e).split())[:120]})") from None
    check_depth(value, max_depth)
    return value


def read(path: str | Path, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES) -> Any:
    """Parse the JSON file ``path`` within the limits.

    OSError when it cannot be read, JsonError (reason only, no path) when its content is
    refused; at most ``max_bytes + 1`` bytes are read, whatever the file claims.
    """
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    return loads(data, max_depth=max_depth, max_bytes=max_bytes)
