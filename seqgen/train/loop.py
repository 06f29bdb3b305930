"""`seqgen train`: Keras fit on a tf.data pipeline with checkpoints and resume.

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
* The data kind of the model type picks the pipeline: ``vocoder`` (audio
  windows), ``text`` (random byte windows of ``data.window`` bytes for a byte
  LM; validation on consecutive windows) or ``pairs`` (translation pairs of at
  most ``data.window`` bytes a side, length-bucketed batches of
  ``data.batch_size``; validation = teacher-forced bits per target byte).
"""
from __future__ import annotations

import json
import math
import os
import pathlib
import signal
import sys
import time

import numpy as np

from seqgen import config as C
from seqgen.errors import ConfigError, SeqgenError
from seqgen.runs import Run, RunError
from seqgen.utils.tf_import import tensorflow

LN2 = math.log(2.0)


def make_schedule(t: dict):
    import keras

    lr = float(t["learning_rate"])
    if t["schedule"] == "constant":
        return lr
    if t["schedule"] == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(lr, int(t["decay_steps"]), float(t["decay_rate"]))
    warm = int(t["warmup_steps"])
    decay = max(1, int(t["steps"]) - warm)
    if warm:
        return keras.optimizers.schedules.CosineDecay(0.0, decay, alpha=float(t["final_lr_fraction"]),
                                                      warmup_target=lr, warmup_steps=warm)
    return keras.optimizers.schedules.CosineDecay(lr, decay, alpha=float(t["final_lr_fraction"]))


def make_optimizer(t: dict):
    import keras

    kwargs = {}
    if t["clip_norm"]:
        kwargs["global_clipnorm"] = float(t["clip_norm"])
    if t["ema"]:
        kwargs.update(use_ema=True, ema_momentum=float(t["ema"]))
    cls = keras.optimizers.AdamW if t["weight_decay"] else keras.optimizers.Adam
    if t["weight_decay"]:
        kwargs["weight_decay"] = float(t["weight_decay"])
    return cls(learning_rate=make_schedule(t), **kwargs)


def data_info_for(model_type: str, data_dir) -> dict:
    from seqgen.models.registry import data_kind

    kind = data_kind(model_type)
    if kind == "vocoder":
        from seqgen.data import pipeline as D

        v = D.VocoderData(data_dir)
        return {"kind": "vocoder", "data_dir": str(pathlib.Path(data_dir).resolve()),
                "sample_rate": v.sample_rate, "hop_length": v.hop, "n_mels": v.n_mels,
                "mu_law_bits": v.bits, "speakers": v.speakers, "features": v.features.to_dict(),
                "stats": {"mel_mean": v.stats.mean.tolist(), "mel_std": v.stats.std.tolist()}}
    if kind in ("text", "pairs"):
        from seqgen.data.manifest import read_manifest

        manifest = read_manifest(data_dir, kind)
        tok = dict(manifest.get("tokenizer") or {"type": "bytes"})
        if tok.get("type", "bytes") != "bytes":
            raise ConfigError(f"{data_dir}: tokenizer {tok.get('type')!r}: `seqgen train` supports byte-level "
                              f"data only (prepare it with the default --tokenizer bytes)")
        from seqgen.data.tokenizers import ByteCodec

        info = {"kind": kind, "data_dir": str(pathlib.Path(data_dir).resolve()), "tokenizer": tok,
                "vocab_size": ByteCodec.vocab_size}
        splits = manifest.get("splits") or {}
        if kind == "text":
            info["num_bytes"] = {s: int(v.get("num_bytes", 0)) for s, v in splits.items()}
        else:
            info["num_pairs"] = {s: int(v.get("num_items", 0)) for s, v in splits.items()}
        return info
    raise ConfigError(f"model type {model_type}: data kind {kind} is not supported by `seqgen train` yet")


def metric_unit(kind: str) -> str:
    """``sample`` for audio, ``byte`` for text and pairs (metrics ``bits_per_<unit>``)."""
    return "sample" if kind == "vocoder" else "byte"


