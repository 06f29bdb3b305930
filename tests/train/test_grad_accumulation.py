"""`train.grad_accumulation`: N batches, one update of their mean gradient; steps count updates."""
import json

import numpy as np
import pytest

from conftest import TINY, cli_here
from seqgen.runs import Run

pytestmark = pytest.mark.usefixtures("quiet_cli")

_COMMON = ("--set", "train.checkpoint_every=3", "--set", "train.log_every=3", "--set", "train.valid_every=0",
           "--set", "train.audio_seconds=0", "--set", "train.jit_compile=false")


def _train(data, out, steps, *sets, resume=False):
    args = ["train", *([] if resume else [TINY]), "--data", data, "--out", out, "--max-steps", steps, *_COMMON]
    for s in sets:
        args += ["--set", s]
    code, _, err = cli_here(*args, *(["--resume"] if resume else []))
    assert code == 0, err
    return err


def _weights(run):
    model, step, _ = Run(run).load_model(use_ema=False, compile=False)
    return step, [np.asarray(w) for w in model.trainable_weights]


def test_two_batches_of_4_accumulated_make_the_step_of_one_batch_of_8(espeak_vocoder_data, tmp_path):
    # the input pipeline draws the same windows in the same order whatever the batch size, so both runs see
    # the same 8 windows per step: their updates agree up to the order of float sums
    # (Adam, clipping and the schedule all see the mean gradient of 8 windows per step)
    log = _train(espeak_vocoder_data, tmp_path / "acc", 3, "data.batch_size=4", "train.grad_accumulation=2")
    _train(espeak_vocoder_data, tmp_path / "big", 3, "data.batch_size=8")
    assert "gradient accumulation: 2 batches of 4 per step" in log
    step_a, acc = _weights(tmp_path / "acc")
    step_b, big = _weights(tmp_path / "big")
    assert step_a == step_b == 3
    _, small = _weights_after_one_batch_of_4(espeak_vocoder_data, tmp_path)

    def dist(u, v):
        return float(np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(u, v))))
    # Adam divides each gradient by its own scale, so where a gradient is near zero the order of the float
    # sums flips signs: compare whole-model distances (measured: 0.03 against 1.45 for batches of 4 alone)
    assert dist(acc, big) < 0.05 * dist(small, big)
    rows = [json.loads(line) for line in (tmp_path / "acc" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [3]
    # a resumed run keeps accumulating (its optimizer and schedule come back from the checkpoint): 3 more
    # steps make 6 updates
    _train(espeak_vocoder_data, tmp_path / "acc", 6, resume=True)
    assert _weights(tmp_path / "acc")[0] == 6


def test_the_schedule_and_the_ema_count_updates_not_batches():
    import keras

    from seqgen.train.loop import make_optimizer
    from seqgen.train.schedules import PerUpdate, make_schedule

    t = {"learning_rate": 1e-2, "schedule": "cosine", "warmup_steps": 10, "steps": 50, "final_lr_fraction": 0.1,
         "clip_norm": 0, "ema": 0.9, "weight_decay": 0}
    plain = make_schedule(t)
    accumulated = make_schedule({**t, "grad_accumulation": 4})
    assert isinstance(accumulated, PerUpdate)
    for update in (0, 3, 10, 31, 49):          # Keras asks at its batch counter: 4 per update here
        for batch in range(4 * update, 4 * update + 4):
            assert float(accumulated(batch)) == pytest.approx(float(plain(update)))
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(accumulated))
    assert float(again(41)) == pytest.approx(float(plain(10)))
    assert make_optimizer({**t, "grad_accumulation": 4}).ema_momentum == pytest.approx(0.9 ** 0.25)


def _weights_after_one_batch_of_4(data, tmp_path):
    _train(data, tmp_path / "small", 3, "data.batch_size=4")
    return _weights(tmp_path / "small")


def test_grad_accumulation_must_be_positive(tmp_path):
    from seqgen import config as C
    from seqgen.errors import ConfigError

    p = tmp_path / "c.yaml"
    p.write_text("model: {type: wavenet}\ntrain: {grad_accumulation: 0}\n")
    with pytest.raises(ConfigError, match=r"'train.grad_accumulation' must be >= 1"):
        C.load(p)
