"""Paired differences over utterances with a percentile bootstrap 95% interval."""
from __future__ import annotations

import numpy as np

RESAMPLES = 10000


def paired_difference(a, b, resamples: int = RESAMPLES, seed: int = 0, level: float = 0.95) -> dict:
    """Mean of ``a - b`` over the utterances where both are finite, and its bootstrap interval.

    Returns ``{"mean", "low", "high", "n"}``: the utterances are resampled with replacement
    ``resamples`` times (seeded), and the interval is the central ``level`` of the resampled means.
    With fewer than two pairs the interval is NaN.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    n = int(d.size)
    if n == 0:
        return {"mean": float("nan"), "low": float("nan"), "high": float("nan"), "n": 0}
    mean = float(d.mean())
    if n < 2:
        return {"mean": mean, "low": float("nan"), "high": float("nan"), "n": n}
    rng = np.random.default_rng(int(seed))
    means = d[rng.integers(0, n, size=(int(resamples), n))].mean(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return {"mean": mean, "low": float(low), "high": float(high), "n": n}
