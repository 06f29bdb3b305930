"""Sampling from logits with ``keras.ops`` only (any backend, jit-safe).

Shared by every autoregressive model.  Randomness is *not* drawn here: the
caller passes uniforms ``u`` in (0, 1) (see ``Distribution.draw_noise``), and
the class is picked by inverse-CDF sampling, so the result is a deterministic
function of ``(logits, u)``.  That makes compiled and eager runs agree and lets
tests check frequencies exactly.
"""
import dataclasses
import numbers

import keras
from keras import ops

__all__ = ["SamplingSettings", "sample_logits", "greedy", "top_k_mask", "top_p_mask"]


@dataclasses.dataclass(frozen=True)
class SamplingSettings:
    """How the next token is chosen, as one value passed through the decoders.

    ``temperature`` (0 = greedy), ``top_k`` (0 = off), ``top_p`` (1 = off);
    ``beam_size`` (None = sample, else beam search) and its ``length_penalty``.
    Inside a compiled function ``temperature`` and ``top_p`` may be tensors
    (so that changing them does not retrace); ``top_k`` and ``beam_size`` are
    static.
    """
    temperature: object = 1.0
    top_k: int = 0
    top_p: object = 1.0
    beam_size: int | None = None
    length_penalty: float = 0.6

    @property
    def uses_top_p(self) -> bool:
        return not isinstance(self.top_p, (int, float)) or float(self.top_p) < 1.0

    def sample(self, logits, u):
        """:func:`sample_logits` with these settings."""
        return sample_logits(logits, u, self.temperature, self.top_k, self.top_p)



def greedy(logits):
    """Argmax over the last axis, int32 ``[...]``."""
    return ops.cast(ops.argmax(logits, axis=-1), "int32")


def _is_static_number(v):
    return isinstance(v, numbers.Number) and not isinstance(v, bool)


def top_k_mask(logits, top_k):
    """Boolean mask ``[..., V]`` of the classes kept by top-k (ties at the k-th
    value are all kept).  ``top_k`` is a static Python int; ``<= 0`` or
    ``>= V`` keeps everything."""
    top_k = int(top_k)
    vocab = logits.shape[-1]
    if top_k <= 0 or (vocab is not None and top_k >= vocab):
        return ops.ones_like(logits, dtype="bool")
    kth = ops.top_k(logits, top_k, sorted=True)[0][..., top_k - 1 : top_k]
    return logits >= kth


def top_p_mask(probs, top_p):
    """Boolean mask ``[..., V]`` of the nucleus: the smallest set of most
    probable classes whose mass reaches ``top_p`` of the total mass (ties
    with the smallest kept probability are kept too; the most probable
    class is always kept).  ``probs`` need not be normalized."""
    ascending = ops.sort(probs, axis=-1)
    total = ops.sum(probs, axis=-1, keepdims=True)
    # mass strictly above each sorted position (positions later in ascending order)
    above = total - ops.cumsum(ascending, axis=-1)
    keep_sorted = above < top_p * total
    big = ops.max(probs, axis=-1, keepdims=True) + 1.0
    threshold = ops.min(ops.where(keep_sorted, ascending, big), axis=-1, keepdims=True)
    # the maximum is always kept (``above`` is 0 <= top_p*total at the last
    # position only if top_p > 0; guard top_p == 0 explicitly)
    threshold = ops.minimum(threshold, ops.max(probs, axis=-1, keepdims=True))
    return probs >= threshold


def _inverse_cdf(probs, u):
    """Index i with cdf[i-1] <= u*total < cdf[i]; never a zero-probability
    class.  probs [..., V] >= 0 (unnormalized), u [...] in [0, 1]."""
    vocab = ops.shape(probs)[-1]
    cdf = ops.cumsum(probs, axis=-1)
    total = cdf[..., -1:]
    target = ops.expand_dims(ops.cast(u, probs.dtype), -1) * total
    idx = ops.sum(ops.cast(cdf <= target, "int32"), axis=-1)
    # Rounding (u*total == total, or float cumsum drift) could run past the
    # last class with positive probability: clip to it.
    positions = ops.arange(vocab, dtype="int32")
    last_positive = ops.max(ops.where(probs > 0, positions, -1), axis=-1)
    return ops.cast(ops.minimum(idx, ops.maximum(last_positive, 0)), "int32")


def sample_logits(logits, u, temperature=1.0, top_k=0, top_p=1.0, greedy=False):
    """Inverse-CDF sample from ``softmax(logits / temperature)``.

    Args:
      logits: float ``[..., V]``.
      u: uniforms ``[...]`` in (0, 1) (one per sampled position).
      temperature: Python number or scalar tensor.  A Python ``0`` (or
        ``greedy=True``) gives argmax.  A tensor temperature ``<= 0`` also
        gives argmax (selected with ``where``).
      top_k: static Python int; keep only the ``top_k`` largest logits
        (``0`` = off).
      top_p: nucleus probability in (0, 1]; ``1.0`` = off.  Python number or
        scalar tensor.
      greedy: force argmax.

    Returns:
      int32 ``[...]`` class indices.  Masked (zero-probability) classes are
      never returned.
    """
    logits = ops.convert_to_tensor(logits)
    if keras.backend.standardize_dtype(logits.dtype) not in ("float32", "float64"):
        logits = ops.cast(logits, "float32")
    if greedy or (_is_static_number(temperature) and temperature <= 0):
        return _greedy_fn(logits)

    static_t = _is_static_number(temperature)
    if static_t:
        scaled = logits / float(temperature)
    else:
        t = ops.cast(temperature, logits.dtype)
        scaled = logits / ops.maximum(t, 1e-6)

    keep = top_k_mask(scaled, top_k)
    neg = -1e30 if keras.backend.standardize_dtype(scaled.dtype) == "float32" else -1e300
    masked = ops.where(keep, scaled, neg)
    m = ops.max(masked, axis=-1, keepdims=True)
    probs = ops.where(keep, ops.exp(masked - m), 0.0)

    if not (_is_static_number(top_p) and top_p >= 1.0):
        probs = ops.where(top_p_mask(probs, top_p), probs, 0.0)

    out = _inverse_cdf(probs, u)
    if not static_t:
        out = ops.where(ops.cast(temperature, logits.dtype) <= 0, _greedy_fn(logits), out)
    return out


_greedy_fn = greedy
