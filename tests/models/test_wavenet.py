"""WaveNet: causality, receptive field, cached == naive generation, chunking,
batching, save/load, training."""
import keras
import numpy as np
import pytest

from seqgen.models import WaveNet

from conftest import _np

pytestmark = pytest.mark.multibackend

SMALL = dict(residual_channels=8, gate_channels=16, skip_channels=16)




def _randomize_biases(model, seed=0):
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if "bias" in w.path:
            w.assign(rng.normal(size=w.shape).astype(np.float32) * 0.1)


# ------------------------------------------------------------------ forward
@pytest.mark.parametrize("kernel_size", [2, 3])
def test_causality_and_receptive_field(kernel_size):
    model = WaveNet(num_stacks=2, layers_per_stack=3, kernel_size=kernel_size, **SMALL)
    _randomize_biases(model)
    rf = model.receptive_field
    assert rf == 1 + (kernel_size - 1) * 2 * (1 + 2 + 4)
    assert str(rf) in model.summary_text()
    rng = np.random.default_rng(0)
    t_len = rf + 20
    x = rng.integers(0, 256, size=(1, t_len)).astype(np.int32)
    base = _np(model({"x": x}))
    assert base.shape == (1, t_len, 256)
    t = rf + 5
    # future inputs never matter
    x_future = x.copy()
    x_future[:, t + 1:] = (x_future[:, t + 1:] + 17) % 256
    out = _np(model({"x": x_future}))
    np.testing.assert_array_equal(out[:, :t + 1], base[:, :t + 1])
    assert np.any(out[:, t + 1] != base[:, t + 1])
    # the oldest input inside the receptive field matters (exact comparisons:
    # outside the receptive field the outputs are bit-identical)...
    x_old = x.copy()
    x_old[:, t - rf + 1] = (x_old[:, t - rf + 1] + 50) % 256
    assert np.any(_np(model({"x": x_old}))[:, t] != base[:, t])
    # ...and nothing before it does
    x_older = x.copy()
    x_older[:, :t - rf + 1] = (x_older[:, :t - rf + 1] + 50) % 256
    np.testing.assert_array_equal(_np(model({"x": x_older}))[:, t], base[:, t])


def test_local_conditioning_alignment():
    # sample t is conditioned on mel frame t // hop (plus upsampler context)
    hop = 4
    model = WaveNet(num_stacks=1, layers_per_stack=2, cond_channels=3, hop_length=hop, **SMALL)
    ctx = model.upsampler.context
    rng = np.random.default_rng(1)
    frames = 12
    x = rng.integers(0, 256, size=(1, frames * hop)).astype(np.int32)
    mel = rng.normal(size=(1, frames, 3)).astype(np.float32)
    base = _np(model({"x": x, "mel": mel}))
    mel2 = mel.copy()
    mel2[:, 6] += 2.0
    changed = np.abs(_np(model({"x": x, "mel": mel2})) - base).max(axis=(0, 2)) > 1e-6
    first = (6 - ctx) * hop
    assert not changed[:first].any()
    assert changed[first:(6 + ctx + 1) * hop].all()


# -------------------------------------------------------------- generation
def _conditioned(kernel_size, distribution=None, seed=0):
    model = WaveNet(num_stacks=3, layers_per_stack=4, kernel_size=kernel_size, cond_channels=5,
                    hop_length=8, num_speakers=3, speaker_dim=4,
                    distribution=distribution or {"type": "categorical", "num_classes": 256}, **SMALL)
    _randomize_biases(model, seed)
    return model


@pytest.mark.parametrize("kernel_size", [2, 3])
def test_cached_equals_naive_categorical(kernel_size):
    model = _conditioned(kernel_size)
    rf = model.receptive_field                      # 46 or 91
    mel = np.random.default_rng(2).normal(size=(2, 36, 5)).astype(np.float32)   # N = 288
    calls = []
    cached = model.generate_samples(mel=mel, speaker=[0, 2], chunk_size=60, seed=5,
                                    progress=lambda d, n: calls.append((d, n)))
    naive = model.generate_samples(mel=mel, speaker=[0, 2], method="naive", chunk_size=60, seed=5)
    assert cached.shape == (2, 288) and cached.dtype == np.int32
    assert 288 > 3 * rf
    np.testing.assert_array_equal(cached, naive)
    # chunk_size 60 -> rounded down to 56 (multiple of hop): 6 chunks
    assert [d for d, _ in calls] == [56, 112, 168, 224, 280, 288]
    assert all(n == 288 for _, n in calls)
    # the samples are not degenerate
    assert len(np.unique(cached)) > 20


