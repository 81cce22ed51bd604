"""Where avatar packages live: the user's avatar folder first, then the bundled ones."""

from __future__ import annotations

import os
import re
from pathlib import Path

from platformdirs import user_data_path

from ..engine.avatar import Avatar, load_avatar
from ..engine.errors import AvatarError

BUNDLED_DIR = Path(__file__).resolve().parent
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def user_avatar_dir() -> Path:
    """The user's avatar folder (``AVATAR_VCAM_AVATARS`` overrides it)."""
    env = os.environ.get("AVATAR_VCAM_AVATARS")
    return Path(env) if env else user_data_path("avatar-vcam") / "avatars"


def _packages(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.name: p for p in sorted(folder.iterdir()) if (p / "avatar.json").is_file()}


def available() -> dict[str, tuple[Path, str]]:
    """``{name: (folder, "user" | "bundled")}``; a user avatar shadows a bundled one."""
    found = {n: (p, "bundled") for n, p in _packages(BUNDLED_DIR).items()}
    found.update({n: (p, "user") for n, p in _packages(user_avatar_dir()).items()})
    return found


def check_name(name: str) -> str:
    """Refuse names that could escape the avatars folder or are not plain names.

    A path to a package folder is accepted by :func:`resolve` only when the folder holds
    an avatar.json; anything else must be a plain name.
    """
    if not _NAME.match(name) or name in (".", ".."):
        raise AvatarError(f"invalid avatar name {name!r}: use letters, digits, '-', '_' or '.' "
                          "(no path separators), or pass a folder path that exists")
    return name


def resolve(name_or_path: str | Path) -> Path:
    """Folder of an avatar given by name, or by a path to a package folder."""
    text = str(name_or_path)
    is_path = isinstance(name_or_path, Path) or "/" in text or os.sep in text
    if is_path and (Path(text) / "avatar.json").is_file():
        return Path(text)
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
