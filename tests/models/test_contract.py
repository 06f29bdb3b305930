"""What every registered model type must do, written once: its config round-trips, a `.keras` file
of it loads with the same outputs, and, for each decoder with a cached method, cached == naive.

A model type added to ``seqgen.models.registry.MODELS`` without a tiny instance here fails
``test_every_registered_model_type_is_covered``.
"""
import keras
import numpy as np
import pytest

from conftest import _np

pytestmark = pytest.mark.multibackend

B, HOP, MELS = 2, 4, 3
TOKENS = dict(vocab_size=259, pad_id=256, bos_id=257, eos_id=258)


def _randomize(model, seed=0, scale=0.2):
    """Random biases and output heads (some start at zero), so outputs depend on every weight."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if "bias" in w.path or "head_out" in w.path:
            w.assign((rng.normal(size=w.shape) * scale).astype(w.dtype))


def _ids(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=shape).astype(np.int32)


# model type -> (constructor arguments of a tiny instance, its inputs)
TINY = {
    "wavenet": (dict(num_stacks=1, layers_per_stack=3, residual_channels=8, gate_channels=8, skip_channels=8,
                     cond_channels=MELS, hop_length=HOP, distribution={"type": "categorical", "num_classes": 16}),
                lambda: {"x": _ids((B, 8 * HOP)) % 16,
                         "mel": np.random.default_rng(1).normal(size=(B, 8, MELS)).astype(np.float32)}),
    "transformer": (dict(num_layers=1, d_model=16, num_heads=2, max_length=32, **TOKENS),
                    lambda: {"x": _ids((B, 16))}),
    "bytenet_lm": (dict(d_model=16, dilations=[1, 2], num_sets=1, encoder=False, **TOKENS),
                   lambda: {"x": _ids((B, 16))}),
    "bytenet": (dict(d_model=16, dilations=[1, 2], num_sets=1, encoder=True, **TOKENS),
                lambda: {"source": _ids((B, 16), 1), "target_in": _ids((B, 16), 2)}),
    "parallel_wavenet": (dict(flow_layers=[2], layers_per_cycle=2, residual_channels=8, gate_channels=8,
                              skip_channels=8, cond_channels=MELS, hop_length=HOP),
                         lambda: {"mel": np.random.default_rng(1).normal(size=(B, 8, MELS)).astype(np.float32),
                                  "noise": np.random.default_rng(2).normal(size=(B, 8 * HOP)).astype(np.float32)}),
}
BUILTIN = sorted(TINY)


def _model(model_type, seed=0):
    from seqgen.models.registry import model_class

    keras.utils.set_random_seed(seed)
    kwargs, inputs = TINY[model_type]
    model = model_class(model_type)(**kwargs)
    x = inputs()
    model(x)  # build
    _randomize(model, seed)
    return model, x


def _outputs(model, x):
    out = model(x, training=False)
    return {k: _np(v) for k, v in out.items()} if isinstance(out, dict) else {"out": _np(out)}


def test_every_registered_model_type_is_covered():
    from seqgen.models.registry import MODELS

    assert set(BUILTIN) <= set(MODELS) and not set(MODELS) - set(BUILTIN) - {"toy_transformer"}


@pytest.mark.parametrize("model_type", BUILTIN)
def test_config_round_trip(model_type):
    model, _ = _model(model_type)
    config = model.get_config()
    again = type(model).from_config(config)
    assert again.get_config() == config


@pytest.mark.parametrize("model_type", BUILTIN)
def test_keras_file_round_trip(model_type, tmp_path):
    model, x = _model(model_type, seed=3)
    path = tmp_path / f"{model_type}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    a, b = _outputs(model, x), _outputs(loaded, x)
    assert set(a) == set(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=f"{model_type} output {key}")


def _generate(model_type, model, method):
    if model_type == "wavenet":
        mel = np.random.default_rng(4).normal(size=(B, 6, MELS)).astype(np.float32)
        return model.generate(mel=mel, method=method, seed=5, temperature=1.0)
    if model_type == "bytenet":
        return model.translate([[104, 105], [106, 107, 108]], method=method, temperature=1.0, seed=5)
    return model.generate([[72, 105]], max_new_tokens=12, method=method, temperature=1.0, seed=5, batch_size=B,
                          stop_at_eos=False)


@pytest.mark.parametrize("model_type", [t for t in BUILTIN if t != "parallel_wavenet"])
def test_cached_equals_naive(model_type):
    """The fast cached decoder and the reference recompute draw the same samples from the same seed."""
    from seqgen.core.methods import CACHED, NAIVE

    model, _ = _model(model_type, seed=7)
    assert {CACHED, NAIVE} <= set(model.METHODS)
    cached, naive = _generate(model_type, model, CACHED), _generate(model_type, model, NAIVE)
    assert np.asarray(cached).shape == np.asarray(naive).shape
    np.testing.assert_array_equal(cached, naive)
    with pytest.raises(ValueError, match="method must be one of"):
        _generate(model_type, model, "fastest")


@pytest.fixture
def mixed_bfloat16():
    from seqgen.utils.backend import dtype_policy

    with dtype_policy("mixed_bfloat16"):
        yield


@pytest.mark.parametrize("model_type", BUILTIN)
def test_mixed_bfloat16_builds_runs_and_round_trips(model_type, mixed_bfloat16, tmp_path):
    """train.precision: mixed_bfloat16 builds every layer under that policy (float32 weights, bf16 compute);
    the outputs are finite and a `.keras` file reloaded under the same policy gives the same outputs."""
    model, x = _model(model_type, seed=3)
    policies = {layer.dtype_policy.name for layer in model._flatten_layers()}
    assert policies == {"mixed_bfloat16"}
    assert {str(w.dtype) for w in model.weights} == {"float32"}
    a = _outputs(model, x)
    assert all(np.all(np.isfinite(v.astype(np.float32))) for v in a.values())
    model.save(tmp_path / "m.keras")
    b = _outputs(keras.saving.load_model(tmp_path / "m.keras", compile=False), x)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=f"{model_type} output {key}")
