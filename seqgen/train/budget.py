"""A schedule fitted to a wall-clock budget: ``train.fit_schedule: true`` with ``--max-minutes M``.

A cosine planned over ``train.steps`` only ends inside a budget of minutes on the host it was sized on: the
project's hosts differ by 2x from one day to the next, and a schedule cut off at a high learning rate, or
ending early, costs held-out bits (the byte LM's 20-minute table: 0.06 bits/byte).  With ``fit_schedule``
the loop first times the compiled training step on a throwaway copy of the model (:func:`time_compiled_step`,
one batch of the run's own pipeline held in memory), then plans ``train.steps`` as the steps that fit in the
minutes left at that rate (times :data:`MARGIN`: a plan a little long costs less than one too short), and
builds the real model from the seed as a run with that ``train.steps`` would.  The probe's minutes count
against the budget.  The steps chosen go to ``config.yaml`` and ``run.json`` (``schedule_fit``), so the run
can be repeated bit for bit with ``--set train.steps=N`` and resumes with them.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

#: the fraction of the probe's rate the plan counts on.  The two errors cost unequally: a plan a little long
#: is cut by the deadline where the cosine is already near its floor (10% too long stops it at a learning
#: rate of 0.08 of the peak instead of 0.05), while a plan too short leaves the budget's end unused.  The
#: first margin, 0.93 (for the loop's pipeline and callbacks, 1-14% of the step in bench/README.md), left
#: 7% of a 20-minute byte-LM run idle; the loop ran at 101% of the probe's rate there (byte-LM README,
#: "Second table"), so the plan now counts on the whole rate.
MARGIN = 1.0
#: timed steps of the probe (after its first window, which compiles)
PROBE_STEPS = 10


def time_compiled_step(model, batch, steps: int, window: int) -> tuple[float, list[float]]:
    """Steps/s of ``fit`` on one batch held in memory, repeated: one ``fit`` of epochs of ``window`` steps,
    as the loop runs it, and the median of its epochs after the first (which holds the compilation).
    The batch reaches ``fit`` as the loop's do, through grain (on TensorFlow Keras reads it
    through a generator), so what this and the loop's rate differ by is the pipeline's data work and the
    callbacks.  (A ``fit`` per window would not do: each call costs a new input pipeline, on TensorFlow
    about as much as the steps of a byte-LM window.)"""
    import grain
    import keras

    ends = []

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            ends.append(time.perf_counter())

    epochs = 1 + max(1, steps // window)  # the first: compilation
    ds = grain.MapDataset.range(1 << 30).map(lambda i: batch).to_iter_dataset()
    model.fit(ds, steps_per_epoch=window, epochs=epochs, verbose=0, shuffle=False, callbacks=[EpochClock()])
    rates = [window / (b - a) for a, b in zip(ends, ends[1:])]
    return statistics.median(rates), rates


def held_batch(batches) -> tuple:
    """The first batch of a pipeline, its arrays as numpy, to hold in memory for :func:`time_compiled_step`."""
    return tuple(np.asarray(b) if not isinstance(b, (tuple, list, dict)) else b for b in next(iter(batches)))


def planned_steps(rate: float, seconds_left: float, accumulation: int = 1, margin: float = MARGIN) -> int:
    """Updates that fit in ``seconds_left`` at ``rate`` fits of a batch per second (``accumulation``
    batches per update), counting on ``margin`` of that rate; at least 1."""
    if rate <= 0 or seconds_left <= 0:
        return 1
    return max(1, int(rate / max(1, int(accumulation)) * seconds_left * margin))


def fit_schedule(loop, build_model, compile_model, log) -> dict:
    """Time the training step of a throwaway model and return what the plan rests on:
    ``{"steps", "probe_steps_per_sec", "probe_seconds", "minutes", "seconds_left", "margin"}``.

    ``build_model()`` makes a fresh model from the current random state, ``compile_model(model)`` compiles
    it as the run will; ``loop`` gives the deadline (``t0``, ``max_minutes``), the batches and the
    accumulation.  The caller re-seeds before building the real model."""
    t_probe = time.time()
    model = build_model()
    compile_model(model)
    real = loop.model
    loop.model = model  # the task's pipeline reads the model (its receptive field, its vocabulary)
    try:
        accumulation = loop.accumulation()
        batch = held_batch(loop._local_dataset(0, int(loop.cfg["data"]["batch_size"]), 0))
    finally:
        loop.model = real
    window = 5
    rate, _ = time_compiled_step(model, batch, PROBE_STEPS, window)
    del model
    seconds_left = loop.t0 + 60.0 * float(loop.max_minutes) - time.time()
    steps = planned_steps(rate, seconds_left, accumulation)
    fit = {"steps": steps, "probe_steps_per_sec": rate / accumulation, "probe_seconds": time.time() - t_probe,
           "minutes": float(loop.max_minutes), "seconds_left": seconds_left, "margin": MARGIN}
    log(f"schedule fitted to --max-minutes {float(loop.max_minutes):g}: the step ran {rate / accumulation:.3f} "
        f"steps/s alone ({fit['probe_seconds']:.0f} s to time it); train.steps = {steps} "
        f"({MARGIN:.0%} of that rate over the {seconds_left / 60:.1f} minutes left)")
    return fit
