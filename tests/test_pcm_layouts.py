"""as_float_pcm: mono, (n, channels) and (channels, n) blocks all give n mono samples."""

from __future__ import annotations

import numpy as np
import pytest

from engine.audio.pcm import as_float_pcm


def _stereo(n: int) -> np.ndarray:
    t = np.arange(n) / 16000
    return np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 220 * t)], 1)


@pytest.mark.parametrize("n", [3, 480, 16000])
def test_channels_first_equals_channels_last(n):
    x = _stereo(n).astype(np.float32)
    last = as_float_pcm(x)
    assert last.shape == (n,)
    np.testing.assert_allclose(as_float_pcm(x.T.copy()), last, atol=1e-7)
    np.testing.assert_allclose(last, x.mean(axis=1), atol=1e-7)


def test_single_channel_either_way_and_int_pcm():
    x = (np.arange(480) % 100).astype(np.int16)
    ref = as_float_pcm(x)
    assert as_float_pcm(x[None, :]).shape == (480,)  # (1, 480) was collapsed to 1 sample
    np.testing.assert_array_equal(as_float_pcm(x[None, :]), ref)
    np.testing.assert_array_equal(as_float_pcm(x[:, None]), ref)
    six = np.repeat(x[None, :], 6, 0)
    np.testing.assert_allclose(as_float_pcm(six), ref, atol=1e-7)
    assert as_float_pcm(np.zeros((0, 2), np.float32)).shape == (0,)


@pytest.mark.parametrize("shape", [(2, 2), (16, 20), (20, 16), (4, 4, 10)])
def test_ambiguous_layouts_raise_naming_the_accepted_ones(shape):
    with pytest.raises(ValueError, match=r"\(channels, n\)"):
        as_float_pcm(np.zeros(shape, np.float32))
