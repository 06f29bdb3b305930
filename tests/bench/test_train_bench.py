"""`seqgen bench --train` (seqgen/bench/training.py): FLOP counts of a training step, a tiny run, the CLI."""
import json

import pytest

from conftest import cli_here
from seqgen.bench import training
from seqgen.models import flops


def test_transformer_training_flops_by_hand():
    from seqgen.models.transformer import TransformerDecoder

    m = TransformerDecoder(vocab_size=10, num_layers=2, d_model=8, num_heads=2, d_ff=32, max_length=64)
    # per layer: qkv 2*8*24 + out 2*8*8 + MLP 2*2*8*32 = 384 + 128 + 1024; head 2*8*10; attention 2 * 2*T*d
    per_position = 2 * (384 + 128 + 1024) + 160
    assert flops.transformer_training_flops(m, 16) == per_position + 2 * 4 * 16 * 8
    assert flops.transformer_training_flops(m, 32) - flops.transformer_training_flops(m, 16) == 2 * 4 * 16 * 8


def test_bytenet_training_flops_counts_the_encoder_over_the_source():
    from seqgen.models.bytenet import ByteNet

    lm = ByteNet(vocab_size=10, d_model=8, dilations=(1, 2), num_sets=1, kernel_size=3, encoder=False)
    mt = ByteNet(vocab_size=10, d_model=8, dilations=(1, 2), num_sets=1, kernel_size=3, encoder_kernel_size=5)
    # an LM position is a cached decoding step's work; h = 4: reduce 2*8*4, conv 2*k*4*4, expand 2*4*8
    assert flops.bytenet_training_flops(lm, 0, 16) == flops.bytenet_flops(lm) == 2 * (64 + 96 + 64) + 160
    encoder_block = 64 + 2 * 5 * 16 + 64
    assert flops.bytenet_training_flops(mt, 32, 16) == flops.bytenet_flops(lm) + 2 * encoder_block * 32 / 16


@pytest.mark.slow  # ~40 s (two compilations): in .ci/run's slow step
def test_train_bench_on_the_tiny_preset(espeak_vocoder_data, tmp_path):
    res = training.run_train_bench(["test-tiny"], steps=2, warmup=1, json_path=tmp_path / "t.json",
                                   plot_path=tmp_path / "t.png", data_dirs={"vocoder": espeak_vocoder_data},
                                   log=lambda line: None)
    (rec,) = res["records"]
    assert (rec["rows"], rec["positions_per_row"]) == (4, 2048)  # tiny.yaml's batch and window
    assert rec["loop_steps_per_sec"] > 0 and rec["step_steps_per_sec"] > 0
    assert len(rec["step_windows_steps_per_sec"]) == 2 and len(rec["loop_windows_steps_per_sec"]) == 3  # + compile
    from seqgen import config as C
    from seqgen.recipes.runner import recipes_root
    from seqgen.tasks.base import task_for_model_type

    cfg = C.load(recipes_root() / "ljspeech_vocoder" / "tiny.yaml", [])
    info = task_for_model_type("wavenet").data_info(espeak_vocoder_data)
    model = task_for_model_type("wavenet").build_model(cfg["model"], info)
    assert rec["gflop_per_step"] == pytest.approx(3 * flops.wavenet_flops(model) * 4 * 2048 / 1e9)
    assert rec["step_gflops"] == pytest.approx(rec["step_steps_per_sec"] * rec["gflop_per_step"])
    assert 0 < rec["step_fraction_of_matmul"] < 2
    assert json.loads((tmp_path / "t.json").read_text())["records"][0]["preset"] == "test-tiny"
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert rec["unit"] == "samples"
    table = training.markdown_train_table(res["records"])
    assert "| test-tiny |" in table and "4 x 2048" in table


@pytest.mark.slow  # ~20 s: in .ci/run's slow step
def test_train_bench_loop_only(espeak_vocoder_data, tmp_path):
    """``step_alone=False`` (bench/gpu.py on a GPU, where a second compilation costs more than the steps): the
    loop's figures only, and the preset's batch overridden."""
    rec = training.bench_preset("test-tiny", 2, 1, lambda line: None, tmp_path,
                                overrides=["data.batch_size=2", "train.jit_compile=false"],
                                data_dirs={"vocoder": espeak_vocoder_data}, step_alone=False)
    assert (rec["rows"], rec["positions_per_row"]) == (2, 2048)
    # what was timed is in the record: a step without XLA is not mistaken for the default one
    assert rec["overrides"] == ["data.batch_size=2", "train.jit_compile=false"]
    assert rec["jit_compile"] is False and rec["precision"] == "float32"
    assert training.record_label(rec) == "test-tiny (XLA off)"
    assert rec["loop_steps_per_sec"] > 0 and rec["loop_gflops"] == pytest.approx(
        rec["loop_steps_per_sec"] * rec["gflop_per_step"])
    assert rec["step_steps_per_sec"] is None and rec["step_gflops"] is None and rec["loop_overhead"] is None


def test_a_record_is_labelled_by_what_differs_from_the_default_step():
    base = {"preset": "byte-lm-small", "precision": "float32", "jit_compile": True}
    assert training.record_label(base) == "byte-lm-small"
    assert training.record_label({"preset": "byte-lm-small"}) == "byte-lm-small"  # a record from before the keys
    assert training.record_label({**base, "precision": "mixed_bfloat16", "jit_compile": False}) == (
        "byte-lm-small (mixed_bfloat16, XLA off)")


def test_an_unknown_training_preset_is_one_line(quiet_cli):
    code, _, err = cli_here("bench", "--train", "--presets", "vocoder-smal")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "vocoder-smal" in err and "vocoder-small" in err and "test-tiny" not in err
