"""`seqgen bench` and `seqgen.bench.roofline`: FLOP counts by hand, a tiny smoke run, the CLI."""
import argparse
import json

import numpy as np
import pytest

from seqgen.bench import presets, roofline
from seqgen.bench import runner as bench
from seqgen.cli import bench as cli_bench
from seqgen.models import flops
from seqgen.errors import SeqgenError

AUDIO_KEYS = {
    "preset", "kind", "method", "batch", "samples_per_sec", "samples_per_sec_per_sequence", "timed_samples",
    "timed_note", "repeats", "run_seconds_median", "run_seconds", "first_call_seconds", "compile_seconds",
    "flops_per_sample", "model_flops_per_sample", "achieved_gflops", "matvec_ceiling_gflops",
    "matmul_ceiling_gflops", "fraction_of_matvec_ceiling", "fraction_of_matmul_ceiling", "peak_rss_mb",
    "peak_rss_delta_mb", "memory_method", "parameters", "environment", "realtime_factor", "realtime_note",
}
POSITIVE = ["samples_per_sec", "samples_per_sec_per_sequence", "timed_samples", "run_seconds_median",
            "first_call_seconds", "flops_per_sample", "model_flops_per_sample", "achieved_gflops",
            "matvec_ceiling_gflops", "matmul_ceiling_gflops", "fraction_of_matvec_ceiling",
            "fraction_of_matmul_ceiling", "peak_rss_mb", "parameters"]


def test_wavenet_flops_hand_count():
    model = presets.PRESETS["test-tiny"].build()
    assert model.upsampler.upsample_scales == [4] and model.receptive_field == 16
    # R=8, G=16, S=8, k=2, C=4 mel bands, P=16 classes; 4 layers, the last without residual 1x1
    layer = 2 * 2 * 8 * 16 + 2 * 4 * 16 + 2 * 8 * (8 + 8)          # conv + cond + res/skip = 896
    last = 2 * 2 * 8 * 16 + 2 * 4 * 16 + 2 * 8 * 8                 # 768
    head = 2 * 8 * 8 + 2 * 8 * 16                                  # 384
    position = 3 * layer + last + head                             # 3840
    upsampler = (2 * 5 * 4 * 4 + 2 * 4 * 4 * 4) / 4                # frame conv (context 2) + scale 4, per sample
    assert position == 3840 and upsampler == 72
    assert flops.wavenet_flops(model, "cached") == position + upsampler
    assert flops.wavenet_flops(model, "naive") == 16 * position + upsampler


def test_text_flops_hand_count():
    from seqgen.models.bytenet import ByteNet
    from seqgen.models.transformer import TransformerDecoder

    tr = TransformerDecoder(vocab_size=259, num_layers=1, d_model=8, num_heads=2, d_ff=32, max_length=64,
                            dropout=0.0)
    # qkv 2*8*24 + out 2*8*8 + MLP 2*2*8*32 + attention over 16 cached positions 4*16*8 + head 2*8*259
    assert flops.transformer_flops(tr, "cached", cache_length=16) == 384 + 128 + 1024 + 512 + 4144
    # naive, 2 tokens: both recompute a 16-position prefix: 16*(384+128+1024+4144) + 4*16*16*8
    assert flops.transformer_flops(tr, "naive", steps=2) == 16 * 5680 + 4 * 16 * 16 * 8
    bn = ByteNet(vocab_size=259, d_model=8, dilations=(1, 2), num_sets=1, kernel_size=3, encoder=False)
    # per block: reduce 2*8*4 + conv 2*3*4*4 + expand 2*4*8 = 224; head 2*8*259
    assert flops.bytenet_flops(bn, "cached") == 2 * 224 + 4144
    assert flops.bytenet_flops(bn, "naive", steps=3) == 16 * (2 * 224 + 4144)


def test_roofline_ceilings_positive():
    mv = roofline.matvec_gflops(16, 32, min_seconds=0.01, repeats=1)
    assert mv["gflops"] > 0 and mv["flops_per_iteration"] == 4 * 16 * 32
    mm = roofline.matmul_gflops(64, min_seconds=0.01, repeats=1)
    assert mm["gflops"] > 0 and mm["flops_per_iteration"] == 2 * 64 ** 3 and mm["dtype"] == "float32"
    half = roofline.matmul_gflops(64, min_seconds=0.01, repeats=1, dtype="bfloat16")  # the mixed-precision ceiling
    assert half["gflops"] > 0 and half["dtype"] == "bfloat16"


