"""The Transformer's cached decoding loop in C (method "native"): the same generation plan, uniforms and
sampler as the compiled Keras loop, so its logits equal the Keras step's to float tolerance and its tokens
the cached ones."""
import keras
import numpy as np
import pytest

from seqgen.models.transformer import TransformerDecoder

pytestmark = pytest.mark.multibackend

CONFIGS = [("learned", "gelu", True), ("rotary", "relu2", False), ("sinusoidal", "gelu_tanh", True)]


def _model(positions, activation, tie, seed=0):
    model = TransformerDecoder(num_layers=2, d_model=32, num_heads=4, d_ff=48, max_length=64, dropout=0.0,
                               positions=positions, activation=activation, tie_embeddings=tie)
    rng = np.random.default_rng(seed)
    for w in model.weights:   # sharp distributions, like a trained model's; layer-norm scales around 1
        w.assign(rng.normal(0, 0.25, w.shape).astype(np.float32) + (1.0 if "gamma" in w.path else 0.0))
    return model


@pytest.mark.parametrize("positions,activation,tie", CONFIGS)
def test_native_logits_equal_the_keras_step(positions, activation, tie):
    """Teacher-forced through the whole window, the C loop's logits are the Keras key/value step's
    (``cached_logits``) to float tolerance; bfloat16 and int8 weights stay close."""
    from seqgen.native.transformer import NativeTransformerLoop

    model = _model(positions, activation, tie)
    rng = np.random.default_rng(1)
    b, n = 5, 40                 # five rows: four multiplied together, one alone
    tokens = rng.integers(3, model.vocab_size, size=(b, n)).astype(np.int32)
    x = np.concatenate([np.full((b, 1), model.bos_id, np.int32), tokens[:, :-1]], axis=1)
    ref = model.cached_logits(x)
    keep = np.ones(model.vocab_size, bool)
    keep[[model.pad_id, model.bos_id]] = False                 # the loop bans these two
    assert np.ptp(ref[..., keep]) > 2.0
    for dtype, tol in (("float32", None), ("bfloat16", 0.03), ("int8", 0.08)):
        got = np.zeros((b, n, model.vocab_size), np.float32)
        NativeTransformerLoop(model, dtype)(x[:, 0], tokens, np.ones((b, n), bool), np.full((b, n), 0.5), n,
                                            stop_at_eos=False, logits=got)
        if tol is None:
            np.testing.assert_allclose(got[..., keep], ref[..., keep], rtol=1e-4, atol=1e-4)
            assert (got[..., ~keep] == -1e9).all()
        else:
            err = np.abs(got[..., keep] - ref[..., keep]).max() / np.abs(ref[..., keep]).max()
            assert 0 < err < tol, (dtype, err)


@pytest.mark.parametrize("positions,activation,tie", CONFIGS)
def test_native_tokens_are_the_cached_tokens(positions, activation, tie):
    """Prompts of different lengths, stop at EOS, and every sampler setting: the same tokens as the
    compiled loop with the same seed."""
    model = _model(positions, activation, tie, seed=3)
    prompts = [[65, 66, 67, 68, 69], [70], []]
    for kw in (dict(), dict(temperature=0.7, top_k=20), dict(top_p=0.8), dict(temperature=0.0)):
        for stop in (True, False):
            cached = model.generate(prompts, max_new_tokens=30, seed=2, stop_at_eos=stop, **kw)
            native = model.generate(prompts, max_new_tokens=30, seed=2, stop_at_eos=stop, method="native", **kw)
            assert native.shape == cached.shape == (3, 30)
            np.testing.assert_array_equal(native, cached)
    assert len(np.unique(model.generate(None, max_new_tokens=30, seed=2, method="native"))) > 5


def test_native_transformer_refusals():
    model = _model("learned", "gelu", True)
    with pytest.raises(ValueError, match="weight_dtype 'int8' needs method 'native'"):
        model.generate(None, max_new_tokens=4, weight_dtype="int8")
    with pytest.raises(ValueError, match="weight_dtype must be one of"):
        model.generate(None, max_new_tokens=4, method="native", weight_dtype="fp8")


def test_loop_is_reused_until_the_weights_change():
    """The packed loop stays on the model while its weights are unchanged; new weights are repacked (a
    stale loop would sample from the old model)."""
    from seqgen.native.reuse import loop_for
    from seqgen.native.transformer import NativeTransformerLoop

    model = _model("learned", "gelu", True)
    first = loop_for(model, NativeTransformerLoop, "float32")
    assert loop_for(model, NativeTransformerLoop, "float32") is first
    assert loop_for(model, NativeTransformerLoop, "bfloat16") is not first
    before = model.generate(None, max_new_tokens=20, seed=1, method="native")
    w = model.blocks[0].ff1.kernel
    w.assign(keras.ops.convert_to_numpy(w) * 2.0)
    assert loop_for(model, NativeTransformerLoop, "float32") is not first
    after = model.generate(None, max_new_tokens=20, seed=1, method="native")
    np.testing.assert_array_equal(after, model.generate(None, max_new_tokens=20, seed=1))   # the new weights
    assert not np.array_equal(before, after)
