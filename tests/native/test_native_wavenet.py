"""The cached WaveNet loop in C (method "native"): the same model, conditioning, noise and sampler as the
Keras loop, so its parameters equal the Keras step's to float tolerance, and its samples the cached ones."""
import numpy as np
import pytest

from seqgen.models import WaveNet

from conftest import _np

pytestmark = pytest.mark.multibackend

SMALL = dict(residual_channels=8, gate_channels=16, skip_channels=16)
LPC_STATS = {"features": {"sample_rate": 8000, "n_fft": 64, "hop_length": 8, "win_length": 64, "n_mels": 5,
                           "fmin": 0.0, "fmax": 3000.0},
             "mean": [-3.0, -3.5, -4.0, -4.5, -5.0], "std": [1.5, 1.5, 1.5, 1.5, 1.5]}


def _randomize(model, seed=0, scale=0.3):
    """Weights large enough that the logits are far from uniform (a sharp distribution, like a trained one)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.normal(size=w.shape).astype(np.float32) * scale)
    return model


def _models():
    yield "mel", _randomize(WaveNet(num_stacks=2, layers_per_stack=3, cond_channels=5, hop_length=8, **SMALL)), \
        dict(mel=np.random.default_rng(1).normal(size=(2, 12, 5)).astype(np.float32))
    # five rows: four multiplied together (each weight row read once for them), one alone
    yield "mel-5-rows", _randomize(WaveNet(num_stacks=2, layers_per_stack=3, cond_channels=5, hop_length=8,
                                           **SMALL), 4), \
        dict(mel=np.random.default_rng(5).normal(size=(5, 12, 5)).astype(np.float32))
    yield "speaker-k3", _randomize(WaveNet(num_stacks=1, layers_per_stack=4, kernel_size=3, num_speakers=3,
                                           speaker_dim=4, **SMALL), 1), dict(num_samples=96, speaker=[0, 2], batch_size=2)
    yield "lpc", _randomize(WaveNet(num_stacks=2, layers_per_stack=3, cond_channels=5, hop_length=8, lpc_order=4,
                                    mel_stats=LPC_STATS, pre_emphasis=0.86, **SMALL), 2, 0.2), \
        dict(mel=np.random.default_rng(3).normal(-4, 1, size=(2, 12, 5)).astype(np.float32))
    yield "plain-wide", _randomize(WaveNet(num_stacks=1, layers_per_stack=3, residual_channels=40, gate_channels=100,
                                           skip_channels=70, distribution={"type": "categorical",
                                                                           "num_classes": 200, "mu_law": False}),
                                   3, 0.15), dict(num_samples=80, batch_size=2)


MODELS = list(_models())


def _keras_params(model, forced, n, mel=None, speaker=None, batch_size=1):
    """Every step's parameters from the Keras decode step (the cached protocol), fed ``forced``."""
    b, n, mel, spk = model._prepare(n, mel, speaker, batch_size)
    chunk = model._chunk_len(n, 4096)
    bias = model._chunk_bias(b, chunk, mel, spk)(0)
    lpc = None
    if model.lpc_order:
        bias, lpc = bias
    bias = None if bias is None else _np(bias)
    cache, x = model.initial_cache(b), model._first_input(b)
    weights = model.step_weights()
    out = []
    for t in range(n):
        gb = None if bias is None else (bias[:, t] if bias.ndim == 3 else bias)
        params, cache = model.decode_step(x, cache, t, gb, weights, lpc_t=None if lpc is None else lpc[:, t])
        out.append(_np(params)[:, :model.distribution.num_classes])
        x = forced[:, t]
    return np.stack(out, axis=1), chunk


def _native_params(model, forced, chunk, weight_dtype, mel=None, speaker=None, batch_size=1):
    from seqgen.native.wavenet import NativeWaveNetLoop

    n = forced.shape[1]
    b, n, mel, spk = model._prepare(n, mel, speaker, batch_size)
    loop = NativeWaveNetLoop(model, weight_dtype)
    params = np.zeros((b, chunk, model.distribution.num_classes), np.float32)
    pad = np.zeros((b, chunk - n) + forced.shape[2:], np.int32)
    loop(model._first_input(b), model.initial_cache(b), 0, n, np.full((b, chunk, 1), 0.5, np.float32),
         model._chunk_bias(b, chunk, mel, spk)(0), np.concatenate([forced, pad], axis=1), n, 1.0, params=params)
    return params[:, :n]


@pytest.mark.parametrize("name,model,inputs", MODELS, ids=[m[0] for m in MODELS])
def test_native_step_equals_the_keras_step(name, model, inputs):
    """Teacher-forced on the same samples, the C step's logits are the Keras step's to float tolerance;
    bfloat16 and int8 weights stay close (their error is measured on trained runs, not asserted here)."""
    forced = model.generate_samples(method="cached", seed=4, **inputs)
    n = forced.shape[1]
    kw = {k: v for k, v in inputs.items() if k != "num_samples"}
    ref, chunk = _keras_params(model, forced, n, **kw)
    assert np.ptp(ref) > 1.0                             # logits far from uniform: a real check
    got = _native_params(model, forced, chunk, "float32", **kw)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    scale = np.abs(ref).max()
    for dtype, tol in (("bfloat16", 0.03), ("int8", 0.08)):
        err = np.abs(_native_params(model, forced, chunk, dtype, **kw) - ref).max() / scale
        assert 0 < err < tol, (dtype, err)


