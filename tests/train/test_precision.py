"""`train.precision: mixed_bfloat16`: bf16 compute with float32 weights in training; resume keeps the policy,
sampling and evaluation load the same weights in float32."""
import numpy as np
import pytest

from conftest import TINY, cli_here
from seqgen.runs import Run

pytestmark = pytest.mark.usefixtures("quiet_cli")

_COMMON = ("--set", "train.checkpoint_every=2", "--set", "train.log_every=2", "--set", "train.valid_every=0",
           "--set", "train.audio_seconds=0")


def _policies(model):
    return {layer.dtype_policy.name for layer in model._flatten_layers()}


def test_mixed_bfloat16_trains_resumes_and_samples_in_float32(espeak_vocoder_data, tmp_path):
    import keras

    run = tmp_path / "run"
    code, _, err = cli_here("train", TINY, "--data", espeak_vocoder_data, "--out", run, "--max-steps", 2,
                            "--set", "train.precision=mixed_bfloat16", *_COMMON)
    assert code == 0, err
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored after the build
    trained, step, _ = Run(run).load_model(use_ema=False, precision="mixed_bfloat16")
    assert step == 2 and _policies(trained) == {"mixed_bfloat16"}
    assert {str(w.dtype) for w in trained.weights} == {"float32"}
    sampled, _, _ = Run(run).load_model()
    assert _policies(sampled) == {"float32"}
    for a, b in zip(trained.weights, sampled.weights):  # the same weights, computed in another precision
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    code, _, err = cli_here("train", "--data", espeak_vocoder_data, "--out", run, "--max-steps", 4, "--resume")
    assert code == 0 and "resumed from ckpt-00000002.keras" in err, err
    resumed, step, _ = Run(run).load_model(use_ema=False, precision="mixed_bfloat16")
    assert step == 4
    moved = [not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(trained.weights, resumed.weights)]
    assert any(moved)
    # the bf16 forward pass differs from the float32 one, but only by bf16 rounding
    mel = np.random.default_rng(0).normal(size=(1, 8, 80)).astype(np.float32)
    x = np.random.default_rng(1).integers(0, 256, size=(1, 8 * 256)).astype(np.int32)
    lo = np.asarray(keras.ops.convert_to_numpy(resumed({"x": x, "mel": mel}, training=False)), np.float32)
    float32, _, _ = Run(run).load_model()
    hi = np.asarray(keras.ops.convert_to_numpy(float32({"x": x, "mel": mel}, training=False)), np.float32)
    assert not np.array_equal(lo, hi) and np.max(np.abs(lo - hi)) < 0.05 * np.max(np.abs(hi))


def test_precision_must_be_known(espeak_vocoder_data, tmp_path):
    code, _, err = cli_here("train", TINY, "--data", espeak_vocoder_data, "--out", tmp_path / "r", "--max-steps", 1,
                            "--set", "train.precision=float16")
    assert code != 0 and "'train.precision' must be one of float32, mixed_bfloat16" in err
