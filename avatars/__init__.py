"""Where avatar packages live: the user's avatar folder first, then the bundled ones."""

from __future__ import annotations

import os
import re
from pathlib import Path

from platformdirs import user_data_path

from engine.avatar import Avatar, load_avatar
from engine.errors import AvatarError

BUNDLED_DIR = Path(__file__).resolve().parent
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def user_avatar_dir() -> Path:
    """The user's avatar folder (``AVATAR_VCAM_AVATARS`` overrides it)."""
    env = os.environ.get("AVATAR_VCAM_AVATARS")
    return Path(env).expanduser() if env else user_data_path("avatar-vcam") / "avatars"


def _packages(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.name: p for p in sorted(folder.iterdir())
            if not p.name.startswith(".") and (p / "avatar.json").is_file()}  # . = unfinished


def available() -> dict[str, tuple[Path, str]]:
    """``{name: (folder, "user" | "bundled")}``; a user avatar shadows a bundled one."""
    found = {n: (p, "bundled") for n, p in bundled().items()}
    found.update({n: (p, "user") for n, p in _packages(user_avatar_dir()).items()})
    return found


def bundled() -> dict[str, Path]:
    """``{name: folder}`` of the avatars that ship with avatar-vcam."""
    return _packages(BUNDLED_DIR)


def valid_name(name: str) -> bool:
    """True for a plain avatar name: it cannot escape the avatars folder."""
    return bool(_NAME.match(name)) and name not in (".", "..")


def check_name(name: str) -> str:
    """Refuse names that could escape the avatars folder or are not plain names.

    A path to a package folder is accepted by :func:`resolve` only when the folder holds
    an avatar.json; anything else must be a plain name.
    """
    if not valid_name(name):
        raise AvatarError(f"invalid avatar name {name!r}: use letters, digits, '-', '_' or '.' "
                          "(no path separators), or pass a folder path that exists")
    return name


def _is_path(name_or_path: str | Path) -> bool:
    text = str(name_or_path)
    return (isinstance(name_or_path, Path) or "/" in text or os.sep in text
            or text.startswith("~") or text in (".", ".."))


def _not_a_package(folder: Path) -> str:
    if folder.is_dir():
        return (f"folder {folder} has no avatar.json, so it is not an avatar package; "
                "make one with `avatar-vcam avatar create PHOTO`")
    what = "is not a folder" if folder.exists() else "does not exist"
    return (f"avatar folder {folder} {what}; pass an avatar name (see `avatar-vcam avatars`) "
            "or the folder of an avatar package")


def resolve(name_or_path: str | Path) -> Path:
    """Folder of an avatar given by name, or by a path to a package folder (``~`` expanded)."""
    if _is_path(name_or_path):
        folder = Path(name_or_path).expanduser()
        if (folder / "avatar.json").is_file():
            return folder
        if not valid_name(str(name_or_path)):  # a path, not a plain name such as Path("leo")
            raise AvatarError(_not_a_package(folder))
    name = check_name(str(name_or_path))
    found = available()
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise AvatarError(f"unknown avatar {name!r}; known avatars: {known} "
                          "(create one with `avatar-vcam avatar create PHOTO --name NAME`)")
    return found[name][0]


def load(name_or_path: str | Path) -> Avatar:
    """Resolve and load an avatar package."""
    return load_avatar(resolve(name_or_path))
