"""ByteNet translation end to end: train on espeak-ng G2P pairs, translate, BLEU/chrF, the recipe."""
import json

import pytest

from conftest import REPO, run_cli
from conftest import text_cli

TINY = REPO / "recipes" / "bytenet_translation" / "tiny.yaml"


@pytest.fixture(scope="module")
def pairs_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("pairs") / "data"
    run_cli("prepare", "pairs", "--input", "espeak-g2p:300", "--out", out)
    return out


@pytest.fixture(scope="module")
def pairs_run(pairs_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("pairs_run") / "run"
    run_cli("train", TINY, "--data", pairs_data, "--out", run, "--max-steps", "40",
            "--set", "train.valid_every=20", "--set", "train.checkpoint_every=40")
    return run


def test_bytenet_translation_trains(pairs_run):
    recs = [json.loads(line) for line in (pairs_run / "metrics.jsonl").read_text().splitlines()]
    train = [r["bits_per_byte"] for r in recs if "bits_per_byte" in r]
    valid = [r["valid_bits_per_byte"] for r in recs if "valid_bits_per_byte" in r]
    assert len(valid) == 2 and train[0] > 6.0
    assert valid[-1] < 8.0 and valid[-1] < train[0] - 1.0
    info = json.loads((pairs_run / "run.json").read_text())
    assert info["data"]["kind"] == "pairs" and info["data"]["num_pairs"]["train"] > 0


def test_batches_by_byte_count_train(pairs_data, tmp_path):
    """data.batch_bytes gives batches of several sizes (one per length bucket); training takes them all."""
    run = tmp_path / "run"
    run_cli("train", TINY, "--data", pairs_data, "--out", run, "--max-steps", "20", "--set", "data.batch_bytes=256",
            "--set", "train.valid_every=20", "--set", "train.log_every=10")
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in recs) == 20
    valid = [r["valid_bits_per_byte"] for r in recs if "valid_bits_per_byte" in r]
    assert len(valid) == 1 and valid[0] < 8.0


def test_translate_prints_one_line_per_input(pairs_run, tmp_path):
    out = text_cli("translate", "--run", pairs_run, "hello world", "the cat sat").stdout
    assert len(out.split("\n")) == 3 and out.endswith("\n")  # two lines
    src = tmp_path / "in.txt"
    src.write_text("a dog\n\nthe cat sat\n", encoding="utf-8")
    out2 = text_cli("translate", "--run", pairs_run, "--input", src, "--beam", "2").stdout.split("\n")
    assert len(out2) == 4 and out2[1] == "" and out2[3] == ""
    p = text_cli("translate", "--run", pairs_run, "x", "--input", src, check=False)
    assert p.returncode != 0


def test_evaluate_bleu_chrf(pairs_run, tmp_path):
    out = tmp_path / "m.json"
    run_cli("evaluate", "--run", pairs_run, "--json", out, "--max-pairs", "6")
    res = json.loads(out.read_text())
    assert res["num_pairs"] == 6 and res["step"] == 40 and res["decoding"] == "greedy"
    assert 0.0 <= res["bleu"] <= 100.0 and 0.0 <= res["chrf"] <= 100.0
    assert res["signature"]["bleu"].startswith("nrefs:1|") and "chrf" in res["signature"]
    res2 = json.loads(run_cli("evaluate", "--run", pairs_run, "--max-pairs", "4", "--beam", "2").stdout)
    assert res2["num_pairs"] == 4 and res2["decoding"] == "beam 2"


def test_bleu_is_100_when_outputs_are_the_references(pairs_data, monkeypatch):
    from seqgen.data import pipeline as D
    from seqgen.tasks import translation

    pairs = dict(D.read_pairs(pairs_data, "valid"))
    monkeypatch.setattr(translation, "translate_texts", lambda model, texts, **kw: [pairs[t] for t in texts])
    res = translation.translation_scores(None, pairs_data, "valid")
    assert res["bleu"] == pytest.approx(100.0) and res["chrf"] == pytest.approx(100.0)
    monkeypatch.setattr(translation, "translate_texts", lambda model, texts, **kw: ["x"] * len(texts))
    assert translation.translation_scores(None, pairs_data, "valid")["bleu"] < 1.0


