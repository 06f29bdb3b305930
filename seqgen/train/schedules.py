"""The learning-rate schedule of ``train.*`` (cosine with warm-up, exponential, constant), counted in updates.

With ``train.grad_accumulation: N`` Keras asks the schedule at its micro-batch counter (N per update), while
seqgen's steps, Adam's bias correction and ``optimizer.iterations`` count updates: :class:`PerUpdate` gives
the schedule the update count, so warm-up and decay span ``train.warmup_steps`` and ``train.steps`` updates
whatever N is.
"""
from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="seqgen")
class PerUpdate(keras.optimizers.schedules.LearningRateSchedule):
    """``schedule(step // batches)``: a schedule over updates, asked at a micro-batch counter."""

    def __init__(self, schedule, batches):
        self.schedule = schedule
        self.batches = int(batches)

    def __call__(self, step):
        return self.schedule(ops.floor_divide(step, self.batches))

    def get_config(self):
        return {"schedule": keras.saving.serialize_keras_object(self.schedule), "batches": self.batches}

    @classmethod
    def from_config(cls, config):
        return cls(keras.saving.deserialize_keras_object(config["schedule"]), config["batches"])


def make_schedule(t: dict):
    """The learning rate (a float, or a schedule over updates) of a validated ``train`` section."""
    lr = float(t["learning_rate"])
    if t["schedule"] == "constant":
        return lr
    if t["schedule"] == "exponential":
        base = keras.optimizers.schedules.ExponentialDecay(lr, int(t["decay_steps"]), float(t["decay_rate"]))
    else:
        warm = int(t["warmup_steps"])
        decay = max(1, int(t["steps"]) - warm)
        if warm:
            base = keras.optimizers.schedules.CosineDecay(0.0, decay, alpha=float(t["final_lr_fraction"]),
                                                          warmup_target=lr, warmup_steps=warm)
        else:
            base = keras.optimizers.schedules.CosineDecay(lr, decay, alpha=float(t["final_lr_fraction"]))
    batches = int(t.get("grad_accumulation", 1))
    return PerUpdate(base, batches) if batches > 1 else base