def text_dataset(kind, data_dir, d: dict, seed: int, bos_id: int, pad_id: int):
    """Training batches for the text kinds: ``({"x"}, y)`` byte windows whose first input is BOS
    (generation starts from BOS), or ``({"source", "target_in"}, target_out)`` pairs padded to
    power-of-two lengths (a handful of compiled shapes)."""
    from seqgen.data import pipeline as D
    from seqgen.models.transformer import bucket_length

    tf = tensorflow()
    if kind == "text":
        ds = D.byte_lm_dataset(data_dir, "train", int(d["window"]), int(d["batch_size"]), seed=seed)

        def to_lm(x, y):
            x = tf.concat([tf.fill([tf.shape(x)[0], 1], tf.cast(bos_id, x.dtype)), x[:, 1:]], axis=1)
            return {"x": x}, y

        return ds.map(to_lm)
    ds = D.pairs_dataset(data_dir, "train", int(d["batch_size"]), int(d["window"]), seed=seed)
    sizes = tf.constant([bucket_length(n) for n in range(int(d["window"]) + 2)], tf.int32)

    def pad(t, size):
        return tf.pad(t, [[0, 0], [0, size - tf.shape(t)[1]]], constant_values=pad_id)

    def pad_all(x, y):
        # source and target share one power-of-two length: few shapes to compile
        size = sizes[tf.maximum(tf.shape(x["source"])[1], tf.shape(y)[1])]
        return {"source": pad(x["source"], size), "target_in": pad(x["target_in"], size)}, pad(y, size)

    return ds.map(pad_all)


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
        print(f"\nseqgen train: {self.requested} received; checkpointing and stopping after this step",
              file=sys.stderr)

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


