"""Data-parallel training for `seqgen train --strategy` (imported lazily; TensorFlow only where it says so).

Strategies:

* ``default``: one device, what `seqgen train` has always done.
* ``data-parallel`` (JAX): ``keras.distribution.DataParallel`` over every device of the job, set before
  the model is built or loaded: the variables are replicated, each global batch is split over the
  devices along its first axis and XLA compiles the whole step with its all-reduce (``fit``'s own jit,
  the log windows of one device).  Several processes (hosts, or processes on one host) form one job
  through ``jax.distributed``, configured as ``keras.distribution.initialize`` reads it:
  ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` (the coordinator's ``host:port``),
  ``KERAS_DISTRIBUTION_NUM_PROCESSES`` and ``KERAS_DISTRIBUTION_PROCESS_ID``.  Each process reads
  its own shard of the corpus (Keras shards only ``tf.data`` itself) and feeds its share of the global
  batch; Keras assembles the global batch from the processes' shares.  Keras' save places values
  collectively then: every process saves a checkpoint (the chief's is kept), and every process waits
  for the others before it exits.
* ``mirrored`` (TensorFlow): ``tf.distribute.MirroredStrategy`` over this machine's GPUs (or
  its CPU; ``SEQGEN_CPU_DEVICES=N`` splits the CPU into N logical devices, to
  try the strategy on a machine without GPUs).
* ``multi-worker`` (TensorFlow): ``tf.distribute.MultiWorkerMirroredStrategy``; the cluster
  and this process's place in it come from ``TF_CONFIG``.

Global batch: ``data.batch_size`` is the batch of one optimizer step over all
replicas.  Each of the N replicas draws ``batch_size / N`` windows from its own
input pipeline (one per worker, seeded by ``(train.seed, step, worker)``), the
loss is the mean over the global batch and the replicas' gradients are summed.
So a step means the same thing whatever N is, and ``train.learning_rate``,
``train.steps`` and the schedule need no change.  ``batch_size`` must be a
multiple of N.

Fault tolerance: under ``mirrored`` and ``multi-worker`` a Keras
``BackupAndRestore`` callback writes ``RUN/backup`` every
``train.backup_every`` steps (default: ``train.checkpoint_every``).  When a
worker dies, restart the job with the same command on every worker: each
worker restores the model, optimizer and step from the backup and the data
stream goes on from that step.

Only the chief (worker 0) writes to the run directory: checkpoints, the
backup, ``metrics.jsonl``, TensorBoard, ``loss.png`` and validation.  Every
worker reads it when the job restarts, so it must be on storage they all see.

Two Keras 3 issues with ``tf.distribute`` are worked around in
:meth:`Distribution.prepare` (both on ``MultiWorkerMirroredStrategy`` with
Keras 3.15): ``fit`` reduces the first batch with ``strategy.reduce`` before
training (which fails for a batch that is a tuple), and the training function
reduces the scalar logs along an axis 0 they do not have.
"""
from __future__ import annotations

import contextlib
import inspect
import json
import os
import pathlib

import numpy as np

from seqgen.errors import ConfigError, SeqgenError
from seqgen.runs import RunError, save_then_point
from seqgen.utils.tf_import import tensorflow

STRATEGIES = ("default", "data-parallel", "mirrored", "multi-worker")
JAX_STRATEGIES = ("data-parallel",)


class WorkerLost(SeqgenError):
    """A peer of a multi-worker job stopped answering."""


class Worker:
    """This process's place in a job: ``index`` among ``count`` workers; worker 0 is the chief."""

    def __init__(self, index=0, count=1):
        self.index, self.count = int(index), int(count)

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    def __repr__(self):
        return f"worker {self.index} of {self.count}"


def worker_from_tf_config(text) -> Worker:
    """The worker ``TF_CONFIG`` describes; a clear one-line error for a missing or bad one."""
    see = "(see docs/scale_out.md for examples)"
    if not text:
        raise ConfigError(f"--strategy multi-worker: set TF_CONFIG to the cluster and this worker's task {see}")
    try:
        cfg = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"TF_CONFIG is not JSON ({e}) {see}") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("cluster"), dict) or \
            not isinstance(cfg.get("task"), dict):
        raise ConfigError(f"TF_CONFIG needs a 'cluster' and a 'task' object {see}")
    cluster, task = cfg["cluster"], cfg["task"]
    chiefs, workers = cluster.get("chief", []), cluster.get("worker", [])
    for key, hosts in (("chief", chiefs), ("worker", workers)):
        if not isinstance(hosts, list) or not all(isinstance(h, str) and ":" in h for h in hosts):
            raise ConfigError(f"TF_CONFIG cluster.{key} must be a list of 'host:port' strings {see}")
    extra = sorted(set(cluster) - {"chief", "worker"})
    if extra:
        raise ConfigError(f"TF_CONFIG cluster.{extra[0]}: only 'chief' and 'worker' tasks are used by "
                          f"multi-worker training (no parameter servers) {see}")
    if len(chiefs) > 1:
        raise ConfigError(f"TF_CONFIG cluster.chief has {len(chiefs)} hosts; at most one {see}")
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in ("chief", "worker"):
        raise ConfigError(f"TF_CONFIG task.type must be 'chief' or 'worker', got {kind!r} {see}")
    hosts = chiefs if kind == "chief" else workers
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(hosts):
        raise ConfigError(f"TF_CONFIG task.index {index!r} is not one of the {len(hosts)} {kind} tasks {see}")
    position = index if kind == "chief" else len(chiefs) + index
    return Worker(position, len(chiefs) + len(workers))


