"""`seqgen train`: Keras fit on the input pipeline (grain and numpy) with checkpoints and resume.

* The optimizer is Adam with a warm-up + cosine (or exponential, constant)
  schedule, global-norm gradient clipping and optional EMA weights.
* Checkpoints (model + optimizer, so the step counter and Adam moments
  resume exactly) every ``train.checkpoint_every`` steps, when training ends,
  and on Ctrl-C / SIGTERM; a SIGKILL loses only the steps since the last one.
* The data stream after a resume is re-seeded from ``(seed, step)``: same
  distribution, no replay of the batches already seen.
* A non-finite loss never reaches a checkpoint: with ``train.on_nan: skip``
  the model and optimizer roll back to the last checkpoint and training goes
  on with the next batches; with ``stop`` training ends with a message.
* TensorBoard (``RUN/tb``): loss, bits/sample (audio) or bits/byte (text),
  learning rate, steps/s, validation NLL, generated audio and mel images
  (vocoders); ``RUN/loss.png`` too.
* The task of the model type's data kind (:mod:`seqgen.tasks`) gives what
  ``run.json`` records about the data, the training batches and the
  held-out figure validation logs (bits per sample or per byte; vocoders also
  bits per 16-bit linear sample).
"""
from __future__ import annotations

import math
import pathlib
import signal
import sys
import time


from seqgen import config as C
from seqgen.errors import ConfigError
from seqgen.runs import Run, RunError
from seqgen.utils.tf_import import tensorflow

LN2 = math.log(2.0)


def make_optimizer(t: dict):
    import keras

    from seqgen.train.schedules import make_schedule

    kwargs = {}
    if t["clip_norm"]:
        kwargs["global_clipnorm"] = float(t["clip_norm"])
    if t["ema"]:
        kwargs.update(use_ema=True, ema_momentum=float(t["ema"]) ** (1.0 / max(1, int(t.get("grad_accumulation", 1)))))
    if int(t.get("grad_accumulation", 1)) > 1:
        # Keras sums the gradients of N batches and updates once; ``optimizer.iterations`` counts updates
        # (seqgen's steps, Adam's bias correction; the schedule through schedules.PerUpdate), clipping and
        # Adam see the mean gradient of the N batches.  The EMA of the weights moves on every batch: its
        # momentum is taken to the N-th root, so ``train.ema`` keeps its meaning per step
        kwargs["gradient_accumulation_steps"] = int(t["grad_accumulation"])
    cls = keras.optimizers.AdamW if t["weight_decay"] else keras.optimizers.Adam
    if t["weight_decay"]:
        kwargs["weight_decay"] = float(t["weight_decay"])
    return cls(learning_rate=make_schedule(t), beta_2=float(t.get("adam_beta2", 0.999)), **kwargs)


class _Stop:
    """Signal handling: first Ctrl-C / SIGTERM asks for a checkpoint and a clean stop."""

    def __init__(self):
        self.requested = None
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame):
        if self.requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name
        print(f"\nseqgen train: {self.requested} received; checkpointing and stopping at the end of this window",
              file=sys.stderr)

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


