"""Checkpoint resilience (issue #7): a full disk during a checkpoint write, and SIGKILL at random moments.

What a user may rely on (seqgen/runs.py, seqgen/training.py):

* a checkpoint write that fails (no space left, file too large, a failed rename)
  leaves the previous checkpoint intact and loadable, no partial ``ckpt-*.keras``
  and no temporary file behind; ``save_checkpoint`` returns None and prints one
  warning line; training goes on and checkpoints again at the next interval;
* a ``seqgen train`` killed with SIGKILL at any moment resumes (``--resume``) from
  its newest checkpoint, losing only the steps since that checkpoint, and every
  checkpoint file left behind loads.
"""
import errno
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, TINY, run_cli
from seqgen import runs as R
from seqgen.runs import Run


# --------------------------------------------------------------------------- disk full (unit level)


def _tiny_model(seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(64), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(seed).normal(size=(8, 4)).astype("float32")
    model.fit(x, x[:, :1], epochs=1, verbose=0)
    return model


def _assert_only_good_checkpoints(run, expected_steps, model):
    names = sorted(p.name for p in run.ckpt_dir.iterdir())
    assert names == sorted([f"ckpt-{s:08d}.keras" for s in expected_steps] + ["latest"]), names
    assert (run.ckpt_dir / "latest").read_text().strip() == f"ckpt-{max(expected_steps):08d}.keras"
    loaded, step, path = run.load_model(use_ema=False)
    assert path.name == f"ckpt-{max(expected_steps):08d}.keras"
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def _fail_mid_write(monkeypatch, model, code=errno.ENOSPC):
    """model.save writes part of the file, then the disk is full."""
    real_save = model.save

    def save(path, *a, **k):
        real_save(path, *a, **k)
        data = open(path, "rb").read()
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(model, "save", save)


def test_disk_full_mid_write_keeps_previous_checkpoint(tmp_path, monkeypatch, capsys):
    run = Run(tmp_path / "run")
    model = _tiny_model()
    assert run.save_checkpoint(model, 10).name == "ckpt-00000010.keras"
    before = (run.ckpt_dir / "ckpt-00000010.keras").read_bytes()
    saved_weights = [w.copy() for w in model.get_weights()]
    model.fit(np.ones((8, 4), "float32"), np.ones((8, 1), "float32"), verbose=0)  # newer weights
    _fail_mid_write(monkeypatch, model)
    capsys.readouterr()
    assert run.save_checkpoint(model, 20) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "step 20" in err[0] and "No space left" in err[0] and "previous checkpoint" in err[0]
    assert (run.ckpt_dir / "ckpt-00000010.keras").read_bytes() == before
    ref = _tiny_model()
    ref.set_weights(saved_weights)
    _assert_only_good_checkpoints(run, [10], ref)
    # space is back: the next interval checkpoints again
    monkeypatch.undo()
    assert run.save_checkpoint(model, 30).name == "ckpt-00000030.keras"
    _assert_only_good_checkpoints(run, [10, 30], model)


@pytest.mark.parametrize("fail_on", ["checkpoint_rename", "latest_write"])
def test_disk_full_on_rename_or_latest_leaves_no_partial_file(tmp_path, monkeypatch, capsys, fail_on):
    run = Run(tmp_path / "run")
    model = _tiny_model()
    run.save_checkpoint(model, 10)
    real_replace = os.replace

    def replace(src, dst, *a, **k):
        name = os.path.basename(str(dst))
        if (fail_on == "checkpoint_rename" and name == "ckpt-00000020.keras") or \
                (fail_on == "latest_write" and name == "latest" and "00000020" in open(src).read()):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(R.os, "replace", replace)
    run.save_checkpoint(model, 20)
    monkeypatch.undo()
    assert "could not write the checkpoint at step 20" in capsys.readouterr().err
    leftovers = [p.name for p in run.ckpt_dir.iterdir() if not (R._CKPT.match(p.name) or p.name == "latest")]
    assert leftovers == [], leftovers
    # whatever is there under a real name is complete; the newest loads
    for step, path in run.checkpoints():
        assert path.stat().st_size > 0
    steps = [s for s, _ in run.checkpoints()]
    assert steps == ([10] if fail_on == "checkpoint_rename" else [20, 10])
    _, _, used = run.load_model(use_ema=False)
    assert used.name == f"ckpt-{steps[0]:08d}.keras"


def test_file_size_limit_during_real_keras_write(tmp_path, capsys):
    """A real short write: RLIMIT_FSIZE makes the kernel refuse bytes past a size (EFBIG)."""
    run = Run(tmp_path / "run")
    model = _tiny_model()
    first = run.save_checkpoint(model, 10)
    size = first.stat().st_size
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size // 3, hard))
        result = run.save_checkpoint(model, 20)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert result is None
    assert "could not write the checkpoint at step 20" in capsys.readouterr().err
    _assert_only_good_checkpoints(run, [10], model)


@pytest.mark.slow  # ~40 s: in .ci/run's slow step (the unit checks of a full disk above stay in the default suite)
def test_training_survives_a_full_disk_and_checkpoints_later(espeak_vocoder_data, tmp_path):
    """`seqgen train` with the disk full at the step-20 checkpoint: one warning line, training goes on."""
    run = tmp_path / "run"
    script = f"""
import resource, signal, sys
from seqgen import runs
real = runs.Run.save_checkpoint
def save(self, model, step, *args, **kwargs):
    if step != 20:
        return real(self, model, step, *args, **kwargs)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # the disk fills up during this write
    try:
        return real(self, model, step, *args, **kwargs)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
runs.Run.save_checkpoint = save
from seqgen import cli
sys.exit(cli.main(sys.argv[1:]))
"""
    env = dict(os.environ, SEQGEN_PROGRESS="0")
    p = subprocess.run([sys.executable, "-c", script, "train", str(TINY), "--data", str(espeak_vocoder_data),
                        "--out", str(run), "--max-steps", "30", "--set", "train.checkpoint_every=10",
                        "--set", "train.valid_every=0"], env=env, cwd=str(REPO), capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    warnings = [ln for ln in p.stderr.splitlines() if "could not write the checkpoint" in ln]
    assert len(warnings) == 1 and "step 20" in warnings[0], p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    r = Run(run)
    assert [s for s, _ in r.checkpoints()] == [30, 10]
    assert not [q for q in r.ckpt_dir.iterdir() if q.name.startswith(".")]
    steps = [rec["step"] for rec in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
             if "loss" in rec]
    assert max(steps) == 30
    for step, path in r.checkpoints():
        import keras

        from seqgen.models.registry import import_all

        import_all()
        m = keras.saving.load_model(path)
        assert int(m.optimizer.iterations.numpy()) == step


# --------------------------------------------------------------------------- SIGKILL at random moments


def _logged_steps(run):
    p = run / "metrics.jsonl"
    if not p.is_file():
        return []
    out = []
    for line in p.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:  # a line cut by the kill
            continue
        if "loss" in rec:
            out.append(rec["step"])
    return out


@pytest.mark.slow  # ~95 s: in .ci/run's slow step (corrupt-checkpoint fallback and the full disk stay in the default suite)
def test_sigkill_at_random_moments_then_resume(espeak_vocoder_data, tmp_path):
    run = tmp_path / "run"
    r = Run(run)
    every = 5
    rng = random.Random(7)
    env = dict(os.environ, SEQGEN_PROGRESS="0")
    common = ["--set", f"train.checkpoint_every={every}", "--set", "train.valid_every=0",
              "--set", "train.log_every=1"]
    resume_from = None
    for kill in range(3):
        log = tmp_path / f"stderr{kill}.txt"
        if resume_from is None:
            args = ["train", str(TINY), "--data", str(espeak_vocoder_data)]
        else:
            args = ["train", "--resume"]
        args += ["--out", str(run), "--max-steps", "1000", *common]
        # the resumed run drops the records of the steps it repeats (those after its checkpoint):
        # it replaces metrics.jsonl, and appends its own records after the ones it kept
        old = _logged_steps(run)
        n_before = len([s for s in old if resume_from is None or s <= resume_from])
        rewritten = len(old) == n_before  # nothing to drop

        def started():
            nonlocal rewritten
            if not rewritten:
                rewritten = (run / "metrics.jsonl").stat().st_ino != inode
            return rewritten and len(_logged_steps(run)) >= n_before + 3

        inode = (run / "metrics.jsonl").stat().st_ino if old else None
        with open(log, "w") as f:
            proc = subprocess.Popen([sys.executable, "-m", "seqgen.cli", *args], env=env, cwd=str(REPO),
                                    stdout=subprocess.DEVNULL, stderr=f)
        # wait until this process has trained a few steps of its own, then a random extra delay
        deadline = time.time() + 240
        while time.time() < deadline and not started():
            assert proc.poll() is None, log.read_text()[-2000:]
            time.sleep(0.1)
        time.sleep(rng.uniform(0.0, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        text = log.read_text()
        if resume_from is not None:
            assert f"resumed from ckpt-{resume_from:08d}.keras at step {resume_from}" in text, text[-2000:]
        mine = _logged_steps(run)[n_before:]
        assert resume_from is None or mine[0] == resume_from + 1  # the step counter continues
        killed_at = max(mine)
        ckpts = r.checkpoints()
        assert ckpts, f"no checkpoint after {killed_at} steps"
        newest = ckpts[0][0]
        # at most the steps since the newest checkpoint are lost (and the kill may
        # have come during the next checkpoint's write: still within one interval + 1 step)
        assert killed_at - newest <= every + 1, (killed_at, newest)
        assert newest >= (resume_from or 0)
        # every checkpoint left behind is complete and loads at its own step
        for step, path in ckpts:
            single = tmp_path / f"one{kill}-{step}"
            (single / "checkpoints").mkdir(parents=True)
            os.link(path, single / "checkpoints" / path.name)
            _, loaded, used = Run(single).load_model(use_ema=False)
            assert loaded == step and used.name == path.name
        resume_from = newest
    # the last resume runs to the end
    p = run_cli("train", "--resume", "--out", run, "--max-steps", resume_from + 5, *common)
    assert f"resumed from ckpt-{resume_from:08d}.keras at step {resume_from}" in p.stderr
    assert r.checkpoints()[0][0] == resume_from + 5
    steps = _logged_steps(run)
    assert steps[-1] == resume_from + 5
    assert steps == list(range(1, resume_from + 6))  # one record per step, none repeated
