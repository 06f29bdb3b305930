"""seqgen.core.sampling: inverse-CDF sampling from logits with top-k / top-p."""
import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import ops

from seqgen.core.decoding import compile_fn as _jit
from seqgen.core import sampling as samplers

from conftest import _np




def _softmax(x):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _ref_topk_set(logits, k):
    kth = np.sort(logits, -1)[..., -k][..., None]
    return logits >= kth


def _ref_topp_set(probs, p):
    """Smallest set of most probable classes with mass >= p (plus ties)."""
    keep = np.zeros_like(probs, bool)
    for idx in np.ndindex(probs.shape[:-1]):
        row = probs[idx]
        order = np.argsort(-row, kind="stable")
        above = np.concatenate([[0.0], np.cumsum(row[order])[:-1]])
        kept = order[above < p * row.sum()]
        thr = row[kept].min()
        # Classes within float32 resolution of the cut-off are ties (the sampler works in
        # float32, where e.g. exp(1e-12) == exp(0)): they are kept too.
        keep[idx] = row >= thr * (1.0 - 1e-6)
    return keep


def _stratified(n):
    return ((np.arange(n) + 0.5) / n).astype(np.float32)


@pytest.mark.multibackend
def test_top_k_1_and_temperature_0_equal_greedy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(64, 50)).astype(np.float32) * 3
    ref = np.argmax(logits, -1)
    np.testing.assert_array_equal(_np(samplers.greedy(logits)), ref)
    for u in (1e-7, 0.3, 0.999999):
        uu = np.full(64, u, np.float32)
        np.testing.assert_array_equal(_np(samplers.sample_logits(logits, uu, top_k=1)), ref)
        np.testing.assert_array_equal(_np(samplers.sample_logits(logits, uu, temperature=0.0)), ref)
        np.testing.assert_array_equal(_np(samplers.sample_logits(logits, uu, greedy=True)), ref)
        # top_p tiny keeps only the mode
        np.testing.assert_array_equal(_np(samplers.sample_logits(logits, uu, top_p=1e-6)), ref)
    out = samplers.sample_logits(logits, np.full(64, 0.5, np.float32))
    assert keras.backend.standardize_dtype(out.dtype) == "int32" and tuple(out.shape) == (64,)


@pytest.mark.multibackend
@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, 0, 1.0), (0.7, 0, 1.0), (1.0, 5, 1.0), (1.3, 0, 0.8), (1.0, 4, 0.6)])
def test_frequencies_match_probabilities(temperature, top_k, top_p):
    """Stratified uniforms reproduce the (masked, renormalized) softmax."""
    logits = np.array([[1.0, 0.2, -0.5, 2.0, 0.0, -1.0, 1.5, 0.7]], np.float32)
    n = 20_000
    u = _stratified(n)
    out = _np(samplers.sample_logits(np.repeat(logits, n, 0), u, temperature, top_k, top_p))
    probs = _softmax(logits / temperature)
    keep = np.ones_like(probs, bool)
    if top_k:
        keep &= _ref_topk_set(logits, top_k)
    probs = np.where(keep, probs, 0)
    if top_p < 1:
        keep &= _ref_topp_set(probs, top_p)
        probs = np.where(keep, probs, 0)
    probs = probs[0] / probs.sum()
    freq = np.bincount(out, minlength=8) / n
    # stratified sampling is exact up to one draw per class boundary
    np.testing.assert_allclose(freq, probs, atol=2.0 / n)
    assert np.all(freq[probs == 0] == 0)


@pytest.mark.multibackend
def test_random_uniforms_frequencies():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(1, 30)).astype(np.float32)
    n = 100_000
    u = rng.uniform(size=n).astype(np.float32)
    out = _np(samplers.sample_logits(np.repeat(logits, n, 0), u))
    freq = np.bincount(out, minlength=30) / n
    np.testing.assert_allclose(freq, _softmax(logits)[0], atol=5e-3)


@pytest.mark.multibackend
def test_masked_classes_never_selected_many_draws():
    rng = np.random.default_rng(2)
    b, v = 4000, 40
    logits = (rng.normal(size=(b, v)) * rng.uniform(0.1, 8, size=(b, 1))).astype(np.float32)
    # many near-edge uniforms
    u = np.concatenate([rng.uniform(size=b - 400), np.full(200, 1 - 1e-7), np.full(100, 1.0), np.full(100, 0.0)]).astype(np.float32)
    for k, p in [(3, 1.0), (0, 0.5), (7, 0.9), (1, 0.3), (0, 0.999)]:
        out = _np(samplers.sample_logits(logits, u, 1.0, top_k=k, top_p=p))
        keep = np.ones_like(logits, bool)
        if k:
            keep &= _ref_topk_set(logits, k)
        if p < 1:
            probs = np.where(keep, _softmax(logits), 0)
            keep_p = _ref_topp_set(probs, p)
            # float32 vs float64 rounding may differ on exact ties with p;
            # the sampled class must be in the float64 nucleus of slightly larger p
            keep_p_loose = _ref_topp_set(probs, min(1.0, p + 1e-5))
            keep &= keep_p_loose
            assert keep_p.sum() > 0
        assert keep[np.arange(b), out].all(), (k, p)


