"""`seqgen distill` and the parallel_wavenet recipe end to end (teacher -> student -> parallel sample)."""
import json
import os
import subprocess
import sys

import pytest
import soundfile as sf

from conftest import REPO, run_cli

RECIPE = REPO / "recipes" / "parallel_wavenet"


@pytest.mark.slow  # ~40-70 s: in .ci/run's slow step (the default suite is kept under ~15 min)
def test_tiny_recipe_end_to_end_then_parallel_sample(tmp_path):
    work = tmp_path / "w"
    p = run_cli("recipe", "run", "parallel_wavenet", "--preset", "tiny", "--workdir", work,
                "--set", "teacher.train.steps=20", "--set", "student.train.steps=10")
    assert "recipe parallel_wavenet (tiny) done" in p.stderr
    teacher, student = work / "teacher", work / "student"
    info = json.loads((student / "run.json").read_text())
    assert info["model_type"] == "parallel_wavenet" and info["teacher"]["run"] == str(teacher.resolve())
    assert info["teacher"]["step"] == 20
    for f in ("loss.png", "config.yaml", "checkpoints/ckpt-00000010.keras", "samples/step-00000010.png"):
        assert (student / f).is_file(), f
    assert any((student / "tb").iterdir())
    recs = [json.loads(line) for line in (student / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in recs if "kl" in r]
    valid = [r for r in recs if "valid_kl" in r]
    assert [r["step"] for r in train] == [5, 10]
    for r in train:
        assert abs(r["kl"] - (r["cross_entropy"] - r["entropy"])) < 1e-3 and r["power"] > 0
    assert valid and valid[-1]["step"] == 10
    assert {"valid_teacher_nll_student", "valid_teacher_nll_real"} <= set(valid[-1])
    m = json.loads((work / "metrics.json").read_text())
    assert m["student"]["step"] == 10 and m["teacher"]["step"] == 20
    assert m["student"]["parallel_samples_per_sec"] > 0 and m["teacher"]["cached_samples_per_sec"] > 0
    from seqgen import quality
    from seqgen.quality.metrics import HIGHER_IS_BETTER

    if not quality.missing():  # the quality stage: teacher and student on the same 2 held-out utterances
        q = m["quality"]
        assert q["teacher"]["utterances"]["count"] == q["student"]["utterances"]["count"] == 2
        for who in ("teacher", "student"):
            rep = json.loads((work / f"quality_{who}.json").read_text())
            assert rep["method"] == ("cached" if who == "teacher" else "parallel")
            assert (work / f"quality_{who}.png").is_file()
            assert len(list((work / f"quality_{who}_audio").glob("*.model.wav"))) == 2
            assert q[who]["mean"]["pesq_wb"] == rep["mean"]["model"]["pesq_wb"]
        d = q["student_minus_teacher"]
        assert set(d) == set(HIGHER_IS_BETTER) and d["stoi"]["n"] == 2
        assert abs(d["stoi"]["mean"] - (q["student"]["mean"]["stoi"] - q["teacher"]["mean"]["stoi"])) < 1e-9
    ref, sr = sf.read(work / "reference.wav")
    for name in ("sample.wav", "teacher_sample.wav"):
        wav, sr2 = sf.read(work / name)
        assert sr2 == sr == 22050 and len(wav) == len(ref) and wav.std() > 0

    # seqgen sample --method parallel on the student run
    out = tmp_path / "student.wav"
    p = run_cli("sample", "--run", student, "--method", "parallel", "--mel-from", work / "reference.wav",
                "--out", out, "--seed", "3", "--json", tmp_path / "s.json")
    wav, _ = sf.read(out)
    assert len(wav) == len(ref) and "parallel" in p.stderr
    assert json.loads((tmp_path / "s.json").read_text())["method"] == "parallel"
    # a non-student run with --method parallel, and a student with --method cached: one-line errors
    p = run_cli("sample", "--run", teacher, "--method", "parallel", "--mel-from", work / "reference.wav",
                "--out", tmp_path / "x.wav", check=False)
    assert p.returncode == 2 and p.stderr.strip().splitlines()[-1].startswith("seqgen: error: --method parallel")
    assert "Traceback" not in p.stderr
    p = run_cli("sample", "--run", student, "--method", "cached", "--mel-from", work / "reference.wav",
                "--out", tmp_path / "x.wav", check=False)
    assert p.returncode == 2 and "--method parallel" in p.stderr

    # --resume continues the distillation where it stopped
    p = run_cli("distill", "--out", student, "--resume", "--max-steps", "15", "--set", "train.valid_every=0")
    assert "resumed from ckpt-00000010.keras at step 10" in p.stderr
    recs = [json.loads(line) for line in (student / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs if "kl" in r][-1] == 15

    # bad pairings are clear errors (in process: they fail before any training)
    import pytest

    from seqgen.train import distillation

    from seqgen.train import loop as training
    from seqgen.errors import ConfigError, SeqgenError

    data = work / "data"
    with pytest.raises(ConfigError, match="seqgen distill"):
        training.train(RECIPE / "student_tiny.yaml", data, tmp_path / "r1", quiet=True)
    with pytest.raises(ConfigError, match="seqgen train"):
        distillation.distill(RECIPE / "teacher_tiny.yaml", teacher, data, tmp_path / "r2", quiet=True)
    with pytest.raises(SeqgenError, match="--teacher .*parallel_wavenet run"):
        distillation.distill(RECIPE / "student_tiny.yaml", student, data, tmp_path / "r3", quiet=True)
    with pytest.raises(ConfigError, match="Gaussian teacher"):
        distillation.distill(RECIPE / "student_tiny.yaml", teacher, data, tmp_path / "r4", quiet=True,
                             overrides=["distill.kl=closed_form"])


def test_student_config_errors(tmp_path):
    from seqgen import config as C
    from seqgen.errors import ConfigError

    cfg = C.load(RECIPE / "student_tiny.yaml")
    assert cfg["distill"]["mc_samples"] == 2 and cfg["model"]["flow_layers"] == [2, 2]
    for bad, key in (("distill.kl=exact", "distill.kl"), ("distill.mc_sample=3", "mc_samples"),
                     ("model.hop_length=8", "taken from the prepared data")):
        try:
            C.load(RECIPE / "student_tiny.yaml", [bad])
        except ConfigError as e:
            assert key in str(e)
        else:
            raise AssertionError(f"{bad} was accepted")
    try:
        C.load(RECIPE / "teacher_tiny.yaml", ["distill.mc_samples=3"])
    except ConfigError as e:
        assert "student" in str(e)
    else:
        raise AssertionError("a distill section in a teacher config was accepted")


def test_student_core_does_not_import_tensorflow_under_jax():
    code = (
        "import sys, numpy as np\n"
        "from seqgen.models.parallel_wavenet import ParallelWaveNet\n"
        "from seqgen.models.wavenet import WaveNet\n"
        "from seqgen.train.distillation import attach\n"
        "s = ParallelWaveNet(flow_layers=[1, 1], residual_channels=4, gate_channels=4, skip_channels=4,"
        " cond_channels=2, hop_length=2)\n"
        "t = WaveNet(num_stacks=1, layers_per_stack=2, residual_channels=4, gate_channels=4, skip_channels=4,"
        " cond_channels=2, hop_length=2, distribution={'type': 'gaussian'})\n"
        "d = attach(s, t, mc_samples=2, power_n_fft=8)\n"
        "mel = np.zeros((1, 8, 2), np.float32)\n"
        "out = s({'mel': mel})\n"
        "terms = d.terms(s, {'mel': mel}, np.zeros((1, 16), np.float32), None, out)\n"
        "assert s.generate(mel=mel[0]).shape == (1, 16)\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
        "print('ok', float(terms['kl']))\n")
    env = dict(os.environ, KERAS_BACKEND="jax")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(REPO),
                       timeout=300)
    assert p.returncode == 0 and p.stdout.startswith("ok"), p.stderr[-2000:]


def test_a_pre_emphasized_teacher_is_refused_in_one_line():
    import pytest

    from seqgen.errors import ConfigError
    from seqgen.models import WaveNet
    from seqgen.train.distillation import Distillation

    teacher = WaveNet(num_stacks=1, layers_per_stack=2, residual_channels=4, gate_channels=8, skip_channels=8,
                      cond_channels=5, hop_length=8, pre_emphasis=0.86,
                      distribution={"type": "gaussian"})
    with pytest.raises(ConfigError, match="model.pre_emphasis 0.86"):
        Distillation(teacher)
