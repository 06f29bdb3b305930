"""Parallel WaveNet student: causal flows, exact log-density, save/load, and the
distillation objective (unbiased KL estimate, frozen teacher)."""
import math

import keras
import numpy as np
import pytest
from scipy import stats

from seqgen.train.distillation import attach
from seqgen.models import WaveNet
from seqgen.models.parallel_wavenet import ParallelWaveNet

from conftest import _np

pytestmark = pytest.mark.multibackend

HOP, MELS = 4, 3
TINY = dict(flow_layers=[2, 3], layers_per_cycle=2, residual_channels=8, gate_channels=8, skip_channels=8,
            cond_channels=MELS, hop_length=HOP)




def _randomize(model, seed=0, scale=0.3):
    """Random output layers (they start at zero: each flow would be a constant affine map)
    and biases, so the flows really depend on their input noise."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if "head_out" in w.path or "bias" in w.path:
            w.assign((rng.normal(size=w.shape) * scale).astype(w.dtype))


def _student(seed=0, **kw):
    s = ParallelWaveNet(**{**TINY, **kw})
    _randomize(s, seed)
    return s


def _teacher(dist, seed=1):
    t = WaveNet(num_stacks=1, layers_per_stack=3, residual_channels=8, gate_channels=8, skip_channels=8,
                cond_channels=MELS, hop_length=HOP, distribution=dist)
    rng = np.random.default_rng(seed)
    for w in t.weights:
        if "head_out" in w.path:
            w.assign((rng.normal(size=w.shape) * 0.3).astype(w.dtype))
    return t


def _jax_x64(on):
    """Turn JAX's 64-bit mode on/off (float64 needs it); returns the previous setting (None off JAX)."""
    if keras.backend.backend() != "jax" or on is None:
        return None
    import jax

    old = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", bool(on))
    return old


def _mel(batch=2, frames=6, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, frames, MELS)).astype(np.float32)


# ------------------------------------------------------------------ flows
def test_each_flow_is_causal_in_its_input_noise():
    s = _student()
    mel = _mel()
    cond, _ = s.conditioning(mel)
    t_len = mel.shape[1] * HOP
    rng = np.random.default_rng(1)
    z = rng.logistic(size=(2, t_len)).astype(np.float32)
    for flow in s.flows:
        mu, log_s = (_np(v) for v in flow(z, cond))
        for t in (0, 5, 13, t_len - 2):
            z2 = z.copy()
            z2[:, t:] = rng.logistic(size=(2, t_len - t))
            mu2, log_s2 = (_np(v) for v in flow(z2, cond))
            # outputs up to and including t see only z[<t]: unchanged
            np.testing.assert_allclose(mu2[:, :t + 1], mu[:, :t + 1], atol=1e-6)
            np.testing.assert_allclose(log_s2[:, :t + 1], log_s[:, :t + 1], atol=1e-6)
            # ... and the flow does depend on its input: the next step moves
            assert np.abs(mu2[:, t + 1] - mu[:, t + 1]).max() > 1e-4
    # the whole stack: x[t] depends on z0[<=t] only, and M, S on z0[<t]
    out = s({"mel": mel, "noise": z})
    z2 = z.copy()
    z2[:, 9:] += 1.0
    out2 = s({"mel": mel, "noise": z2})
    for k in ("x", "loc", "log_scale"):
        np.testing.assert_allclose(_np(out2[k])[:, :9], _np(out[k])[:, :9], atol=1e-6)
    assert np.abs(_np(out2["x"])[:, 9] - _np(out["x"])[:, 9]).min() > 1e-3
    np.testing.assert_allclose(_np(out2["loc"])[:, 9], _np(out["loc"])[:, 9], atol=1e-6)


