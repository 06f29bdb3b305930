"""`seqgen recipe run`: the README's main job, end to end from the embedded data."""
import json

import pytest
import soundfile as sf

from conftest import cli_here, run_cli


def test_tiny_vocoder_recipe_end_to_end_without_data(tmp_path):
    work = tmp_path / "w"
    p = run_cli("recipe", "run", "ljspeech_vocoder", "--preset", "tiny", "--workdir", work,
                "--set", "train.steps=30", "--max-steps", "30")
    for name in ("sample.wav", "sample.png", "metrics.json", "reference.wav"):
        assert (work / name).is_file(), name
    m = json.loads((work / "metrics.json").read_text())
    assert m["step"] == 30 and m["num_samples"] > 0 and m["nll_bits_per_sample"] < 8.0
    # one unit for every head and bit depth: 8-bit mu-law classes are 1 to ~1400 16-bit steps wide
    assert m["nll_bits_per_sample"] < m["nll_bits_per_16bit_sample"] < m["nll_bits_per_sample"] + 10.5
    from seqgen import quality

    if not quality.missing():  # the quality stage: 2 held-out utterances of the tiny preset, scored
        q = json.loads((work / "quality.json").read_text())
        assert q["utterances"]["count"] == m["quality"]["utterances"]["count"] == 2
        assert (work / "quality.png").is_file() and len(list((work / "quality_audio").glob("*.wav"))) == 4
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


def test_unknown_recipe_and_preset(tmp_path, quiet_cli):
    code, _, err = cli_here("recipe", "run", "nope")
    assert code == 2 and "ljspeech_vocoder" in err
    code, _, err = cli_here("recipe", "run", "ljspeech_vocoder", "--preset", "huge", "--workdir", tmp_path)
    from seqgen.recipes.runner import load_recipe

    presets = load_recipe("ljspeech_vocoder")["presets"]  # every preset is named, in the recipe's order
    assert code == 2 and "no preset 'huge'" in err and ", ".join(presets) in err
    code, out, _ = cli_here("recipe", "list")
    assert code == 0 and "ljspeech_vocoder" in out and "fsdd_speakers" in out


