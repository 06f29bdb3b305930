"""`seqgen train --strategy` (issue #7): tf.distribute, global batch semantics, BackupAndRestore.

* two replicas (``mirrored`` over two logical CPUs) take the same steps as one
  device given the same global batch: the loss and the weights agree;
* two local workers on 127.0.0.1 (``multi-worker``, TF_CONFIG): one is killed
  with SIGKILL mid-run, the other stops with a one-line message, and the job
  restarted with the same command resumes from the backup (the step counter
  goes on from the backup's step, the weights are finite and not re-initialized);
* both workers stop at the same step when only one is asked to (SIGTERM);
* TF_CONFIG and batch sizes that cannot work give one-line errors;
* a backup write that fails leaves the previous backup in force.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from conftest import REPO, TINY, run_cli
from seqgen.errors import ConfigError
from seqgen.runs import RunError

# --------------------------------------------------------------------------- TF_CONFIG


def _tf_config(workers, kind="worker", index=0, chief=()):
    cluster = {"worker": list(workers)}
    if chief:
        cluster["chief"] = list(chief)
    return json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})


def test_tf_config_gives_the_workers_place():
    from seqgen.train.strategy import worker_from_tf_config

    w = worker_from_tf_config(_tf_config(["h:1", "h:2", "h:3"], index=2))
    assert (w.index, w.count, w.is_chief) == (2, 3, False)
    w = worker_from_tf_config(_tf_config(["h:1", "h:2"], index=0))
    assert w.is_chief
    # with a chief task, the chief is worker 0 and the workers come after it
    w = worker_from_tf_config(_tf_config(["h:1", "h:2"], kind="chief", index=0, chief=["c:0"]))
    assert (w.index, w.count, w.is_chief) == (0, 3, True)
    w = worker_from_tf_config(_tf_config(["h:1", "h:2"], kind="worker", index=0, chief=["c:0"]))
    assert (w.index, w.is_chief) == (1, False)


@pytest.mark.parametrize("text, words", [
    (None, "set TF_CONFIG"),
    ("{not json", "not JSON"),
    ("[]", "'cluster' and a 'task'"),
    (json.dumps({"cluster": {"worker": "h:1"}, "task": {"type": "worker", "index": 0}}), "cluster.worker"),
    (json.dumps({"cluster": {"worker": ["nohostport"]}, "task": {"type": "worker", "index": 0}}), "host:port"),
    (json.dumps({"cluster": {"worker": ["h:1"], "ps": ["h:2"]}, "task": {"type": "worker", "index": 0}}),
     "cluster.ps"),
    (json.dumps({"cluster": {"worker": ["h:1"]}, "task": {"type": "evaluator", "index": 0}}), "task.type"),
    (json.dumps({"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": 1}}), "task.index 1"),
    (json.dumps({"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": "0"}}), "task.index"),
])
def test_bad_tf_config_is_one_clear_line(text, words):
    from seqgen.train.strategy import worker_from_tf_config

    with pytest.raises(ConfigError) as e:
        worker_from_tf_config(text)
    assert words in str(e.value) and "TF_CONFIG" in str(e.value) and "\n" not in str(e.value)


def test_multi_worker_without_tf_config_fails_in_one_line(espeak_vocoder_data, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    proc = subprocess.run([sys.executable, "-m", "seqgen.cli", "train", str(TINY), "--data",
                           str(espeak_vocoder_data), "--out", str(tmp_path / "run"), "--strategy", "multi-worker"],
                          capture_output=True, text=True, env=env, cwd=str(REPO), timeout=300)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("seqgen: error: --strategy multi-worker: set TF_CONFIG")


# --------------------------------------------------------------------------- global batch semantics

_EQUIVALENCE = textwrap.dedent("""
    import json, sys
    import numpy as np
    from seqgen.train.strategy import Distribution
    dist = Distribution(sys.argv[1])
    import keras
    from seqgen.utils.tf_import import tensorflow
    from seqgen.tasks.base import task_for_model_type
    from seqgen import config as C
    tf = tensorflow()
    cfg = C.load(sys.argv[2], [])
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    B, T = 4, 1024  # one global batch; under 2 replicas rows 0-1 go to one, rows 2-3 to the other
    x = rng.integers(0, 256, size=(B, T)).astype("int32")
    y = rng.integers(0, 256, size=(B, T)).astype("int32")
    mel = rng.normal(size=(B, T // 256, 80)).astype("float32")
    info = {"hop_length": 256, "n_mels": 80, "speakers": [], "mu_law_bits": 8}
    with dist.scope():
        model = task_for_model_type(cfg["model"]["type"]).build_model(cfg["model"], info)
        # plain SGD: a step is proportional to the gradient, so a wrongly scaled loss shows
        model.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=False)
    def make(batch, pipeline):
        return tf.data.Dataset.from_tensor_slices(({"x": x, "mel": mel}, y)).batch(batch).repeat()
    dist.prepare(model, next(iter(make(1, 0))), jit_compile=sys.argv[4] == "xla")
    losses = []
    cb = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: (losses.append(float(logs["loss"])),
                                                                          model.reset_metrics()))
    model.fit(dist.dataset(make, B), epochs=1, steps_per_epoch=4, verbose=0, callbacks=[cb])
    np.save(sys.argv[3], np.concatenate([w.ravel() for w in model.get_weights()]))
    print(json.dumps({"replicas": dist.replicas, "losses": losses}))