def _copy_state(dst_model, src_model):
    for d, s in zip(dst_model.weights, src_model.weights):
        d.assign(s)
    if dst_model.optimizer is not None and src_model.optimizer is not None:
        for d, s in zip(dst_model.optimizer.variables, src_model.optimizer.variables):
            d.assign(s)


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
        if strategy != "default":  # the name is checked by seqgen.train.strategy.Distribution
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

    def loss_fields(self, loss) -> dict:
        """What a log window records about its mean loss (metrics.jsonl and TensorBoard train/*)."""
        return {f"bits_per_{self.unit}": loss / LN2}

    def describe_loss(self, loss) -> str:
        return f"{loss:.4f} nats = {loss / LN2:.3f} bits/{self.unit}"

    def curves_png(self, metrics_path, png_path):
        from seqgen.utils import plots

        return plots.loss_curves_png(metrics_path, png_path)

    # ------------------------------------------------------------------ setup
    def _build(self):
        import keras

        from seqgen.models.registry import build_model

        tf = tensorflow()
        model_type = self.cfg["model"]["type"]
        self.data_info = data_info_for(model_type, self.data_dir)
        keras.utils.set_random_seed(int(self.cfg["train"]["seed"]))
        chief = self.dist.worker.is_chief
        # XLA cannot compile the replicas' collectives: under a strategy Distribution.prepare compiles
        # each replica's forward and backward pass instead of Keras' whole step
        jit = bool(self.cfg["train"]["jit_compile"]) and not self.dist.distributed
        with self.dist.scope():
            if self.resume and self.run.checkpoints():
                model, step, path = self.run.load_model(use_ema=False)
                model.jit_compile = jit
                if self.backup is None:
                    self._log(f"resumed from {path.name} at step {step}")
            else:
                if self.resume and self.backup is None:
                    self._log(f"--resume: no checkpoint in {self.run.path} yet; starting from step 0")
                model = build_model(self.cfg["model"], self.data_info)
                model.compile(optimizer=make_optimizer(self.cfg["train"]), jit_compile=jit)
                step = 0
                if chief and self.backup is None:
                    info = {"model_type": model_type, "data": self.data_info, "seqgen_version": _version(),
                            **self._extra_info()}
                    self.run.write_info(info)
                    C.dump(self.cfg, self.run.path / "config.yaml")
        if self.backup is not None:
            step = self.backup["step"]  # BackupAndRestore restores it when fit begins
            self._log(f"restarting from the backup at step {step} ({self.backup_dir})")
        self._setup_model(model)
        self.model, self.step0 = model, step
        if self.dist.distributed:
            self._log(self.dist.describe())
            self.dist.prepare(model, next(iter(self._local_dataset(step, 1, 0))),
                              jit_compile=bool(self.cfg["train"]["jit_compile"]))
        if hasattr(model, "summary_text"):  # layers, receptive field, parameters
            sr = self.data_info.get("sample_rate")
            self._log(model.summary_text(sr) if sr else model.summary_text())
        self.unit = metric_unit(self.data_info["kind"])
        self.writer = tf.summary.create_file_writer(str(self.run.path / "tb")) if chief else \
            tf.summary.create_noop_writer()

    def data_seed(self, step, pipeline=0) -> int:
        """The seed of an input pipeline's stream from ``step`` on: same distribution after a resume,
        no replay of the batches already seen; one stream per worker."""
        return int(self.cfg["train"]["seed"]) * 1_000_003 + int(step) + 1_000_000_007 * int(pipeline)

    def _local_dataset(self, step, batch_size, pipeline):
        """One input pipeline's batches of ``batch_size``, seeded by ``(train.seed, step, pipeline)``."""
        from seqgen.data import pipeline as D

        d = dict(self.cfg["data"], batch_size=int(batch_size))
        seed = self.data_seed(step, pipeline)
        if self.data_info["kind"] in ("text", "pairs"):
            return text_dataset(self.data_info["kind"], self.data_dir, d, seed, self.model.bos_id,
                                self.model.pad_id)
        dist = self.model.distribution
        return D.vocoder_dataset(self.data_dir, "train", int(d["window"]), int(d["batch_size"]), seed=seed,
                                 discrete=dist.input_is_discrete, silence_class=D.silence_input(dist),
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
        if self.dist.worker.is_chief:
            self.run.lock()
        else:  # workers of one job share the run directory; each holds its own lock
            self.run.lock(name=f".lock-worker-{self.dist.worker.index}")
        try:
            self._build()
            return self._fit()
        finally:
            self.run.unlock()

    def _fit(self):
        step = self.step0
        if step >= self.max_steps:
            self._log(f"already at step {step} >= {self.max_steps}; nothing to do")
            return {"step": step}
        ds = self._dataset(step)
        cb = _Callback(self)
        callbacks = [cb]
        if self.dist.distributed:
            from seqgen.train.strategy import backup_callback

            t = self.cfg["train"]
            every = int(t.get("backup_every") or t["checkpoint_every"])
            callbacks.insert(0, backup_callback(self.backup_dir, every, write=self.dist.worker.is_chief))
        with _Stop() as stop:
            cb.stop = stop
            try:
                self.model.fit(ds, epochs=1, steps_per_epoch=self.max_steps - step, callbacks=callbacks,
                               verbose=0, shuffle=False)
            except Exception as e:
                if self.dist.worker.count > 1:
                    self._worker_lost(e, cb)
                raise
        cb.finish()
        if cb.step >= self.max_steps and self.dist.worker.is_chief and self.backup_dir.is_dir():
            import shutil

            shutil.rmtree(self.backup_dir, ignore_errors=True)  # the job is done: no restart to serve
        return cb.summary

    def _worker_lost(self, error, cb):
        """A multi-worker job whose peer died: one line saying how to go on."""
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
        cb.bar.close()
        raise WorkerLost(f"{self.dist.worker} lost its peers at step {cb.step} ({type(error).__name__}: {first}); "
                         f"restart the job (the same command on every worker) to resume from {where}") from None

    def _log(self, msg):
        if not self.quiet:
            print(f"seqgen {self.command}: {msg}", file=sys.stderr)


def _version():
    from seqgen import __version__

    return __version__


def _make_callback_class():
    import keras

    class TrainCallback(keras.callbacks.Callback):
        def __init__(self, loop: TrainLoop):
            super().__init__()
            self.loop = loop
            self.stop = None
            t = loop.cfg["train"]
            self.t = t
            self.step = loop.step0
            self.last_ckpt = loop.step0
            self.window_losses = []
            self.window_extra = {}
            self.t_window = time.time()
            self.deadline = loop.t0 + 60 * loop.max_minutes if loop.max_minutes else None
            self.summary = {}
            self.metrics_path = loop.run.path / "metrics.jsonl"
            # only the chief of a multi-worker job writes to the run directory
            self.chief = loop.dist.worker.is_chief
            self.workers = loop.dist.worker.count
            from seqgen.utils.progress import progress

            self.bar = progress(total=loop.max_steps, desc="train", unit="step",
                                disable=loop.quiet or not self.chief or os.environ.get("SEQGEN_PROGRESS", "1") == "0")
            self.bar.update(self.step)
            self.last_loss = float("nan")
            self.stopped_by = None

        # -- helpers
        def _lr(self):
            opt = self.model.optimizer
            lr = opt.learning_rate
            try:
                return float(np.asarray(lr))
            except Exception:
                return float(np.asarray(opt._get_current_learning_rate()))

        def _write(self, record):
            if not self.chief:
                return
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps(record) + "\n")

        def _checkpoint(self, why=""):
            if not self.chief:
                self.last_ckpt = self.step
                return
            weights_ok = all(np.all(np.isfinite(np.asarray(w))) for w in self.model.trainable_weights[:4])
            if not weights_ok:
                self.loop._log(f"not checkpointing step {self.step}: non-finite weights")
                return
            p = self.loop.run.save_checkpoint(self.model, self.step, keep=int(self.t["keep_checkpoints"]))
            if p is not None:
                self.last_ckpt = self.step
                if why:
                    self.loop._log(f"checkpoint {p.name} ({why})")

        def _rollback(self):
            ckpts = self.loop.run.checkpoints()
            if not ckpts:
                self.loop._log("non-finite loss before any checkpoint; stopping")
                self.model.stop_training = True
                self.stopped_by = "nan"
                return
            src, step, path = self.loop.run.load_model(use_ema=False)
            _copy_state(self.model, src)
            self.step = step
            self.loop._log(f"non-finite loss; rolled back to {path.name} (step {step}) and skipping ahead")

        # -- keras hooks
        def on_train_begin(self, logs=None):
            # the optimizer's step counter is the truth (a BackupAndRestore restore has just set it)
            step = int(np.asarray(self.model.optimizer.iterations))
            if step != self.step:
                self.bar.update(step - self.step)
                self.step = self.last_ckpt = step
            self._forget_records_after(step)

        def _forget_records_after(self, step):
            """A resumed run replays the steps after its checkpoint (or backup): their old records go,
            so metrics.jsonl and the curves have one record per step."""
            if not self.chief or not self.metrics_path.is_file():
                return
            lines = self.metrics_path.read_text().splitlines()
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

                atomic_write(self.metrics_path, "".join(line + "\n" for line in kept))
                self.loop._log(f"metrics.jsonl: dropped {len(lines) - len(kept)} record(s) after step {step}, "
                               f"the steps this run repeats")

        def on_train_batch_end(self, batch, logs=None):
            loss = self.loop.batch_loss(logs)
            # Keras reports metrics as means since the start of the epoch (here:
            # the whole run); reset them so every logged value is this batch's
            extra = {k: float(logs[k]) for k in self.loop.log_keys if logs and k in logs}
            self.model.reset_metrics()
            self.step += 1
            self.bar.update(1)
            if not np.isfinite(loss):
                if self.t["on_nan"] == "stop":
                    self.loop._log(f"non-finite loss at step {self.step}; stopping (train.on_nan: stop); "
                                   f"the last checkpoint (step {self.last_ckpt}) is intact")
                    self.model.stop_training = True
                    self.stopped_by = "nan"
                    return
                self._rollback()
                return
            self.last_loss = loss
            self.window_losses.append(loss)
            for key, value in extra.items():
                self.window_extra.setdefault(key, []).append(value)
            if self.step % int(self.t["log_every"]) == 0:
                self._log_window()
            if self.step % int(self.t["checkpoint_every"]) == 0:
                self._checkpoint()
            if int(self.t["valid_every"]) and self.step % int(self.t["valid_every"]) == 0:
                self._validate()
            if self.step >= self.loop.max_steps:
                self.model.stop_training = True
                return
            why = self.stop.requested if self.stop is not None else None
            if why is None and self.deadline is not None and time.time() >= self.deadline:
                why = "max_minutes"
            if self.workers > 1:
                # the workers must stop at the same step: they agree (a collective) every log_every steps
                if self.step % int(self.t["log_every"]) or not self.loop.dist.agree(why is not None):
                    return
                why = why or "another worker stopping"
            if why is not None:
                self.stopped_by = why
                self.model.stop_training = True

        def _log_window(self):
            if not self.window_losses:
                return
            now = time.time()
            loss = float(np.mean(self.window_losses))
            sps = len(self.window_losses) / max(now - self.t_window, 1e-9)
            fields = self.loop.loss_fields(loss)
            extra = {k: float(np.mean(v)) for k, v in self.window_extra.items() if v}
            rec = {"step": self.step, "loss": loss, **fields, **extra, "lr": self._lr(),
                   "steps_per_sec": sps, "time": now - self.loop.t0}
            self._write(rec)
            tf = tensorflow()
            with self.loop.writer.as_default(step=self.step):
                tf.summary.scalar("train/loss_nats", loss)
                for key, value in {**fields, **extra}.items():
                    tf.summary.scalar(f"train/{key}", value)
                tf.summary.scalar("train/learning_rate", rec["lr"])
                tf.summary.scalar("train/steps_per_sec", sps)
            self.bar.set_postfix(loss=f"{loss:.3f}", bits=f"{loss / LN2:.3f}", refresh=False)
            self.window_losses = []
            self.window_extra = {}
            self.t_window = now

        def _valid_nll(self):
            """(bits per unit, how many units) on the valid split."""
            from seqgen.tasks.language_model import lm_nll
            from seqgen.tasks.translation import pairs_nll
            from seqgen.tasks.vocoder import vocoder_nll

            d = self.loop.cfg["data"]
            kind = self.loop.data_info["kind"]
            if kind == "text":
                res = lm_nll(self.model, self.loop.data_dir, "valid", int(d["window"]),
                             int(d["valid_batch_size"]), int(d["max_valid_windows"]))
                return res["bits_per_byte"], res["num_bytes"]
            if kind == "pairs":
                res = pairs_nll(self.model, self.loop.data_dir, "valid", int(d["valid_batch_size"]),
                                int(d["window"]), int(d["max_valid_windows"]))
                return res["bits_per_byte"], res["num_bytes"]
            res = vocoder_nll(self.model, self.loop.data_dir, "valid", int(d["valid_window"]),
                              int(d["valid_batch_size"]), int(d["max_valid_windows"]))
            return res["nll_bits_per_sample"], res["num_samples"]

        def _validate(self):
            if not self.chief:
                return
            health_check = getattr(self.loop, "health_check", None)
            if health_check is not None:  # a subclass's own validation (distillation)
                return health_check(self)
            unit = self.loop.unit
            try:
                bits, count = self._valid_nll()
            except SeqgenError as e:
                self.loop._log(f"validation skipped: {e}")
                return
            self.summary[f"valid_bits_per_{unit}"] = bits
            self.summary["valid_step"] = self.step
            self._write({"step": self.step, f"valid_bits_per_{unit}": bits, "time": time.time() - self.loop.t0})
            tf = tensorflow()
            with self.loop.writer.as_default(step=self.step):
                tf.summary.scalar(f"valid/bits_per_{unit}", bits)
            self.bar.write(f"step {self.step}: valid {bits:.3f} bits/{unit} ({count} {unit}s)", file=sys.stderr)
            if self.loop.data_info["kind"] == "vocoder" and float(self.t["audio_seconds"]) > 0:
                try:
                    self._audio_summary()
                except Exception as e:  # never let a summary kill training
                    self.loop._log(f"audio summary skipped ({type(e).__name__}: {e})")

        def _audio_summary(self):
            from seqgen.data import pipeline as D
            from seqgen.utils import plots

            info = self.loop.data_info
            hop, sr = info["hop_length"], info["sample_rate"]
            frames = max(1, int(float(self.t["audio_seconds"]) * sr) // hop)
            ds = D.vocoder_dataset(self.loop.data_dir, "valid", frames * hop, 1, seed=0, random=False,
                                   repeat=False, discrete=self.model.distribution.input_is_discrete,
                                   silence_class=D.silence_input(self.model.distribution))
            inputs, target, _ = next(iter(ds))
            kwargs = {}
            if self.model.cond_channels:
                kwargs["mel"] = inputs["mel"].numpy()
            else:
                kwargs["num_samples"] = frames * hop
            if self.model.num_speakers:
                kwargs["speaker"] = inputs["speaker"].numpy()
            wav = self.model.generate(method="cached", seed=0, **kwargs)[0]
            real = np.asarray(self.model.distribution.to_waveform(target.numpy()[0]))
            tf = tensorflow()
            png = plots.compare_png(real, wav, sr, self.loop.run.path / "samples" / f"step-{self.step:08d}.png")
            from seqgen.data import audio as A

            A.save(self.loop.run.path / "samples" / f"step-{self.step:08d}.wav", wav, sr)
            img = tf.image.decode_png(tf.io.read_file(str(png)), channels=3)[None]
            with self.loop.writer.as_default(step=self.step):
                tf.summary.audio("samples/generated", wav[None, :, None].astype(np.float32), sr)
                tf.summary.audio("samples/real", real[None, :, None].astype(np.float32), sr)
                tf.summary.image("samples/spectrograms", img)

        def finish(self):
            self._log_window()
            why = self.stopped_by or "end of run"
            if self.stopped_by != "nan" and self.step > self.last_ckpt:
                self._checkpoint(why)
            if int(self.t["valid_every"]) and self.summary.get("valid_step") != self.step and \
                    self.stopped_by not in ("nan",):
                self._validate()
            self.bar.close()
            self.loop.writer.flush()
            if self.chief:
                try:
                    self.loop.curves_png(self.metrics_path, self.loop.run.path / "loss.png")
                except Exception as e:
                    self.loop._log(f"loss.png skipped ({e})")
            self.summary.update({"step": self.step, "last_loss": self.last_loss, "stopped_by": why,
                                 "minutes": (time.time() - self.loop.t0) / 60})
            unit = self.loop.unit
            self.loop._log(f"stopped at step {self.step} ({why}); "
                           f"last loss {self.loop.describe_loss(self.last_loss)}"
                           + (f"; valid {self.summary[f'valid_bits_per_{unit}']:.3f} bits/{unit}"
                              if f"valid_bits_per_{unit}" in self.summary else ""))

    return TrainCallback


def _Callback(loop):
    """The keras callback (its class is made on first use: keras is imported lazily)."""
    return _make_callback_class()(loop)


def train(config_path, data_dir, out_dir, max_steps=None, max_minutes=None, overrides=(), resume=False,
          quiet=False, strategy="default") -> dict:
    loop = TrainLoop(config_path, data_dir, out_dir, max_steps, max_minutes, overrides, resume, quiet,
                     strategy=strategy)
    return loop.run_training()
