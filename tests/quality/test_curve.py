"""`seqgen evaluate --checkpoint`: one checkpoint, or a curve over the checkpoints a run kept."""
import json

import pytest

from conftest import TINY, cli_here

pytestmark = pytest.mark.usefixtures("quiet_cli")


@pytest.fixture(scope="module")
def kept_run(espeak_vocoder_data, tmp_path_factory):
    """The tiny preset for 20 steps, checkpointed every 5, keeping the newest and every 10th."""
    run = tmp_path_factory.mktemp("kept") / "run"
    code, _, err = cli_here("train", TINY, "--data", espeak_vocoder_data, "--out", run, "--max-steps", "20",
                            "--set", "train.checkpoint_every=5", "--set", "train.keep_checkpoints=1",
                            "--set", "train.keep_checkpoint_every=10", "--set", "train.valid_every=10",
                            "--set", "train.audio_seconds=0")
    assert code == 0, err
    return run


def test_a_named_checkpoint_is_the_one_evaluated_and_a_missing_one_is_one_line(kept_run, tmp_path):
    from seqgen.runs import Run

    assert sorted(s for s, _ in Run(kept_run).checkpoints()) == [10, 20]
    results = {}
    for step in (10, 20):
        code, out, err = cli_here("evaluate", "--run", kept_run, "--checkpoint", step, "--max-windows", "2")
        assert code == 0, err
        results[step] = json.loads(out)
        assert results[step]["step"] == step and results[step]["checkpoint"] == f"ckpt-{step:08d}.keras"
    assert results[10]["nll_bits_per_sample"] != results[20]["nll_bits_per_sample"]
    png = tmp_path / "curve.png"
    code, out, err = cli_here("evaluate", "--run", kept_run, "--checkpoint", "all", "--max-windows", "2",
                              "--plot", png)
    assert code == 0, err
    curve = json.loads(out)
    points = curve["points"]
    assert [p["step"] for p in points] == [10, 20]
    # each point carries the training minutes up to its step, and the curve is drawn against them
    assert 0 < points[0]["minutes"] <= points[1]["minutes"]
    assert curve["plot"] == str(png) and png.stat().st_size > 1000
    assert [p["nll_bits_per_sample"] for p in points] == [results[10]["nll_bits_per_sample"],
                                                          results[20]["nll_bits_per_sample"]]
    code, _, err = cli_here("evaluate", "--run", kept_run, "--checkpoint", "15")
    assert code == 2 and "no checkpoint at step 15; it has steps 10, 20" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as e:  # argparse's own usage error
        cli_here("evaluate", "--run", kept_run, "--checkpoint", "ten")
    assert e.value.code == 2


def test_quality_curve_over_kept_checkpoints(kept_run, tmp_path, monkeypatch):
    pytest.importorskip("pesq", reason="the [quality] extra is not installed (pip install -e '.[quality]')")
    monkeypatch.setenv("SEQGEN_CACHE", str(tmp_path / "cache"))
    out, png = tmp_path / "curve.json", tmp_path / "curve.png"
    code, stdout, err = cli_here("evaluate", "--run", kept_run, "--quality", "--checkpoint", "all",
                                 "--max-utterances", "1", "--json", out, "--plot", png)
    assert code == 0, err
    c = json.loads(out.read_text())
    assert [p["step"] for p in c["points"]] == [10, 20]
    assert 0 < c["points"][0]["minutes"] < c["points"][1]["minutes"]   # from metrics.jsonl's clock
    assert c["points"][0]["model"] != c["points"][1]["model"]          # two checkpoints, two resyntheses
    assert [v["step"] for v in c["valid"]] == [10, 20] and all(v["bits_per_16bit_sample"] > 0 for v in c["valid"])
    # the floor is the same utterances' Griffin-Lim, once for the curve; each point's paired difference against it
    d = c["points"][1]["model_minus_griffin_lim"]["pesq_wb"]
    if d["mean"] is not None:
        assert d["mean"] == pytest.approx(c["points"][1]["model"]["pesq_wb"] - c["griffin_lim"]["pesq_wb"])
    assert png.is_file() and png.stat().st_size > 10000
    assert [p["step"] for p in json.loads(stdout)["points"]] == [10, 20]
    code, _, err = cli_here("evaluate", "--run", kept_run, "--quality", "--checkpoint", "all", "--audio-dir", tmp_path)
    assert code == 2 and "one --checkpoint STEP" in err