@pytest.mark.parametrize("family", ["logistic", "gaussian"])
def test_log_density_equals_change_of_variables(family):
    """log p(x) from the closed-form per-step (M_t, S_t) == log f(z0) - log|det dx/dz0|, with the
    Jacobian taken numerically in float64 (central differences over every noise sample)."""
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    x64 = _jax_x64(True)
    try:
        s = _student(seed=3, family=family)
        mel = _mel(batch=1, frames=3, seed=2).astype(np.float64)
        cond, _ = s.conditioning(mel)
        t_len = 3 * HOP
        rng = np.random.default_rng(4)
        z0 = rng.logistic(size=(1, t_len)) if family == "logistic" else rng.normal(size=(1, t_len))
        out = s({"mel": mel, "noise": z0})
        log_p = _np(s.log_density(out)).sum()

        eps = 1e-5
        jac = np.zeros((t_len, t_len))
        for j in range(t_len):
            dz = np.zeros_like(z0)
            dz[0, j] = eps
            hi = _np(s.transform(z0 + dz, cond)[0])[0]
            lo = _np(s.transform(z0 - dz, cond)[0])[0]
            jac[:, j] = (hi - lo) / (2 * eps)
    finally:
        keras.config.set_dtype_policy(old)
        _jax_x64(x64)
    assert np.abs(np.triu(jac, 1)).max() < 1e-8            # x[t] never depends on later noise
    assert np.abs(np.tril(jac, -1)).max() > 1e-3           # ... but does on earlier noise
    np.testing.assert_allclose(np.diag(jac), np.exp(_np(out["log_scale"])[0]), rtol=1e-6)
    sign, logdet = np.linalg.slogdet(jac)
    assert sign > 0
    base = stats.logistic.logpdf(z0) if family == "logistic" else stats.norm.logpdf(z0)
    np.testing.assert_allclose(log_p, base.sum() - logdet, rtol=0, atol=1e-6)
    # the entropy is the analytic one: log S_t + H(base) per step
    h_base = 2.0 if family == "logistic" else 0.5 * math.log(2 * math.pi * math.e)
    np.testing.assert_allclose(_np(s.entropy(out)), _np(out["log_scale"]) + h_base, atol=1e-12)


def test_save_load_round_trip(tmp_path):
    s = _student(seed=5)
    mel = _mel(batch=1, frames=5)[0]
    path = tmp_path / "student.keras"
    s.save(path)
    s2 = keras.saving.load_model(path)
    assert isinstance(s2, ParallelWaveNet) and s2.get_config() == s.get_config()
    a = s.generate(mel=mel, seed=7)
    b = s2.generate(mel=mel, seed=7)
    assert a.shape == (1, 5 * HOP) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, s2.generate(mel=mel, seed=8))       # the seed is the noise
    with pytest.raises(ValueError, match="parallel"):
        s2.generate(mel=mel, method="cached")


def test_generate_is_one_pass_and_matches_the_flows():
    """generate == clip(call(noise)) with the same noise: one parallel pass, no loop over time;
    zero-padding the mel to a frame bucket does not change the samples (causal flows)."""
    s = _student(seed=6)
    mel = _mel(batch=1, frames=5)
    wav = s.generate(mel=mel, seed=3, frame_bucket=1)
    wav_bucketed = s.generate(mel=mel, seed=3, frame_bucket=64)
    noise = _np(s.base_noise((1, 5 * HOP), seed=3))
    x = np.clip(_np(s({"mel": mel, "noise": noise})["x"]), -1, 1)
    np.testing.assert_allclose(wav, x, atol=1e-5)
    assert wav_bucketed.shape == wav.shape


def _sequential_structure(fn, args):
    """(number of ops, loop ops) of ``fn`` traced on ``args`` by the backend's compiler front end."""
    if keras.backend.backend() == "jax":
        import jax

        eqns = jax.make_jaxpr(fn)(*args).jaxpr.eqns
        names = [e.primitive.name for e in eqns]
        return len(names), [n for n in names if n in ("while", "scan", "fori_loop")]
    import tensorflow as tf

    graph = tf.function(fn).get_concrete_function(*args).graph
    types = [op.type for op in graph.get_operations()]
    return len(types), [t for t in types if "While" in t]


