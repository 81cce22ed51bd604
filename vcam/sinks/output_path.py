"""Checks on an output file's path, made before any work goes into the file."""

from __future__ import annotations

from pathlib import Path

from ..errors import DeviceError


def check_output(path: Path, suffixes: tuple[str, ...] | None = None,
                 trial: bool = True) -> None:
    """One-line :class:`DeviceError` unless ``path`` can be written: a name ending in one of
    ``suffixes`` (any, if None), not a folder, in a folder that exists, and (with
    ``trial``) one the system lets us open for writing. Permissions alone do not tell
    (root, read-only mounts, /proc), so the trial opens it for append, which leaves an
    existing file as it is, and removes a file it created."""
    if suffixes is not None and path.suffix.lower() not in suffixes:
        names = ", ".join(suffixes[:-1]) + " or " + suffixes[-1]
        raise DeviceError(f"cannot write {path}: use a {names} file name")
    if path.is_dir():
        raise DeviceError(f"cannot write {path}: it is a folder; give a file name")
    if not path.parent.is_dir():
        raise DeviceError(f"cannot write {path}: folder {path.parent} does not exist; "
                          "create it or choose another path")
    if not trial:
        return
    existed = path.exists()
    try:
        with path.open("ab"):
            pass
    except OSError as e:
        raise unwritable(path, e) from None
    if not existed:
        path.unlink(missing_ok=True)


def unwritable(path: Path, e: Exception) -> DeviceError:
    """The one-line error for an output whose writing failed."""
    why = getattr(e, "strerror", None) or e
    return DeviceError(f"cannot write {path}: {why}; choose a writable path with free space")
