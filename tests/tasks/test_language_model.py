"""Byte-level LMs end to end: `seqgen train` on prepared text, evaluate, generate, the byte_lm recipe."""
import json

import pytest

from conftest import REPO, run_cli, text_cli

TINY = REPO / "recipes" / "byte_lm" / "tiny.yaml"

BYTENET_LM = """
model: {type: bytenet_lm, d_model: 48, dilations: [1, 2, 4], num_sets: 1, kernel_size: 3}
data: {window: 64, batch_size: 16, valid_batch_size: 16, max_valid_windows: 32}
train: {steps: 40, learning_rate: 3.0e-3, warmup_steps: 0, log_every: 5, checkpoint_every: 40,
        valid_every: 20, jit_compile: false}
"""


@pytest.fixture(scope="module")
def text_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("text") / "data"
    run_cli("prepare", "text", "--input", "stdlib", "--out", out)
    return out


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _check_learned(run):
    recs = _records(run)
    train = [r["bits_per_byte"] for r in recs if "bits_per_byte" in r]
    valid = [r["valid_bits_per_byte"] for r in recs if "valid_bits_per_byte" in r]
    assert train and valid and not any("bits_per_sample" in r for r in recs)
    # The first logged window starts near log2(259) = 8.02 bits; validation ends well below it.
    assert train[0] > 6.0
    assert valid[-1] < 8.0 and valid[-1] < train[0] - 1.0
    assert (run / "loss.png").is_file()
    info = json.loads((run / "run.json").read_text())
    assert info["data"]["kind"] == "text" and info["data"]["tokenizer"] == {"type": "bytes"}
    return valid[-1]


@pytest.mark.slow  # ~40-70 s: in .ci/run's slow step (the default suite is kept under ~15 min)
def test_transformer_trains_evaluates_and_generates(text_data, tmp_path):
    run = tmp_path / "run"
    run_cli("train", TINY, "--data", text_data, "--out", run, "--max-steps", "40",
            "--set", "train.valid_every=20", "--set", "train.checkpoint_every=40")
    last_valid = _check_learned(run)
    cfg = (run / "config.yaml").read_text()
    assert "vocab_size" not in cfg  # from the data, never from the config

    out = tmp_path / "eval.json"
    p = run_cli("evaluate", "--run", run, "--json", out, "--max-windows", "32")
    res = json.loads(out.read_text())
    assert json.loads(p.stdout) == res
    assert res["step"] == 40 and res["num_bytes"] == 32 * 64 and res["window"] == 64
    # the same windows and weights as the last validation in training
    assert res["bits_per_byte"] == pytest.approx(last_valid, rel=1e-4)

    a = text_cli("generate", "--run", run, "--prompt", "The ", "--max-bytes", "80", "--chunk", "32",
                 "--seed", "3").stdout
    b = text_cli("generate", "--run", run, "--prompt", "The ", "--max-bytes", "80", "--chunk", "32",
                 "--seed", "3").stdout
    c = text_cli("generate", "--run", run, "--prompt", "The ", "--max-bytes", "80", "--chunk", "32",
                 "--seed", "4").stdout
    assert a.startswith("The ") and len(a.encode()) > 40
    assert a == b and a != c
    native = text_cli("generate", "--run", run, "--prompt", "The ", "--max-bytes", "80", "--chunk", "32",
                      "--seed", "3", "--method", "native").stdout
    assert native == a                       # the loop in C: the same bytes as the compiled loop

    # tiny trains on windows of 64 bytes with max_length 128: generation re-reads at most
    # 64 - chunk bytes, never reaching position embeddings that training never updated
    import seqgen
    from seqgen.tasks.language_model import _context_limit

    lm = seqgen.load(run)
    model = lm.model
    assert lm.trained_window == 64 and model.max_length == 128
    assert _context_limit(model, 32, lm.trained_window) == 32
    assert _context_limit(model, 32) == 96
    p = run_cli("generate", "--run", run, "--prompt", "x", "--chunk", "64", check=False)
    assert p.returncode == 2 and "trained on windows of 64" in p.stderr


@pytest.mark.slow  # ~25-40 s: in .ci/run's slow step (the default suite is kept under ~15 min)
def test_bytenet_lm_trains_and_generates(text_data, tmp_path):
    cfg = tmp_path / "bytenet_lm.yaml"
    cfg.write_text(BYTENET_LM)
    run = tmp_path / "run"
    run_cli("train", cfg, "--data", text_data, "--out", run)
    _check_learned(run)
    res = json.loads(run_cli("evaluate", "--run", run, "--max-windows", "8").stdout)
    assert {"bits_per_byte", "num_bytes", "step"} <= set(res) and res["num_bytes"] == 8 * 64
    # greedy decoding: the conv-queue cache and the full recompute agree
    cached = text_cli("generate", "--run", run, "--prompt", "In ", "--max-bytes", "40", "--temperature", "0",
                      "--chunk", "16").stdout
    naive = text_cli("generate", "--run", run, "--prompt", "In ", "--max-bytes", "40", "--temperature", "0",
                     "--chunk", "16", "--method", "naive").stdout
    assert cached.startswith("In ") and cached == naive


def test_generate_refuses_a_translation_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"data": {"kind": "pairs"}}))
    p = text_cli("generate", "--run", run, check=False)
    assert p.returncode != 0 and "pairs" in p.stderr


def test_byte_lm_recipe_tiny(tmp_path):
    work = tmp_path / "w"
    p = run_cli("recipe", "run", "byte_lm", "--preset", "tiny", "--workdir", work, "--max-steps", "30",
                "--set", "train.steps=30")
    assert "recipe byte_lm (tiny) done" in p.stderr
    sample = (work / "sample.txt").read_text()
    assert sample.startswith("The ") and len(sample) > 100
    m = json.loads((work / "metrics.json").read_text())
    assert m["step"] == 30 and m["bits_per_byte"] < 8.0 and m["num_bytes"] > 0
    manifest = json.loads((work / "data" / "manifest.json").read_text())
    assert manifest["kind"] == "text" and manifest["source"] == "stdlib"
    # `seqgen generate --prompt $'\xff\xfeabc'` used to stop with UnicodeEncodeError: argv carries those
    # bytes as surrogate escapes; the model reads the bytes and stdout gets them back as they were
    import os
    import subprocess
    import sys

    raw = b"\xff\xfeabc"
    p = subprocess.run([sys.executable, "-m", "seqgen.cli", "generate", "--run", str(work / "run"), "--prompt", raw,
                        "--max-bytes", "8", "--seed", "1"], capture_output=True, cwd=str(REPO),
                       env=dict(os.environ, SEQGEN_PROGRESS="0"))
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert p.stdout.startswith(raw) and len(p.stdout) > len(raw) + 1


def test_context_windows_score_every_byte_once(tmp_path):
    """``lm_nll(context=C)``: its batched, masked windows give the same sum as scoring the plan window by
    window, and count every byte of the split but the first."""
    import numpy as np

    from seqgen.data import pipeline as D
    from seqgen.data.windows import scoring_windows
    from seqgen.models.transformer import TransformerDecoder
    from seqgen.tasks.byte_task import lm_inputs, token_nll
    from seqgen.tasks.language_model import lm_nll

    data = tmp_path / "data"
    src = tmp_path / "t.txt"
    src.write_text("".join(f"line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(40)))
    run_cli("prepare", "text", "--input", src, "--out", data)
    model = TransformerDecoder(num_layers=1, d_model=16, num_heads=2, max_length=64)
    stream = np.asarray(D.load_bytes(data, "valid")).astype(np.int32)
    res = lm_nll(model, data, "valid", window=32, batch_size=3, context=24)
    assert res["num_bytes"] == len(stream) - 1 and res["context"] == 24
    total = 0.0
    for start, first in scoring_windows(len(stream), 32, 24):
        x = lm_inputs(stream[None, start: start + 32], model.bos_id)
        nll, _ = token_nll(model.predict_on_batch({"x": x}), stream[None, start + 1: start + 33], model.pad_id)
        total += float(nll[0, first:].sum())
    assert res["nats_per_byte"] == pytest.approx(total / (len(stream) - 1), rel=1e-6)