def test_read_bandwidth_ceiling_and_bytes_per_step():
    from seqgen.models import traffic
    from seqgen.models.bytenet import ByteNet
    from seqgen.models.transformer import TransformerDecoder
    from seqgen.models.wavenet import WaveNet

    bw = roofline.bandwidth_gbs(64 * 1024, min_seconds=0.01, repeats=1)
    assert bw["gbs"] > 0 and bw["bytes"] == 4 * bw["n"] ** 2 and abs(bw["bytes"] - 64 * 1024) < 0.1 * 64 * 1024
    assert set(roofline.BANDWIDTH_SIZES) == {"l2", "l3", "memory"}
    # a WaveNet step reads each weight once: 4 bytes per 2 FLOP of its weight matrices (no conditioning here)
    wn = WaveNet(num_stacks=1, layers_per_stack=3, kernel_size=2, residual_channels=8, gate_channels=16,
                 skip_channels=8, distribution={"type": "categorical", "num_classes": 16})
    t1, t4 = traffic.wavenet_bytes(wn, 1), traffic.wavenet_bytes(wn, 4)
    assert t1["weights"] == 2 * flops.wavenet_flops(wn, "cached")
    # per row: embedding row 8, queues 3 layers x k 2 x 8, logits 16
    assert t1["per_row"] == 4 * (8 + 3 * 2 * 8 + 16)
    assert t4["total"] == t1["weights"] / 4 + t1["per_row"]
    tr = TransformerDecoder(vocab_size=259, num_layers=2, d_model=8, num_heads=2, d_ff=16, max_length=32)
    tb = traffic.transformer_bytes(tr, 1, cache_length=16)
    assert tb["weights"] == 4 * (2 * (3 * 64 + 64 + 2 * 8 * 16) + 8 * 259)
    assert tb["per_row"] == 4 * (16 + 2 * (2 * 16 * 8 + 16) + 259)
    bn = ByteNet(vocab_size=259, d_model=8, dilations=(1, 2), num_sets=1, kernel_size=3, encoder=False)
    assert traffic.bytenet_bytes(bn)["weights"] == 2 * flops.bytenet_flops(bn, "cached")


