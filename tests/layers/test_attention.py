"""CausalSelfAttention: numpy reference, causality, cached step == full call; rotary positions (numpy
reference, scores that depend on the offset only)."""
import math

import numpy as np
import pytest

from seqgen.layers.attention import CausalSelfAttention, rotate

from conftest import _np

pytestmark = pytest.mark.multibackend




def _rotate_reference(x, pos, base=10000.0):
    """Rotary positions in numpy, pair by pair: feature i with feature i + D/2, angle pos * base^(-2i/D)."""
    out = np.array(x, np.float64)
    half = x.shape[-1] // 2
    for i in range(half):
        angle = np.asarray(pos, np.float64)[..., None] * base ** (-2.0 * i / (2 * half))
        a, b = x[..., i], x[..., i + half]
        out[..., i] = a * np.cos(angle[..., 0]) - b * np.sin(angle[..., 0])
        out[..., i + half] = a * np.sin(angle[..., 0]) + b * np.cos(angle[..., 0])
    return out


def _reference(layer, x):
    """Plain numpy masked multi-head attention from the layer's weights (rotary if the layer is)."""
    b, t, d = x.shape
    h, dk = layer.num_heads, layer.key_dim
    qkv = x @ _np(layer.qkv_kernel) + _np(layer.qkv_bias)
    qkv = qkv.reshape(b, t, 3, h, dk)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    if layer.rotary:
        pos = np.broadcast_to(np.arange(t)[None, :, None], q.shape[:-1])
        q, k = _rotate_reference(q, pos), _rotate_reference(k, pos)
    out = np.zeros((b, t, h, dk), np.float64)
    for bi in range(b):
        for hi in range(h):
            s = q[bi, :, hi] @ k[bi, :, hi].T / math.sqrt(dk)
            s = np.where(np.tril(np.ones((t, t), bool)), s, -np.inf)
            a = np.exp(s - s.max(-1, keepdims=True))
            a /= a.sum(-1, keepdims=True)
            out[bi, :, hi] = a @ v[bi, :, hi]
    return out.reshape(b, t, h * dk) @ _np(layer.out_kernel) + _np(layer.out_bias)


def _layer(d=12, heads=3, seed=0, rotary=False):
    layer = CausalSelfAttention(heads, rotary=rotary)
    layer.build((None, None, d))
    rng = np.random.default_rng(seed)
    layer.qkv_bias.assign(rng.normal(size=layer.qkv_bias.shape).astype(np.float32) * 0.1)
    layer.out_bias.assign(rng.normal(size=layer.out_bias.shape).astype(np.float32) * 0.1)
    return layer


@pytest.mark.parametrize("rotary", [False, True])
def test_matches_numpy_reference(rotary):
    layer = _layer(rotary=rotary)
    assert layer.key_dim == 4
    x = np.random.default_rng(1).normal(size=(2, 9, 12)).astype(np.float32)
    np.testing.assert_allclose(_np(layer(x)), _reference(layer, x), atol=1e-5)
    if rotary:  # the rotation changes the output (same weights, positions now count)
        plain = _layer()
        plain.set_weights(layer.get_weights())
        assert np.abs(_np(layer(x)) - _np(plain(x))).max() > 1e-3


def test_rotary_scores_depend_on_the_offset_only():
    """``rotate(q, t) . rotate(k, s)`` is the same for every pair of positions with the same ``t - s``, and
    rotation keeps lengths; with ``pos`` 0 it is the identity."""
    rng = np.random.default_rng(5)
    q, k = rng.normal(size=(2, 16)).astype(np.float32)
    def score(t, s):
        return float(np.dot(_np(rotate(q, np.int32(t))), _np(rotate(k, np.int32(s)))))
    for offset in (0, 3, 17):
        scores = [score(s + offset, s) for s in (0, 5, 40, 90)]
        np.testing.assert_allclose(scores, scores[0], rtol=1e-4, atol=1e-4)
    assert abs(score(3, 0) - score(0, 3)) > 1e-3  # the sign of the offset counts
    np.testing.assert_allclose(np.linalg.norm(_np(rotate(q, np.int32(77)))), np.linalg.norm(q), rtol=1e-5)
    np.testing.assert_allclose(_np(rotate(q, np.int32(0))), q, atol=1e-7)
    np.testing.assert_allclose(_np(rotate(q, np.int32(9))), _rotate_reference(q, 9), atol=1e-5)


def test_causal():
    layer = _layer()
    x = np.random.default_rng(2).normal(size=(1, 10, 12)).astype(np.float32)
    base = _np(layer(x))
    x2 = x.copy()
    x2[:, 6:] += 3.0
    out = _np(layer(x2))
    np.testing.assert_allclose(out[:, :6], base[:, :6], atol=1e-6)
    assert np.abs(out[:, 6:] - base[:, 6:]).max() > 1e-3


@pytest.mark.parametrize("rotary", [False, True])
def test_step_with_cache_matches_full(rotary):
    layer = _layer(d=8, heads=2, rotary=rotary)
    rng = np.random.default_rng(3)
    b, t_len, t_max = 2, 7, 10
    x = rng.normal(size=(b, t_len, 8)).astype(np.float32)
    full = _np(layer(x))
    cache = layer.initial_cache(b, t_max)
    assert tuple(cache[0].shape) == (b, t_max, 2, 4)
    for t in range(t_len):
        y, cache = layer.step(x[:, t], cache, np.int32(t))
        np.testing.assert_allclose(_np(y), full[:, t], atol=1e-5)
    # keys were written at rows 0..t_len-1 only
    keys = _np(cache[0])
    assert np.abs(keys[:, :t_len]).max() > 0
    np.testing.assert_array_equal(keys[:, t_len:], 0.0)


def test_bad_heads():
    layer = CausalSelfAttention(5)
    with pytest.raises(ValueError, match="divisible"):
        layer.build((None, None, 12))
    with pytest.raises(ValueError, match="even key_dim"):
        CausalSelfAttention(4, rotary=True).build((None, None, 12))