def test_sampling_depth_does_not_grow_with_length():
    """The student's sampling graph has no loop, and the same ops for 4x the audio: its
    sequential depth is set by the layers, not the length.  The teacher's cached loop is a
    while loop that runs once per sample."""
    s = _student(seed=2)
    short, long_ = [(_mel(batch=1, frames=f), np.zeros((1, f * HOP), np.float32)) for f in (8, 32)]
    n_short, loops_short = _sequential_structure(lambda m, z: s._generate_fn(m, None, z), short)
    n_long, loops_long = _sequential_structure(lambda m, z: s._generate_fn(m, None, z), long_)
    assert loops_short == loops_long == []
    assert n_short == n_long > 0
    t = _teacher({"type": "gaussian"})
    x0 = np.zeros((1,), np.float32)
    frames = t.upsampler.frames_with_context(_mel(batch=1, frames=8), 0, 8)
    bias = t._bias_fn(frames, None)

    def teacher_loop(b):
        return t._loop_fn(x0, t.initial_cache(1), 0, 32, np.full((1, 32), 0.5, np.float32), b,
                          np.zeros((1, 32), np.float32), 0, np.float32(1.0))[0]
    _, teacher_loops = _sequential_structure(teacher_loop, (bias,))
    assert teacher_loops, "the cached teacher decodes in a loop over time"


# ------------------------------------------------------------------ objective
def _mol_log_pdf(params, x, k):
    logits, means, log_s = params[..., :k], params[..., k:2 * k], np.maximum(params[..., 2 * k:], -7.0)
    z = (x[..., None] - means) * np.exp(-log_s)
    log_pdf = -z - log_s - 2 * np.logaddexp(0, -z)
    log_w = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    return np.logaddexp.reduce(log_w + log_pdf, axis=-1)


def test_kl_mc_estimator_is_unbiased_against_numerical_integration():
    """Fix one student sample x (so the teacher's per-step distributions given x<t are fixed):
    the Monte Carlo cross-entropy averaged over independent seeds matches the cross-entropy
    integrated on a grid, and the analytic entropy matches the integrated one."""
    s = _student(seed=7)
    teacher = _teacher({"type": "mixture_logistic", "num_mixtures": 2, "num_classes": 65536})
    d = attach(s, teacher, mc_samples=256, power_weight=0.0)
    mel = _mel(batch=1, frames=3, seed=8)
    out = s({"mel": mel, "noise": np.random.default_rng(9).logistic(size=(1, 3 * HOP)).astype(np.float32)})
    estimates = [float(_np(d.terms(s, {"mel": mel}, None, None, out, seed=i)["cross_entropy"])) for i in range(24)]
    mean, se = np.mean(estimates), np.std(estimates, ddof=1) / np.sqrt(len(estimates))

    x = _np(out["x"])[0].astype(np.float64)
    loc, log_scale = _np(out["loc"])[0].astype(np.float64), _np(out["log_scale"])[0].astype(np.float64)
    params = _np(teacher({"x": np.concatenate([[0.0], x[:-1]])[None].astype(np.float32), "mel": mel}))[0]
    exact_ce, exact_h = [], []
    for t in range(len(x)):
        sc = np.exp(log_scale[t])
        grid = np.linspace(loc[t] - 40 * sc, loc[t] + 40 * sc, 200001)
        q = stats.logistic.pdf(grid, loc[t], sc)
        exact_ce.append(np.trapezoid(q * -_mol_log_pdf(params[t].astype(np.float64), grid, 2), grid))
        exact_h.append(np.trapezoid(-q * stats.logistic.logpdf(grid, loc[t], sc), grid))
    exact = float(np.mean(exact_ce))
    assert se < 0.02                           # the check has power
    assert abs(mean - exact) < 4 * se + 1e-4, (mean, exact, se)
    ent = float(_np(d.terms(s, {"mel": mel}, None, None, out, seed=0)["entropy"]))
    np.testing.assert_allclose(ent, np.mean(exact_h), atol=1e-4)


