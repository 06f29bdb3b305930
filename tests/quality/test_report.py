"""`seqgen evaluate --quality` end to end on a tiny run, and its one-line errors."""
import json

import numpy as np
import pytest

from seqgen import quality
from seqgen.errors import SeqgenError

from conftest import cli_here

pytestmark = pytest.mark.usefixtures("quiet_cli")


def test_quality_command_on_a_tiny_run(tiny_run, espeak_vocoder_data, tmp_path, monkeypatch):
    pytest.importorskip("pesq", reason="the [quality] extra is not installed (pip install -e '.[quality]')")
    monkeypatch.setenv("SEQGEN_CACHE", str(tmp_path / "cache"))
    out, png, wavs = tmp_path / "q.json", tmp_path / "q.png", tmp_path / "wavs"
    code, stdout, stderr = cli_here("evaluate", "--run", tiny_run, "--quality", "--max-utterances", "2",
                                    "--json", out, "--plot", png, "--audio-dir", wavs)
    assert code == 0, stderr
    r = json.loads(out.read_text())
    assert r["utterances"]["count"] == len(r["rows"]) >= 1
    assert r["utterances"]["trained_on"] == []  # the valid split: held out, and the command checked it
    for row in r["rows"]:
        assert set(row) >= {"id", "seconds", "model", "griffin_lim", "recording"}
        assert set(row["griffin_lim"]) == set(quality.metrics.HIGHER_IS_BETTER)
        assert set(row["recording"]) == {"dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "voiced_fraction"}
        assert (wavs / f"{row['id']}.model.wav").is_file() and (wavs / f"{row['id']}.griffin_lim.wav").is_file()
    # the floor is a real floor: Griffin-Lim of a recording's own features is close to it
    assert r["mean"]["griffin_lim"]["stoi"] > 0.8 and r["mean"]["griffin_lim"]["log_mel_l1"] < 0.5
    # the paired difference is the mean of the per-utterance differences
    for key in ("pesq_wb", "log_mel_l1"):
        pairs = [(row["model"][key], row["griffin_lim"][key]) for row in r["rows"]
                 if row["model"][key] is not None and row["griffin_lim"][key] is not None]
        if pairs:
            assert r["model_minus_griffin_lim"][key]["mean"] == pytest.approx(np.mean([a - b for a, b in pairs]))
    assert png.is_file() and png.stat().st_size > 10000
    assert "model - GL" in stderr and json.loads(stdout)["step"] == r["step"]
    # the floor and the ceiling do not depend on the model: cached per utterance, the same figures again
    cached = sorted((tmp_path / "cache" / "quality").glob("*.npz"))
    assert len(cached) == len(r["rows"])
    import seqgen

    again = seqgen.load(tiny_run).quality(max_utterances=1, quiet=True, temperature=0.5)
    assert again["rows"][0]["griffin_lim"] == r["rows"][0]["griffin_lim"]
    assert again["rows"][0]["recording"] == r["rows"][0]["recording"]
    assert again["rows"][0]["model"] != r["rows"][0]["model"]  # another temperature: another resynthesis


def test_temperature_chosen_on_dev_then_reported_on_eval(tiny_run, espeak_vocoder_data, tmp_path, monkeypatch):
    pytest.importorskip("pesq", reason="the [quality] extra is not installed (pip install -e '.[quality]')")
    monkeypatch.setenv("SEQGEN_CACHE", str(tmp_path / "cache"))
    splits = json.loads((espeak_vocoder_data / "manifest.json").read_text())["splits"]
    ids = [splits["valid"]["ids"][0], splits["train"]["ids"][0]]   # (the tiny corpus has one held-out clip)
    listed = tmp_path / "yardstick.tsv"
    listed.write_text(f"# a tiny yardstick\nid\tset\tseconds\n{ids[0]}\teval\t0\n{ids[1]}\tdev\t0\n")
    out = tmp_path / "q.json"
    code, _, stderr = cli_here("evaluate", "--run", tiny_run, "--quality", "--utterances", listed,
                               "--temperature", "0.5,1.0", "--json", out)
    assert code == 0, stderr
    r = json.loads(out.read_text())
    choice = r["temperature_choice"]
    assert choice["candidates"] == [0.5, 1.0] and set(choice["dev"]) == {"0.5", "1.0"}
    best = max(choice["candidates"], key=lambda t: (choice["dev"][str(t)]["pesq_wb"], choice["dev"][str(t)]["dnsmos_ovrl"]))
    assert choice["chosen"] == best == r["temperature"]
    assert [row["id"] for row in r["rows"]] == [ids[0]]          # reported on eval, not on the dev row
    code, _, err = cli_here("evaluate", "--run", tiny_run, "--quality", "--temperature", "0.5,1.0")
    assert code == 2 and "--utterances" in err and len(err.strip().splitlines()) == 1


def test_temperature_and_top_p_grid_chosen_on_dev(tiny_run, espeak_vocoder_data, tmp_path, monkeypatch):
    pytest.importorskip("pesq", reason="the [quality] extra is not installed (pip install -e '.[quality]')")
    monkeypatch.setenv("SEQGEN_CACHE", str(tmp_path / "cache"))
    splits = json.loads((espeak_vocoder_data / "manifest.json").read_text())["splits"]
    listed = tmp_path / "yardstick.tsv"
    listed.write_text(f"id\tset\tseconds\n{splits['valid']['ids'][0]}\teval\t0\n{splits['train']['ids'][0]}\tdev\t0\n")
    out = tmp_path / "q.json"
    code, _, err = cli_here("evaluate", "--run", tiny_run, "--quality", "--utterances", listed,
                            "--temperature", "0.5,1.0", "--top-p", "0.8,1.0", "--json", out)
    assert code == 0, err
    r = json.loads(out.read_text())
    choice = r["temperature_choice"]
    assert len(choice["candidates"]) == 4 and set(choice["dev"]) == {"0.5", "1.0", "0.5,top_p=0.8", "1.0,top_p=0.8"}
    assert (choice["temperature"], choice["top_p"]) == (r["temperature"], r["top_p"])
    best = max(choice["dev"].values(), key=lambda v: (v["pesq_wb"], v["dnsmos_ovrl"]))
    chosen = f"{r['temperature']}" if r["top_p"] >= 1 else f"{r['temperature']},top_p={r['top_p']}"
    assert choice["dev"][chosen] == best
    code, _, err = cli_here("evaluate", "--run", tiny_run, "--top-p", "0.9")
    assert code == 2 and "--top-p goes with --quality" in err


def test_quality_errors_are_one_line(tiny_run, tmp_path, monkeypatch, capsys):
    code, _, err = cli_here("evaluate", "--run", tiny_run, "--plot", tmp_path / "x.png")
    assert code == 2 and "--plot draws a curve: add --checkpoint all" in err
    listed = tmp_path / "ids.txt"
    listed.write_text("no-such-utterance\n")
    if not quality.missing():
        code, _, err = cli_here("evaluate", "--run", tiny_run, "--quality", "--utterances", listed)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "no-such-utterance" in err
    monkeypatch.setitem(quality.SCORERS, "seqgen_no_such_scorer", "seqgen-no-such-scorer")
    with pytest.raises(SeqgenError, match=r"\[quality\].*seqgen-no-such-scorer"):
        quality.require()
    code, _, err = cli_here("evaluate", "--run", tiny_run, "--quality")
    assert code == 2 and "pip install -e '.[quality]'" in err and len(err.strip().splitlines()) == 1


def test_quality_of_a_text_run_names_what_applies():
    import types

    from seqgen.tasks.language_model import LanguageModel

    lm = LanguageModel.__new__(LanguageModel)  # the message needs only the run's path and the task's title
    lm.run = types.SimpleNamespace(path="runs/lm")
    with pytest.raises(SeqgenError, match=r"--quality scores vocoder runs; runs/lm is a .* run \(leave out --quality"):
        lm.quality()
