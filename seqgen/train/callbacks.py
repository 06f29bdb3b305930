"""The Keras callbacks a training run is made of, each with one job, sharing one :class:`TrainState`.

In the order ``fit`` calls them after every batch:

* :class:`StepCounter`: the global step (the optimizer's counter after a resume or restart),
  the progress bar, and the ``metrics.jsonl`` records of repeated steps dropped on resume;
* :class:`NanGuard`: a non-finite loss stops the run or rolls it back to the last
  checkpoint (``train.on_nan``); nothing else runs for that batch;
* :class:`MetricsLogger`: the mean loss of every ``train.log_every`` steps (and the loop's
  extra ``log_keys``) to ``metrics.jsonl``, TensorBoard and the progress bar;
* :class:`Checkpointer`: a checkpoint every ``train.checkpoint_every`` steps, never of
  non-finite weights, and the last one when training ends;
* :class:`Validator`: every ``train.valid_every`` steps, the loop's :meth:`validate` hook
  (the task's held-out figure, with audio summaries for vocoders; distillation's health check);
* :class:`StopAgreement`: ``max_steps``, ``--max-minutes``, SIGTERM / Ctrl-C and, in a
  multi-worker job, a collective every ``log_every`` steps so that every worker stops at the
  same step.

What they share is declared on :class:`TrainState` (the step, the last checkpoint, the summary,
the writer of records); what a kind of run changes is declared on the loop
(:class:`seqgen.train.loop.TrainLoop`: ``batch_loss``, ``loss_fields``, ``log_keys``,
``validate``).

Host syncs: on one device, ``fit`` runs in epochs of ``window`` steps (the greatest common divisor
of ``log_every``, ``checkpoint_every`` and ``valid_every``) and the callbacks act at the end of each
epoch, on the means Keras keeps over it: nothing reads a loss back between window ends, and the
callbacks are async-safe in between, so JAX's asynchronous dispatch is not blocked (TensorFlow's
backend is not thread-safe: Keras converts each batch's logs there anyway).  Every step number
stays exact: windows end on multiples of ``window``.  Under a ``--strategy`` the window is one
step (Keras' BackupAndRestore counts epochs; one epoch keeps its restore exact).
"""
from __future__ import annotations

import json
import os
import pathlib
import sys
import time

import numpy as np

from seqgen.errors import SeqgenError

LN2 = float(np.log(2.0))


class TrainState:
    """What the callbacks of one run share."""

    def __init__(self, loop, stop=None):
        from seqgen.utils.progress import progress

        self.loop = loop
        self.t = loop.cfg["train"]
        self.step = loop.step0
        self.last_ckpt = loop.step0
        self.summary: dict = {}
        self.stopped_by: str | None = None
        self.last_loss = float("nan")
        self.loss = float("nan")  # this batch's loss (NanGuard reads it for everyone)
        self.skip_window = False  # set by NanGuard: the other callbacks leave this window alone
        self.window = 1          # steps in the window now running (set by the loop before each fit)
        self.per_step = True     # True: act after every batch; False: after every epoch of `window` steps
        self.stop = stop         # the signal handler's flag (train.loop._Stop), set by the loop
        self.metrics_path = loop.run.path / "metrics.jsonl"
        # only the chief of a multi-worker job writes to the run directory
        self.chief = loop.dist.worker.is_chief
        self.workers = loop.dist.worker.count
        self.bar = progress(total=loop.max_steps, desc="train", unit="step",
                            disable=loop.quiet or not self.chief or os.environ.get("SEQGEN_PROGRESS", "1") == "0")
        self.bar.update(self.step)

    def every(self, key: str) -> bool:
        """True at the steps that are multiples of ``train.KEY`` (never when it is 0)."""
        n = int(self.t[key])
        return bool(n) and self.step % n == 0

    def write(self, record: dict) -> None:
        """One line of ``metrics.jsonl`` (the chief's only)."""
        if self.chief:
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps(record) + "\n")

    def note(self, line: str) -> None:
        """A line on stderr that does not break the progress bar."""
        self.bar.write(line, file=sys.stderr)

    def log(self, msg: str) -> None:
        self.loop._log(msg)


def _copy_state(dst_model, src_model):
    for d, s in zip(dst_model.weights, src_model.weights):
        d.assign(s)
    if dst_model.optimizer is not None and src_model.optimizer is not None:
        for d, s in zip(dst_model.optimizer.variables, src_model.optimizer.variables):
            d.assign(s)


