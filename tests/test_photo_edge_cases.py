"""Photo and package edge cases found in review: one transparent colour (tRNS), a header
that claims too many pixels, a file name that is not UTF-8, the package's permissions."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import AvatarError
from engine.photo import MAX_PIXELS, load_photo

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "support"))
from images import png_claiming  # noqa: E402
from test_avatar_create import make, portrait  # noqa: E402


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_a_single_transparent_colour_is_transparency(tmp_path, mode):
    arr = np.full((64, 64, 3), 200, np.uint8)
    arr[16:48, 16:48] = (40, 90, 140)  # the subject; the 200-grey background is "clear"
    im = Image.fromarray(arr).convert(mode)
    key = (200, 200, 200) if mode == "RGB" else im.getpixel((0, 0))
    im.save(tmp_path / "key.png", transparency=key)
    photo = load_photo(tmp_path / "key.png")
    assert photo.alpha is not None, "tRNS transparency was ignored"
    assert photo.alpha[0, 0] == 0 and photo.alpha[32, 32] == 255


def test_a_photo_over_the_pixel_limit_is_refused_before_decoding(tmp_path):
    side = int((MAX_PIXELS * 1.5) ** 0.5)  # over the limit, under Pillow's own (2x)
    png_claiming(tmp_path / "big.png", side, side)
    with pytest.raises(AvatarError, match="million pixels"):
        load_photo(tmp_path / "big.png")


@pytest.mark.skipif(sys.platform != "linux", reason="byte file names are a POSIX thing")
def test_a_photo_whose_name_is_not_utf8_makes_a_package_that_loads(tmp_path, model):
    from engine.avatar import load_avatar

    name = os.fsdecode(b"Jos\xe9.png")  # Latin-1 bytes: a surrogate in Python's str
    Image.fromarray(portrait()).save(tmp_path / name, format="PNG")
    root = make(tmp_path, model, tmp_path / name, name="jose", display_name="Zoë")
    meta = load_avatar(root).meta
    assert meta["display_name"] == "Zoë" and meta["build"]["photo"].startswith("Jos")
    umask = os.umask(0)
    os.umask(umask)
    assert root.stat().st_mode & 0o777 == 0o777 & ~umask, "the package is private (0700)"