class TrainLoop:
    """Everything a training run does around ``model.fit``.

    Subclasses (:class:`seqgen.train.distillation.DistillLoop`) change what is built and
    logged through the hooks below; the defaults are what `seqgen train` does.
    """

    command = "train"        # the CLI command, in log lines
    log_keys = ()            # extra per-batch values of the fit logs, averaged per log window

    def __init__(self, config_path, data_dir, out_dir, max_steps=None, max_minutes=None, overrides=(),
                 resume=False, quiet=False, strategy="default"):
        self.t0 = time.time()
        self.run = Run(out_dir)
        self.data_dir = pathlib.Path(data_dir) if data_dir else None
        self.max_minutes = max_minutes
        self.quiet = quiet
        self.strategy_name = strategy
        self.backup_dir = self.run.path / "backup"
        self.backup = None
        if strategy in ("mirrored", "multi-worker"):  # tf.distribute jobs restart from RUN/backup
            from seqgen.train.strategy import read_backup

            self.backup = read_backup(self.backup_dir)
            if self.backup is not None and not resume:
                resume = True  # a restarted job: go on from its backup
        self.resume = resume
        if resume and self.run.exists():
            saved = self.run.config()
            cfg_raw = C.apply_overrides(saved, overrides)
            self.cfg = C.validate(cfg_raw, where=f"config {self.run.path / 'config.yaml'}")
            if config_path is not None:
                given = C.load(config_path, overrides)
                if given["model"] != self.cfg["model"]:
                    raise ConfigError(f"--resume: {config_path} describes a different model than the one in "
                                      f"{self.run.path}/config.yaml; resume without changing model.*")
                self.cfg = given
            if self.data_dir is None:
                self.data_dir = pathlib.Path(self.run.info()["data"]["data_dir"])
        else:
            if config_path is None:
                raise ConfigError("a config file is needed (e.g. recipes/ljspeech_vocoder/tiny.yaml)")
            if self.run.checkpoints():
                raise RunError(f"{self.run.path}: already has checkpoints; add --resume to continue it, "
                               f"or choose another --out")
            self.cfg = C.load(config_path, overrides)
            if self.data_dir is None:
                raise ConfigError("--data DATA is needed (a folder made by `seqgen prepare`)")
        t = self.cfg["train"]
        self.schedule_fit = None
        if self.resume and self.run.exists() and t["fit_schedule"]:
            # the steps the run's schedule was fitted to (a config file given again still says the old ones)
            self.schedule_fit = self.run.info().get("schedule_fit")
            if self.schedule_fit:
                t["steps"] = int(self.schedule_fit["steps"])
        # with no budget to fit, the schedule is the one train.steps gives (a preset that fits itself to
        # --max-minutes still runs without it)
        self.fit_to_budget = bool(t["fit_schedule"] and self.schedule_fit is None and max_minutes)
        self.max_steps_given = max_steps is not None
        self.max_steps = int(max_steps) if max_steps is not None else int(t["steps"])
        self._check_model_type(self.cfg["model"]["type"])
        self.dist = None  # the Distribution, made first thing in run_training (before any TF op)

    # ------------------------------------------------------------------ hooks
    def _check_model_type(self, model_type):
        from seqgen.models.registry import STUDENT_TYPES

        if model_type in STUDENT_TYPES:
            raise ConfigError(f"model.type {model_type} is a student: train it from a teacher run with "
                              f"`seqgen distill CONFIG --teacher RUN --data DATA --out RUN2`")

    def _extra_info(self) -> dict:
        """More entries for run.json."""
        return {}

    def _setup_model(self, model) -> None:
        """Called with the model built or resumed, before training."""

    def batch_loss(self, logs) -> float:
        return float(logs.get("loss", float("nan"))) if logs else float("nan")

    @property
    def unit(self) -> str:
        """What the held-out figure counts bits per: the task's unit."""
        return self.task.unit

    def loss_fields(self, loss) -> dict:
        """What a log window records about its mean loss (metrics.jsonl and TensorBoard train/*)."""
        return {f"bits_per_{self.unit}": loss / LN2}

    def describe_loss(self, loss) -> str:
        return f"{loss:.4f} nats = {loss / LN2:.3f} bits/{self.unit}"

    def validate(self, state, model) -> None:
        """Validation every ``train.valid_every`` steps (chief only): the task's held-out figure
        to metrics.jsonl, TensorBoard and stderr, then the task's own summaries (audio for vocoders)."""
        unit = self.unit
        bits, count, extra = self.task.valid_bits(model, self.data_dir, self.cfg["data"])
        state.summary[f"valid_bits_per_{unit}"] = bits
        state.summary.update(extra)
        state.summary["valid_step"] = state.step
        state.write({"step": state.step, f"valid_bits_per_{unit}": bits, **extra, "time": time.time() - self.t0})
        self.writer.scalar(f"valid/bits_per_{unit}", bits, state.step)
        for name, value in extra.items():
            self.writer.scalar("valid/" + name.removeprefix("valid_"), value, state.step)
        if self.dist.worker.is_chief:
            state.note(f"step {state.step}: valid {bits:.3f} bits/{unit} ({count} {unit}s)")
        try:
            self.task.after_validation(model, self, state.step)
        except Exception as e:  # never let a summary kill training
            self._log(f"validation summary skipped ({type(e).__name__}: {e})")

    def curves_png(self, metrics_path, png_path):
        from seqgen.utils import plots

        return plots.loss_curves_png(metrics_path, png_path)

    # ------------------------------------------------------------------ setup
    def _build(self):
        import keras

        from seqgen.tasks.base import task_for_model_type
        from seqgen.utils import backend
        from seqgen.utils.seeding import set_seed

        backend.keep_tensorflow_out()

        model_type = self.cfg["model"]["type"]
        self.task = task_for_model_type(model_type)
        self.data_info = self.task.data_info(self.data_dir)
        set_seed(int(self.cfg["train"]["seed"]))
        chief = self.dist.worker.is_chief
        # XLA cannot compile the replicas' collectives: under a strategy Distribution.prepare compiles
        # each replica's forward and backward pass instead of Keras' whole step
        jit = bool(self.cfg["train"]["jit_compile"]) and not self.dist.distributed
        with self.dist.scope():
            if self.resume and self.run.checkpoints():
                model, step, path = self.run.load_model(use_ema=False, precision=self.cfg["train"]["precision"])
                model.jit_compile = jit
                if self.backup is None:
                    self._log(f"resumed from {path.name} at step {step}")
            else:
                if self.resume and self.backup is None:
                    self._log(f"--resume: no checkpoint in {self.run.path} yet; starting from step 0")
                if self.fit_to_budget:
                    self._fit_schedule(jit)
                    set_seed(int(self.cfg["train"]["seed"]))  # the real model: as a run with these steps builds it
                elif self.cfg["train"]["fit_schedule"] and self.schedule_fit is None:
                    self._log(f"train.fit_schedule: no --max-minutes to fit the schedule to, so train.steps = "
                              f"{self.cfg['train']['steps']} stands")
                model = self._build_model_under_policy()
                model.compile(optimizer=make_optimizer(self.cfg["train"]), jit_compile=jit)
                step = 0
                if chief and self.backup is None:
                    info = {"model_type": model_type, "data": self.data_info, "seqgen_version": _version(),
                            **({"schedule_fit": self.schedule_fit} if self.schedule_fit else {}),
                            **self._extra_info()}
                    self.run.write_info(info)
                    C.dump(self.cfg, self.run.path / "config.yaml")
        if self.backup is not None:
            step = self.backup["step"]  # BackupAndRestore restores it when fit begins
            self._log(f"restarting from the backup at step {step} ({self.backup_dir})")
        self._setup_model(model)
        self.model, self.step0 = model, step
        if self.dist.name != "default":
            self._log(self.dist.describe())
        if self.dist.distributed:
            self.dist.prepare(model, next(iter(self._local_dataset(step, 1, 0))),
                              jit_compile=bool(self.cfg["train"]["jit_compile"]))
        if self.accumulation() > 1:
            self._log(f"gradient accumulation: {self.accumulation()} batches of {self.cfg['data']['batch_size']} "
                      f"per step")
        if hasattr(model, "summary_text"):  # layers, receptive field, parameters
            sr = self.data_info.get("sample_rate")
            self._log(model.summary_text(sr) if sr else model.summary_text())
        from seqgen.utils.summary import NoopWriter, SummaryWriter

        self.writer = SummaryWriter(self.run.path / "tb") if chief else NoopWriter()

    def _fit_schedule(self, jit) -> None:
        """``train.fit_schedule``: time the step on a throwaway model, then plan ``train.steps`` (and the
        loop's end, unless --max-steps gave one) to end at the deadline (:mod:`seqgen.train.budget`)."""
        from seqgen.train.budget import fit_schedule

        if self.dist.distributed:
            raise ConfigError(f"train.fit_schedule is not supported with --strategy {self.strategy_name}; "
                              f"set train.steps yourself")

        def compile_model(model):  # as _build compiles and sets up the real one
            model.compile(optimizer=make_optimizer(self.cfg["train"]), jit_compile=jit)
            self._setup_model(model)

        self.model = None
        self.schedule_fit = fit_schedule(self, self._build_model_under_policy, compile_model, self._log)
        self.cfg["train"]["steps"] = self.schedule_fit["steps"]
        if not self.max_steps_given:
            self.max_steps = self.schedule_fit["steps"]

    def _build_model_under_policy(self):
        """The model, built under ``train.precision``'s dtype policy (the global one is restored afterwards).
        Its weights stay float32; the distributions cast their parameters to float32, so losses do too.
        Resuming reloads it under the same policy; sampling and evaluation load it in float32."""
        from seqgen.utils.backend import dtype_policy

        with dtype_policy(self.cfg["train"]["precision"]):
            return self.task.build_model(self.cfg["model"], self.data_info)

    def data_seed(self, step, pipeline=0) -> int:
        """The seed of an input pipeline's stream from ``step`` on: same distribution after a resume,
        no replay of the batches already seen; one stream per worker."""
        return int(self.cfg["train"]["seed"]) * 1_000_003 + int(step) + 1_000_000_007 * int(pipeline)

    def _local_dataset(self, step, batch_size, pipeline):
        """One input pipeline's batches of ``batch_size``, seeded by ``(train.seed, step, pipeline)``."""
        d = dict(self.cfg["data"], batch_size=int(batch_size))
        return self.task.train_dataset(self.model, self.data_dir, d, self.data_seed(step, pipeline),
                                       shard=(int(pipeline), self.dist.worker.count))

    def _dataset(self, step):
        """The training batches from ``step`` on: global batches of ``data.batch_size``, split over the
        replicas (see :mod:`seqgen.train.strategy`)."""
        return self.dist.dataset(lambda batch, pipeline: self._local_dataset(step, batch, pipeline),
                                 int(self.cfg["data"]["batch_size"]))

    # ------------------------------------------------------------------ run
    def run_training(self) -> dict:
        from seqgen.train.strategy import Distribution

        self.dist = Distribution(self.strategy_name)
        self.dist.per_replica_batch(int(self.cfg["data"]["batch_size"]))  # a global batch that splits, or one line
        if self.dist.distributed and int(self.cfg["train"]["grad_accumulation"]) > 1:
            raise ConfigError(f"train.grad_accumulation is not supported with --strategy {self.strategy_name} "
                              f"(set it to 1, or raise data.batch_size: the replicas share the batch)")
        if self.dist.worker.is_chief:
            self.run.lock()
        else:  # workers of one job share the run directory; each holds its own lock
            self.run.lock(name=f".lock-worker-{self.dist.worker.index}")
        try:
            self._build()
            summary = self._fit()
            # a process that exits ends the job's runtime: wait until every process is done (the chief's
            # last checkpoint and validation)
            self.dist.barrier("seqgen-train-end")
            return summary
        finally:
            self.run.unlock()

    def _fit(self):
        step = self.step0
        if step >= self.max_steps:
            self._log(f"already at step {step} >= {self.max_steps}; nothing to do")
            return {"step": step}
        from seqgen.train.callbacks import TrainCallbacks

        stop = _Stop()
        cb = TrainCallbacks(self, stop)
        callbacks = list(cb.callbacks)
        if self.dist.distributed:
            from seqgen.train.strategy import backup_callback

            t = self.cfg["train"]
            every = int(t.get("backup_every") or t["checkpoint_every"])
            callbacks.insert(0, backup_callback(self.backup_dir, every, write=self.dist.worker.is_chief))
        with stop:
            try:
                self._run_fits(cb, callbacks, step)
            except Exception as e:
                if self.dist.worker.count > 1:
                    self._worker_lost(e, cb)
                raise
        cb.finish()
        if cb.step >= self.max_steps and self.dist.worker.is_chief and self.backup_dir.is_dir():
            import shutil

            shutil.rmtree(self.backup_dir, ignore_errors=True)  # the job is done: no restart to serve
        return cb.summary

    def window(self) -> int:
        """Steps per epoch of ``fit`` on one device: the callbacks act once per window, and every step
        they act at (log, checkpoint, validation) is a multiple of it.  One step under a strategy."""
        if self.dist.distributed:
            return 1
        t = self.cfg["train"]
        return math.gcd(*(int(t[k]) for k in ("log_every", "checkpoint_every", "valid_every") if int(t[k])))

    def accumulation(self) -> int:
        """Batches per step: the optimizer's own (a resumed run keeps the one it was trained with)."""
        return int(getattr(self.model.optimizer, "gradient_accumulation_steps", None) or 1)

    def _run_fits(self, cb, callbacks, step):
        """``fit`` from ``step`` to ``max_steps``: epochs of one window on one device (a first short
        epoch up to the next multiple of the window, a last short one to ``max_steps``), one epoch
        of every step under a strategy.  A NaN rollback spends steps without advancing: training
        goes on from where it left the run until ``max_steps``."""
        state, n = cb.state, self.window()
        state.per_step = self.dist.distributed
        fits = 0
        while step < self.max_steps and state.stopped_by is None:
            fits += 1
            if fits > 3 + self.max_steps // n:  # rollbacks that never get further: the NaN keeps coming
                self._log(f"giving up at step {cb.step}: {fits - 1} rounds of rollbacks did not reach step "
                          f"{self.max_steps}")
                break
            if state.per_step:
                epochs, size = 1, self.max_steps - step
            elif step % n:
                epochs, size = 1, min(n - step % n, self.max_steps - step)
            elif self.max_steps - step >= n:
                epochs, size = (self.max_steps - step) // n, n
            else:
                epochs, size = 1, self.max_steps - step
            state.window = size
            # with gradient accumulation an epoch of ``size`` steps reads ``size x N`` batches, and ends
            # on an update (no half-filled accumulator is ever checkpointed)
            self.model.fit(self._dataset(step), epochs=epochs, steps_per_epoch=size * self.accumulation(),
                           callbacks=callbacks, verbose=0, shuffle=False)
            if self.dist.distributed:
                break
            step = cb.step

    def _worker_lost(self, error, cb):
        """A multi-worker job whose peer died: one line saying how to go on."""
        if not self.dist.distributed:  # one device: no peer to lose (and no TensorFlow to ask)
            return
        tf = tensorflow()
        if not isinstance(error, (tf.errors.UnavailableError, tf.errors.InternalError, tf.errors.AbortedError,
                                  tf.errors.CancelledError, tf.errors.DeadlineExceededError)):
            return
        from seqgen.train.strategy import WorkerLost, read_backup

        try:
            meta = read_backup(self.backup_dir)
        except RunError:
            meta = None
        where = f"the backup at step {meta['step']}" if meta else "the newest checkpoint"
        first = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
        cb.state.bar.close()
        raise WorkerLost(f"{self.dist.worker} lost its peers at step {cb.step} ({type(error).__name__}: {first}); "
                         f"restart the job (the same command on every worker) to resume from {where}") from None

    def _log(self, msg):
        if not self.quiet:
            print(f"seqgen {self.command}: {msg}", file=sys.stderr)


def _version():
    from seqgen import __version__

    return __version__


def train(config_path, data_dir, out_dir, max_steps=None, max_minutes=None, overrides=(), resume=False,
          quiet=False, strategy="default") -> dict:
    loop = TrainLoop(config_path, data_dir, out_dir, max_steps, max_minutes, overrides, resume, quiet,
                     strategy=strategy)
    return loop.run_training()