@pytest.mark.parametrize("lpc", [False, True])
def test_top_p_cuts_the_tail_and_cached_still_equals_naive(lpc):
    model = _lpc_model(0.86) if lpc else _conditioned(2)
    kw = dict(mel=np.random.default_rng(2).normal(size=(2, 24, 5)).astype(np.float32), chunk_size=64, seed=5)
    if not lpc:
        kw["speaker"] = [0, 2]
    plain = model.generate_samples(**kw)
    np.testing.assert_array_equal(model.generate_samples(top_p=1.0, **kw), plain)   # 1 = off, the same draw
    cached = model.generate_samples(top_p=0.5, **kw)
    naive = model.generate_samples(top_p=0.5, method="naive", **kw)
    np.testing.assert_array_equal(cached, naive)
    assert not np.array_equal(cached, plain)
    # a nucleus of half the mass keeps fewer distinct classes than the whole distribution
    classes = (lambda a: a[..., 0]) if lpc else (lambda a: a)
    assert len(np.unique(classes(cached))) < len(np.unique(classes(plain)))
    with pytest.raises(ValueError, match="top_p must be in"):
        model.generate_samples(top_p=0.0, **kw)


def test_cached_equals_naive_continuous_and_waveform():
    model = _conditioned(2, {"type": "mixture_logistic", "num_mixtures": 3, "num_classes": 65536}, seed=3)
    mel = np.random.default_rng(4).normal(size=(1, 20, 5)).astype(np.float32)
    cached = model.generate(mel=mel, speaker=1, chunk_size=48, seed=9)
    naive = model.generate(mel=mel, speaker=1, method="naive", chunk_size=48, seed=9)
    assert cached.shape == (1, 160) and cached.dtype == np.float32
    np.testing.assert_array_equal(cached, naive)
    # the convolution recompute agrees to float tolerance
    conv = model.generate(mel=mel, speaker=1, method="naive-conv", seed=9)
    np.testing.assert_allclose(conv, naive, atol=1e-4)
    assert -1.0 <= cached.min() and cached.max() <= 1.0 and cached.std() > 1e-3