def test_rounded_keras_weights_are_what_the_loop_multiplies_by():
    """``round_model_weights`` gives the Keras model the weights the bfloat16 / int8 loop uses, so the Keras
    step's logits are that loop's (what makes the held-out NLL through them the loop's NLL)."""
    from seqgen.native.rounding import round_model_weights

    for dtype in ("bfloat16", "int8"):
        name, model, inputs = MODELS[3]
        model = model.from_config(model.get_config())
        model.set_weights(MODELS[3][1].get_weights())
        forced = model.generate_samples(method="cached", seed=4, **inputs)
        n = forced.shape[1]
        _, chunk = _keras_params(model, forced, n, **inputs)
        native = _native_params(model, forced, chunk, dtype, **inputs)
        round_model_weights(model, dtype)
        ref, _ = _keras_params(model, forced, n, **inputs)
        np.testing.assert_allclose(native, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name,model,inputs", MODELS, ids=[m[0] for m in MODELS])
def test_native_samples_are_the_cached_samples(name, model, inputs):
    """Free running with the same seed: the same samples as the compiled loop (a draw within float rounding
    of a class boundary could flip one and the rest would follow another path; with these sharp
    distributions none does), at temperatures 1, 0.7 and 0 (argmax), and from the nucleus top_p 0.8."""
    for temperature, top_p in ((1.0, 1.0), (0.7, 1.0), (0.0, 1.0), (1.0, 0.8)):
        cached = model.generate_samples(method="cached", seed=9, temperature=temperature, top_p=top_p, **inputs)
        native = model.generate_samples(method="native", seed=9, temperature=temperature, top_p=top_p, **inputs)
        assert native.dtype == cached.dtype and native.shape == cached.shape
        np.testing.assert_array_equal(native, cached)
        if temperature == 1.0 and top_p == 1.0:
            assert len(np.unique(native)) > 5                # not stuck on one class


def test_native_stream_and_chunks():
    """Streamed == not streamed, chunk by chunk with the state carried in C; several chunks == one chunk
    up to the conditioning's float rounding (the same as the cached loop's)."""
    name, model, inputs = MODELS[3]                          # linear prediction: the ring is carried too
    whole = model.generate(method="native", seed=5, chunk_size=32, **inputs)
    parts = list(model.generate_stream(method="native", seed=5, chunk_size=32, **inputs))
    assert len(parts) == 3
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)
    cached = model.generate(method="cached", seed=5, chunk_size=32, **inputs)
    np.testing.assert_array_equal(whole, cached)


def test_native_refuses_what_it_does_not_do():
    gaussian = WaveNet(num_stacks=1, layers_per_stack=2, distribution={"type": "gaussian"}, **SMALL)
    with pytest.raises(ValueError, match="categorical head.*gaussian.*cached"):
        gaussian.generate_samples(num_samples=8, method="native")
    model = MODELS[0][1]
    with pytest.raises(ValueError, match="weight_dtype 'bfloat16' needs method 'native'"):
        model.generate_samples(method="cached", weight_dtype="bfloat16", **MODELS[0][2])
    with pytest.raises(ValueError, match="weight_dtype must be one of"):
        model.generate_samples(method="native", weight_dtype="int4", **MODELS[0][2])


def test_build_error_names_the_way_out(monkeypatch, tmp_path):
    from seqgen.native import build

    monkeypatch.setenv("CC", "no-such-compiler-here")
    monkeypatch.setenv("SEQGEN_CACHE", str(tmp_path))
    build.load.cache_clear()
    try:
        with pytest.raises(build.NativeBuildError, match="no compiler.*--method cached"):
            build.load("wavenet_loop")
    finally:
        build.load.cache_clear()


def test_pack_layouts():
    """The packed matrices hold the weights: float32 exactly, bfloat16 as its nearest value, int8 within half
    a step of its column's scale."""
    import ml_dtypes

    from seqgen.native.wavenet import pack

    w = np.random.default_rng(0).normal(size=(7, 70)).astype(np.float32)
    f, _ = pack(w, "float32", 64)
    assert f.shape == (2, 7, 64)
    np.testing.assert_array_equal(f.transpose(1, 0, 2).reshape(7, 128)[:, :70], w)
    assert not f.transpose(1, 0, 2).reshape(7, 128)[:, 70:].any()
    b, _ = pack(w, "bfloat16", 64)
    assert b.shape == (2, 7, 32) and b.dtype == np.uint32
    lo = (b & 0xFFFF).astype(np.uint16).view(ml_dtypes.bfloat16).astype(np.float32)
    hi = (b >> 16).astype(np.uint16).view(ml_dtypes.bfloat16).astype(np.float32)
    unpacked = np.concatenate([lo, hi], axis=2).transpose(1, 0, 2).reshape(7, 128)[:, :70]
    np.testing.assert_array_equal(unpacked, w.astype(ml_dtypes.bfloat16).astype(np.float32))
    q, s = pack(w, "int8", 64)
    assert q.dtype == np.int8 and s.shape == (128,)
    deq = (q.transpose(1, 0, 2).reshape(7, 128) * s)[:, :70]
    assert np.abs(deq - w).max() <= s[:70].max() / 2 + 1e-7
    assert np.abs(q).max() == 127
