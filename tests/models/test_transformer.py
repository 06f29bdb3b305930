"""TransformerDecoder: cached == full logits, causality, generation (cached ==
naive, greedy, seeds, prompts, EOS), save/load, training."""
import keras
import numpy as np
import pytest

from seqgen.models.transformer import TransformerDecoder
from seqgen.data.tokenizers import BOS_ID, EOS_ID, PAD_ID

from conftest import _np

pytestmark = pytest.mark.multibackend

TINY = dict(num_layers=2, d_model=32, num_heads=4, max_length=256, dropout=0.0)




def _model(seed=0, **kw):
    keras.utils.set_random_seed(seed)
    cfg = dict(TINY)
    cfg.update(kw)
    return TransformerDecoder(**cfg)


@pytest.mark.parametrize("positions,tie", [("learned", True), ("sinusoidal", False), ("rotary", True)])
def test_cached_logits_equal_full_recompute(positions, tie):
    model = _model(positions=positions, tie_embeddings=tie)
    x = np.random.default_rng(0).integers(0, 259, size=(2, 200)).astype(np.int32)
    full = _np(model({"x": x}))
    assert full.shape == (2, 200, 259)
    cached = model.cached_logits(x)
    np.testing.assert_allclose(cached, full, atol=1e-4, rtol=0)


def test_causal_and_max_length():
    model = _model()
    x = np.random.default_rng(1).integers(0, 256, size=(1, 40)).astype(np.int32)
    base = _np(model({"x": x}))
    x2 = x.copy()
    x2[:, 25:] = (x2[:, 25:] + 7) % 256
    out = _np(model({"x": x2}))
    np.testing.assert_allclose(out[:, :25], base[:, :25], atol=1e-5)
    assert np.abs(out[:, 25:] - base[:, 25:]).max() > 1e-4
    with pytest.raises(ValueError, match="max_length"):
        model.generate([1, 2, 3], max_new_tokens=254)


def _greedy_reference(model, prompts, n, width=32):
    """Greedy decoding by full recompute with the plain forward pass (a fixed
    width buffer: positions after the prefix do not matter, it is causal)."""
    b = len(prompts)
    buf = np.full((b, width), PAD_ID, np.int32)
    buf[:, 0] = BOS_ID
    lens = []
    for i, p in enumerate(prompts):
        buf[i, 1:1 + len(p)] = p
        lens.append(1 + len(p))
    out = np.full((b, n), PAD_ID, np.int32)
    done = np.zeros(b, bool)
    for j in range(n):
        logits = _np(model({"x": buf}))
        for i in range(b):
            if done[i]:
                continue
            row = logits[i, lens[i] - 1].copy()
            row[[PAD_ID, BOS_ID]] = -np.inf
            tok = int(np.argmax(row))
            out[i, j] = tok
            buf[i, lens[i]] = tok
            lens[i] += 1
            done[i] = tok == EOS_ID
    return out


def test_greedy_and_top_k1_match_reference_with_prompts():
    model = _model(seed=3)
    prompts = [[72, 105, 33], [10]]
    greedy = model.generate(prompts, max_new_tokens=10, temperature=0.0)
    topk1 = model.generate(prompts, max_new_tokens=10, top_k=1, seed=5)
    np.testing.assert_array_equal(greedy, topk1)
    assert greedy.shape == (2, 10) and greedy.dtype == np.int32
    np.testing.assert_array_equal(greedy, _greedy_reference(model, prompts, 10))


@pytest.mark.parametrize("kw", [dict(), dict(temperature=0.8, top_k=20, top_p=0.9)])
def test_cached_equals_naive_and_seeds(kw):
    model = _model(seed=1)
    prompts = [[1, 2, 3, 4, 5], [], [200, 201]]
    a = model.generate(prompts, max_new_tokens=24, seed=7, **kw)
    b = model.generate(prompts, max_new_tokens=24, seed=7, method="naive", **kw)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, model.generate(prompts, max_new_tokens=24, seed=7, **kw))
    c = model.generate(prompts, max_new_tokens=24, seed=8, **kw)
    assert np.mean(a != c) > 0.3
    assert not np.isin(a, [PAD_ID, BOS_ID]).any()  # untrained model never hits EOS here
    # the same prompt in different rows with different uniforms differs
    d = model.generate([9, 9], batch_size=2, max_new_tokens=24, seed=7)
    assert d.shape == (2, 24) and np.mean(d[0] != d[1]) > 0.3


def test_eos_stops_and_pads():
    model = _model(seed=2)
    bias = np.zeros((259,), np.float32)
    bias[EOS_ID] = 8.0
    model.output_bias.assign(bias)
    for method in ("cached", "naive"):
        out = model.generate([[1, 2], [3]], max_new_tokens=10, seed=0, method=method)
        assert (out[:, 0] == EOS_ID).all() or ((out == EOS_ID).sum(1) == 1).all()
        for row in out:
            k = int(np.nonzero(row == EOS_ID)[0][0])
            assert (row[k + 1:] == PAD_ID).all()
    # EOS impossible: the full budget is generated
    bias[EOS_ID] = -1e9
    model.output_bias.assign(bias)
    out = model.generate([[1, 2], [3]], max_new_tokens=10, seed=0)
    assert not np.isin(out, [EOS_ID, PAD_ID]).any()
    # stop_at_eos=False keeps generating after EOS
    bias[EOS_ID] = 3.0
    model.output_bias.assign(bias)
    out = model.generate([[1, 2]], max_new_tokens=30, seed=0, stop_at_eos=False)
    hits = np.nonzero(out[0] == EOS_ID)[0]
    assert hits.size and (out[0, hits[0] + 1:] != PAD_ID).all()


