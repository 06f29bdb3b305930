"""Pre-emphasis: range, exact inverse, carried state, the noise shaping it is for, its Jacobian."""
import math

import numpy as np
import pytest

from seqgen.core import emphasis as E


def _speechlike(n=8000, sr=16000, seed=0):
    """A low-pass signal (a few harmonics of 150 Hz with decaying amplitudes) plus a little noise."""
    t = np.arange(n) / sr
    x = sum(0.5 / k * np.sin(2 * np.pi * 150 * k * t + k) for k in range(1, 8))
    return (0.8 * x / np.abs(x).max() + 0.001 * np.random.default_rng(seed).normal(size=n)).astype(np.float32)


def test_round_trip_range_and_off():
    x = np.random.default_rng(1).uniform(-1, 1, size=(3, 500)).astype(np.float32)
    for a in (0.5, 0.86, 0.97):
        y = E.pre_emphasize(x, a)
        assert np.abs(y).max() <= 1.0            # scaled by 1 / (1 + a): never out of range
        np.testing.assert_allclose(E.de_emphasize(y, a), x, atol=2e-6)
    extreme = np.tile(np.float32([1, -1]), 50)   # the worst case reaches the bound, not past it
    assert np.abs(E.pre_emphasize(extreme, 0.9)).max() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_array_equal(E.pre_emphasize(x, 0.0), x)
    np.testing.assert_array_equal(E.de_emphasize(x, 0.0), x)
    with pytest.raises(ValueError, match=r"pre_emphasis must be in \[0, 1\)"):
        E.pre_emphasize(x, 1.0)


def test_chunks_with_carried_state_equal_one_pass():
    x = _speechlike(1200)
    a = 0.86
    y = E.pre_emphasize(x, a)
    parts = [E.pre_emphasize(x[:500], a), E.pre_emphasize(x[500:], a, previous=x[499])]
    np.testing.assert_allclose(np.concatenate(parts), y, atol=1e-7)
    first = E.de_emphasize(y[:700], a)
    second = E.de_emphasize(y[700:], a, previous=first[-1])
    np.testing.assert_allclose(np.concatenate([first, second]), E.de_emphasize(y, a), atol=1e-6)


def test_noise_added_after_emphasis_is_shaped_towards_low_frequencies():
    """White noise added to y comes back low-passed, following speech's tilt: above fs/4 lies half of
    white noise's power, and under a fifth of the same noise's after de-emphasis."""
    from scipy.signal import welch

    x = _speechlike(16000)
    noise = 0.01 * np.random.default_rng(3).normal(size=x.shape).astype(np.float32)
    plain = x + noise
    shaped = E.de_emphasize(E.pre_emphasize(x, 0.86) + noise, 0.86)
    f, p_plain = welch(plain - x, nperseg=512)
    _, p_shaped = welch(shaped - x, nperseg=512)
    high = f > 0.25
    assert p_plain[high].sum() / p_plain.sum() == pytest.approx(0.5, abs=0.05)
    assert p_shaped[high].sum() / p_shaped.sum() < 0.2


def test_log2_jacobian():
    assert E.log2_jacobian(0.0) == 0.0
    assert E.log2_jacobian(0.86) == pytest.approx(math.log2(1.86))