def _callback_classes():
    import keras

    class StateCallback(keras.callbacks.Callback):
        """Acts at the end of each window: every batch (per_step) or every epoch of ``window`` steps."""

        def __init__(self, state: TrainState):
            super().__init__()
            self.state = state

        @property
        def async_safe(self):
            # between window ends the batch hook does nothing, so Keras may dispatch it asynchronously
            return not self.state.per_step

        def on_train_batch_end(self, batch, logs=None):
            if self.state.per_step:
                self.on_window_end(1, logs)

        def on_epoch_end(self, epoch, logs=None):
            if not self.state.per_step:
                self.on_window_end(self.state.window, logs)

        def on_window_end(self, steps, logs):
            """``steps`` steps have run; ``logs``: Keras' means over them."""

    class StepCounter(StateCallback):
        def on_train_begin(self, logs=None):
            s = self.state
            # the optimizer's step counter is the truth (a BackupAndRestore restore has just set it)
            step = int(np.asarray(self.model.optimizer.iterations))
            if step != s.step:
                s.bar.update(step - s.step)
                s.step = s.last_ckpt = step
            self._forget_records_after(step)

        def _forget_records_after(self, step):
            """A resumed run replays the steps after its checkpoint (or backup): their old records go,
            so metrics.jsonl and the curves have one record per step."""
            s = self.state
            if not s.chief or not s.metrics_path.is_file():
                return
            lines = s.metrics_path.read_text().splitlines()
            kept = []
            for line in lines:
                try:
                    if int(json.loads(line)["step"]) > step:
                        continue
                except (ValueError, KeyError, TypeError):
                    pass  # a torn last line of a killed run, or not ours: leave it to the readers
                kept.append(line)
            if len(kept) != len(lines):
                from seqgen.runs import atomic_write

                atomic_write(s.metrics_path, "".join(line + "\n" for line in kept))
                s.log(f"metrics.jsonl: dropped {len(lines) - len(kept)} record(s) after step {step}, "
                      f"the steps this run repeats")

        def on_window_end(self, steps, logs):
            self.state.step += steps
            self.state.bar.update(steps)

    class NanGuard(StateCallback):
        def on_window_end(self, steps, logs):
            s = self.state
            s.skip_window = False
            s.loss = loss = s.loop.batch_loss(logs)
            if np.isfinite(loss):
                return
            s.skip_window = True
            where = f"step {s.step}" if steps == 1 else f"steps {s.step - steps + 1}-{s.step}"
            if s.t["on_nan"] == "stop":
                s.log(f"non-finite loss at {where}; stopping (train.on_nan: stop); "
                      f"the last checkpoint (step {s.last_ckpt}) is intact")
                self.model.stop_training = True
                s.stopped_by = "nan"
                return
            self._rollback()

        def _rollback(self):
            s = self.state
            ckpts = s.loop.run.checkpoints()
            if not ckpts:
                s.log("non-finite loss before any checkpoint; stopping")
                self.model.stop_training = True
                s.stopped_by = "nan"
                return
            src, step, path = s.loop.run.load_model(use_ema=False)
            _copy_state(self.model, src)
            s.step = step
            s.log(f"non-finite loss; rolled back to {path.name} (step {step}) and skipping ahead")

    class MetricsLogger(StateCallback):
        """Per-window means over ``train.log_every`` steps.  Keras reports its metrics as means since
        they were last reset: it resets them when an epoch begins, and per step this resets them
        after every batch."""

        def __init__(self, state):
            super().__init__(state)
            self.sums, self.steps = {}, 0
            self.t_window = time.time()

        def on_window_end(self, steps, logs):
            s = self.state
            values = {"loss": s.loss, **{k: float(logs[k]) for k in s.loop.log_keys if logs and k in logs}}
            if s.per_step:
                self.model.reset_metrics()
            if s.skip_window:
                return
            s.last_loss = s.loss
            for key, value in values.items():
                self.sums[key] = self.sums.get(key, 0.0) + value * steps
            self.steps += steps
            if s.every("log_every"):
                self.flush()

        def flush(self):
            """Record the window's mean loss (nothing when the window is empty)."""
            s = self.state
            if not self.steps:
                return
            now = time.time()
            extra = {k: v / self.steps for k, v in self.sums.items()}
            loss = extra.pop("loss")
            sps = self.steps / max(now - self.t_window, 1e-9)
            fields = s.loop.loss_fields(loss)
            rec = {"step": s.step, "loss": loss, **fields, **extra, "lr": self._lr(),
                   "steps_per_sec": sps, "time": now - s.loop.t0}
            s.write(rec)
            w = s.loop.writer
            w.scalar("train/loss_nats", loss, s.step)
            for key, value in {**fields, **extra}.items():
                w.scalar(f"train/{key}", value, s.step)
            w.scalar("train/learning_rate", rec["lr"], s.step)
            w.scalar("train/steps_per_sec", sps, s.step)
            s.bar.set_postfix(loss=f"{loss:.3f}", bits=f"{loss / LN2:.3f}", refresh=False)
            self.sums, self.steps, self.t_window = {}, 0, now

        def _lr(self):
            opt = self.model.optimizer
            try:
                return float(np.asarray(opt.learning_rate))
            except Exception:
                return float(np.asarray(opt._get_current_learning_rate()))

    class Checkpointer(StateCallback):
        def on_window_end(self, steps, logs):
            if not self.state.skip_window and self.state.every("checkpoint_every"):
                self.save()

        def save(self, why=""):
            s = self.state
            if not s.chief:
                if s.loop.dist.collective_validation:
                    # Keras' save places values collectively under a distribution of several processes
                    # (a save on the chief alone fails in JAX's check that they agree): every process
                    # saves, the others to a file they then delete
                    import tempfile

                    with tempfile.TemporaryDirectory() as tmp:
                        self.model.save(pathlib.Path(tmp) / "peer.keras")
                s.last_ckpt = s.step
                return
            weights_ok = all(np.all(np.isfinite(np.asarray(w))) for w in self.model.trainable_weights[:4])
            if not weights_ok:
                s.log(f"not checkpointing step {s.step}: non-finite weights")
                return
            p = s.loop.run.save_checkpoint(self.model, s.step, keep=int(s.t["keep_checkpoints"]),
                                          keep_every=int(s.t.get("keep_checkpoint_every", 0)))
            if p is not None:
                s.last_ckpt = s.step
                if why:
                    s.log(f"checkpoint {p.name} ({why})")

    class Validator(StateCallback):
        def on_window_end(self, steps, logs):
            if not self.state.skip_window and self.state.every("valid_every"):
                self.validate()

        def validate(self):
            s = self.state
            if not s.chief and not s.loop.dist.collective_validation:
                return
            try:
                s.loop.validate(s, self.model)
            except SeqgenError as e:
                s.log(f"validation skipped: {e}")

    class StopAgreement(StateCallback):
        def __init__(self, state):
            super().__init__(state)
            loop = state.loop
            self.deadline = loop.t0 + 60 * loop.max_minutes if loop.max_minutes else None

        def on_window_end(self, steps, logs):
            s = self.state
            if s.skip_window:
                return
            if s.step >= s.loop.max_steps:
                self.model.stop_training = True
                return
            why = s.stop.requested if s.stop is not None else None
            if why is None and self.deadline is not None and time.time() >= self.deadline:
                why = "max_minutes"
            if s.workers > 1:
                # the workers must stop at the same step: they agree (a collective) every log_every steps
                if not s.every("log_every") or not s.loop.dist.agree(why is not None):
                    return
                why = why or "another worker stopping"
            if why is not None:
                s.stopped_by = why
                self.model.stop_training = True

    return StepCounter, NanGuard, MetricsLogger, Checkpointer, Validator, StopAgreement