def test_save_load_round_trip(tmp_path):
    model = _model(seed=4, positions="sinusoidal")
    x = np.random.default_rng(0).integers(0, 256, size=(2, 16)).astype(np.int32)
    path = tmp_path / "transformer.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, TransformerDecoder) and loaded.positions == "sinusoidal"
    np.testing.assert_allclose(_np(loaded({"x": x})), _np(model({"x": x})), atol=1e-6)
    np.testing.assert_array_equal(loaded.generate([5], max_new_tokens=8, seed=1),
                                  model.generate([5], max_new_tokens=8, seed=1))


def test_rotary_positions_cached_naive_and_saved(tmp_path):
    """``positions="rotary"``: no position table; every attention rotates (so the model is not invariant
    to where a pattern sits); cached == naive generation; a saved model keeps it."""
    model = _model(seed=5, positions="rotary")
    assert model.position_embedding is None and all(b.attn.rotary for b in model.blocks)
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, size=(2, 48)).astype(np.int32)
    full = _np(model({"x": x}))
    np.testing.assert_array_equal(model.generate([[1, 2, 3], [7]], max_new_tokens=20, seed=4),
                                  model.generate([[1, 2, 3], [7]], max_new_tokens=20, seed=4, method="naive"))
    path = tmp_path / "rotary.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.positions == "rotary" and loaded.blocks[0].attn.rotary
    np.testing.assert_allclose(_np(loaded({"x": x})), full, atol=1e-6)
    with pytest.raises(ValueError, match="positions must be one of"):
        _model(positions="alibi")
    with pytest.raises(ValueError, match="even head size"):
        _model(positions="rotary", d_model=36, num_heads=4)


@pytest.mark.parametrize("activation", ["gelu_tanh", "relu", "relu2"])
def test_feed_forward_activation_is_used_cached_and_saved(activation, tmp_path):
    """``activation`` changes what the feed-forward layers compute (same weights, other logits); the cached
    step uses it too (cached == full recompute, cached == naive) and a saved model keeps it."""
    model = _model(seed=6, activation=activation)
    exact = _model(seed=6)
    x = np.random.default_rng(1).integers(0, 259, size=(2, 40)).astype(np.int32)
    exact.set_weights(model.get_weights())
    full = _np(model({"x": x}))
    assert not np.allclose(full, _np(exact({"x": x})), atol=1e-4)
    np.testing.assert_allclose(model.cached_logits(x), full, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(model.generate([[1, 2]], max_new_tokens=12, seed=3),
                                  model.generate([[1, 2]], max_new_tokens=12, seed=3, method="naive"))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.activation == activation and loaded.blocks[0].activation == activation
    np.testing.assert_allclose(_np(loaded({"x": x})), full, atol=1e-6)
    with pytest.raises(ValueError, match="activation must be one of"):
        _model(activation="swish")


def test_gpt2_initialization_scales_and_survives_saving(tmp_path):
    """``init_std``: kernels and the token embedding drawn with that deviation, the projections into the residual
    stream with ``init_std / sqrt(2 L)``; saved and loaded with the model; None keeps the Glorot default."""
    model = _model(seed=2, num_layers=4, d_model=64, init_std=0.02)
    blk = model.blocks[0]
    out_std = 0.02 / np.sqrt(8)
    for w, std in [(model.token_embedding.embeddings, 0.02), (blk.attn.qkv_kernel, 0.02), (blk.ff1.kernel, 0.02),
                   (blk.attn.out_kernel, out_std), (blk.ff2.kernel, out_std)]:
        assert abs(float(np.std(_np(w))) / std - 1.0) < 0.1
    default = _model(seed=2, num_layers=4, d_model=64)
    glorot = np.sqrt(2.0 / (64 + 256))                         # ff1: 64 -> 256, Glorot uniform
    assert abs(float(np.std(_np(default.blocks[0].ff1.kernel))) / glorot - 1.0) < 0.1
    x = np.random.default_rng(0).integers(0, 259, size=(2, 30)).astype(np.int32)
    np.testing.assert_allclose(model.cached_logits(x), _np(model({"x": x})), atol=1e-4, rtol=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.init_std == 0.02 and loaded.blocks[0].attn.out_std == pytest.approx(out_std)
    np.testing.assert_allclose(_np(loaded({"x": x})), _np(model({"x": x})), atol=1e-6)
    with pytest.raises(ValueError, match="init_std must be > 0"):
        _model(init_std=0.0)


def test_fit_reduces_loss_and_ignores_pad():
    model = _model(seed=5, num_layers=1, d_model=32, num_heads=2)
    text = np.frombuffer(b"abcabcabcabcabcabcabcabcabcabcab", np.uint8).astype(np.int32)
    x = np.concatenate([[BOS_ID], text[:-1]])[None].repeat(8, 0).astype(np.int32)
    y = text[None].repeat(8, 0).copy()
    y[:, -4:] = PAD_ID  # ignored targets
    # the loss ignores PAD: changing the logits at PAD targets changes nothing
    pred = _np(model({"x": x}))
    l1 = float(_np(model.compute_loss(y=y, y_pred=pred)))
    pred2 = pred.copy()
    pred2[:, -4:] += np.random.default_rng(0).normal(size=pred2[:, -4:].shape) * 5
    assert abs(float(_np(model.compute_loss(y=y, y_pred=pred2))) - l1) < 1e-5
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    hist = model.fit({"x": x}, y, batch_size=8, epochs=25, verbose=0)
    losses = hist.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses
