"""`seqgen train --strategy data-parallel` (JAX, keras.distribution.DataParallel).

* two devices of one process (``XLA_FLAGS=--xla_force_host_platform_device_count=2``) and two local
  processes of one device each (``jax.distributed`` through ``KERAS_DISTRIBUTION_*``) take the same
  steps as one device given the same global batch: the losses and the weights agree up to the
  reduction's rounding;
* the CLI trains, checkpoints, validates and resumes under it on two devices, and trains, checkpoints
  and validates with two processes;
* the strategy on another backend, a global batch that does not split, and a half-configured job are
  one-line errors.
"""
import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import REPO, TINY, run_cli

pytest.importorskip("jax")

_EQUIVALENCE = textwrap.dedent("""
    import json, sys
    import numpy as np
    from seqgen.train.strategy import Distribution
    dist = Distribution(sys.argv[1])
    import keras
    from seqgen import config as C
    from seqgen.tasks.base import task_for_model_type
    from seqgen.utils.seeding import set_seed
    cfg = C.load(sys.argv[2], [])
    set_seed(0)
    rng = np.random.default_rng(0)
    B, T = 4, 1024  # one global batch: the devices (or processes) each take a contiguous share of its rows
    x = rng.integers(0, 256, size=(B, T)).astype("int32")
    y = rng.integers(0, 256, size=(B, T)).astype("int32")
    mel = rng.normal(size=(B, T // 256, 80)).astype("float32")
    info = {"hop_length": 256, "n_mels": 80, "speakers": [], "mu_law_bits": 8}
    model = task_for_model_type(cfg["model"]["type"]).build_model(cfg["model"], info)
    # plain SGD: a step is proportional to the gradient, so a wrongly scaled loss shows
    model.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=True)
    def make(batch, pipeline):
        lo = pipeline * batch
        def gen():
            while True:
                yield {"x": x[lo:lo + batch], "mel": mel[lo:lo + batch]}, y[lo:lo + batch]
        return gen()
    losses = []
    cb = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: losses.append(float(logs["loss"])))
    model.fit(dist.dataset(make, B), epochs=1, steps_per_epoch=4, verbose=0, callbacks=[cb])
    weights = np.concatenate([np.asarray(w).ravel() for w in model.get_weights()])
    if dist.worker.is_chief:
        np.save(sys.argv[3], weights)
    print(json.dumps({"replicas": dist.replicas, "workers": dist.worker.count, "losses": losses}))
""")


def _env(devices=1, **extra):
    return dict(os.environ, KERAS_BACKEND="jax", SEQGEN_PROGRESS="0",
                XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", **extra)


def _equivalence(strategy, out, env):
    proc = subprocess.run([sys.executable, "-c", _EQUIVALENCE, strategy, str(TINY), str(out)], capture_output=True,
                          text=True, env=env, cwd=str(REPO), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_processes(argv):
    """Run ``argv`` as the two processes of one job over 127.0.0.1; each one's stdout once both end well."""
    port, procs = _free_port(), []
    for i in range(2):
        env = _env(devices=1, KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{port}",
                   KERAS_DISTRIBUTION_NUM_PROCESSES="2", KERAS_DISTRIBUTION_PROCESS_ID=str(i))
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                      cwd=str(REPO)))
    outs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise AssertionError("a process of the job did not finish")
        assert p.returncode == 0, err[-3000:]
        outs.append(out)
    return outs


@pytest.fixture(scope="module")
def one_device(tmp_path_factory):
    out = tmp_path_factory.mktemp("one_device") / "one.npy"
    return _equivalence("default", out, _env(devices=2)), out


def _assert_same_steps(one, one_path, two, two_path):
    # the logged loss is the mean over the global batch, and the update is one device's on the whole batch
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=1e-5)
    # SGD at 0.5 amplifies the all-reduce's rounding of the gradients: a few weights of 174,720 move by
    # a few 1e-5 (measured: 19 beyond 2e-5, at most 3.7e-5), the mean by far less
    two_w, one_w = np.load(two_path), np.load(one_path)
    np.testing.assert_allclose(two_w, one_w, rtol=1e-4, atol=1e-4)
    assert np.mean(np.abs(two_w - one_w)) < 1e-6
    assert len(set(np.round(one["losses"], 4))) == 4  # the steps changed the model


