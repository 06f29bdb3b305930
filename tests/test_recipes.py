"""`seqgen recipe run`: the README's main job, end to end from the embedded data."""
import json

import soundfile as sf

from conftest import run_cli


def test_tiny_vocoder_recipe_end_to_end_without_data(tmp_path):
    work = tmp_path / "w"
    p = run_cli("recipe", "run", "ljspeech_vocoder", "--preset", "tiny", "--workdir", work,
                "--set", "train.steps=30", "--max-steps", "30")
    for name in ("sample.wav", "sample.png", "metrics.json", "reference.wav"):
        assert (work / name).is_file(), name
    m = json.loads((work / "metrics.json").read_text())
    assert m["step"] == 30 and m["num_samples"] > 0 and m["nll_bits_per_sample"] < 8.0
    manifest = json.loads((work / "data" / "manifest.json").read_text())
    assert manifest["source"] == "espeak:50" and manifest["num_items"] == 50
    wav, sr = sf.read(work / "sample.wav")
    ref, _ = sf.read(work / "reference.wav")
    assert sr == 22050 and len(wav) == len(ref)
    assert "recipe ljspeech_vocoder (tiny) done" in p.stderr
    # Running it again reuses the data and the run (nothing to train: already at the step).
    p2 = run_cli("recipe", "run", "ljspeech_vocoder", "--preset", "tiny", "--workdir", work,
                 "--set", "train.steps=30", "--max-steps", "30")
    assert "reusing prepared data" in p2.stderr and "nothing to do" in p2.stderr


def test_unknown_recipe_and_preset(tmp_path):
    p = run_cli("recipe", "run", "nope", check=False)
    assert p.returncode == 2 and "ljspeech_vocoder" in p.stderr
    p = run_cli("recipe", "run", "ljspeech_vocoder", "--preset", "huge", "--workdir", tmp_path, check=False)
    assert p.returncode == 2 and "tiny, small, full" in p.stderr
    p = run_cli("recipe", "list")
    assert "ljspeech_vocoder" in p.stdout and "fsdd_speakers" in p.stdout
