"""ByteNet: cached == full logits, causality of the decoder, encoder sees the
whole source, dynamic unfolding (EOS / bound), sampling, save/load, training."""
import keras
import numpy as np
import pytest

from seqgen.layers.bytenet_block import ByteNetBlock
from seqgen.models.bytenet import ByteNet
from seqgen.data.tokenizers import BOS_ID, EOS_ID, PAD_ID

from conftest import _np

pytestmark = pytest.mark.multibackend

SMALL = dict(d_model=16, dilations=[1, 2, 4], num_sets=1)




def _model(seed=0, **kw):
    keras.utils.set_random_seed(seed)
    cfg = dict(SMALL)
    cfg.update(kw)
    return ByteNet(**cfg)


def test_block_step_matches_call_and_same_padding():
    keras.utils.set_random_seed(0)
    block = ByteNetBlock(8, kernel_size=3, dilation_rate=2, causal=True)
    block.build()
    x = np.random.default_rng(0).normal(size=(2, 12, 8)).astype(np.float32)
    full = _np(block(x))
    q = block.initial_cache(2)
    assert tuple(q.shape) == (5, 2, 4)
    for t in range(12):
        y, q = block.step(x[:, t], q, np.int32(t))
        np.testing.assert_allclose(_np(y), full[:, t], atol=1e-5)
    enc = ByteNetBlock(8, kernel_size=3, dilation_rate=2, causal=False)
    enc.build()
    base = _np(enc(x))
    x2 = x.copy()
    x2[:, 8] += np.linspace(-1.0, 2.0, 8, dtype=np.float32)  # not a constant shift (LN)
    changed = np.abs(_np(enc(x2)) - base).max(axis=(0, 2)) > 1e-6
    np.testing.assert_array_equal(np.nonzero(changed)[0], [6, 8, 10])  # centred taps


def test_cached_logits_equal_full_recompute_200_steps():
    model = _model(d_model=16, dilations=[1, 2, 4, 8, 16], num_sets=2)
    assert model.receptive_field == 1 + 2 * 62
    rng = np.random.default_rng(0)
    src = rng.integers(0, 256, size=(2, 40)).astype(np.int32)
    src[1, 25:] = PAD_ID
    x = rng.integers(0, 256, size=(2, 200)).astype(np.int32)
    full = _np(model({"source": src, "target_in": x}))
    assert full.shape == (2, 200, 259)
    np.testing.assert_allclose(model.cached_logits(x, src), full, atol=1e-4, rtol=0)


def test_decoder_causal_encoder_sees_whole_source_and_padding_invariance():
    model = _model(seed=1)
    rng = np.random.default_rng(1)
    src = rng.integers(0, 256, size=(1, 20)).astype(np.int32)
    tgt = rng.integers(0, 256, size=(1, 30)).astype(np.int32)
    base = _np(model({"source": src, "target_in": tgt}))
    # causal in the target
    t2 = tgt.copy()
    t2[:, 12:] = (t2[:, 12:] + 9) % 256
    out = _np(model({"source": src, "target_in": t2}))
    np.testing.assert_allclose(out[:, :12], base[:, :12], atol=1e-5)
    assert np.abs(out[:, 12] - base[:, 12]).max() > 1e-4
    # the encoder is not causal: a later source token (7, within its reach
    # 1+2+4 = 7 on each side) changes the first target position
    s2 = src.copy()
    s2[:, 7] = (s2[:, 7] + 50) % 256
    out = _np(model({"source": s2, "target_in": tgt}))
    assert np.abs(out[:, 0] - base[:, 0]).max() > 1e-5
    # extra source padding changes nothing; positions >= |s| get no encoder output
    padded = np.concatenate([src, np.full((1, 13), PAD_ID, np.int32)], axis=1)
    np.testing.assert_allclose(_np(model({"source": padded, "target_in": tgt})), base, atol=1e-5)
    enc = _np(model.encode(padded))
    assert np.abs(enc[:, :20]).min() >= 0 and np.abs(enc[:, 20:]).max() == 0.0


def test_lm_causal_and_cached_equals_naive():
    model = _model(seed=2, encoder=False)
    x = np.random.default_rng(2).integers(0, 256, size=(2, 40)).astype(np.int32)
    np.testing.assert_allclose(model.cached_logits(x), _np(model({"x": x})), atol=1e-4)
    prompts = [[1, 2, 3, 4], [50]]
    a = model.generate(prompts, max_new_tokens=20, seed=4, top_p=0.9)
    b = model.generate(prompts, max_new_tokens=20, seed=4, top_p=0.9, method="naive")
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, 20)
    c = model.generate(prompts, max_new_tokens=20, seed=5, top_p=0.9)
    assert np.mean(a != c) > 0.3
    with pytest.raises(ValueError, match="translate"):
        _model(encoder=True).generate([1], max_new_tokens=3)


