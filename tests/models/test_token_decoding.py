"""The token models' training loss: masked cross-entropy, and label smoothing against Keras' own."""
import keras
import numpy as np
import pytest

from conftest import _np
from seqgen.models.bytenet import ByteNet
from seqgen.models.token_decoding import masked_token_loss


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_label_smoothing_is_keras_categorical_crossentropy_with_smoothed_labels(eps):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 11)).astype(np.float32) * 3
    y = rng.integers(1, 11, size=(2, 5)).astype(np.int32)
    y[1, 3:] = 0                                        # padding (id 0 here) is left out of the mean
    ours = float(_np(masked_token_loss(y, logits, pad_id=0, label_smoothing=eps)))
    oracle = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=eps, reduction=None)
    per_token = _np(oracle(np.eye(11, dtype=np.float32)[y], logits))
    keep = y != 0
    assert ours == pytest.approx(float(per_token[keep].mean()), rel=1e-5)


def test_bytenet_smooths_its_training_loss_only():
    model = ByteNet(d_model=16, dilations=(1, 2), num_sets=1, label_smoothing=0.2)
    assert ByteNet.from_config(model.get_config()).label_smoothing == 0.2
    rng = np.random.default_rng(1)
    src = rng.integers(3, 200, size=(2, 6)).astype(np.int32)
    tgt = rng.integers(3, 200, size=(2, 6)).astype(np.int32)
    logits = model({"source": src, "target_in": tgt})
    train = float(_np(model.compute_loss(y=tgt, y_pred=logits, training=True)))
    held_out = float(_np(model.compute_loss(y=tgt, y_pred=logits, training=False)))
    assert held_out == pytest.approx(float(_np(masked_token_loss(tgt, logits))), rel=1e-6)
    assert train == pytest.approx(float(_np(masked_token_loss(tgt, logits, label_smoothing=0.2))), rel=1e-6)
    assert train != pytest.approx(held_out)