def _split_cpu(n: int) -> None:
    tf = tensorflow()
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError:  # devices already initialized: keep them
        pass


class Distribution:
    """A ``tf.distribute`` strategy (or none) with what `seqgen train` does differently under it."""

    def __init__(self, name="default"):
        if name not in STRATEGIES:
            raise ConfigError(f"--strategy {name!r}: choose one of {', '.join(STRATEGIES)}")
        self.name = name
        self.worker = Worker()
        self.strategy = None              # a tf.distribute strategy
        self.keras_distribution = None    # a keras.distribution (JAX)
        self.devices = 1
        self._count_flags = None  # agree()'s compiled all-reduce, made on first use
        if name == "default":
            return
        import keras

        if name in JAX_STRATEGIES:
            self._data_parallel(keras)
            return
        if keras.backend.backend() != "tensorflow":
            raise ConfigError(f"--strategy {name} uses tf.distribute: it needs KERAS_BACKEND=tensorflow "
                              f"(this is {keras.backend.backend()})")
        tf = tensorflow()
        cpus = os.environ.get("SEQGEN_CPU_DEVICES")
        if cpus:
            if not cpus.isdigit() or int(cpus) < 1:
                raise ConfigError(f"SEQGEN_CPU_DEVICES={cpus!r}: give a number of logical CPU devices (>= 1)")
            _split_cpu(int(cpus))
        if name == "mirrored":
            gpus = tf.config.list_logical_devices("GPU")
            devices = None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")]
            self.strategy = tf.distribute.MirroredStrategy(devices=devices)
        else:
            self.worker = worker_from_tf_config(os.environ.get("TF_CONFIG"))
            self.strategy = tf.distribute.MultiWorkerMirroredStrategy()

    def _data_parallel(self, keras) -> None:
        if keras.backend.backend() != "jax":
            raise ConfigError(f"--strategy {self.name} is keras.distribution's, which seqgen runs on JAX "
                              f"(this is {keras.backend.backend()}): set KERAS_BACKEND=jax, or use "
                              f"--strategy mirrored / multi-worker on TensorFlow")
        processes = os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES", "")
        if processes:
            if not processes.isdigit() or int(processes) < 1:
                raise ConfigError(f"KERAS_DISTRIBUTION_NUM_PROCESSES={processes!r}: give the number of processes")
            for key in ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_PROCESS_ID"):
                if int(processes) > 1 and not os.environ.get(key):
                    raise ConfigError(f"--strategy {self.name} with KERAS_DISTRIBUTION_NUM_PROCESSES={processes}: "
                                      f"set {key} too (see docs/scale_out.md)")
            if int(processes) > 1:
                keras.distribution.initialize()
        import jax

        devices = keras.distribution.list_devices()
        self.keras_distribution = keras.distribution.DataParallel(devices=devices)
        # each process reads its own shard (Distribution.dataset); Keras would shard only tf.data itself
        self.keras_distribution.auto_shard_dataset = False
        keras.distribution.set_distribution(self.keras_distribution)
        self.devices = len(devices)
        self.worker = Worker(jax.process_index(), jax.process_count())

    # ------------------------------------------------------------------ facts
    @property
    def distributed(self) -> bool:
        """A tf.distribute strategy is in use (its own training function, one-step windows, backups)."""
        return self.strategy is not None

    @property
    def replicas(self) -> int:
        if self.keras_distribution is not None:
            return self.devices
        return self.strategy.num_replicas_in_sync if self.strategy is not None else 1

    @property
    def collective_validation(self) -> bool:
        """Every process validates: under ``data-parallel`` over several processes the model's variables span
        them all, so each of its computations needs every process (only the chief writes the results)."""
        return self.keras_distribution is not None and self.worker.count > 1

    def describe(self) -> str:
        if self.keras_distribution is not None:
            where = "this process" if self.worker.count == 1 else f"{self.worker.count} processes ({self.worker})"
            return f"strategy {self.name}: {self.devices} device(s) over {where}, keras.distribution.DataParallel"
        if self.strategy is None:
            return "strategy default (one device)"
        if self.worker.count == 1:
            return f"strategy {self.name}: {self.replicas} replica(s) on this machine"
        return f"strategy {self.name}: {self.replicas} replicas, {self.worker}"

    def scope(self):
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    # ------------------------------------------------------------------ data
    def per_replica_batch(self, global_batch: int) -> int:
        if global_batch % self.replicas:
            raise ConfigError(f"data.batch_size = {global_batch} is the global batch; with {self.replicas} replicas it "
                              f"must be a multiple of {self.replicas}")
        return global_batch // self.replicas

    def dataset(self, make, global_batch: int):
        """``make(batch_size, pipeline)`` -> a dataset of batches (``tf.data``, or grain's, which a
        ``tf.distribute`` strategy takes through :func:`as_tf_dataset`); one pipeline per worker, each batch
        one replica's share of the global batch (under ``data-parallel``: one process's share, which Keras
        splits over its devices)."""
        if self.keras_distribution is not None:
            per_device = self.per_replica_batch(global_batch)
            return make(per_device * (self.devices // self.worker.count), self.worker.index)
        if self.strategy is None:
            ds = make(global_batch, 0)
            if inspect.isgenerator(ds) and keras_backend() == "tensorflow":
                # Keras would fix the shapes of a generator's batches from its first two; length-bucketed
                # batches (translation) need their lengths open, and with data.batch_bytes their sizes too
                return as_tf_dataset(ds, open_batch=True)
            return ds
        per_replica = self.per_replica_batch(global_batch)

        def fn(context):
            return as_tf_dataset(make(per_replica, context.input_pipeline_id))

        return self.strategy.distribute_datasets_from_function(fn)

    # ------------------------------------------------------------------ model
    def prepare(self, model, first_batch, jit_compile=False) -> None:
        """Create every variable under the strategy and work around Keras' fit under it.

        With ``jit_compile`` each replica's forward and backward pass is one XLA
        program; the gradients' all-reduce and the update run outside it (XLA
        cannot compile the collectives).  Without it, Keras' ``train_step`` runs
        as it is in every replica."""
        if self.strategy is None:
            return
        tf = tensorflow()
        inputs = first_batch[0]
        with self.strategy.scope():
            model(inputs)  # builds the layers' variables here, not inside a replica function
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
        strategy = self.strategy
        replica_step = _xla_replica_step(model, strategy) if jit_compile else model.train_step

        @tf.function
        def train_function(iterator):
            logs = strategy.run(replica_step, args=(next(iterator),))
            return {k: strategy.reduce("MEAN", v, axis=None) for k, v in logs.items()}

        model.train_function = train_function
        # the variables exist: fit's symbolic build has nothing to do (and fails on tuple batches)
        model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
        # validation runs on the chief only: one local call, no collective a peer would have to join
        local_call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        model.predict_function = lambda batches: local_call(batches[0][0])

    def barrier(self, name: str) -> None:
        """Wait until every process of a ``data-parallel`` job of several processes gets here."""
        if self.keras_distribution is not None and self.worker.count > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(name)

    def agree(self, flag: bool) -> bool:
        """True when ``flag`` is true on any worker (a collective: every worker must call it)."""
        if self.worker.count == 1:
            return bool(flag)
        if self.keras_distribution is not None:
            from jax.experimental import multihost_utils

            return bool(np.any(multihost_utils.process_allgather(np.array([1 if flag else 0], np.int32))))
        tf = tensorflow()
        if self._count_flags is None:
            strategy = self.strategy

            @tf.function
            def count_flags(flag):
                return strategy.reduce("SUM", strategy.run(lambda: tf.identity(flag)), axis=None)

            self._count_flags = count_flags
        return bool(self._count_flags(tf.constant(1.0 if flag else 0.0)).numpy() > 0)


def _xla_replica_step(model, strategy):
    """One replica's training step: loss and gradients in one XLA program, then the optimizer's
    update (whose gradient all-reduce stays outside XLA).  Logs the replica's mean loss."""
    tf = tensorflow()
    variables = model.trainable_variables

    @tf.function(jit_compile=True, reduce_retracing=True)
    def loss_and_gradients(x, y, weight):
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=weight, training=True)
        return loss, tape.gradient(loss, variables)

    def step(data):
        x, y, weight = (tuple(data) + (None,))[:3]
        loss, grads = loss_and_gradients(x, y, weight)
        model.optimizer.apply_gradients(zip(grads, variables))
        # compute_loss returned this replica's share; the log is its mean, as Keras' loss tracker has it
        return {"loss": loss * strategy.num_replicas_in_sync}

    return step


# ---------------------------------------------------------------------- backup


def _make_backup_class():
    import keras

    class RunBackup(keras.callbacks.BackupAndRestore):
        """Keras' BackupAndRestore in ``RUN/backup``, written by the chief only and atomically.

        The weights (model and optimizer, hence the step) go to a file named for
        their step; ``training_metadata.json`` names it and is replaced last,
        so a worker killed mid-write leaves the previous backup in force.
        Backups are taken at global steps that are multiples of ``every``.
        """

        def __init__(self, backup_dir, every: int, write: bool):
            super().__init__(str(backup_dir), save_freq=int(every), delete_checkpoint=False)
            self.dir = pathlib.Path(backup_dir)
            self.every = int(every)
            self.write = write
            self.restored_step = None

        def on_train_begin(self, logs=None):
            meta = read_backup(self.dir)
            if meta is None:
                return
            self._weights_path = str(self.dir / meta["weights"])
            try:
                self._load_model()
            except Exception as e:
                raise RunError(f"{self.dir}: the backup {meta['weights']} cannot be restored "
                               f"({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}); "
                               f"delete {self.dir} to resume from the run's checkpoints with --resume") from None
            self.model._initial_epoch = 0  # one epoch per run: the step lives in the optimizer
            self.restored_step = int(self.model.optimizer.iterations.numpy())

        def on_train_batch_end(self, batch, logs=None):
            step = int(self.model.optimizer.iterations.numpy())
            if step % self.every == 0:
                self.save(step)

        def save(self, step: int) -> None:
            if not self.write:
                return
            self.dir.mkdir(parents=True, exist_ok=True)
            name = f"backup-{step:08d}.weights.h5"
            if not save_then_point(lambda tmp: self.model.save_weights(str(tmp), overwrite=True),
                                   self.dir / f".tmp-{name}", self.dir / name, self.dir / "training_metadata.json",
                                   json.dumps({"epoch": 0, "step": step, "weights": name}),
                                   f"backup at step {step}", "the previous backup is kept"):
                return
            for old in self.dir.glob("backup-*.weights.h5"):
                if old.name != name:
                    try:
                        old.unlink()
                    except OSError:
                        pass

        def on_train_end(self, logs=None):
            pass  # the backup stays until the run reaches train.steps (see TrainLoop)

    return RunBackup


def read_backup(backup_dir) -> dict | None:
    """``RUN/backup/training_metadata.json`` as a dict, or None when there is no usable backup."""
    path = pathlib.Path(backup_dir) / "training_metadata.json"
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
        step, name = int(meta["step"]), str(meta["weights"])
    except (ValueError, KeyError, TypeError) as e:
        raise RunError(f"{path}: unreadable backup metadata ({e}); delete {path.parent} to resume from the "
                       f"run's checkpoints with --resume") from None
    if not (path.parent / name).is_file():
        raise RunError(f"{path}: names {name}, which is missing; delete {path.parent} to resume from the "
                       f"run's checkpoints with --resume")
    return {"step": step, "weights": name}


def backup_callback(backup_dir, every: int, write: bool):
    return _make_backup_class()(backup_dir, every, write)


def keras_backend() -> str:
    import keras

    return keras.backend.backend()


def as_tf_dataset(dataset, open_batch=False):
    """A ``tf.data.Dataset`` of a dataset's batches: itself, or a grain dataset or a generator of numpy
    batches read through a Python generator (what ``distribute_datasets_from_function`` needs), with the
    first batch's shapes (a generator's, e.g. translation's length buckets: its batch size, the other
    dimensions open; with ``open_batch`` the batch size open too, for batches filled to a byte budget)."""
    import itertools

    tf = tensorflow()
    if isinstance(dataset, tf.data.Dataset):
        return dataset
    open_dims = inspect.isgenerator(dataset)
    if open_dims:
        first = next(dataset)
        stream = itertools.chain([first], dataset)

        def make():
            return stream
    else:
        first = next(iter(dataset))

        def make():
            return iter(dataset)

    def spec(x):
        x = np.asarray(x)
        shape = ((None if open_batch else x.shape[0]),) + (None,) * (x.ndim - 1) if open_dims else x.shape
        return tf.TensorSpec(shape, tf.as_dtype(x.dtype))

    return tf.data.Dataset.from_generator(make, output_signature=tf.nest.map_structure(spec, first))