class TrainCallbacks:
    """The callbacks of one run, in order, and what happens when ``fit`` returns (:meth:`finish`)."""

    def __init__(self, loop, stop=None):
        self.state = TrainState(loop, stop)
        counter, guard, logger, ckpt, validator, agreement = _callback_classes()
        self.logger, self.checkpointer, self.validator = logger(self.state), ckpt(self.state), validator(self.state)
        self.callbacks = [counter(self.state), guard(self.state), self.logger, self.checkpointer, self.validator,
                          agreement(self.state)]

    @property
    def step(self) -> int:
        return self.state.step

    @property
    def summary(self) -> dict:
        return self.state.summary

    def finish(self) -> dict:
        """The last window's record, the last checkpoint and validation, ``loss.png`` and one summary line."""
        s, loop = self.state, self.state.loop
        self.logger.flush()
        why = s.stopped_by or "end of run"
        if s.stopped_by != "nan" and s.step > s.last_ckpt:
            self.checkpointer.save(why)
        if int(s.t["valid_every"]) and s.summary.get("valid_step") != s.step and s.stopped_by != "nan":
            self.validator.validate()
        s.bar.close()
        loop.writer.flush()
        if s.chief:
            try:
                loop.curves_png(s.metrics_path, loop.run.path / "loss.png")
            except Exception as e:
                s.log(f"loss.png skipped ({e})")
        s.summary.update({"step": s.step, "last_loss": s.last_loss, "stopped_by": why,
                          "minutes": (time.time() - loop.t0) / 60})
        unit = loop.unit
        s.log(f"stopped at step {s.step} ({why}); last loss {loop.describe_loss(s.last_loss)}"
              + (f"; valid {s.summary[f'valid_bits_per_{unit}']:.3f} bits/{unit}"
                 if f"valid_bits_per_{unit}" in s.summary else ""))
        return s.summary
