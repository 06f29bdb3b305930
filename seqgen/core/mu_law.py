"""Mu-law companding and quantization with ``keras.ops`` (any backend, jit-safe).

The class indices agree exactly with librosa::

    encode(x, bits) == librosa.mu_compress(x, mu=2**bits - 1, quantize=True) + 2**(bits - 1)
    decode(q, bits) == librosa.mu_expand(q - 2**(bits - 1), mu=2**bits - 1, quantize=True)

(librosa evaluated in float64 on the same float32 input, decode rounded to
float32).  Exactness is obtained without float64 on the device: per number of
bits, two small numpy tables are built once on the host (float64 math):

* the float32 *thresholds* ``T[k]``: the smallest float32 ``x`` whose class is
  ``>= k``.  ``encode`` computes an approximate class in float32 and then
  corrects it by one step against these thresholds, so rounding in float32
  can never move a value into the wrong bin;
* the decoded value of every class (``decode`` is a table lookup).

Inputs outside [-1, 1] are clipped (librosa raises instead): +-Inf give the
extreme classes; NaN gives the class of silence (0.0), ``2**(bits-1)``.
"""
import functools

import numpy as np
from keras import ops

__all__ = ["encode", "decode", "num_classes"]


def num_classes(bits=8):
    """Number of mu-law classes for ``bits`` bits (``2**bits``)."""
    return 2 ** int(bits)


def _check_bits(bits):
    bits = int(bits)
    if not 1 <= bits <= 16:
        raise ValueError(f"mu-law bits must be in [1, 16], got {bits}")
    return bits


def _compress64(x, mu):
    # librosa's companding formula, float64.
    return np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)


def _f32_to_key(x):
    """Monotone map float32 -> int64 (order-preserving; -0.0 and 0.0 -> 0)."""
    b = np.asarray(x, np.float32).view(np.int32).astype(np.int64)
    return np.where(b >= 0, b, -(b & 0x7FFFFFFF))


def _key_to_f32(k):
    k = np.asarray(k, np.int64)
    b = np.where(k >= 0, k, (-k) | 0x80000000).astype(np.uint32)
    return b.view(np.float32)


@functools.lru_cache(maxsize=None)
def _tables(bits):
    """(thresholds float32 [n+1], decoded float32 [n]) for ``bits`` bits.

    thresholds[0] = -inf, thresholds[n] = +inf, and for 1 <= k < n,
    thresholds[k] is the smallest float32 x in [-1, 1] with class(x) >= k,
    where class(x) = #{edges e_i < compress(x)} as in librosa (np.digitize,
    right=True).
    """
    n = 2 ** bits
    mu = n - 1
    edges = np.linspace(-1, 1, num=int(1 + mu), endpoint=True)
    # class(x) >= k  <=>  compress(x) > edges[k - 1]
    targets = edges[:-1]  # edges[k-1] for k = 1..n-1
    lo = np.full(targets.shape, _f32_to_key(np.float32(-1.0)), np.int64)
    hi = np.full(targets.shape, _f32_to_key(np.float32(1.0)), np.int64)
    # invariant: predicate false at lo - 1 (or lo is the minimum), true at hi.
    # compress(-1) = -1 is never > edges[k-1] >= -1, so the predicate is false
    # at lo; compress(1) = 1 > edges[k-1] for k <= n-1, so it is true at hi.
    while True:
        active = hi - lo > 1
        if not active.any():
            break
        mid = (lo + hi) // 2
        ok = _compress64(_key_to_f32(mid).astype(np.float64), mu) > targets
        hi = np.where(active & ok, mid, hi)
        lo = np.where(active & ~ok, mid, lo)
    thr = _key_to_f32(hi)
    thresholds = np.concatenate([[-np.inf], thr, [np.inf]]).astype(np.float32)

    q = np.arange(n, dtype=np.float64) - n // 2
    y = q * 2.0 / (1 + mu)
    decoded = (np.sign(y) / mu * (np.power(1.0 + mu, np.abs(y)) - 1.0)).astype(np.float32)
    return thresholds, decoded


def encode(x, bits=8):
    """Mu-law encode floats in [-1, 1] to int32 classes in ``[0, 2**bits)``."""
    bits = _check_bits(bits)
    n = 2 ** bits
    mu = float(n - 1)
    thresholds, _ = _tables(bits)
    thr = ops.convert_to_tensor(thresholds)
    x = ops.cast(x, "float32")
    x = ops.clip(ops.where(ops.isnan(x), ops.zeros_like(x), x), -1.0, 1.0)
    # Approximate class in float32: ceil((compress(x) + 1) * mu / 2).
    comp = ops.sign(x) * ops.log1p(mu * ops.abs(x)) / np.float32(np.log1p(mu))
    c = ops.cast(ops.ceil((comp + 1.0) * (mu / 2.0)), "int32")
    c = ops.clip(c, 0, n - 1)
    # Exact correction against the float32 thresholds (float32 error is far
    # below one bin, two rounds are more than enough).
    for _ in range(2):
        up = ops.cast(x >= ops.take(thr, c + 1), "int32")
        down = ops.cast(x < ops.take(thr, c), "int32")
        c = ops.clip(c + up - down, 0, n - 1)
    return c


def decode(q, bits=8):
    """Mu-law decode int classes in ``[0, 2**bits)`` to float32 in [-1, 1]."""
    bits = _check_bits(bits)
    n = 2 ** bits
    _, decoded = _tables(bits)
    q = ops.clip(ops.cast(q, "int32"), 0, n - 1)
    return ops.take(ops.convert_to_tensor(decoded), q)