def _fsdd_subset(shared_data, tmp_path, per_speaker=5):
    """A CSV manifest with a few clips of each FSDD speaker (absolute paths)."""
    import csv

    src = shared_data / "fsdd" / "metadata.csv"
    rows, seen = [], {}
    with open(src, newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames
        for row in reader:
            if seen.get(row["speaker"], 0) < per_speaker:
                seen[row["speaker"]] = seen.get(row["speaker"], 0) + 1
                row["path"] = str((src.parent / row["path"]).resolve())
                rows.append(row)
    out = tmp_path / "fsdd_subset.csv"
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return out, sorted(seen)


@pytest.mark.slow  # ~50 s: in .ci/run's slow step (the default suite is kept under ~15 min)
def test_speaker_recipe_and_speaker_choice(shared_data, tmp_path):
    csv_path, speakers = _fsdd_subset(shared_data, tmp_path)
    work = tmp_path / "w"
    run_cli("recipe", "run", "fsdd_speakers", "--preset", "tiny", "--data", csv_path, "--workdir", work,
            "--max-steps", "20")
    manifest = json.loads((work / "data" / "manifest.json").read_text())
    assert manifest["speakers"] == speakers and len(speakers) == 6
    assert manifest["sample_rate"] == 8000
    run = work / "run"
    assert json.loads((run / "run.json").read_text())["data"]["speakers"] == speakers
    outs = {}
    for spk in ("theo", "jackson"):
        outs[spk] = tmp_path / f"{spk}.wav"
        run_cli("sample", "--run", run, "--mel-from", work / "reference.wav", "--speaker", spk, "--seed", "3",
                "--out", outs[spk])
    a, _ = sf.read(outs["theo"])
    b, _ = sf.read(outs["jackson"])
    assert len(a) == len(b) and (a != b).any()  # the speaker embedding changes the output
    p = run_cli("sample", "--run", run, "--mel-from", work / "reference.wav", "--speaker", "nobody",
                "--out", tmp_path / "x.wav", check=False)
    assert p.returncode == 2 and "theo" in p.stderr



@pytest.mark.slow
def test_speaker_recipe_default_data(shared_data, tmp_path):
    """The fsdd_speakers recipe on the whole shared FSDD set (its default data)."""
    work = tmp_path / "w"
    run_cli("recipe", "run", "fsdd_speakers", "--preset", "tiny", "--workdir", work)
    manifest = json.loads((work / "data" / "manifest.json").read_text())
    assert manifest["num_items"] == 2700 and len(manifest["speakers"]) == 6
    assert json.loads((work / "metrics.json").read_text())["nll_bits_per_sample"] < 8.0


# --------------------------------------------------------------------------- default data


def _recipes():
    from seqgen.recipes import runner as recipes

    return [recipes.load_recipe(name) for name, _ in recipes.list_recipes()]


@pytest.mark.parametrize("name", ["byte_lm", "bytenet_translation", "fsdd_speakers", "ljspeech_vocoder",
                                  "parallel_wavenet"])
def test_every_recipe_default_data_is_usable(name, monkeypatch, tmp_path):
    """Each recipe's default source passes the runner's own check (cheap: nothing is prepared).

    A default that lives only in the shared data must, when absent, stop in one line saying so
    and what to pass instead."""
    from seqgen.recipes import runner as recipes
    from seqgen.errors import SeqgenError

    assert sorted(n for n, _ in recipes.list_recipes()) == ["byte_lm", "bytenet_translation", "fsdd_speakers",
                                                            "ljspeech_vocoder", "parallel_wavenet"]
    spec = recipes.load_recipe(name)
    if spec.get("shared_input"):
        # As on a machine without the shared data: the repository sits in an empty folder.
        fake_root = tmp_path / "repo" / "recipes"
        fake_root.mkdir(parents=True)
        monkeypatch.setenv("SEQGEN_RECIPES", str(fake_root))
        with pytest.raises(SeqgenError) as err:
            recipes.check_input(spec)
        msg = str(err.value)
        assert "\n" not in msg and "shared data" in msg and "--data" in msg
        monkeypatch.delenv("SEQGEN_RECIPES")
        if not (recipes.recipes_root().parent / spec["default_input"]).exists():
            pytest.skip(f"{name}'s default data ({spec['default_input']}) is not on this machine")
    assert recipes.check_input(spec)


def test_g2p_default_gives_every_available_pair_and_a_count_too_large_is_one_line(tmp_path):
    from data_prep import sources as embedded_sources
    from data_prep.sources.g2p import g2p_source_size
    from seqgen.errors import DataError

    available = embedded_sources.g2p_available()
    assert available >= 500
    assert g2p_source_size("espeak-g2p") is None and g2p_source_size("espeak-g2p:all") is None
    assert g2p_source_size("espeak-g2p:7") == 7 and g2p_source_size("pairs.tsv") is False
    with pytest.raises(DataError, match=f"offers {available} distinct"):
        g2p_source_size(f"espeak-g2p:{available + 1}")
    # The first pairs of the full set are the pairs asked for by count (same seed, same order).
    assert embedded_sources.g2p_pairs(3) == embedded_sources.g2p_pairs(None)[:3]
    text, ipa = embedded_sources.g2p_pairs(1)[0]
    assert text and ipa and text != ipa
    p = run_cli("recipe", "run", "bytenet_translation", "--data", f"espeak-g2p:{available + 1}",
                "--workdir", tmp_path / "w", check=False)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "espeak-g2p" in p.stderr
    assert not (tmp_path / "w" / "data").exists()


@pytest.mark.slow  # prepares every recipe's whole default corpus (espeak-ng synthesis, G2P, prose, FSDD): ~45 s
@pytest.mark.parametrize("name", ["byte_lm", "bytenet_translation", "fsdd_speakers", "ljspeech_vocoder",
                                  "parallel_wavenet"])
def test_full_default_prepare_of_every_recipe(name, tmp_path):
    from seqgen.recipes import runner as recipes

    spec = recipes.load_recipe(name)
    try:
        src = recipes.check_input(spec)
    except Exception as e:  # only the shared-data default may be missing here
        assert spec.get("shared_input"), e
        pytest.skip(str(e))
    from seqgen.tasks.base import task_for_recipe

    args = ["prepare", task_for_recipe(spec).kind, "--input", src, "--out", tmp_path / "data"]
    for key, value in (spec.get("prepare") or {}).items():
        args += ["--" + key.replace("_", "-"), value]
    run_cli(*args, timeout=1200)
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    assert manifest["source"] == src
    for split in ("train", "valid"):
        size = manifest["splits"][split]
        assert size.get("num_items", size.get("num_bytes", 0)) > 0, (split, size)