def test_smoke_run_json_and_plot(tmp_path):
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    res = bench.run_bench("test-tiny", ["cached", "naive"], [1], repeats=2, json_path=out, plot_path=png,
                          ceiling_seconds=0.05, log=lambda s: None)
    data = json.loads(out.read_text())
    assert data["records"] == json.loads(json.dumps(res["records"]))
    env = data["environment"]
    for k in ("backend", "device", "keras", "numpy", "cpu", "cores"):
        assert env[k]
    assert data["ceilings"]["matvec_gflops"] > 0 and data["ceilings"]["matmul_gflops"] > 0
    recs = {r["method"]: r for r in data["records"]}
    assert set(recs) == {"cached", "naive"}
    for r in recs.values():
        assert AUDIO_KEYS <= set(r), AUDIO_KEYS - set(r)
        for k in POSITIVE:
            assert r[k] > 0, k
        assert r["compile_seconds"] >= 0 and r["peak_rss_delta_mb"] >= 0
        assert len(r["run_seconds"]) == 2
        assert set(r["realtime_factor"]) == {"16000", "22050", "24000"}
        assert np.isclose(r["realtime_factor"]["16000"], r["samples_per_sec"] / 16000)
        assert np.isclose(r["achieved_gflops"], r["samples_per_sec"] * r["flops_per_sample"] / 1e9)
        assert np.isclose(r["fraction_of_matvec_ceiling"], r["achieved_gflops"] / r["matvec_ceiling_gflops"])
        if r["method"] == "cached":   # bytes moved per sample and the read-bandwidth fractions
            assert np.isclose(r["achieved_gbs"], r["samples_per_sec"] * r["bytes_per_sample"] / 1e9)
            for level in ("l2", "l3", "memory"):
                assert np.isclose(r[f"fraction_of_{level}_bandwidth"],
                                  r["achieved_gbs"] / data["ceilings"]["bandwidth_gbs"][level])
        else:
            assert "bytes_per_sample" not in r
    assert recs["naive"]["timed_samples"] == 16 and recs["cached"]["timed_samples"] == 512
    assert recs["cached"]["samples_per_sec"] > recs["naive"]["samples_per_sec"]
    assert recs["naive"]["flops_per_sample"] > recs["cached"]["flops_per_sample"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _parser():
    p = argparse.ArgumentParser(prog="seqgen")
    sub = p.add_subparsers(dest="command", required=True)
    cli_bench.add(sub)
    return p


def test_cli_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    a = _parser().parse_args(["bench", "--presets", "test-tiny", "--methods", "cached", "--repeats", "1",
                              "--seconds", "0.016", "--json", str(out)])
    assert a.func(a) == 0
    recs = json.loads(out.read_text())["records"]
    assert [(r["preset"], r["method"], r["batch"]) for r in recs] == [("test-tiny", "cached", 1)]
    assert recs[0]["timed_samples"] == 256 and recs[0]["samples_per_sec"] > 0
    assert recs[0]["environment"]["threads_requested"] == 1
    printed = capsys.readouterr().out
    assert "test-tiny" in printed and "| test-tiny | cached | 1 | 1 |" in printed


def test_student_parallel_record_and_merge(tmp_path, capsys):
    """The student preset times its parallel pass; its sequential steps do not grow with the
    length (the cached loop's do); --merge combines files into one table and chart."""
    ceil = {"matvec_gflops": 1.0, "matmul_gflops": 1.0}
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    res = bench.run_bench("test-tiny-student,test-tiny", ["parallel", "cached"], [1], repeats=1, json_path=a,
                          ceilings=ceil, log=lambda s: None)
    recs = {r["method"]: r for r in res["records"]}
    assert set(recs) == {"parallel", "cached"}      # each preset runs only the methods it has
    par = recs["parallel"]
    assert par["preset"] == "test-tiny-student" and par["samples_per_sec"] > 0
    assert par["sequential_steps"] == 4                               # 2 flows x 2 layers
    assert recs["cached"]["sequential_steps"] == 512 * 4              # every sample through 4 layers
    longer = bench.run_bench("test-tiny-student", ["parallel"], [1], seconds=0.128, repeats=1, json_path=b,
                             ceilings=ceil, log=lambda s: None)["records"][0]
    assert longer["timed_samples"] == 2048 and longer["sequential_steps"] == 4
    # FLOP per sample: 2 flows, each input 2*8 + 2 layers (2*2*8*16 + 2*4*16 + 2*8*(8 or 0 + 8)) + head 2*8*8 + 2*8*2
    # plus the upsampler; the flows' part is checked exactly
    from seqgen.models.parallel_wavenet import ParallelWaveNet  # noqa: F401
    model = presets.PRESETS["test-tiny-student"].build()
    flows = 2 * (16 + (512 + 128 + 256) + (512 + 128 + 128) + 128 + 32)
    assert flops.student_flops(model) == pytest.approx(flows + flops._upsampler_flops_per_sample(model))
    out, png = tmp_path / "m.json", tmp_path / "m.png"
    p = _parser().parse_args(["bench", "--merge", str(a), str(b), "--json", str(out), "--plot", str(png)])
    assert p.func(p) == 0
    merged = json.loads(out.read_text())
    assert len(merged["records"]) == 3 and merged["merged_from"] == [str(a), str(b)]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| test-tiny-student | parallel | 1 | ? |" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text("{}")
    p = _parser().parse_args(["bench", "--merge", str(tmp_path / "bad.json")])
    with pytest.raises(SeqgenError, match="bad.json"):
        p.func(p)


def test_cli_help_hides_test_preset_and_bad_input(capsys):
    p = _parser()
    with pytest.raises(SystemExit):
        p.parse_args(["bench", "--help"])
    text = capsys.readouterr().out
    assert "vocoder-small" in text and "transformer-byte" in text and "test-tiny" not in text
    with pytest.raises(SystemExit):
        p.parse_args(["bench", "--batches", "0"])
    with pytest.raises(SeqgenError, match="unknown preset"):
        bench.run_bench("nope", ["cached"], [1], ceilings={"matvec_gflops": 1.0, "matmul_gflops": 1.0})
    with pytest.raises(SeqgenError, match="unknown method"):
        bench.run_bench("test-tiny", ["fast"], [1], ceilings={"matvec_gflops": 1.0, "matmul_gflops": 1.0})