@pytest.mark.multibackend
@settings(max_examples=60, deadline=None)
@given(
    # fixed vocabulary size: JAX eager re-compiles every op for a new shape
    logits=st.lists(st.floats(-30, 30, allow_nan=False, width=32), min_size=10, max_size=10),
    u=st.floats(0.0, 1.0, width=32),
    k=st.integers(0, 10),
    p=st.floats(0.01, 1.0),
)
def test_hypothesis_never_masked(logits, u, k, p):
    logits = np.array([logits], np.float32)
    out = int(_np(samplers.sample_logits(logits, np.array([u], np.float32), 1.0, top_k=k, top_p=p))[0])
    v = logits.shape[-1]
    assert 0 <= out < v
    if 0 < k < v:
        assert logits[0, out] >= np.sort(logits[0])[-k]
    keep = np.ones(v, bool)
    if 0 < k < v:
        keep &= logits[0] >= np.sort(logits[0])[-k]
    probs = np.where(keep, _softmax(logits)[0], 0.0)
    if p < 1.0:
        keep &= _ref_topp_set(probs[None], min(1.0, p + 1e-5))[0]
    assert keep[out]
    # the chosen class has positive float32 probability
    assert np.exp(np.float32(logits[0, out] - logits.max())) > 0


@pytest.mark.multibackend
def test_inverse_cdf_edges_with_zero_probability_tail():
    # last classes have zero probability in float32 (exp underflow)
    logits = np.array([[0.0, 0.5, -1e4, -np.inf]], np.float32)
    for u in (0.0, 1e-7, 0.5, 1 - 1e-7, 1.0):
        out = int(_np(samplers.sample_logits(logits, np.array([u], np.float32)))[0])
        assert out in (0, 1)
    assert int(_np(samplers.sample_logits(logits, np.array([1.0], np.float32)))[0]) == 1
    # leading zero-probability classes with u = 0
    logits = np.array([[-np.inf, -1e4, 0.0, 1.0]], np.float32)
    assert int(_np(samplers.sample_logits(logits, np.array([0.0], np.float32)))[0]) == 2
    # a single allowed class when top_k masks everything else, at every u
    logits = np.array([[3.0, 2.9, 2.8]], np.float32)
    for u in (0.0, 0.5, 1.0):
        assert int(_np(samplers.sample_logits(logits, np.array([u], np.float32), top_k=1))[0]) == 0


@pytest.mark.multibackend
def test_large_vocab_u_near_one_picks_last_allowed():
    v = 32000
    logits = np.zeros((1, v), np.float32)
    logits[0, 100] = 5.0
    logits[0, 17] = 4.0
    out = int(_np(samplers.sample_logits(logits, np.array([1 - 1e-7], np.float32), top_k=2))[0])
    assert out == 100
    out = int(_np(samplers.sample_logits(logits, np.array([1e-7], np.float32), top_k=2))[0])
    assert out == 17


@pytest.mark.multibackend
def test_tensor_temperature_and_top_p():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(8, 10)).astype(np.float32)
    u = rng.uniform(size=8).astype(np.float32)
    a = _np(samplers.sample_logits(logits, u, ops.convert_to_tensor(0.8), top_p=ops.convert_to_tensor(0.7)))
    b = _np(samplers.sample_logits(logits, u, 0.8, top_p=0.7))
    np.testing.assert_array_equal(a, b)
    g = _np(samplers.sample_logits(logits, u, ops.convert_to_tensor(0.0)))
    np.testing.assert_array_equal(g, np.argmax(logits, -1))


@pytest.mark.multibackend
def test_jit_equals_eager():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(3, 5, 64)).astype(np.float32) * 2
    u = rng.uniform(size=(3, 5)).astype(np.float32)
    for t, k, p in [(1.0, 0, 1.0), (0.6, 8, 1.0), (1.2, 0, 0.9), (1.0, 10, 0.5), (0.0, 0, 1.0)]:
        fn = lambda l, uu: samplers.sample_logits(l, uu, t, top_k=k, top_p=p)  # noqa: E731
        np.testing.assert_array_equal(_np(_jit(fn)(logits, u)), _np(fn(logits, u)))


@pytest.mark.multibackend
def test_temperature_small_concentrates_on_mode():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(1, 20)).astype(np.float32)
    logits[0, 7] = logits.max() + 0.1  # mode 0.1 above the rest: e^-10 at T=0.01
    n = 2000
    out = _np(samplers.sample_logits(np.repeat(logits, n, 0), rng.uniform(size=n).astype(np.float32), 0.01))
    assert np.all(out == 7)
    out = _np(samplers.sample_logits(np.repeat(logits, n, 0), rng.uniform(size=n).astype(np.float32), 5.0))
    assert len(np.unique(out)) > 15  # high temperature spreads out