@pytest.mark.slow  # ~25-40 s: in .ci/run's slow step (the default suite is kept under ~15 min)
def test_all_references_of_a_source_score_one_decode(tmp_path, monkeypatch):
    from seqgen.tasks import translation

    data = tmp_path / "data"
    rows = [("Hello.", "Hallo."), ("Hello.", "Guten Tag."), ("Go.", "Geh."), ("Thanks.", "Danke.")]
    tsv = tmp_path / "p.tsv"
    tsv.write_text("".join(f"{s}\t{t}\n" for s, t in rows), encoding="utf-8")
    run_cli("prepare", "pairs", "--input", tsv, "--out", data, "--valid-fraction", "0.5")
    import shutil

    shutil.copy(tsv, data / "valid-00000.tsv")   # score every row: the valid shard holds them all
    decoded = []
    answer = {"Hello.": "Guten Tag.", "Go.": "Geh.", "Thanks.": "Danke."}   # the second reference of Hello.

    def fake_translate(model, texts, **kw):
        decoded.extend(texts)
        return [answer[t] for t in texts]

    monkeypatch.setattr(translation, "translate_texts", fake_translate)
    every = translation.translation_scores(None, data, "valid", references="all")
    assert sorted(decoded) == ["Go.", "Hello.", "Thanks."]          # each source decoded once
    assert every["chrf"] == pytest.approx(100.0) and every["num_sources"] == 3 and every["num_pairs"] == 4
    assert "nrefs:var" in every["signature"]["chrf"]                 # sacrebleu says the count varies
    one = translation.translation_scores(None, data, "valid", references="first")
    assert one["num_sources"] == one["num_pairs"] == 4 and one["chrf"] < 90.0   # "Hallo." is not matched


def test_bytenet_translation_recipe_tiny(tmp_path):
    """The README's recipe as a new user runs it: no --data, so the embedded G2P default."""
    work = tmp_path / "w"
    p = run_cli("recipe", "run", "bytenet_translation", "--preset", "tiny", "--workdir", work,
                "--max-steps", "20", "--set", "train.steps=20")
    assert "recipe bytenet_translation (tiny) done" in p.stderr
    manifest = json.loads((work / "data" / "manifest.json").read_text())
    assert manifest["source"] == "espeak-g2p" and manifest["num_items"] > 500
    sample = (work / "sample.txt").read_text()
    assert sample.count("source ") == 5 and sample.count("output ") == 5
    m = json.loads((work / "metrics.json").read_text())
    assert m["step"] == 20 and {"bleu", "chrf", "signature", "num_pairs"} <= set(m)


def test_recipe_decodes_a_preset_with_its_own_settings_and_checkpoint_average(tmp_path):
    """sample.presets.PRESET: the recipe averages the newest checkpoints and decodes with the preset's beam and
    length penalty (the long preset's settings, chosen on dev); a second run replaces its earlier average."""
    import shutil

    import yaml

    root = tmp_path / "recipes"
    shutil.copytree(REPO / "recipes" / "bytenet_translation", root / "bytenet_translation")
    spec_path = root / "bytenet_translation" / "recipe.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["sample"]["presets"] = {"tiny": {"beam": 2, "length_penalty": 1.0, "average_last": 2, "max_pairs": 10}}
    spec_path.write_text(yaml.safe_dump(spec))
    work = tmp_path / "w"
    args = ("recipe", "run", "bytenet_translation", "--preset", "tiny", "--workdir", work, "--data",
            "espeak-g2p:300", "--max-steps", "20", "--set", "train.steps=20", "--set", "train.checkpoint_every=10")
    for _ in range(2):
        p = run_cli(*args, env={"SEQGEN_RECIPES": str(root)})
        assert "recipe bytenet_translation (tiny) done" in p.stderr
    m = json.loads((work / "metrics.json").read_text())
    assert m["decoding"] == "beam 2, length penalty 1" and m["num_sources"] == 10
    assert m["run"] == str(work / "average") and m["test"]["decoding"] == m["decoding"]
    info = json.loads((work / "average" / "run.json").read_text())
    assert info["averaged_from"]["steps"] == [10, 20]


def test_preset_settings_of_an_unknown_preset_are_one_line(tmp_path):
    from seqgen.errors import ConfigError
    from seqgen.recipes.runner import sample_settings

    spec = {"folder": tmp_path, "presets": ["tiny", "long"], "sample": {"beam": 0, "presets": {"lng": {"beam": 8}}}}
    with pytest.raises(ConfigError, match=r"sample.presets: no preset 'lng'; presets: tiny, long"):
        sample_settings(spec, "tiny")
    spec["sample"]["presets"] = {"long": {"beam": 8}}
    assert sample_settings(spec, "tiny") == {"beam": 0} and sample_settings(spec, "long") == {"beam": 8}
