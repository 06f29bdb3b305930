"""The ByteNet LM's cached decoding loop in C (method "native"): logits equal to the Keras queue step's to
float tolerance, tokens equal to the cached ones."""
import numpy as np
import pytest

from seqgen.models.bytenet import ByteNet

pytestmark = pytest.mark.multibackend


def _model(seed=0, kernel_size=3):
    model = ByteNet(encoder=False, d_model=32, dilations=(1, 2, 4), num_sets=2, kernel_size=kernel_size)
    rng = np.random.default_rng(seed)
    for w in model.weights:   # sharp distributions, like a trained model's; layer-norm scales around 1
        w.assign(rng.normal(0, 0.3, w.shape).astype(np.float32) + (1.0 if "gamma" in w.path else 0.0))
    return model


@pytest.mark.parametrize("kernel_size", [2, 3])
def test_native_logits_equal_the_keras_step(kernel_size):
    from seqgen.native.bytenet import NativeByteNetLoop

    model = _model(kernel_size=kernel_size)
    b, n = 5, 40                 # five rows: four multiplied together, one alone
    tokens = np.random.default_rng(1).integers(3, model.vocab_size, size=(b, n)).astype(np.int32)
    x = np.concatenate([np.full((b, 1), model.bos_id, np.int32), tokens[:, :-1]], axis=1)
    ref = model.cached_logits(x)
    keep = np.ones(model.vocab_size, bool)
    keep[[model.pad_id, model.bos_id]] = False
    assert np.ptp(ref[..., keep]) > 2.0
    for dtype, tol in (("float32", None), ("bfloat16", 0.03), ("int8", 0.08)):
        got = np.zeros((b, n, model.vocab_size), np.float32)
        NativeByteNetLoop(model, dtype)(x[:, 0], tokens, np.ones((b, n), bool), np.full((b, n), 0.5), n,
                                        stop_at_eos=False, logits=got)
        if tol is None:
            np.testing.assert_allclose(got[..., keep], ref[..., keep], rtol=1e-4, atol=1e-4)
        else:
            err = np.abs(got[..., keep] - ref[..., keep]).max() / np.abs(ref[..., keep]).max()
            assert 0 < err < tol, (dtype, err)


def test_native_tokens_are_the_cached_tokens():
    model = _model(seed=3)
    prompts = [[65, 66, 67, 68, 69], [70], []]
    for kw in (dict(), dict(temperature=0.7, top_k=20), dict(top_p=0.8), dict(temperature=0.0)):
        for stop in (True, False):
            cached = model.generate(prompts, max_new_tokens=30, seed=2, stop_at_eos=stop, **kw)
            native = model.generate(prompts, max_new_tokens=30, seed=2, stop_at_eos=stop, method="native", **kw)
            np.testing.assert_array_equal(native, cached)


def test_translation_refuses_native():
    model = ByteNet(encoder=True, d_model=16, dilations=(1, 2), num_sets=1)
    with pytest.raises(ValueError, match="'native' is the ByteNet LM's"):
        model.translate([[65, 66]], method="native")
    with pytest.raises(ValueError, match="weight_dtype 'bfloat16' needs method 'native'"):
        _model().generate(None, max_new_tokens=4, weight_dtype="bfloat16")


def test_rounded_keras_weights_are_what_the_loop_multiplies_by():
    """``round_model_weights`` on a ByteNet LM: the Keras step's logits become the bfloat16 / int8 loop's."""
    from seqgen.native.bytenet import NativeByteNetLoop
    from seqgen.native.rounding import round_model_weights

    b, n = 2, 24
    for dtype in ("bfloat16", "int8"):
        model = _model(seed=5)
        tokens = np.random.default_rng(2).integers(3, model.vocab_size, size=(b, n)).astype(np.int32)
        x = np.concatenate([np.full((b, 1), model.bos_id, np.int32), tokens[:, :-1]], axis=1)
        got = np.zeros((b, n, model.vocab_size), np.float32)
        NativeByteNetLoop(model, dtype)(x[:, 0], tokens, np.ones((b, n), bool), np.full((b, n), 0.5), n,
                                        stop_at_eos=False, logits=got)
        round_model_weights(model, dtype)
        ref = model.cached_logits(x)
        keep = np.ones(model.vocab_size, bool)
        keep[[model.pad_id, model.bos_id]] = False
        np.testing.assert_allclose(got[..., keep], ref[..., keep], rtol=1e-4, atol=1e-4)