def test_pre_emphasis_cached_equals_naive_and_waveform_is_de_emphasized(tmp_path):
    from seqgen.core import emphasis

    model = WaveNet(num_stacks=2, layers_per_stack=4, kernel_size=2, cond_channels=5, hop_length=8,
                    pre_emphasis=0.86, **SMALL)
    _randomize_biases(model, 6)
    mel = np.random.default_rng(7).normal(size=(2, 16, 5)).astype(np.float32)
    cached = model.generate(mel=mel, chunk_size=48, seed=3)
    naive = model.generate(mel=mel, method="naive", chunk_size=48, seed=3)
    np.testing.assert_array_equal(cached, naive)
    samples = model.generate_samples(mel=mel, chunk_size=48, seed=3)
    y = _np(model.distribution.to_waveform(samples))
    np.testing.assert_array_equal(cached, emphasis.de_emphasize(y, 0.86))
    assert not np.array_equal(cached, np.clip(y, -1, 1))
    # samples_of inverts waveform on a waveform in range (to the quantizer's step)
    t = np.arange(2000) / 8000.0
    x = (0.4 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    back = model.waveform(model.samples_of(x))
    assert np.abs(back - x).max() < 0.02
    # the coefficient is part of the saved model; a bad one is refused
    path = tmp_path / "emph.keras"
    model.save(path)
    assert keras.models.load_model(path).pre_emphasis == pytest.approx(0.86)
    with pytest.raises(ValueError, match="pre_emphasis"):
        WaveNet(num_stacks=1, layers_per_stack=2, pre_emphasis=1.2, **SMALL)


LPC_STATS = {"features": {"sample_rate": 8000, "n_fft": 64, "hop_length": 8, "win_length": 64, "n_mels": 5,
                           "fmin": 0.0, "fmax": 3000.0},
             "mean": [-3.0, -3.5, -4.0, -4.5, -5.0], "std": [1.5, 1.5, 1.5, 1.5, 1.5]}


def _lpc_model(pre_emphasis=0.0, seed=8):
    model = WaveNet(num_stacks=2, layers_per_stack=3, kernel_size=2, cond_channels=5, hop_length=8,
                    lpc_order=4, mel_stats=LPC_STATS, pre_emphasis=pre_emphasis, **SMALL)
    _randomize_biases(model, seed)
    return model


def test_input_noise_moves_the_history_not_what_the_recording_needs():
    """LPCNet's noise injection: noisy excitation classes, their error through the synthesis filter into the
    past samples, and targets that are the recording's excitation given that noisy past."""
    from seqgen.core import emphasis

    model = _lpc_model(0.86)
    dist = model.distribution
    t = np.arange(400) / 8000.0
    audio = (0.5 * np.sin(2 * np.pi * 220 * t) + 0.02 * np.random.default_rng(0).normal(size=400)).astype(np.float32)
    coef = model.lpc_of_log_mel(np.random.default_rng(5).normal(-4, 1, size=(50, 5)))
    clean_x, clean_t = model.training_window(audio, 0, 400, coef)
    zero_x, zero_t = model.training_window(audio, 0, 400, coef, noise=np.zeros(405, np.int64))
    np.testing.assert_array_equal(zero_x, clean_x)
    np.testing.assert_array_equal(zero_t, clean_t)
    s = np.clip(np.rint(emphasis.pre_emphasize(audio, 0.86).astype(np.float64) * 32768), -32768, 32767)

    def classes(v):
        return _np(dist.from_waveform(np.clip(v / 32768.0, -1, 1).astype(np.float32)))

    moved = []
    for level in (1.0, 4.0):
        noise = model.input_noise(np.random.default_rng(1), 405, level)
        assert noise.shape == (405,) and np.abs(noise).max() > 0
        x, tgt = model.training_window(audio, 0, 400, coef, noise=noise)
        # the target: the recording's sample minus the prediction from the noisy past
        np.testing.assert_array_equal(tgt, classes(s - x[:, 2]))
        # the inputs stay one history: each excitation input is its noisy sample minus that sample's prediction
        np.testing.assert_array_equal(x[1:, 0], classes(x[1:, 1] - x[:-1, 2]))
        moved.append(np.mean(np.abs(x[1:, 1] - s[:-1])))
    assert 0 < moved[0] < moved[1]          # more noise, further from the recording

    plain = WaveNet(num_stacks=1, layers_per_stack=2, kernel_size=2, **SMALL)
    x0, t0 = plain.training_window(audio, 10, 64)
    noise = plain.input_noise(np.random.default_rng(2), 65, 3.0)
    x1, t1 = plain.training_window(audio, 10, 64, noise=noise)
    np.testing.assert_array_equal(t1, t0)                       # the targets are the recording's
    np.testing.assert_array_equal(x1, np.clip(x0 + noise[:64], 0, 255))   # the inputs move by the noise
    assert not np.array_equal(x1, x0)


@pytest.mark.parametrize("pre_emphasis", [0.0, 0.86])
def test_linear_prediction_cached_equals_naive_and_causal(pre_emphasis):
    from seqgen.core import lpc

    model = _lpc_model(pre_emphasis)
    mel = np.random.default_rng(9).normal(size=(2, 12, 5)).astype(np.float32)   # N = 96
    cached = model.generate_samples(mel=mel, chunk_size=32, seed=4)
    naive = model.generate_samples(mel=mel, method="naive", chunk_size=32, seed=4)
    assert cached.shape == (2, 96, 2) and cached.dtype == np.int32
    np.testing.assert_array_equal(cached, naive)
    # each sample is its prediction (from the samples before it and its frame's mel) plus its excitation
    coef = model.lpc_coefficients(mel)
    assert coef.shape == (2, 12, 4) and np.all(np.isfinite(coef))
    for row in range(2):
        e_class, s = cached[row, :, 0], cached[row, :, 1].astype(np.int64)
        p = np.clip(np.rint(lpc.predict(s, coef[row].astype(np.float64), 8)), -32768, 32767)
        e_hat = np.rint(_np(model.distribution.to_waveform(e_class)).astype(np.float64) * 32768.0)
        np.testing.assert_allclose(s, np.clip(p + e_hat, -32768, 32767), atol=1)
    wav = model.waveform(cached)
    assert wav.shape == (2, 96) and np.abs(wav).max() <= 1.0
    with pytest.raises(ValueError, match="naive-conv"):
        model.generate_samples(mel=mel, method="naive-conv")
    # causal: the params at t do not move when inputs after t change
    x = np.stack([np.random.default_rng(1).integers(0, 256, size=(1, 40)),
                  np.random.default_rng(2).integers(-3000, 3000, size=(1, 40)),
                  np.random.default_rng(3).integers(-3000, 3000, size=(1, 40))], axis=-1).astype(np.int32)
    m = np.random.default_rng(4).normal(size=(1, 5, 5)).astype(np.float32)
    a = _np(model({"x": x, "mel": m}))
    x2 = x.copy()
    x2[:, 25:] = 7
    b = _np(model({"x": x2, "mel": m}))
    np.testing.assert_array_equal(a[:, :25], b[:, :25])
    assert not np.allclose(a[:, 25:], b[:, 25:])


def test_linear_prediction_training_window_and_save_load(tmp_path):
    """The input pipeline's windows agree with what the loop feeds itself, at any start."""
    from seqgen.core import lpc, emphasis

    model = _lpc_model(0.86)
    t = np.arange(400) / 8000.0
    audio = (0.5 * np.sin(2 * np.pi * 220 * t) + 0.02 * np.random.default_rng(0).normal(size=400)).astype(np.float32)
    log_mel = np.random.default_rng(5).normal(-4, 1, size=(50, 5))
    coef = model.lpc_of_log_mel(log_mel)
    whole_x, whole_t = model.training_window(audio, 0, 400, coef)
    assert whole_x.shape == (400, 3) and whole_t.shape == (400,)
    for start in (8, 40, 392):
        x, tgt = model.training_window(audio, start, 64, coef)
        np.testing.assert_array_equal(x, whole_x[start:start + 64])
        np.testing.assert_array_equal(tgt, whole_t[start:start + 64])
    # inputs: [e class before, sample before, prediction]; target: the excitation's class
    s = np.clip(np.rint(emphasis.pre_emphasize(audio, 0.86).astype(np.float64) * 32768), -32768, 32767)
    p = np.clip(np.rint(lpc.predict(s, coef, 8)), -32768, 32767)
    np.testing.assert_array_equal(whole_x[1:, 1], s[:-1])
    np.testing.assert_array_equal(whole_x[:, 2], p)
    np.testing.assert_array_equal(whole_x[1:, 0], whole_t[:-1])
    assert whole_x[0, 1] == 0 and whole_x[0, 0] == 128
    np.testing.assert_array_equal(whole_t, _np(model.distribution.from_waveform(
        np.clip((s - p) / 32768.0, -1, 1).astype(np.float32))))
    path = tmp_path / "lpc.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.lpc_order == 4 and loaded.mel_stats == model.mel_stats
    mel = np.random.default_rng(6).normal(size=(1, 6, 5)).astype(np.float32)
    np.testing.assert_array_equal(loaded.generate_samples(mel=mel, seed=1), model.generate_samples(mel=mel, seed=1))
    with pytest.raises(ValueError, match="lpc_order needs"):
        WaveNet(num_stacks=1, layers_per_stack=2, lpc_order=4, **SMALL)


@pytest.mark.parametrize("kind", ["plain", "pre-emphasis", "lpc"])
def test_stream_equals_generate_bit_for_bit(kind):
    """Chunks of the stream (noise drawn per chunk, state carried) put together are generate's waveform, for
    chunk sizes that do and do not line up with the noise blocks."""
    from seqgen.models import wavenet as W

    if kind == "lpc":
        model = _lpc_model(0.86)
    else:
        model = WaveNet(num_stacks=2, layers_per_stack=3, cond_channels=5, hop_length=8,
                        pre_emphasis=0.86 if kind == "pre-emphasis" else 0.0, **SMALL)
        _randomize_biases(model, 2)
    mel = np.random.default_rng(3).normal(size=(2, 40, 5)).astype(np.float32)       # N = 320
    whole = model.generate(mel=mel, seed=11, chunk_size=64)
    for chunk in (64, 200):
        parts = list(model.generate_stream(mel=mel, seed=11, chunk_size=chunk))
        assert len(parts) == -(-320 // (chunk // 8 * 8)) and all(p.dtype == np.float32 for p in parts)
        np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)
    # the noise of any span is the same slice of the per-block draws
    old = W.NOISE_BLOCK
    try:
        W.NOISE_BLOCK = 32
        full = model.noise(2, 0, 100, seed=4)
        np.testing.assert_array_equal(model.noise(2, 45, 30, seed=4), full[:, 45:75])
        assert not np.array_equal(full[:, :32], full[:, 32:64])
    finally:
        W.NOISE_BLOCK = old


def test_generation_determinism_temperature_and_batch_independence():
    model = WaveNet(num_stacks=2, layers_per_stack=3, num_speakers=2, speaker_dim=3, **SMALL)
    _randomize_biases(model, 1)
    # speakers far apart, so that changing one moves samples whatever the init
    model.speaker_embedding.embeddings.assign(
        np.random.default_rng(1).normal(size=(2, 3)).astype(np.float32) * 3.0)
    a = model.generate(num_samples=200, speaker=[0, 1], batch_size=2, seed=1, chunk_size=64)
    b = model.generate(num_samples=200, speaker=[0, 1], batch_size=2, seed=1, chunk_size=64)
    c = model.generate(num_samples=200, speaker=[0, 1], batch_size=2, seed=2, chunk_size=64)
    assert a.shape == (2, 200)
    np.testing.assert_array_equal(a, b)
    assert np.mean(a != c) > 0.5
    # rows are independent: changing row 1's speaker leaves row 0 unchanged
    d = model.generate(num_samples=200, speaker=[0, 0], batch_size=2, seed=1, chunk_size=64)
    np.testing.assert_array_equal(d[0], a[0])
    # (inverse-CDF sampling with the same uniforms: a small change of the
    # probabilities moves only some samples)
    assert np.any(d[1] != a[1])
    # chunking does not change the result (caches carried across chunks)
    e = model.generate(num_samples=200, speaker=[0, 1], batch_size=2, seed=1, chunk_size=4096)
    np.testing.assert_array_equal(e, a)
    # temperature 0 is greedy and still agrees with the reference
    g_cached = model.generate_samples(num_samples=60, speaker=[1, 0], batch_size=2, temperature=0.0,
                                      seed=3, chunk_size=64)
    g_naive = model.generate_samples(num_samples=60, speaker=[1, 0], batch_size=2, temperature=0.0,
                                     seed=3, method="naive", chunk_size=64)
    np.testing.assert_array_equal(g_cached, g_naive)
    # one compiled function per (batch, chunk) shape, reused; short requests
    # are bucketed (hop * power of two): 130 and 250 samples share the
    # 256-sample function compiled for 200 samples above
    keys = set(model._decode_fns)
    model.generate(num_samples=150, speaker=[1, 0], batch_size=2, seed=7, chunk_size=64)
    model.generate(num_samples=130, speaker=[1, 0], batch_size=2, seed=7)
    model.generate(num_samples=250, speaker=[1, 0], batch_size=2, seed=7)
    assert set(model._decode_fns) == keys
    assert ("loop", 2, 256) in keys and ("loop", 2, 64) in keys


def test_generate_argument_errors():
    model = WaveNet(num_stacks=1, layers_per_stack=2, cond_channels=3, hop_length=4, num_speakers=2, **SMALL)
    mel = np.zeros((5, 3), np.float32)
    with pytest.raises(ValueError):
        model.generate(speaker=0)                              # mel missing
    with pytest.raises(ValueError):
        model.generate(mel=mel)                                # speaker missing
    with pytest.raises(ValueError):
        model.generate(mel=mel, speaker=5)                     # unknown speaker
    with pytest.raises(ValueError):
        model.generate(mel=mel, speaker=0, num_samples=21)     # > frames * hop
    with pytest.raises(ValueError):
        model.generate(mel=mel, speaker=0, method="fast")
    with pytest.raises(ValueError):
        WaveNet(kernel_size=1)
    plain = WaveNet(num_stacks=1, layers_per_stack=2, **SMALL)
    with pytest.raises(ValueError):
        plain.generate()                                       # num_samples missing
    with pytest.raises(ValueError):
        plain.generate(num_samples=10, mel=mel)
    # a prefix of the conditioned length is allowed
    out = model.generate(mel=mel, speaker=0, num_samples=13, chunk_size=8)
    assert out.shape == (1, 13)


# ------------------------------------------------------------ serialization
def test_keras_save_load_round_trip(tmp_path):
    model = _conditioned(3, seed=4)
    rng = np.random.default_rng(5)
    inputs = {"x": rng.integers(0, 256, size=(2, 32)).astype(np.int32),
              "mel": rng.normal(size=(2, 4, 5)).astype(np.float32),
              "speaker": np.array([2, 0], np.int32)}
    ref = _np(model(inputs))
    path = tmp_path / "wavenet.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, WaveNet)
    np.testing.assert_array_equal(_np(loaded(inputs)), ref)
    assert loaded.get_config() == model.get_config()
    assert loaded.distribution == model.distribution
    assert loaded.receptive_field == model.receptive_field
    clone = WaveNet.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert [tuple(w.shape) for w in clone.weights] == [tuple(w.shape) for w in model.weights]


# ----------------------------------------------------------------- training
def test_fit_reduces_loss_with_conditioning():
    # A learnable signal: a periodic pattern whose phase is given by the
    # speaker id; mel is a constant feature.  Loss must fall well below the
    # uniform-guess level log(16).
    model = WaveNet(num_stacks=1, layers_per_stack=4, cond_channels=2, hop_length=4,
                    num_speakers=2, speaker_dim=4,
                    distribution={"type": "categorical", "num_classes": 16, "mu_law": False},
                    residual_channels=16, gate_channels=32, skip_channels=32)
    rng = np.random.default_rng(0)
    pattern = np.array([0, 3, 7, 11, 15, 11, 7, 3])
    t_len, n = 64, 64
    spk = rng.integers(0, 2, size=n).astype(np.int32)
    start = rng.integers(0, 8, size=n)
    idx = (start[:, None] + np.arange(t_len)[None] + 4 * spk[:, None]) % 8
    y = pattern[idx].astype(np.int32)
    x = np.concatenate([np.full((n, 1), 8), y[:, :-1]], axis=1).astype(np.int32)
    mel = np.ones((n, t_len // 4, 2), np.float32)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    hist = model.fit(x={"x": x, "mel": mel, "speaker": spk}, y=y, epochs=50, batch_size=16,
                     verbose=0, shuffle=True)
    losses = hist.history["loss"]
    assert losses[0] > 1.5
    assert losses[-1] < 0.3 * losses[0] and losses[-1] < 0.6
    # and the loss is the distribution's mean nll
    params = model({"x": x[:8], "mel": mel[:8], "speaker": spk[:8]})
    nll = float(_np(model.distribution.loss(params, y[:8])))
    assert abs(float(_np(model.compute_loss(y=y[:8], y_pred=params))) - nll) < 1e-5


def _generation_agrees_and_reloads(model, tmp_path):
    """cached == naive and stream == generate bit for bit on a random mel, and a saved copy generates the same;
    returns the reloaded model."""
    mel = np.random.default_rng(9).normal(size=(2, 12, 5)).astype(np.float32)   # N = 96
    cached = model.generate_samples(mel=mel, chunk_size=32, seed=4)
    naive = model.generate_samples(mel=mel, method="naive", chunk_size=32, seed=4)
    np.testing.assert_array_equal(cached, naive)
    streamed = np.concatenate(list(model.generate_stream(mel=mel, chunk_size=32, seed=4)), axis=1)
    np.testing.assert_array_equal(streamed, model.waveform(cached))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.generate_samples(mel=mel, chunk_size=32, seed=4), cached)
    return loaded


def _pitch_model(lpc_order=0, seed=3):
    model = WaveNet(num_stacks=2, layers_per_stack=3, kernel_size=2, cond_channels=5, hop_length=8,
                    lpc_order=lpc_order, mel_stats=LPC_STATS, pitch_features=True, **SMALL)
    _randomize_biases(model, seed)
    return model


class _CountingMel:
    """A mel that answers slices only and records which frames each one read."""
    ndim = 3

    def __init__(self, mel):
        self.mel, self.shape, self.reads = mel, mel.shape, []

    def __getitem__(self, idx):
        frames = idx[1] if isinstance(idx, tuple) and len(idx) > 1 else slice(None)
        lo, hi, _ = frames.indices(self.shape[1])
        self.reads.append((lo, hi))
        return self.mel[idx]


@pytest.mark.parametrize("kind", ["mel", "lpc+pitch", "source+lpc"])
def test_generation_reads_the_mel_a_chunk_at_a_time(kind):
    """Streamed, cached and naive generation read only the frames each chunk needs (its frames and the
    upsampler's context), never the whole mel, and give what the same mel as an array gives, bit for bit:
    the memory of a stream does not grow with the mel's length."""
    if kind == "mel":
        model = WaveNet(num_stacks=2, layers_per_stack=3, cond_channels=5, hop_length=8, **SMALL)
        _randomize_biases(model, 2)
    elif kind == "lpc+pitch":
        model = _pitch_model(lpc_order=4)
    else:
        model = _source_model(lpc_order=4)
    mel = np.random.default_rng(3).normal(size=(1, 120, 5)).astype(np.float32)     # N = 960, 15 chunks of 64
    whole = model.generate(mel=mel, seed=11, chunk_size=64)
    counting = _CountingMel(mel)
    streamed = np.concatenate(list(model.generate_stream(mel=counting, seed=11, chunk_size=64)), axis=1)
    np.testing.assert_array_equal(streamed, whole)
    widest = 64 // 8 + 2 * model.upsampler.context
    assert counting.reads and max(hi - lo for lo, hi in counting.reads) <= widest < 120
    assert max(lo for lo, _ in counting.reads) > 100                  # it did read to the end, piece by piece
    counting.reads.clear()
    naive = model.generate_samples(mel=counting, seed=11, chunk_size=64, num_samples=200, method="naive")
    np.testing.assert_array_equal(naive, model.generate_samples(mel=mel, seed=11, chunk_size=64, num_samples=200))
    assert max(hi - lo for lo, hi in counting.reads) <= widest


@pytest.mark.parametrize("lpc_order", [0, 4])
def test_pitch_features_cached_equals_naive_streams_and_round_trips(lpc_order, tmp_path):
    """The F0 and periodicity estimated from the mel go into the upsampler beside the mel bands; cached ==
    naive and stream == generate still hold bit for bit, and a saved model reloads with them."""
    model = _pitch_model(lpc_order)
    assert model.frame_channels == 7 and model.upsampler.channels == 7
    assert "pitch features" in model.summary_text()
    loaded = _generation_agrees_and_reloads(model, tmp_path)
    assert loaded.pitch_features and loaded.frame_channels == 7


def test_pitch_features_reach_the_network():
    """What the estimator gives is what the network is conditioned on: other features, other outputs."""
    model = _pitch_model()
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(1, 48)).astype(np.int32)
    mel = rng.normal(size=(1, 6, 5)).astype(np.float32)
    frames = _np(model.conditioning_frames(mel))
    assert frames.shape == (1, 6, 7)
    np.testing.assert_array_equal(frames[..., :5], mel)
    np.testing.assert_array_equal(frames[..., 5:], _np(model._pitch(mel)))
    base = _np(model({"x": x, "mel": mel}))
    real = model._pitch
    model._pitch = lambda m: real(m) + 0.5
    try:
        moved = _np(model({"x": x, "mel": mel}))
    finally:
        model._pitch = real
    assert not np.allclose(base, moved)
    with pytest.raises(ValueError, match="pitch_features needs"):
        WaveNet(num_stacks=1, layers_per_stack=2, pitch_features=True, **SMALL)
    with pytest.raises(ValueError, match="pitch_features needs"):
        WaveNet(num_stacks=1, layers_per_stack=2, cond_channels=5, pitch_features=True, **SMALL)


