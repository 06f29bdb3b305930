"""Paired differences with a bootstrap interval."""
import numpy as np
import pytest

from seqgen.quality.bootstrap import paired_difference


def test_a_constant_difference_has_a_zero_width_interval():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    d = paired_difference(a + 0.5, a)
    assert d == {"mean": pytest.approx(0.5), "low": pytest.approx(0.5), "high": pytest.approx(0.5), "n": 4}


def test_interval_covers_the_mean_narrows_with_more_pairs_and_skips_nan():
    rng = np.random.default_rng(0)
    small = paired_difference(rng.normal(0.3, 1.0, 20), np.zeros(20), seed=1)
    large = paired_difference(rng.normal(0.3, 1.0, 400), np.zeros(400), seed=1)
    for d in (small, large):
        assert d["low"] < d["mean"] < d["high"]
    assert large["high"] - large["low"] < 0.5 * (small["high"] - small["low"])
    assert 0.1 < large["low"] and large["high"] < 0.5  # the true 0.3 is inside, 0 is not
    a = np.array([1.0, np.nan, 3.0, 5.0])
    b = np.array([0.0, 1.0, np.nan, 4.0])
    d = paired_difference(a, b)
    assert d["n"] == 2 and d["mean"] == pytest.approx(1.0)
    assert paired_difference(a, b, seed=3) == paired_difference(a, b, seed=3)


def test_fewer_than_two_pairs_have_no_interval():
    d = paired_difference([1.0], [0.0])
    assert d["mean"] == 1.0 and np.isnan(d["low"]) and np.isnan(d["high"])
    assert paired_difference([], [])["n"] == 0