""")


def _equivalence_run(strategy, out, env=None, step="keras"):
    e = dict(os.environ, **(env or {}))
    proc = subprocess.run([sys.executable, "-c", _EQUIVALENCE, strategy, str(TINY), str(out), step],
                          capture_output=True, text=True, env=e, cwd=str(REPO), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def one_device_steps(tmp_path_factory):
    out = tmp_path_factory.mktemp("one_device") / "one.npy"
    return _equivalence_run("default", out), out


@pytest.mark.parametrize("step", ["keras", "xla"])
def test_two_replicas_take_the_same_steps_as_one_device(one_device_steps, tmp_path, step):
    """``keras``: Keras' train_step in each replica; ``xla``: each replica's forward and backward
    pass compiled by XLA (what `seqgen train` does with train.jit_compile, the default)."""
    one, one_path = one_device_steps
    two = _equivalence_run("mirrored", tmp_path / "two.npy", env={"SEQGEN_CPU_DEVICES": "2"}, step=step)
    assert (one["replicas"], two["replicas"]) == (1, 2)
    # the logged loss is the mean over the global batch, not a sum over replicas
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=1e-5)
    assert one["losses"][-1] < one["losses"][0]  # the steps did something
    w1, w2 = np.load(one_path), np.load(tmp_path / "two.npy")
    np.testing.assert_allclose(w2, w1, atol=2e-5)


def test_global_batch_must_split_over_the_replicas(espeak_vocoder_data, tmp_path):
    proc = run_cli("train", TINY, "--data", espeak_vocoder_data, "--out", tmp_path / "run", "--strategy", "mirrored",
                   "--set", "data.batch_size=3", env={"SEQGEN_CPU_DEVICES": "2"}, check=False)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "data.batch_size = 3 is the global batch" in last and "multiple of 2" in last


@pytest.mark.slow  # ~45 s; the two-worker test below shows the same restart in the default suite
def test_mirrored_sigkill_then_the_same_command_resumes_from_the_backup(espeak_vocoder_data, tmp_path):
    """One machine, two replicas: killed mid-run, the job goes on from RUN/backup without --resume."""
    from seqgen.runs import Run

    run = tmp_path / "run"
    args = [sys.executable, "-m", "seqgen.cli", "train", str(TINY), "--data", str(espeak_vocoder_data), "--out",
            str(run), "--strategy", "mirrored", "--max-steps", "60", "--set", "train.backup_every=10",
            "--set", "train.checkpoint_every=1000", "--set", "train.valid_every=0", "--set", "train.log_every=5"]
    env = dict(os.environ, SEQGEN_PROGRESS="0", SEQGEN_CPU_DEVICES="2")
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))
    deadline = time.time() + 240
    while _backup_step(run) < 20 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    backup_step = _backup_step(run)
    assert 20 <= backup_step < 60, (tmp_path / "first.log").read_text()[-2000:]
    assert "2 replica(s) on this machine" in (tmp_path / "first.log").read_text()
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=str(REPO), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"restarting from the backup at step {backup_step}" in done.stderr
    assert "stopped at step 60 (end of run)" in done.stderr
    steps = [r["step"] for r in _metrics(run) if "loss" in r]
    assert steps == sorted(set(steps)) and [s for s in steps if s > backup_step] == \
        list(range(backup_step + 5, 61, 5))
    _, step, _ = Run(run).load_model(use_ema=False)
    assert step == 60 and not (run / "backup").exists()


# --------------------------------------------------------------------------- two workers on 127.0.0.1


def _free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _start_job(data, run, args, tmp_path, tag):
    hosts = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    for i in range(2):
        env = dict(os.environ, SEQGEN_PROGRESS="0", TF_CPP_MIN_LOG_LEVEL="3",
                   TF_CONFIG=_tf_config(hosts, index=i))
        log = open(tmp_path / f"{tag}-worker{i}.log", "w")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "seqgen.cli", "train", str(TINY), "--data", str(data), "--out", str(run),
             "--strategy", "multi-worker", *map(str, args)], stdout=log, stderr=subprocess.STDOUT, env=env,
            cwd=str(REPO)))
    return procs


def _wait(procs, timeout):
    deadline = time.time() + timeout
    for p in procs:
        try:
            p.wait(max(1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise AssertionError("a worker did not finish in time")
    return [p.returncode for p in procs]


def _backup_step(run):
    try:
        return json.loads((run / "backup" / "training_metadata.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return -1


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.slow  # ~60 s: in .ci/run's slow step (the default suite is kept near 15 min)
def test_two_workers_sigkill_one_then_restart_resumes_from_the_backup(espeak_vocoder_data, tmp_path):
    from seqgen.runs import Run

    run = tmp_path / "run"
    # no checkpoint before the end (checkpoint_every is large): only the backup can restore the job
    args = ["--max-steps", 100, "--set", "train.steps=100", "--set", "train.backup_every=10",
            "--set", "train.checkpoint_every=1000", "--set", "train.valid_every=0", "--set", "train.log_every=5",
            "--set", "train.jit_compile=false"]  # XLA under a strategy: see the equivalence test
    procs = _start_job(espeak_vocoder_data, run, args, tmp_path, "first")
    deadline = time.time() + 240
    while _backup_step(run) < 30 and time.time() < deadline and all(p.poll() is None for p in procs):
        time.sleep(0.2)
    assert _backup_step(run) >= 30, (tmp_path / "first-worker0.log").read_text()[-2000:]
    procs[1].send_signal(signal.SIGKILL)  # worker 1 dies mid-run
    codes = _wait(procs, 180)
    assert codes[1] == -signal.SIGKILL
    # the survivor notices, and says how to go on, in one line
    assert codes[0] != 0
    last = (tmp_path / "first-worker0.log").read_text().strip().splitlines()[-1]
    assert last.startswith("seqgen: error: worker 0 of 2 lost its peers") and "restart the job" in last, last
    backup_step = _backup_step(run)
    assert 30 <= backup_step < 100
    assert not Run(run).checkpoints()
    before = [r for r in _metrics(run) if "loss" in r]
    first_loss = before[0]["loss"]

    # the job restarted with the same command on both workers
    procs = _start_job(espeak_vocoder_data, run, args, tmp_path, "second")
    assert _wait(procs, 300) == [0, 0], (tmp_path / "second-worker0.log").read_text()[-3000:]
    for i in range(2):
        log = (tmp_path / f"second-worker{i}.log").read_text()
        assert f"restarting from the backup at step {backup_step}" in log
        assert "stopped at step 100 (end of run)" in log
    records = [r for r in _metrics(run) if "loss" in r]
    # the step counter goes on from the backup: the first record of the restarted job is the next log step
    # the records of the steps after the backup (logged before the kill) were replaced: one per step.
    # (The record of the backup's own step may be missing: the kill can land while that step's
    # logs are still being reduced over the workers; the step itself is in the backup.)
    steps = [r["step"] for r in records]
    assert steps == sorted(set(steps))
    assert set(steps) <= set(range(5, 101, 5))
    assert [s for s in steps if s > backup_step] == list(range(backup_step + 5, 101, 5))
    restart = sum(1 for r in before if r["step"] <= backup_step)
    assert records[restart]["step"] == backup_step + 5
    assert records[-1]["step"] == 100
    # the weights came back from the backup, not from a fresh start
    resumed_loss = records[restart]["loss"]
    assert resumed_loss < first_loss - 0.3, (first_loss, resumed_loss, before)
    model, step, _ = Run(run).load_model(use_ema=False)
    assert step == 100
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    assert not (run / "backup").exists()  # the job finished: its backup is gone


def test_workers_stop_together_when_one_is_asked_to(espeak_vocoder_data, tmp_path):
    from seqgen.runs import Run

    run = tmp_path / "run"
    args = ["--max-steps", 100000, "--set", "train.steps=100000", "--set", "train.valid_every=0",
            "--set", "train.log_every=5", "--set", "train.checkpoint_every=1000", "--set", "train.jit_compile=false"]
    procs = _start_job(espeak_vocoder_data, run, args, tmp_path, "stop")
    deadline = time.time() + 240
    while not (run / "metrics.jsonl").is_file() and time.time() < deadline and all(p.poll() is None for p in procs):
        time.sleep(0.2)
    time.sleep(1.0)
    procs[1].send_signal(signal.SIGTERM)  # only worker 1 is asked to stop
    assert _wait(procs, 180) == [0, 0]
    logs = [(tmp_path / f"stop-worker{i}.log").read_text() for i in range(2)]
    steps = []
    for log in logs:
        line = next(s for s in log.splitlines() if s.startswith("seqgen train: stopped at step"))
        steps.append(int(line.split("stopped at step ")[1].split()[0]))
    assert steps[0] == steps[1] and steps[0] % 5 == 0
    assert "(another worker stopping)" in logs[0] and "(SIGTERM)" in logs[1]
    assert Run(run).checkpoints()[0][0] == steps[0]  # the chief checkpointed where both stopped


# --------------------------------------------------------------------------- the backup itself


def _small_model():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    model.fit(x, x[:, :1], epochs=1, verbose=0)
    return model, x


def test_a_failed_backup_write_keeps_the_previous_backup(tmp_path, monkeypatch, capsys):
    from seqgen.train.strategy import backup_callback, read_backup

    model, x = _small_model()
    cb = backup_callback(tmp_path / "backup", every=1, write=True)
    cb.set_model(model)
    cb.save(1)
    good = (tmp_path / "backup" / "backup-00000001.weights.h5").read_bytes()
    model.fit(x, x[:, :1], epochs=1, verbose=0)

    def full_disk(path, *a, **k):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model, "save_weights", full_disk)
    cb.save(2)
    assert "could not write the backup at step 2" in capsys.readouterr().err
    assert read_backup(tmp_path / "backup") == {"step": 1, "weights": "backup-00000001.weights.h5"}
    assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == ["backup-00000001.weights.h5",
                                                                       "training_metadata.json"]
    assert (tmp_path / "backup" / "backup-00000001.weights.h5").read_bytes() == good


def test_a_worker_that_is_not_the_chief_writes_no_backup(tmp_path):
    from seqgen.train.strategy import backup_callback

    model, _ = _small_model()
    cb = backup_callback(tmp_path / "backup", every=1, write=False)
    cb.set_model(model)
    cb.save(1)
    assert not (tmp_path / "backup").exists()


def test_a_broken_backup_says_what_to_do(tmp_path):
    from seqgen.train.strategy import read_backup

    b = tmp_path / "backup"
    b.mkdir()
    (b / "training_metadata.json").write_text("{garbage")
    with pytest.raises(RunError, match="unreadable backup metadata.*delete"):
        read_backup(b)
    (b / "training_metadata.json").write_text(json.dumps({"epoch": 0, "step": 5, "weights": "gone.weights.h5"}))
    with pytest.raises(RunError, match="gone.weights.h5, which is missing"):
        read_backup(b)
