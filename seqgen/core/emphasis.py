"""Pre-emphasis: the first-order filter a vocoder can model its waveform through, and its inverse.

A model trained on ``y_t = (x_t - a * x_{t-1}) / (1 + a)`` instead of ``x_t`` sees speech with its
spectral tilt flattened; the noise of its samples (quantization, sampling) is then shaped by the
de-emphasis filter ``1 / (1 - a z^-1)`` on the way back, so it lands under the low frequencies where
speech has its energy instead of being white (the noise shaping of LPCNet and WaveRNN).

* The division by ``1 + a`` keeps ``y`` in [-1, 1] for any ``x`` in [-1, 1], so the same quantizer
  (mu-law classes, a 16-bit mixture) covers it with no clipping.
* The map ``x -> y`` over a whole sequence is triangular with ``1 / (1 + a)`` on its diagonal: a density
  over ``y`` is one over ``x`` times ``(1 + a)^-T``.  :func:`log2_jacobian` is the per-sample term that
  puts a likelihood over ``y`` into bits per 16-bit sample of ``x`` (the vocoder's one NLL unit).
* Both directions start from ``x_{-1} = 0`` (silence before the first sample), or from a carried state.
  :func:`de_emphasize` is an IIR filter (``scipy.signal.lfilter``) in float64, so a round trip returns
  the input to float32 rounding.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["check_coefficient", "pre_emphasize", "de_emphasize", "log2_jacobian"]


def check_coefficient(a) -> float:
    """The coefficient as a float in [0, 1); a ValueError naming the range otherwise."""
    a = float(a)
    if not 0.0 <= a < 1.0:
        raise ValueError(f"pre_emphasis must be in [0, 1) (0 = off; speech vocoders use ~0.85), got {a}")
    return a


def pre_emphasize(x, a, previous=None) -> np.ndarray:
    """``(x_t - a x_{t-1}) / (1 + a)`` along the last axis (float32).  ``previous``: ``x_{-1}`` per row
    (default 0)."""
    a = check_coefficient(a)
    x = np.asarray(x, np.float64)
    if a == 0.0:
        return x.astype(np.float32)
    prev = np.zeros(x.shape[:-1] + (1,)) if previous is None else np.asarray(previous, np.float64)[..., None]
    shifted = np.concatenate([prev, x[..., :-1]], axis=-1)
    return ((x - a * shifted) / (1.0 + a)).astype(np.float32)


def de_emphasize(y, a, previous=None, return_state=False):
    """The inverse of :func:`pre_emphasize`: ``x_t = (1 + a) y_t + a x_{t-1}`` along the last axis (float32).

    ``previous``: ``x_{-1}`` per row (default 0).  The output is clipped to [-1, 1] (a sampled ``y`` need
    not come from a waveform in range).  ``return_state=True`` also returns the filter's state, the last
    ``x`` per row in float64 before clipping: passed as ``previous`` to the call for the next chunk, the
    chunks come out bit for bit as one call over the whole signal would give them."""
    a = check_coefficient(a)
    y = np.asarray(y, np.float64)
    if a == 0.0:
        out = y.astype(np.float32)
        return (out, np.zeros(y.shape[:-1])) if return_state else out
    from scipy.signal import lfilter

    if previous is None:
        previous = np.zeros(y.shape[:-1])
    zi = (a * np.asarray(previous, np.float64))[..., None]
    x, _ = lfilter([1.0 + a], [1.0, -a], y, axis=-1, zi=zi)
    out = np.clip(x, -1.0, 1.0).astype(np.float32)
    if return_state:
        state = x[..., -1] if x.shape[-1] else np.asarray(previous, np.float64)
        return out, state
    return out


def log2_jacobian(a) -> float:
    """Bits per sample to add to an NLL over ``y`` to make it an NLL over ``x``: ``log2(1 + a)``."""
    return math.log2(1.0 + check_coefficient(a))
