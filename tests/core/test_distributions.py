"""seqgen.core.distributions: likelihoods vs TFP / high-precision references,
sampling from given noise, serialization and the config factory."""
import decimal
import math

import keras
import numpy as np
import pytest
from keras import ops
from scipy import special, stats

from seqgen.core import mu_law
from seqgen.core.distributions import (
    Categorical,
    DiscretizedMixtureOfLogistics,
    Gaussian,
    get_distribution,
)
from seqgen.errors import ConfigError

from conftest import _np

BACKEND = keras.backend.backend()


def _jit(fn):
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True)
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    return fn


def _grad(fn, x):
    """Gradient of scalar fn at x (numpy in, numpy out) on the active backend."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        v = tf.Variable(x)
        with tf.GradientTape() as tape:
            y = fn(v)
        return tape.gradient(y, v).numpy()
    import jax

    return np.asarray(jax.grad(fn)(x))


def _tfp():
    if BACKEND != "tensorflow":
        pytest.skip("TFP oracle runs under the TensorFlow backend only")
    return pytest.importorskip("tensorflow_probability").distributions




def _stratified(n):
    return ((np.arange(n) + 0.5) / n).astype(np.float32)


# --------------------------------------------------------------------------
# High-precision reference for the discretized mixture of logistics
# (Python decimal, 200 digits; independent of float rounding).
# --------------------------------------------------------------------------
def _dsig(x):
    if x < -(10**7):
        return decimal.Decimal(0)
    if x > 10**7:
        return decimal.Decimal(1)
    return 1 / (1 + (-x).exp())


def _ref_mol_logp(logits, means, log_scales, k, n, log_scale_min):
    D = decimal.Decimal
    with decimal.localcontext() as ctx:
        ctx.prec = 200
        lw = [D(float(v)) for v in logits]
        top = max(lw)
        ws = [(v - top).exp() for v in lw]
        z = sum(ws)
        c = D(2 * k) / D(n - 1) - 1
        h = D(1) / D(n - 1)
        total = D(0)
        for w, mu, ls in zip(ws, means, log_scales):
            inv = (-D(float(max(ls, log_scale_min)))).exp()
            a = None if k == n - 1 else inv * (c + h - D(float(mu)))
            b = None if k == 0 else inv * (c - h - D(float(mu)))
            if a is None:
                mass = _dsig(-b)
            elif b is None:
                mass = _dsig(a)
            elif a + b > 0:  # upper tail: subtract survival functions
                mass = _dsig(-b) - _dsig(-a)
            else:
                mass = _dsig(a) - _dsig(b)
            total += w / z * mass
        return float(total.ln()) if total > 0 else -math.inf


# ==========================================================================
# Categorical
# ==========================================================================
def test_categorical_nll_matches_tfp():
    tfd = _tfp()
    rng = np.random.default_rng(0)
    logits = (rng.normal(size=(3, 17, 256)) * 4).astype(np.float32)
    target = rng.integers(0, 256, size=(3, 17)).astype(np.int32)
    dist = Categorical(256)
    nll = _np(dist.nll(logits, target))
    ref = -tfd.Categorical(logits=logits).log_prob(target).numpy()
    assert nll.shape == (3, 17)
    np.testing.assert_allclose(nll, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_np(dist.loss(logits, target)), ref.mean(), rtol=1e-5)
    np.testing.assert_allclose(_np(dist.log_prob(logits, target)), -ref, rtol=1e-5, atol=1e-5)


@pytest.mark.multibackend
def test_categorical_nll_values_and_half_precision():
    logits = np.log(np.array([[[0.1, 0.2, 0.3, 0.4]]], np.float64))
    dist = Categorical(4, mu_law=True)
    for dtype in ("float32", "float16"):
        nll = dist.nll(ops.cast(logits, dtype), np.array([[3]], np.int32))
        assert keras.backend.standardize_dtype(nll.dtype) == "float32"
        np.testing.assert_allclose(_np(nll), [[-math.log(0.4)]], rtol=2e-3)
    # extreme logits stay finite
    big = np.array([[[1e4, -1e4, 0.0, 0.0]]], np.float32)
    assert np.isfinite(_np(dist.nll(big, np.array([[1]], np.int32)))).all()


@pytest.mark.multibackend
def test_categorical_sampling_frequencies_from_noise():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(1, 1, 16)).astype(np.float32)
    n = 40_000
    dist = Categorical(16, mu_law=True)
    noise = _stratified(n).reshape(1, n, 1)
    out = _np(dist.sample(np.repeat(logits, n, 1), noise))
    assert out.shape == (1, n) and out.dtype == np.int32
    freq = np.bincount(out.ravel(), minlength=16) / n
    np.testing.assert_allclose(freq, special.softmax(logits[0, 0].astype(np.float64)), atol=2.0 / n)
    # random noise from draw_noise, looser tolerance
    noise = dist.draw_noise((1, n), seed=7)
    freq = np.bincount(_np(dist.sample(np.repeat(logits, n, 1), noise)).ravel(), minlength=16) / n
    np.testing.assert_allclose(freq, special.softmax(logits[0, 0].astype(np.float64)), atol=0.01)


@pytest.mark.multibackend
def test_categorical_temperature_determinism_and_jit():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(4, 50, 256)).astype(np.float32)
    dist = Categorical()
    noise = _np(dist.draw_noise((4, 50), seed=3))
    a = _np(dist.sample(logits, noise, 0.9))
    np.testing.assert_array_equal(a, _np(dist.sample(logits, noise, 0.9)))
    # noise without the trailing noise_size axis is accepted too
    np.testing.assert_array_equal(a, _np(dist.sample(logits, noise[..., 0], 0.9)))
    np.testing.assert_array_equal(a[:, :1], _np(dist.sample(logits[:, :1], noise[:, :1, 0], 0.9)))
    jit_a = _np(_jit(lambda p, u: dist.sample(p, u, 0.9))(logits, noise))
    np.testing.assert_array_equal(jit_a, a)
    np.testing.assert_array_equal(_np(dist.sample(logits, noise, 0.0)), np.argmax(logits, -1))
    logits[..., 42] = logits.max() + 0.2
    np.testing.assert_array_equal(_np(dist.sample(logits, noise, 0.01)), np.full((4, 50), 42))
    # top-k passes through
    top2 = np.argsort(logits, -1)[..., -2:]
    out = _np(dist.sample(logits, noise, 5.0, top_k=2))
    assert np.all((out == top2[..., 0]) | (out == top2[..., 1]))


@pytest.mark.multibackend
def test_categorical_waveform_conversion():
    x = np.linspace(-1, 1, 1001).astype(np.float32)
    mu = Categorical(256, mu_law=True)
    np.testing.assert_array_equal(_np(mu.from_waveform(x)), _np(mu_law.encode(x, 8)))
    q = np.arange(256, dtype=np.int32)
    np.testing.assert_array_equal(_np(mu.to_waveform(q)), _np(mu_law.decode(q, 8)))
    lin = Categorical(11, mu_law=False)
    levels = _np(lin.to_waveform(np.arange(11, dtype=np.int32)))
    np.testing.assert_allclose(levels, np.linspace(-1, 1, 11), atol=1e-6)
    np.testing.assert_array_equal(_np(lin.from_waveform(levels)), np.arange(11))
    np.testing.assert_array_equal(_np(lin.from_waveform(np.array([-5.0, 0.04, 0.06, 5.0], np.float32))), [0, 5, 5, 10])
    assert mu.input_is_discrete and mu.param_size == 256 and mu.noise_size == 1


# ==========================================================================
# Gaussian
# ==========================================================================
def test_gaussian_nll_matches_tfp():
    tfd = _tfp()
    rng = np.random.default_rng(3)
    params = np.stack([rng.uniform(-1, 1, (2, 30)), rng.uniform(-8, 1, (2, 30))], -1).astype(np.float32)
    x = rng.uniform(-1, 1, (2, 30)).astype(np.float32)
    dist = Gaussian()
    ref = -tfd.Normal(params[..., 0].astype(np.float64), np.exp(params[..., 1].astype(np.float64))).log_prob(x.astype(np.float64)).numpy()
    np.testing.assert_allclose(_np(dist.nll(params, x)), ref, rtol=1e-5, atol=1e-4)
    # log scale is clamped at log_scale_min
    clamped = params.copy()
    clamped[..., 1] = -20.0
    ref = -tfd.Normal(clamped[..., 0].astype(np.float64), math.exp(-9.0)).log_prob(x.astype(np.float64)).numpy()
    np.testing.assert_allclose(_np(dist.nll(clamped, x)), ref, rtol=1e-5)


@pytest.mark.multibackend
def test_gaussian_sampling_quantiles_and_temperature():
    dist = Gaussian()
    n = 10_000
    u = _stratified(n).reshape(1, n, 1)
    params = np.tile(np.array([0.1, math.log(0.2)], np.float32), (1, n, 1))
    out = _np(dist.sample(params, u))
    ref = np.clip(stats.norm.ppf(u[..., 0], loc=0.1, scale=0.2), -1, 1)
    np.testing.assert_allclose(out, ref, atol=2e-5)
    out_t = _np(dist.sample(params, u, temperature=0.5))
    np.testing.assert_allclose(out_t, np.clip(stats.norm.ppf(u[..., 0], 0.1, 0.1), -1, 1), atol=2e-5)
    np.testing.assert_allclose(_np(dist.sample(params, u, 0.0)), 0.1, atol=1e-7)
    # wide scale clips to [-1, 1], extreme uniforms finite
    wide = np.tile(np.array([0.0, 3.0], np.float32), (1, 3, 1))
    edge_u = np.array([[[0.0], [1.0], [0.5]]], np.float32)
    np.testing.assert_allclose(_np(dist.sample(wide, edge_u)), [[-1.0, 1.0, 0.0]], atol=1e-6)
    jit_out = _np(_jit(lambda p, v: dist.sample(p, v, 0.5))(params, u))
    np.testing.assert_allclose(jit_out, out_t, atol=1e-5)  # XLA erfinv differs by ulps


# ==========================================================================
# Discretized mixture of logistics
# ==========================================================================
def test_mol_interior_bins_match_tfp_float64():
    tfd = _tfp()
    rng = np.random.default_rng(4)
    k, n = 4, 256
    b, t = 3, 40
    logits = rng.normal(size=(b, t, k))
    means = rng.uniform(-0.9, 0.9, (b, t, k))
    log_scales = rng.uniform(-6, 0, (b, t, k))
    params = np.concatenate([logits, means, log_scales], -1).astype(np.float32)
    p64 = params.astype(np.float64)
    target = rng.integers(1, n - 1, (b, t))
    x = target * 2.0 / (n - 1) - 1.0
    mix = tfd.MixtureSameFamily(
        tfd.Categorical(logits=p64[..., :k]),
        tfd.Logistic(loc=p64[..., k : 2 * k], scale=np.exp(p64[..., 2 * k :])),
    )
    half = 1.0 / (n - 1)
    mass = mix.cdf(x + half).numpy() - mix.cdf(x - half).numpy()
    # a plain CDF difference cancels for tiny masses: compare where it is reliable
    ok = mass > 1e-7
    assert ok.mean() > 0.5
    ref = np.log(np.where(ok, mass, 1.0))
    dist = DiscretizedMixtureOfLogistics(num_mixtures=k, num_classes=n)
    # float targets and int class targets give the same bin
    got_f = _np(dist.log_prob(params, x.astype(np.float32)))
    got_i = _np(dist.log_prob(params, target.astype(np.int32)))
    np.testing.assert_allclose(got_f[ok], ref[ok], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_i, got_f, rtol=1e-6, atol=1e-6)
    # float64 path agrees with the float64 oracle tightly
    got64 = _np(dist.log_prob(p64, target.astype(np.int32)))
    np.testing.assert_allclose(got64[ok], ref[ok], rtol=1e-8, atol=1e-8)
    # tiny masses: against the 200-digit reference
    for bi, ti in list(zip(*np.nonzero(~ok)))[:5]:
        want = _ref_mol_logp(params[bi, ti, :k], params[bi, ti, k : 2 * k], params[bi, ti, 2 * k :], int(target[bi, ti]), n, -7.0)
        np.testing.assert_allclose(got_f[bi, ti], want, rtol=1e-5)
    # edge bins take the tails (per-component CDF / survival function, so the
    # float64 oracle has no cancellation)
    comps = tfd.Logistic(loc=p64[..., k : 2 * k], scale=np.exp(p64[..., 2 * k :]))
    w = special.softmax(p64[..., :k], -1)
    lower = np.full((b, t, 1), -1 + half)
    upper = np.full((b, t, 1), 1 - half)
    for kk, ref_edge in [(0, (w * comps.cdf(lower).numpy()).sum(-1)),
                         (n - 1, (w * comps.survival_function(upper).numpy()).sum(-1))]:
        got = _np(dist.log_prob(p64, np.full((b, t), kk, np.int32)))
        np.testing.assert_allclose(got, np.log(ref_edge), rtol=1e-8, atol=1e-8)
        got32 = _np(dist.log_prob(params, np.full((b, t), kk, np.int32)))
        np.testing.assert_allclose(got32, np.log(ref_edge), rtol=1e-5, atol=1e-5)


def test_mol_all_classes_sum_to_one_float64():
    _tfp()  # float64 on the TF backend
    rng = np.random.default_rng(5)
    n, k = 65536, 10
    dist = DiscretizedMixtureOfLogistics(num_mixtures=k, num_classes=n)
    for scale_lo, scale_hi in [(-7, -6), (-3, 0), (0, 3)]:
        p = np.concatenate([rng.normal(size=k), rng.uniform(-1.2, 1.2, k), rng.uniform(scale_lo, scale_hi, k)])
        lp = _np(dist.log_prob(np.broadcast_to(p, (n, 3 * k)), np.arange(n, dtype=np.int32)))
        assert lp.dtype == np.float64
        assert abs(special.logsumexp(lp)) < 1e-10


EXTREME_PARAMS = [
    # logits, means, log_scales
    ([1e4, -1e4, 0.0], [1e3, -1e3, 0.999], [-50.0, 50.0, -7.0]),
    ([0.0, 0.0, 0.0], [5.0, -5.0, 0.0], [-7.0, -7.0, -7.0]),  # far tails: log p ~ -1e3..-5e3
    ([0.0, 0.0, 0.0], [0.99999, -0.99999, 1.0], [-7.0, -7.0, -7.0]),  # mass on edge bins
    ([50.0, -50.0, 0.0], [0.3, -0.3, 0.0], [20.0, 3.0, -7.0]),
    ([0.0, 0.0, 0.0], [1e6, -1e6, 3.0], [80.0, -7.0, 1.0]),
    ([0.0, -1e4, -1e4], [0.2, 0.0, 0.0], [80.0, 0.0, 0.0]),  # bin mass ~1e-40: bin-centre fallback
    ([0.0, -1e4, -1e4], [0.2, 0.0, 0.0], [200.0, 0.0, 0.0]),  # 1/scale underflows to 0
]


@pytest.mark.multibackend
@pytest.mark.parametrize("case", range(len(EXTREME_PARAMS)))
def test_mol_extreme_params_float32_stable_and_accurate(case):
    logits, means, log_scales = EXTREME_PARAMS[case]
    n = 65536
    dist = DiscretizedMixtureOfLogistics(num_mixtures=3, num_classes=n)
    p = np.array(logits + means + log_scales, np.float32)
    all_k = np.arange(n, dtype=np.int32)
    lp = _np(dist.log_prob(np.broadcast_to(p, (n, 9)), all_k))
    assert lp.dtype == np.float32
    assert np.isfinite(lp).all()
    assert np.all(lp <= 1e-6)
    # float32 probabilities still sum to one
    assert abs(special.logsumexp(lp.astype(np.float64))) < 2e-5
    # against the 200-digit reference, including top and bottom classes
    ks = [0, 1, 2, n // 4, n // 2, 3 * n // 4, n - 3, n - 2, n - 1]
    ref = np.array([_ref_mol_logp(logits, means, log_scales, k, n, -7.0) for k in ks])
    np.testing.assert_allclose(lp[ks], ref, rtol=2e-5, atol=1e-5)
    # gradients finite too
    target = np.array(ks, np.int32)
    params = np.tile(p, (len(ks), 1))
    g = _grad(lambda v: ops.sum(dist.nll(v, target)), params)
    assert np.isfinite(g).all()


def test_top_classes_finite_where_tfp_quantized_mixture_is_not():
    """Why we do not build on TFP: its QuantizedDistribution over a logistic
    mixture returns NaN for the top classes in float32 (TFP 0.25); ours is
    finite there and matches the 200-digit reference."""
    tfd = _tfp()
    bij = pytest.importorskip("tensorflow_probability").bijectors
    n = 65536
    logits, means, log_scales = [0.0, 0.0], [0.0, 0.5], [-7.0, -7.0]
    mix = tfd.MixtureSameFamily(
        tfd.Categorical(logits=np.array(logits, np.float32)),
        tfd.Logistic(loc=np.array(means, np.float32), scale=np.exp(np.array(log_scales, np.float32))),
    )
    affine = bij.Shift(np.float32((n - 1) / 2))(bij.Scale(np.float32((n - 1) / 2)))
    quantized = tfd.QuantizedDistribution(tfd.TransformedDistribution(mix, affine), low=np.float32(0), high=np.float32(n - 1))
    ks = np.array([0, 1, n // 2, n - 3, n - 2, n - 1])
    theirs = quantized.log_prob(ks.astype(np.float32)).numpy()
    p = np.tile(np.array(logits + means + log_scales, np.float32), (ks.size, 1))
    ours = _np(DiscretizedMixtureOfLogistics(2, n).log_prob(p, ks.astype(np.int32)))
    ref = np.array([_ref_mol_logp(logits, means, log_scales, int(k), n, -7.0) for k in ks])
    assert np.isfinite(ours).all(), (ours, theirs)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, err_msg=f"tfp float32 gives {theirs}")


@pytest.mark.multibackend
def test_mol_sampling_frequencies_match_bin_probabilities():
    n_bins = 16
    dist = DiscretizedMixtureOfLogistics(num_mixtures=3, num_classes=n_bins)
    p = np.array([0.5, -0.3, 0.0, -0.6, 0.2, 0.95, -2.0, -1.5, -2.5], np.float32)
    n = 200_000
    params = np.broadcast_to(p, (1, n, 9))
    noise = dist.draw_noise((1, n), seed=11)
    assert tuple(noise.shape) == (1, n, 2)
    x = _np(_jit(dist.sample)(params, noise))
    assert x.dtype == np.float32 and np.all(np.abs(x) <= 1)
    freq = np.bincount(_np(dist.bin_index(x)).ravel(), minlength=n_bins) / n
    probs = np.exp(_np(dist.log_prob(np.broadcast_to(p, (n_bins, 9)), np.arange(n_bins, dtype=np.int32))))
    np.testing.assert_allclose(freq, probs, atol=4e-3)
    # same noise -> same samples; jit equals eager
    small = (params[:, :500], noise[:, :500])
    np.testing.assert_array_equal(_np(dist.sample(*small)), _np(dist.sample(*small)))
    np.testing.assert_allclose(_np(dist.sample(*small)), x[:, :500], atol=1e-6)
    np.testing.assert_allclose(_np(_jit(lambda a, b: dist.sample(a, b, 0.7))(*small)),
                               _np(dist.sample(*small, 0.7)), atol=1e-6)


@pytest.mark.multibackend
def test_mol_temperature_concentrates_on_mode_component():
    dist = DiscretizedMixtureOfLogistics(num_mixtures=3, num_classes=65536)
    p = np.array([0.0, 1.0, 0.5, -0.6, 0.2, 0.7, -2.0, -2.0, -2.0], np.float32)
    rng = np.random.default_rng(6)
    noise = rng.uniform(1e-6, 1 - 1e-6, (1000, 2)).astype(np.float32)
    params = np.broadcast_to(p, (1000, 9))
    x = _np(dist.sample(params, noise, 0.0))
    np.testing.assert_allclose(x, 0.2, atol=1e-7)  # mean of the top component
    x = _np(dist.sample(params, noise, 0.01))
    assert np.all(np.abs(x - 0.2) < 0.02)


@pytest.mark.multibackend
def test_mol_mean_scale_and_density_integrate():
    dist = DiscretizedMixtureOfLogistics(num_mixtures=2, num_classes=256)
    p = np.array([0.3, -0.2, -0.3, 0.4, -2.0, -3.0], np.float32)
    grid = np.linspace(-4, 4, 400_001)
    dens = np.exp(_np(dist.log_density(np.broadcast_to(p, (grid.size, 6)), grid.astype(np.float32))).astype(np.float64))
    dx = grid[1] - grid[0]
    assert abs(dens.sum() * dx - 1) < 1e-4
    mean, std = (_np(v) for v in dist.mean_and_scale(p))
    np.testing.assert_allclose(mean, (grid * dens).sum() * dx, atol=1e-4)
    np.testing.assert_allclose(std, math.sqrt(((grid - mean) ** 2 * dens).sum() * dx), rtol=1e-3)
    logits, means, log_scales = (_np(v) for v in dist.split_params(np.array([0, 0, 0, 0, -9.0, 1.0], np.float32)))
    np.testing.assert_array_equal(log_scales, [-7.0, 1.0])
    assert dist.param_size == 6 and dist.noise_size == 2 and not dist.input_is_discrete


# ==========================================================================
# Noise, serialization, factory
# ==========================================================================
@pytest.mark.multibackend
@pytest.mark.parametrize("dist", [Categorical(), DiscretizedMixtureOfLogistics(), Gaussian()])
def test_draw_noise_shape_range_seed(dist):
    a = _np(dist.draw_noise((3, 1000), seed=5))
    assert a.shape == (3, 1000, dist.noise_size) and a.dtype == np.float32
    assert np.all(a > 0) and np.all(a < 1)
    np.testing.assert_array_equal(a, _np(dist.draw_noise((3, 1000), seed=5)))
    assert not np.array_equal(a, _np(dist.draw_noise((3, 1000), seed=6)))
    gen = keras.random.SeedGenerator(1)
    b1, b2 = _np(dist.draw_noise((4,), seed=gen)), _np(dist.draw_noise((4,), seed=gen))
    assert not np.array_equal(b1, b2)


@pytest.mark.multibackend
@pytest.mark.parametrize(
    "dist",
    [Categorical(64, mu_law=False), DiscretizedMixtureOfLogistics(5, 1024, -6.0), Gaussian(-5.0)],
)
def test_serialization_roundtrip(dist):
    again = type(dist).from_config(dist.get_config())
    assert again == dist and again.get_config() == dist.get_config()
    blob = keras.saving.serialize_keras_object(dist)
    back = keras.saving.deserialize_keras_object(blob)
    assert type(back) is type(dist) and back.get_config() == dist.get_config()
    assert get_distribution(dist.to_dict()) == dist
    assert keras.saving.get_registered_object(f"seqgen>{type(dist).__name__}") is type(dist)


@pytest.mark.multibackend
def test_get_distribution_factory_and_errors():
    d = get_distribution({"type": "mixture_logistic", "num_mixtures": 4, "num_classes": 256})
    assert isinstance(d, DiscretizedMixtureOfLogistics) and d.param_size == 12
    assert get_distribution({"type": "categorical"}) == Categorical(256, True)
    assert isinstance(get_distribution({"type": "gaussian", "log_scale_min": -4}), Gaussian)
    assert get_distribution(d) is d
    bad = [
        ({"type": "poisson"}, "model.distribution.type"),
        ({}, "model.distribution.type"),
        ({"type": "categorical", "classes": 3}, "model.distribution.classes"),
        ({"type": "categorical", "num_classes": "many"}, "model.distribution.num_classes"),
        ({"type": "categorical", "num_classes": 100}, "model.distribution.num_classes"),
        ({"type": "categorical", "num_classes": 1, "mu_law": False}, "model.distribution.num_classes"),
        ({"type": "categorical", "mu_law": "yes"}, "model.distribution.mu_law"),
        ({"type": "mixture_logistic", "num_mixtures": 0}, "model.distribution.num_mixtures"),
        ({"type": "mixture_logistic", "num_mixtures": 2.5}, "model.distribution.num_mixtures"),
        ({"type": "gaussian", "log_scale_min": float("nan")}, "model.distribution.log_scale_min"),
        ({"type": "gaussian", "num_classes": 3}, "model.distribution.num_classes"),
    ]
    for config, key in bad:
        with pytest.raises(ConfigError) as err:
            get_distribution(config)
        msg = str(err.value)
        assert msg.startswith(key + ":"), (config, msg)
        assert "\n" not in msg
    with pytest.raises(ConfigError, match=r"^model\.distribution:"):
        get_distribution(["categorical"])


def test_core_modules_import_no_tensorflow_under_jax():
    """The backend-agnostic core must not pull in TensorFlow / TFP."""
    import subprocess
    import sys

    code = (
        "import sys, seqgen.core.distributions, seqgen.core.sampling, seqgen.core.mu_law;"
        "bad=[m for m in ('tensorflow','tensorflow_probability') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = dict(__import__("os").environ, KERAS_BACKEND="jax")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_bits_per_16bit_sample_puts_every_head_in_one_unit():
    """A model uniform over the 65536 16-bit values scores exactly 16 bits per 16-bit sample whatever its
    quantizer: -log2 p(class) + log2(width of the class in 16-bit steps) = 16 for every class."""
    for dist in (Categorical(256), Categorical(1024), Categorical(64, mu_law=False)):
        widths = 2.0 ** dist.bits_to_16bit(np.arange(dist.num_classes))
        assert widths.min() >= 1
        probs = widths / widths.sum()
        logits = np.log(probs)[None, None, :].repeat(dist.num_classes, 1).astype(np.float64)
        nll_bits = _np(dist.nll(logits, np.arange(dist.num_classes)[None])) / math.log(2)
        total = nll_bits[0] + dist.bits_to_16bit(np.arange(dist.num_classes))
        np.testing.assert_allclose(total, 16.0 + math.log2(widths.sum() / 65536), atol=1e-9)
    # 8-bit mu-law partitions the 16-bit values exactly: the outer classes are ~1400 steps wide, the centre 6
    w = 2.0 ** Categorical(256).bits_to_16bit(np.arange(256))
    assert w.sum() == 65536 and w[255] > 1000 and w[128] < 8
    # a 65536-bin mixture of logistics: one 16-bit value per bin (up to rounding at the centre)
    mol = DiscretizedMixtureOfLogistics(num_classes=65536)
    assert np.all(mol.bits_to_16bit(np.linspace(-1, 1, 9).astype(np.float32)) <= 1.0)
    # linear 256 levels: the same widths as a categorical over the same levels
    x = np.linspace(-1, 1, 101).astype(np.float32)
    lin = Categorical(256, mu_law=False)
    np.testing.assert_array_equal(DiscretizedMixtureOfLogistics(num_classes=256).bits_to_16bit(x),
                                  lin.bits_to_16bit(_np(lin.from_waveform(x))))
    # a density: a 16-bit step has mass p(x)/32768, i.e. +15 bits
    g = Gaussian()
    params = np.array([[[0.0, math.log(0.01)]]], np.float32)
    bits = _np(g.nll(params, np.zeros((1, 1), np.float32)))[0, 0] / math.log(2) + g.bits_to_16bit(np.zeros(1))[0]
    step_mass = stats.norm(0, 0.01).cdf(0.5 / 32768) - stats.norm(0, 0.01).cdf(-0.5 / 32768)
    assert bits == pytest.approx(-math.log2(step_mass), abs=1e-3)