def _sources():
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, size=n).tolist() for n in (7, 15)]


def test_translate_bound_and_sampling():
    model = _model(seed=3, unfold_a=1.2, unfold_b=4)
    eos_bias = np.zeros((259,), np.float32)
    eos_bias[EOS_ID] = -1e9  # EOS impossible: the bound decides
    model.head_out.bias.assign(eos_bias)
    srcs = _sources()
    bounds = model.unfold_bound([7, 15])
    np.testing.assert_array_equal(bounds, [12, 22])  # floor(1.2*|s| + 4)
    out = model.translate(srcs, temperature=1.0, seed=1)
    assert out.shape == (2, 22)
    for row, n in zip(out, bounds):
        assert not np.isin(row[:n], [EOS_ID, PAD_ID, BOS_ID]).any()
        assert (row[n:] == PAD_ID).all()
    naive = model.translate(srcs, temperature=1.0, seed=1, method="naive")
    np.testing.assert_array_equal(out, naive)
    np.testing.assert_array_equal(out, model.translate(srcs, temperature=1.0, seed=1))
    assert np.mean(out != model.translate(srcs, temperature=1.0, seed=2)) > 0.3
    # top_k=1 is greedy
    np.testing.assert_array_equal(model.translate(srcs, top_k=1, temperature=1.0, seed=9),
                                  model.translate(srcs, temperature=0.0))
    # an explicit bound
    short = model.translate(srcs, max_length=5, temperature=1.0, seed=1)
    assert short.shape == (2, 5) and not np.isin(short, [PAD_ID, EOS_ID]).any()


def test_translate_stops_at_eos():
    model = _model(seed=4)
    bias = np.zeros((259,), np.float32)
    bias[EOS_ID] = 5.0  # P(EOS) ~ 1/3 per token: ends well inside the bound
    model.head_out.bias.assign(bias)
    srcs = _sources()
    out = model.translate(srcs, temperature=1.0, seed=0)
    for row in out:
        hits = np.nonzero(row == EOS_ID)[0]
        assert hits.size == 1 and (row[hits[0] + 1:] == PAD_ID).all()
        assert not np.isin(row[:hits[0]], [PAD_ID, BOS_ID]).any()
    bias[EOS_ID] = 50.0
    model.head_out.bias.assign(bias)
    out = model.translate(srcs, seed=0)
    assert (out[:, 0] == EOS_ID).all() and (out[:, 1:] == PAD_ID).all()


def test_save_load_round_trip(tmp_path):
    model = _model(seed=5)
    srcs = _sources()
    path = tmp_path / "bytenet.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, ByteNet) and loaded.dilations == model.dilations
    rng = np.random.default_rng(5)
    src = rng.integers(0, 256, size=(2, 9)).astype(np.int32)
    tgt = rng.integers(0, 256, size=(2, 11)).astype(np.int32)
    inputs = {"source": src, "target_in": tgt}
    np.testing.assert_allclose(_np(loaded(inputs)), _np(model(inputs)), atol=1e-6)
    assert loaded.translate(srcs, max_length=4).shape == (2, 4)


def test_fit_reduces_loss():
    model = _model(seed=6)
    rng = np.random.default_rng(6)
    src = rng.integers(97, 100, size=(8, 10)).astype(np.int32)
    tgt = (src + 1).astype(np.int32)  # "translation": shift every byte by one
    y = np.concatenate([tgt, np.full((8, 1), EOS_ID, np.int32)], axis=1)
    target_in = np.concatenate([np.full((8, 1), BOS_ID, np.int32), tgt], axis=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    hist = model.fit({"source": src, "target_in": target_in}, y, batch_size=8, epochs=30, verbose=0)
    losses = hist.history["loss"]
    assert losses[-1] < 0.3 * losses[0], losses


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a TensorFlow graph-mode trace")
def test_call_traced_with_static_source_and_dynamic_target_length():
    # what Keras' predict_on_batch does during validation: the source length is
    # static, the target length unknown until run time
    import tensorflow as tf

    model = _model(seed=7)
    src = np.full((2, 5), 97, np.int32)
    fn = tf.function(lambda s, t: model({"source": s, "target_in": t}),
                     input_signature=[tf.TensorSpec((2, 5), tf.int32), tf.TensorSpec((2, None), tf.int32)])
    for length in (3, 9):                      # shorter and longer than the source
        tgt = np.full((2, length), BOS_ID, np.int32)
        np.testing.assert_allclose(_np(fn(src, tgt)), _np(model({"source": src, "target_in": tgt})),
                                   rtol=1e-5, atol=1e-5)