def _source_model(lpc_order=0, pitch_features=False, seed=5):
    model = WaveNet(num_stacks=2, layers_per_stack=3, kernel_size=2, cond_channels=5, hop_length=8,
                    lpc_order=lpc_order, mel_stats=LPC_STATS, pitch_features=pitch_features, harmonic_source=3,
                    **SMALL)
    _randomize_biases(model, seed)
    return model


@pytest.mark.parametrize("lpc_order,pitch_features", [(0, False), (4, True)])
def test_harmonic_source_cached_equals_naive_streams_and_round_trips(lpc_order, pitch_features, tmp_path):
    """The sinusoids at the mel's F0 join each layer's conditioning; every chunk builds its own from the
    utterance's start phases, so cached == naive and stream == generate bit for bit, and it reloads."""
    model = _source_model(lpc_order, pitch_features)
    assert model.sample_cond_channels == model.frame_channels + 6
    assert model.blocks[0].cond_proj.kernel.shape[0] == model.sample_cond_channels
    assert "harmonic source: 3 harmonics" in model.summary_text()
    loaded = _generation_agrees_and_reloads(model, tmp_path)
    assert loaded.harmonic_source == 3 and loaded.pitch_features == pitch_features


def test_harmonic_source_of_training_and_generation_agree_and_reach_the_network():
    """Training builds the source in the graph (phase from the window's first frame), generation on the host
    (from the utterance's start): the same F0 and voicing, and the same samples where the phases agree;
    and the source moves the network's output."""
    model = _source_model()
    real_pitch = model._pitch
    # 5 mel bands at 8 kHz hold no harmonics to find: a voiced estimate (F0 from the first band, contrast 0.5)
    model._pitch = lambda m: keras.ops.stack([keras.ops.tanh(m[..., 0]), 0.5 + 0.0 * m[..., 0]], axis=-1)
    rng = np.random.default_rng(2)
    mel = rng.normal(size=(1, 6, 5)).astype(np.float32)
    graph = _np(model.source_frames(mel))
    assert np.all(graph[..., 1] == 1.0)                                   # voiced throughout
    host = model.host_source_frames(mel)
    np.testing.assert_array_equal(graph[..., :2], host[..., :2])
    np.testing.assert_allclose(graph[..., 2], host[..., 2], atol=1e-5)
    cond = _np(model.upsampled(mel))
    assert cond.shape == (1, 48, model.sample_cond_channels)
    np.testing.assert_allclose(cond[..., 5:], _np(model.source_of(host)), atol=1e-3)
    x = rng.integers(0, 256, size=(1, 48)).astype(np.int32)
    base = _np(model({"x": x, "mel": mel}))
    real = model.source_of
    model.source_of = lambda frames: real(frames) * 0.0
    try:
        silent = _np(model({"x": x, "mel": mel}))
    finally:
        model.source_of = real
    assert not np.allclose(base, silent)
    model._pitch = real_pitch
    with pytest.raises(ValueError, match="harmonic_source needs"):
        WaveNet(num_stacks=1, layers_per_stack=2, cond_channels=5, harmonic_source=4, **SMALL)
    with pytest.raises(ValueError, match="harmonic_source must be >= 0"):
        WaveNet(num_stacks=1, layers_per_stack=2, cond_channels=5, mel_stats=LPC_STATS, harmonic_source=-1,
                **SMALL)