def test_two_devices_of_one_process_take_the_same_steps_as_one_device(one_device, tmp_path):
    one, one_path = one_device
    two = _equivalence("data-parallel", tmp_path / "two.npy", _env(devices=2))
    assert (one["replicas"], two["replicas"], two["workers"]) == (1, 2, 1)
    _assert_same_steps(one, one_path, two, tmp_path / "two.npy")


@pytest.mark.slow  # ~20 s: in .ci/run's slow step (the default suite is kept near 15 min)
def test_two_processes_take_the_same_steps_as_one_device(one_device, tmp_path):
    one, one_path = one_device
    outs = [json.loads(out.strip().splitlines()[-1]) for out in
            _two_processes([sys.executable, "-c", _EQUIVALENCE, "data-parallel", str(TINY), str(tmp_path / "two.npy")])]
    assert [(o["replicas"], o["workers"]) for o in outs] == [(2, 2), (2, 2)]
    assert outs[0]["losses"] == outs[1]["losses"]
    _assert_same_steps(one, one_path, outs[0], tmp_path / "two.npy")


@pytest.mark.slow  # ~45 s: in .ci/run's slow step
def test_the_cli_trains_checkpoints_validates_and_resumes_on_two_devices(espeak_vocoder_data, tmp_path):
    run = tmp_path / "run"
    env = {k: v for k, v in _env(devices=2).items() if k in ("KERAS_BACKEND", "XLA_FLAGS")}
    proc = run_cli("train", TINY, "--data", espeak_vocoder_data, "--out", run, "--strategy", "data-parallel",
                   "--max-steps", 4, "--set", "train.checkpoint_every=2", "--set", "train.valid_every=2",
                   "--set", "train.log_every=2", env=env)
    assert "2 device(s) over this process" in proc.stderr
    run_cli("train", "--out", run, "--resume", "--strategy", "data-parallel", "--max-steps", 6, env=env)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [2, 4, 6]
    assert [r["step"] for r in records if "valid_bits_per_sample" in r][:2] == [2, 4]
    assert all(np.isfinite(r["loss"]) for r in records if "loss" in r)
    assert sorted(p.name for p in (run / "checkpoints").glob("*.keras"))[-1].startswith("ckpt-00000006")


@pytest.mark.slow  # ~60 s: in .ci/run's slow step
def test_the_cli_trains_with_two_processes(espeak_vocoder_data, tmp_path):
    """Two local processes (jax.distributed over 127.0.0.1) through `seqgen train`: both finish, the chief
    writes the checkpoints, validation and its clip (every process computes them: they are collective)."""
    run = tmp_path / "run"
    _two_processes([sys.executable, "-m", "seqgen.cli", "train", str(TINY), "--data", str(espeak_vocoder_data),
                    "--out", str(run), "--strategy", "data-parallel", "--max-steps", "4",
                    "--set", "train.checkpoint_every=2", "--set", "train.valid_every=2", "--set", "train.log_every=2"])
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [2, 4]  # the chief's records only
    assert [r["step"] for r in records if "valid_bits_per_sample" in r] == [2, 4]
    assert sorted(p.name for p in (run / "checkpoints").glob("*.keras")) == ["ckpt-00000002.keras",
                                                                           "ckpt-00000004.keras"]
    assert sorted(p.name for p in (run / "samples").glob("*.wav")) == ["step-00000002.wav", "step-00000004.wav"]


@pytest.mark.parametrize("backend, env, batch, words", [
    ("tensorflow", {}, 4, ["data-parallel", "KERAS_BACKEND=jax"]),
    ("jax", {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}, 3, ["data.batch_size", "multiple of 2"]),
    ("jax", {"KERAS_DISTRIBUTION_NUM_PROCESSES": "2"}, 4, ["KERAS_DISTRIBUTION_JOB_ADDRESSES"]),
])
def test_what_cannot_work_is_one_line(espeak_vocoder_data, tmp_path, backend, env, batch, words):
    proc = run_cli("train", TINY, "--data", espeak_vocoder_data, "--out", tmp_path / "run", "--strategy",
                   "data-parallel", "--max-steps", 1, "--set", f"data.batch_size={batch}",
                   env={"KERAS_BACKEND": backend, **env}, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in words), lines