def test_closed_form_gaussian_kl_matches_integration_and_mc():
    """ClariNet's per-step KL (Gaussian student, Gaussian teacher) equals the integral, and the
    Monte Carlo estimator agrees with it."""
    s = _student(seed=10, family="gaussian")
    teacher = _teacher({"type": "gaussian"}, seed=11)
    mel = _mel(batch=1, frames=3, seed=12)
    out = s({"mel": mel, "noise": np.random.default_rng(13).normal(size=(1, 3 * HOP)).astype(np.float32)})
    closed = attach(s, teacher, kl="closed_form", power_weight=0.0)
    terms = {k: float(_np(v)) for k, v in closed.terms(s, {"mel": mel}, None, None, out).items()}
    x = _np(out["x"])[0].astype(np.float64)
    loc, sc = _np(out["loc"])[0].astype(np.float64), np.exp(_np(out["log_scale"])[0].astype(np.float64))
    params = _np(teacher({"x": np.concatenate([[0.0], x[:-1]])[None].astype(np.float32), "mel": mel}))[0]
    mu_p, sd_p = params[:, 0].astype(np.float64), np.exp(np.maximum(params[:, 1], -9.0)).astype(np.float64)
    kls = []
    for t in range(len(x)):
        grid = np.linspace(loc[t] - 12 * sc[t], loc[t] + 12 * sc[t], 100001)
        q = stats.norm.pdf(grid, loc[t], sc[t])
        kls.append(np.trapezoid(q * (stats.norm.logpdf(grid, loc[t], sc[t]) - stats.norm.logpdf(grid, mu_p[t], sd_p[t])),
                                grid))
    np.testing.assert_allclose(terms["kl"], np.mean(kls), rtol=1e-4, atol=1e-5)
    reg = np.mean((np.log(sd_p) - np.log(sc)) ** 2)
    np.testing.assert_allclose(terms["log_scale_reg"], reg, rtol=1e-4)
    np.testing.assert_allclose(terms["objective"], terms["kl"] + 4.0 * reg, rtol=1e-5)
    mc = attach(s, teacher, kl="mc", mc_samples=4096, power_weight=0.0)
    est = float(_np(mc.terms(s, {"mel": mel}, None, None, out, seed=1)["kl"]))
    assert abs(est - terms["kl"]) < 0.05 * max(1.0, abs(terms["kl"]))


def test_teacher_unchanged_after_a_distillation_step():
    s = ParallelWaveNet(**TINY)
    teacher = _teacher({"type": "mixture_logistic", "num_mixtures": 2, "num_classes": 65536})
    before_t = [np.array(_np(w)) for w in teacher.weights]
    before_s = [np.array(_np(w)) for w in s.trainable_weights]
    d = attach(s, teacher, mc_samples=2, power_n_fft=16, contrastive_weight=0.1)
    assert teacher.trainable_weights == [] and not teacher.trainable
    s.compile(optimizer=keras.optimizers.Adam(1e-2))
    mel = _mel(batch=2, frames=8)
    real = (np.random.default_rng(0).normal(size=(2, 8 * HOP)) * 0.1).astype(np.float32)
    hist = s.fit({"mel": mel}, real, batch_size=2, epochs=2, verbose=0)
    for k in ("kl", "cross_entropy", "entropy", "power", "teacher_nll_student", "contrastive_kl"):
        assert np.isfinite(hist.history[k]).all(), k
    assert hist.history["power"][0] > 0 and hist.history["contrastive_kl"][0] != 0
    for a, w in zip(before_t, teacher.weights):
        np.testing.assert_array_equal(a, _np(w))
    assert any(not np.array_equal(a, _np(w)) for a, w in zip(before_s, s.trainable_weights))
    # the optimizer holds the student's variables only
    teacher_paths = {w.path for w in teacher.weights}
    assert not any(v.path in teacher_paths for v in s.trainable_variables)
    assert int(_np(s.optimizer.iterations)) == 2
    assert d.teacher is teacher


def test_bad_pairings_are_config_errors():
    from seqgen.errors import ConfigError

    with pytest.raises(ConfigError, match="continuous"):
        attach(ParallelWaveNet(**TINY), _teacher({"type": "categorical", "num_classes": 256}))
    with pytest.raises(ConfigError, match="Gaussian teacher"):
        attach(ParallelWaveNet(**TINY), _teacher({"type": "mixture_logistic", "num_mixtures": 2}), kl="closed_form")
    with pytest.raises(ConfigError, match="Gaussian student"):
        attach(ParallelWaveNet(**TINY), _teacher({"type": "gaussian"}), kl="closed_form")
    with pytest.raises(ConfigError, match="conditioning differ"):
        attach(ParallelWaveNet(**{**TINY, "hop_length": 8}), _teacher({"type": "gaussian"}))
