"""The Keras backend seqgen picks, and a JAX process that never imports TensorFlow."""
import json
import os
import subprocess
import sys

import pytest

from seqgen.utils import backend
from tests.conftest import REPO, TINY


def test_name_reads_the_environment_then_keras_json(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert backend.name() == "tensorflow"  # Keras' default
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax"}))
    assert backend.name() == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert backend.name() == "torch"
    (tmp_path / "keras.json").write_text("{not json")
    monkeypatch.delenv("KERAS_BACKEND")
    assert backend.name() == "tensorflow"


@pytest.mark.parametrize("has_tf,has_jax,expected", [(False, True, "jax"), (True, True, None),
                                                      (False, False, None)])
def test_choose_names_jax_only_where_tensorflow_is_missing(monkeypatch, tmp_path, has_tf, has_jax, expected):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setattr(backend, "installed", lambda m: {"tensorflow": has_tf, "jax": has_jax}[m])
    backend.choose()
    assert os.environ.get("KERAS_BACKEND") == expected


def test_choose_overrides_the_tensorflow_that_keras_json_names_only_when_it_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "tensorflow"}))  # as Keras writes it
    monkeypatch.setattr(backend, "installed", lambda m: m == "jax")
    backend.choose()
    assert os.environ.get("KERAS_BACKEND") == "jax"


def test_a_missing_backend_is_one_line_naming_the_extra(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setattr(backend, "installed", lambda m: False)
    msg = backend.missing_message()
    assert "tensorflow" in msg and ".[tf]" in msg and "\n" not in msg
    monkeypatch.setattr(backend, "installed", lambda m: True)
    assert backend.missing_message() is None


def test_choose_keeps_a_named_backend(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setattr(backend, "installed", lambda m: m == "jax")
    backend.choose()
    assert os.environ["KERAS_BACKEND"] == "tensorflow"


def test_a_jax_run_trains_evaluates_and_samples_without_importing_tensorflow(espeak_vocoder_data, tmp_path):
    """TensorFlow is installed here; under JAX, training (checkpoints, TensorBoard, validation),
    evaluation, a resumed run and sampling leave it out of ``sys.modules``."""
    pytest.importorskip("jax")
    import numpy as np
    import soundfile as sf

    run, wav, tone = tmp_path / "run", tmp_path / "out.wav", tmp_path / "tone.wav"
    sf.write(tone, 0.3 * np.sin(2 * np.pi * 220 * np.arange(3200) / 16000), 16000)
    code = (
        "import sys, json\n"
        "from seqgen import cli\n"
        "argv = json.loads(sys.argv[1])\n"
        "for args in argv:\n"
        "    assert cli.main(args) == 0, args\n"
        "print('LOADED=' + ','.join(sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow')))\n"
    )
    steps = [
        ["train", str(TINY), "--data", str(espeak_vocoder_data), "--out", str(run), "--max-steps", "4",
         "--set", "train.valid_every=2", "--set", "train.checkpoint_every=2"],
        ["train", "--data", str(espeak_vocoder_data), "--out", str(run), "--resume", "--max-steps", "6",
         "--set", "train.valid_every=0"],
        ["evaluate", "--run", str(run), "--data", str(espeak_vocoder_data), "--max-windows", "2"],
        ["sample", "--run", str(run), "--mel-from", str(tone), "--out", str(wav)],
    ]
    env = {**os.environ, "KERAS_BACKEND": "jax", "SEQGEN_PROGRESS": "0"}
    r = subprocess.run([sys.executable, "-c", code, json.dumps(steps)], capture_output=True, text=True, env=env,
                       cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "LOADED=\n" in r.stdout, r.stdout[-500:]
    assert sorted(p.name for p in (run / "checkpoints").glob("*.keras"))[-1].startswith("ckpt-00000006")
    assert (run / "metrics.jsonl").is_file() and list((run / "tb").glob("events.out.tfevents.*"))
    assert wav.stat().st_size > 44
