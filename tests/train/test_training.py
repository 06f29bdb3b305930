"""`seqgen train`: checkpoints, resume after SIGKILL, lock, corrupt-checkpoint fallback."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, TINY, run_cli
from seqgen.runs import Run


def _steps(run):
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss" in r]


@pytest.mark.slow  # ~25-40 s each: in .ci/run's slow step (the default suite is kept under ~15 min)
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_sigkill_then_resume_continues_step_and_loss_falls(espeak_vocoder_data, tmp_path, backend):
    if backend == "jax":
        pytest.importorskip("jax")
    run = tmp_path / "run"
    env = dict(os.environ, SEQGEN_PROGRESS="0", KERAS_BACKEND=backend)
    cmd = [sys.executable, "-m", "seqgen.cli", "train", str(TINY), "--data", str(espeak_vocoder_data),
           "--out", str(run), "--max-steps", "400", "--set", "train.checkpoint_every=10",
           "--set", "train.valid_every=0", "--set", "train.log_every=5"]
    proc = subprocess.Popen(cmd, env=env, cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    r = Run(run)
    deadline = time.time() + 300
    while time.time() < deadline and not (r.checkpoints() and r.checkpoints()[0][0] >= 30):
        time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = max(rec["step"] for rec in _steps(run))
    last_ckpt = r.checkpoints()[0][0]
    assert 30 <= last_ckpt <= killed_at
    # The newest checkpoint left by the kill is complete: it loads, at its own step (here, under this
    # process's backend: checkpoints move between backends).
    _, loaded_step, _ = Run(run).load_model(use_ema=False)
    assert loaded_step == last_ckpt
    before = [rec["loss"] for rec in _steps(run)]
    # the resumed run drops the records of the steps after its checkpoint (it repeats those steps)
    kept = [rec for rec in _steps(run) if rec["step"] <= last_ckpt]

    p = run_cli("train", "--out", run, "--resume", "--max-steps", last_ckpt + 40, "--set", "train.valid_every=0",
                "--set", "train.log_every=5", env={"KERAS_BACKEND": backend})
    assert f"resumed from ckpt-{last_ckpt:08d}.keras at step {last_ckpt}" in p.stderr
    recs = _steps(run)
    after = recs[len(kept):]
    assert after, "no steps logged after resume"
    assert [rec["step"] for rec in recs] == list(range(5, last_ckpt + 41, 5))  # one record per step
    # The step counter continues from the checkpoint (not from 0, not from the kill point).
    assert after[0]["step"] == last_ckpt + 5
    assert after[-1]["step"] == last_ckpt + 40
    assert r.checkpoints()[0][0] == last_ckpt + 40
    # The loss keeps falling: the end of the resumed run is below the start of the first run.
    assert np.mean([a["loss"] for a in after[-3:]]) < np.mean(before[:3])


def test_second_trainer_on_same_run_is_refused(espeak_vocoder_data, tmp_path):
    run = tmp_path / "run"
    holder = Run(run)
    holder.lock()
    try:
        p = run_cli("train", TINY, "--data", espeak_vocoder_data, "--out", run, "--max-steps", "2", check=False)
    finally:
        holder.unlock()
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert lines[-1].startswith("seqgen: error:") and "another `seqgen train`" in lines[-1]
    assert "Traceback" not in p.stderr


def test_existing_run_needs_resume(tiny_run, espeak_vocoder_data):
    p = run_cli("train", TINY, "--data", espeak_vocoder_data, "--out", tiny_run, "--max-steps", "2", check=False)
    assert p.returncode == 2 and "--resume" in p.stderr


def test_corrupt_newest_checkpoint_falls_back(espeak_vocoder_data, tmp_path):
    run = tmp_path / "run"
    run_cli("train", TINY, "--data", espeak_vocoder_data, "--out", run, "--max-steps", "20",
            "--set", "train.checkpoint_every=10", "--set", "train.valid_every=0")
    r = Run(run)
    (newest, path), (older, _) = r.checkpoints()[:2]
    assert (newest, older) == (20, 10)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # truncated
    model, step, used = r.load_model(use_ema=False)
    assert step == 10 and used.name == "ckpt-00000010.keras"


def test_bad_data_dir_is_one_line(tmp_path):
    p = run_cli("train", TINY, "--data", tmp_path / "missing", "--out", tmp_path / "run", check=False)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1].startswith("seqgen: error:")
    assert "seqgen prepare" in p.stderr and "Traceback" not in p.stderr


def test_logged_loss_is_per_window_not_a_running_mean(espeak_vocoder_data, tmp_path):
    # learning rate 0: the model never changes, so every batch loss is an
    # independent draw around one value.  A running mean (what Keras reports
    # within an epoch) would change by ~1/step between logs; per-step values
    # keep their spread.
    run = tmp_path / "run"
    run_cli("train", TINY, "--data", espeak_vocoder_data, "--out", run, "--max-steps", "40",
            "--set", "train.learning_rate=0", "--set", "train.log_every=1", "--set", "train.valid_every=0",
            "--set", "train.checkpoint_every=1000")
    losses = np.array([r["loss"] for r in _steps(run)])
    assert len(losses) == 40
    early, late = np.abs(np.diff(losses[:11])).mean(), np.abs(np.diff(losses[-11:])).mean()
    assert late > 0.3 * early > 0


def _nan_loop(at_step, **kw):
    """A TrainLoop whose 'loss' is NaN at one global step (the callbacks see exactly what a real
    non-finite loss gives them)."""
    from seqgen.train.loop import TrainLoop

    class NanAt(TrainLoop):
        def batch_loss(self, logs):
            loss = super().batch_loss(logs)
            self.batches = getattr(self, "batches", 0) + 1
            return float("nan") if self.batches == at_step else loss

    return NanAt(TINY, kw.pop("data"), kw.pop("out"), quiet=False,
                 overrides=[f"train.{k}={v}" for k, v in kw.items()])


@pytest.mark.multibackend  # CI runs it under JAX too
@pytest.mark.parametrize("policy", ["skip", pytest.param("stop", marks=pytest.mark.slow)])
def test_a_non_finite_loss_never_reaches_a_checkpoint(espeak_vocoder_data, tmp_path, capsys, policy, monkeypatch):
    """train.on_nan: skip rolls back to the last checkpoint and goes on to the end; stop ends the run
    there. Either way no checkpoint is written from the non-finite step."""
    monkeypatch.setenv("SEQGEN_PROGRESS", "0")
    run = tmp_path / "run"
    summary = _nan_loop(8, data=espeak_vocoder_data, out=run, steps=12, checkpoint_every=5, log_every=1,
                        valid_every=0, on_nan=policy, jit_compile="false").run_training()
    err = capsys.readouterr().err
    steps = sorted(s for s, _ in Run(run).checkpoints())
    if policy == "skip":
        assert "non-finite loss; rolled back to ckpt-00000005.keras (step 5)" in err
        assert summary["step"] == 12 and summary["stopped_by"] == "end of run"
        assert steps[-1] == 12 and 10 in steps
        logged = [r["step"] for r in _steps(run)]
        assert logged[:7] == [1, 2, 3, 4, 5, 6, 7] and logged[7] == 6 and logged[-1] == 12  # the NaN batch: no record
    else:
        assert "non-finite loss at step 8; stopping (train.on_nan: stop)" in err
        assert summary["stopped_by"] == "nan" and summary["step"] == 8
        assert steps == [5]
    model, _, _ = Run(run).load_model(compile=False)
    assert all(np.all(np.isfinite(np.asarray(w))) for w in model.weights)


def test_adam_beta2_reaches_the_optimizer_and_is_checked(tmp_path):
    from seqgen import config as C
    from seqgen.errors import ConfigError
    from seqgen.train.loop import make_optimizer

    t = dict(C.DEFAULTS["train"])
    assert make_optimizer(t).beta_2 == pytest.approx(0.999)
    assert make_optimizer({**t, "adam_beta2": 0.99}).beta_2 == pytest.approx(0.99)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {type: transformer}\ntrain: {adam_beta2: 1.0}\n")
    with pytest.raises(ConfigError, match="'train.adam_beta2' must be in"):
        C.load(bad)
