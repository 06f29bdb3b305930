"""CausalSelfAttention: numpy reference, causality, cached step == full call."""
import math

import numpy as np
import pytest

from seqgen.layers.attention import CausalSelfAttention

from conftest import _np

pytestmark = pytest.mark.multibackend




def _reference(layer, x):
    """Plain numpy masked multi-head attention from the layer's weights."""
    b, t, d = x.shape
    h, dk = layer.num_heads, layer.key_dim
    qkv = x @ _np(layer.qkv_kernel) + _np(layer.qkv_bias)
    qkv = qkv.reshape(b, t, 3, h, dk)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    out = np.zeros((b, t, h, dk), np.float64)
    for bi in range(b):
        for hi in range(h):
            s = q[bi, :, hi] @ k[bi, :, hi].T / math.sqrt(dk)
            s = np.where(np.tril(np.ones((t, t), bool)), s, -np.inf)
            a = np.exp(s - s.max(-1, keepdims=True))
            a /= a.sum(-1, keepdims=True)
            out[bi, :, hi] = a @ v[bi, :, hi]
    return out.reshape(b, t, h * dk) @ _np(layer.out_kernel) + _np(layer.out_bias)


def _layer(d=12, heads=3, seed=0):
    layer = CausalSelfAttention(heads)
    layer.build((None, None, d))
    rng = np.random.default_rng(seed)
    layer.qkv_bias.assign(rng.normal(size=layer.qkv_bias.shape).astype(np.float32) * 0.1)
    layer.out_bias.assign(rng.normal(size=layer.out_bias.shape).astype(np.float32) * 0.1)
    return layer


def test_matches_numpy_reference():
    layer = _layer()
    assert layer.key_dim == 4
    x = np.random.default_rng(1).normal(size=(2, 9, 12)).astype(np.float32)
    np.testing.assert_allclose(_np(layer(x)), _reference(layer, x), atol=1e-5)


def test_causal():
    layer = _layer()
    x = np.random.default_rng(2).normal(size=(1, 10, 12)).astype(np.float32)
    base = _np(layer(x))
    x2 = x.copy()
    x2[:, 6:] += 3.0
    out = _np(layer(x2))
    np.testing.assert_allclose(out[:, :6], base[:, :6], atol=1e-6)
    assert np.abs(out[:, 6:] - base[:, 6:]).max() > 1e-3


def test_step_with_cache_matches_full():
    layer = _layer(d=8, heads=2)
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
