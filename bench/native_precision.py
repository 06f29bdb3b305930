"""What storing a trained vocoder's weights in bfloat16 or int8 costs (method "native", --weight-dtype).

For a WaveNet run with a categorical head, on its prepared data:

* **held-out NLL through the rounded weights**: the Keras forward pass scores the valid split with the
  weights the native loop multiplies by (``seqgen.native.rounding.round_model_weights``), against float32;
* **resynthesis** of the first ``--utterances`` valid utterances (``--seconds`` of each) with the native
  loop at each weight type, the same seed: PESQ-WB of each output against the float32 output, beside the
  float32 output with another seed (two draws of one model: how far apart sampling alone puts two
  outputs) and the cached Keras loop (the same samples as native float32 but for a rare boundary draw);
  each output's PESQ-WB against the recording too;
* **speed**: samples per second of each native weight type and of the cached loop on those mels.

    python bench/native_precision.py --run RUN --data DATA --json OUT.json
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--data", required=True, help="the run's prepared data (its valid split is scored)")
    ap.add_argument("--utterances", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=3.0, help="resynthesize this much of each utterance")
    ap.add_argument("--nll-windows", type=int, default=0, help="valid windows scored (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", required=True)
    a = ap.parse_args(argv)

    from seqgen.utils.threads import configure_threads

    configure_threads(1)
    from seqgen.bench.environment import environment
    from seqgen.data import pipeline as D
    from seqgen.native.rounding import round_model_weights
    from seqgen.native.wavenet import WEIGHT_DTYPES
    from seqgen.quality import metrics
    from seqgen.runs import Run
    from seqgen.tasks.vocoder import vocoder_nll

    run = Run(a.run)
    model, step, _ = run.load_model(use_ema=True, compile=False)
    sr = int(run.info()["data"]["sample_rate"])
    original = model.get_weights()
    nll = {}
    for dtype in WEIGHT_DTYPES:
        round_model_weights(model, dtype)
        t0 = time.time()
        nll[dtype] = vocoder_nll(model, a.data, max_windows=a.nll_windows)
        print(f"NLL {dtype}: {nll[dtype]['nll_bits_per_sample']:.5f} bits/sample ({time.time() - t0:.0f} s)",
              flush=True)
        model.set_weights(original)
    frames = int(a.seconds * sr) // model.hop_length
    utts = list(D.vocoder_utterances(a.data, ("valid",)))[: a.utterances]
    mel = np.stack([np.asarray(u["mel"][:frames], np.float32) for u in utts])
    if mel.shape[1] < frames:
        raise SystemExit(f"the first {a.utterances} valid utterances are shorter than {a.seconds} s")
    rec16 = [metrics.to_scoring_rate(np.asarray(u["audio"][: frames * model.hop_length]), sr) for u in utts]

    def gen(method, seed, dtype="float32"):
        t0 = time.perf_counter()
        kw = {"weight_dtype": dtype} if method == "native" else {}
        wav = model.generate(mel=mel, method=method, seed=[seed + k for k in range(len(utts))], **kw)
        secs = time.perf_counter() - t0
        return np.asarray(wav), wav.size / secs

    gen("native", a.seed)                   # the C loop built and loaded, the conditioning compiled
    gen("cached", a.seed)                   # the compiled loop
    outputs = {}
    for name, method, seed, dtype in [("native float32", "native", a.seed, "float32"),
                                      ("native bfloat16", "native", a.seed, "bfloat16"),
                                      ("native int8", "native", a.seed, "int8"),
                                      ("native float32, another seed", "native", a.seed + 1000, "float32"),
                                      ("cached float32", "cached", a.seed, "float32")]:
        outputs[name] = gen(method, seed, dtype)
        print(f"{name}: {outputs[name][1]:.0f} samples/s (batch {len(utts)})", flush=True)
    ref = [metrics.to_scoring_rate(w, sr) for w in outputs["native float32"][0]]
    rows = {}
    for name, (wav, rate) in outputs.items():
        deg = [metrics.to_scoring_rate(w, sr) for w in wav]
        same = float(np.mean([np.array_equal(x, y) for x, y in zip(wav, outputs["native float32"][0])]))
        rows[name] = {
            "samples_per_sec": rate,
            "identical_to_native_float32": same,
            "pesq_wb_vs_native_float32": float(np.mean([metrics.pesq_wb(r, d) for r, d in zip(ref, deg)])),
            "pesq_wb_vs_recording": float(np.mean([metrics.pesq_wb(r, d) for r, d in zip(rec16, deg)])),
        }
    base = nll["float32"]["nll_bits_per_sample"]
    result = {
        "run": a.run, "step": step, "data": a.data, "cpu": platform.processor() or None,
        "environment": environment(1),
        "nll": {k: {**v, "minus_float32_bits_per_sample": v["nll_bits_per_sample"] - base} for k, v in nll.items()},
        "resynthesis": {"utterances": [u["id"] for u in utts], "seconds_each": frames * model.hop_length / sr,
                        "seed": a.seed, "batch": len(utts), "rows": rows},
        "criterion": "kept where the held-out NLL moves by less than 0.01 bits/sample (issue #15)",
        "kept": [k for k, v in nll.items() if abs(v["nll_bits_per_sample"] - base) < 0.01],
    }
    with open(a.json, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({"nll_minus_float32": {k: v["minus_float32_bits_per_sample"] for k, v in result["nll"].items()},
                      "rows": rows, "kept": result["kept"]}, indent=2))


if __name__ == "__main__":
    main()
