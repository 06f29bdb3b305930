"""The run directory: run.json's format version, and runs that move between backends."""
import json
import pathlib

import pytest

from seqgen.runs import RUN_FORMAT_VERSION, Run, RunError


def test_run_json_carries_its_format_version_and_a_newer_one_is_one_line(tmp_path):
    run = Run(tmp_path / "run")
    run.write_info({"model_type": "wavenet"})
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info == {"format_version": RUN_FORMAT_VERSION, "model_type": "wavenet"}
    assert run.info() == info
    (tmp_path / "run" / "run.json").write_text(json.dumps({"model_type": "wavenet"}))  # before versions
    assert run.info()["model_type"] == "wavenet"
    (tmp_path / "run" / "run.json").write_text(json.dumps({"format_version": RUN_FORMAT_VERSION + 1}))
    with pytest.raises(RunError, match=r"run format \d+ is newer than this seqgen reads.*upgrade seqgen"):
        run.info()


def _under(backend, steps, tmp_path):
    """Run ``seqgen`` commands in one process under ``backend``; returns its stdout."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    code = ("import sys, json\nfrom seqgen import cli\n"
            "for args in json.loads(sys.argv[1]):\n    assert cli.main(args) == 0, args\n")
    env = {**os.environ, "KERAS_BACKEND": backend, "SEQGEN_PROGRESS": "0"}
    r = subprocess.run([sys.executable, "-c", code, json.dumps([[str(a) for a in s] for s in steps])],
                       capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert r.returncode == 0, f"under {backend}:\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.mark.slow  # ~80 s (three processes, two backends): in .ci/run's slow step
def test_a_run_moves_between_jax_and_tensorflow_both_ways(espeak_vocoder_data, tmp_path):
    """Trained under JAX, a run scores the same held-out NLL under TensorFlow, resumes there with its
    optimizer and step, samples; the TensorFlow checkpoint then scores the same under JAX and resumes
    and samples there."""
    import numpy as np
    import soundfile as sf

    from tests.conftest import TINY

    pytest.importorskip("jax")
    run, data = tmp_path / "run", espeak_vocoder_data
    tone = tmp_path / "tone.wav"
    sf.write(tone, 0.3 * np.sin(2 * np.pi * 220 * np.arange(3200) / 16000), 16000)

    def evaluate(name):
        return ["evaluate", "--run", run, "--data", data, "--max-windows", "2", "--json", tmp_path / name]

    def resume(to):
        return ["train", "--data", data, "--out", run, "--resume", "--max-steps", to, "--set", "train.valid_every=0"]

    def nll(name):
        return json.loads((tmp_path / name).read_text())["nll_bits_per_sample"]

    _under("jax", [["train", TINY, "--data", data, "--out", run, "--max-steps", 4, "--set", "train.valid_every=0",
                    "--set", "train.checkpoint_every=2"], evaluate("jax4.json")], tmp_path)
    _under("tensorflow", [evaluate("tf4.json"), resume(6), evaluate("tf6.json"),
                          ["sample", "--run", run, "--mel-from", tone, "--out", tmp_path / "tf.wav"]], tmp_path)
    _under("jax", [evaluate("jax6.json"), resume(8),
                   ["sample", "--run", run, "--mel-from", tone, "--out", tmp_path / "jax.wav"]], tmp_path)

    assert json.loads((tmp_path / "jax4.json").read_text())["step"] == 4
    assert json.loads((tmp_path / "tf6.json").read_text())["step"] == 6
    assert nll("tf4.json") == pytest.approx(nll("jax4.json"), abs=1e-3)
    assert nll("jax6.json") == pytest.approx(nll("tf6.json"), abs=1e-3)
    assert abs(nll("tf6.json") - nll("tf4.json")) > 1e-3  # the resumed steps trained
    ckpts = sorted(p.name for p in (run / "checkpoints").glob("ckpt-*.keras"))
    assert ckpts[-1].startswith("ckpt-00000008"), ckpts
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
             if '"loss"' in line]
    assert steps == sorted(steps) and steps[-1] == 8  # one history, no step trained twice
    for wav in ("tf.wav", "jax.wav"):
        audio, _ = sf.read(tmp_path / wav)
        assert len(audio) > 0 and np.isfinite(audio).all()


class _Saves:
    """What ``Run.save_checkpoint`` needs of a model: ``save(path)``."""

    def save(self, path):
        pathlib.Path(path).write_bytes(b"checkpoint")


def test_pruning_keeps_the_newest_and_every_multiple_of_keep_every(tmp_path):
    run = Run(tmp_path / "run")
    for step in range(50, 501, 50):
        run.save_checkpoint(_Saves(), step, keep=2, keep_every=200)
    assert sorted(s for s, _ in run.checkpoints()) == [200, 400, 450, 500]
    assert run.steps_text() == "steps 200, 400, 450, 500"
    plain = Run(tmp_path / "plain")
    for step in range(50, 501, 50):
        plain.save_checkpoint(_Saves(), step, keep=2)
    assert sorted(s for s, _ in plain.checkpoints()) == [450, 500]
    with pytest.raises(RunError, match=r"no checkpoint at step 300; it has steps 200, 400, 450, 500"):
        run.load_model(step=300)


def test_training_minutes_add_up_across_resumed_processes(tmp_path):
    run = Run(tmp_path / "run")
    run.path.mkdir()
    rows = [{"step": 10, "time": 60.0}, {"step": 20, "time": 120.0}, {"step": 20, "valid_bits_per_sample": 5.0,
            "time": 150.0}, "not json", {"step": 30, "time": 30.0}, {"step": 40, "time": 90.0}]
    (run.path / "metrics.jsonl").write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows))
    # the second process (resumed at step 20) starts its clock at 0: its minutes come after the first's 150 s
    assert run.training_minutes() == {10: 1.0, 20: 2.5, 30: 3.0, 40: 4.0}
