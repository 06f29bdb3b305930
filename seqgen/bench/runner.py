"""`seqgen bench`: sampling speed of the generators, against the machine's ceilings.

Every preset is a model with random weights (speed does not depend on the
weights) run through its real generation code (``model.generate`` with
``method="cached"``, ``"naive"``, ``"parallel"`` or ``"native"``; the bench's ``native-bf16`` and
``native-int8`` are ``"native"`` with those weights).  One record per (preset, method, batch):

* timing: the first call (trace + compile + one run) is timed on its own
  (``first_call_seconds``; ``compile_seconds`` = first call minus the median
  run); then ``repeats`` identical calls are timed and their median gives
  ``samples_per_sec`` (audio) / ``tokens_per_sec`` (text): all rows of the
  batch together, ``batch * steps / median``.
* naive generation recomputes the whole receptive field (WaveNet: with one
  convolution forward per sample, ``method="naive-conv"``, the fastest way)
  or prefix (Transformer, ByteNet) for every step, so it is timed on a short prefix of
  ``timed_samples`` / ``timed_tokens`` steps and reported per step.
* ``flops_per_sample``: FLOP (2 x multiply-adds) that the method executes per
  generated sample and row, counted from the configuration (see
  :mod:`seqgen.models.flops`);
  ``model_flops_per_sample`` is the cached (incremental) count, the work one
  sample needs.  ``achieved_gflops = samples_per_sec * flops_per_sample / 1e9``
  and its fractions of the ceilings measured in the same process by
  :mod:`seqgen.bench.roofline` (matrix-vector and matrix-matrix GFLOP/s).
* memory: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (process high-water
  mark of resident memory); ``peak_rss_delta_mb`` is its growth during the
  record (0 when the record stays below an earlier peak), ``peak_rss_mb`` the
  mark after it.

The presets are in :mod:`seqgen.bench.presets`, the FLOP counts in
:mod:`seqgen.models.flops`, the machine description in
:mod:`seqgen.bench.environment` and the table and chart in
:mod:`seqgen.bench.report`; the command line is :mod:`seqgen.cli.bench`.
"""
from __future__ import annotations

import json
import pathlib
import statistics
import sys
import time

from seqgen.core.methods import CACHED, NAIVE, PARALLEL
from seqgen.bench.environment import _maxrss_mb, environment
from seqgen.bench.presets import AUDIO_RATES, CACHED_METHODS, METHODS, PRESETS, _run_preset
from seqgen.bench.report import plot

__all__ = ["run_bench", "summary_line"]


def _parse_list(value, cast=str):
    if value is None:
        return None
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    return [cast(v.strip() if isinstance(v, str) else v) for v in value]


def _measure(call, repeats):
    t0 = time.perf_counter()
    call()
    first = time.perf_counter() - t0
    times = []
    for _ in range(max(1, int(repeats))):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return first, times


def _sequential_steps(model, method, steps):
    """Layers run one after another to generate ``steps`` samples/tokens (one row)."""
    if method == PARALLEL:
        return int(model.sequential_steps)                 # whatever the length
    layers = getattr(model, "num_layers", None) or len(getattr(model, "decoder_blocks", [])) or 1
    return int(steps) * int(layers)


def _traffic(preset, model, method, batch, steps, rate, unit, ceilings):
    """Bytes moved per sample/token (``seqgen.models.traffic``), achieved GB/s and its fraction of each
    read-bandwidth ceiling; empty where the count does not apply (naive, parallel) or no ceiling was
    measured."""
    from seqgen.bench.presets import bytes_per_step

    per = bytes_per_step(model, method, batch, steps)
    if per is None:
        return {}
    unit1 = unit[:-1]
    out = {f"bytes_per_{unit1}": per, "achieved_gbs": rate * per / 1e9}
    for level, gbs in (ceilings.get("bandwidth_gbs") or {}).items():
        out[f"fraction_of_{level}_bandwidth"] = out["achieved_gbs"] / gbs
    return out


def _record(preset, model, method, batch, steps, repeats, ceilings, env):
    rss0 = _maxrss_mb()
    call = preset.make_call(model, method, batch, steps)
    first, times = _measure(call, repeats)
    rss1 = _maxrss_mb()
    med = statistics.median(times)
    rate = batch * steps / med
    # the C loops do the cached step's arithmetic: their FLOP count is the cached one
    flops = float(preset.flops(model, CACHED if method in CACHED_METHODS else method, steps))
    model_flops = float(preset.flops(model, CACHED, steps))
    gflops = rate * flops / 1e9
    unit = "samples" if preset.kind == "audio" else "tokens"
    rec = {
        "preset": preset.name, "kind": preset.kind, "method": method, "batch": int(batch),
        f"{unit}_per_sec": rate, f"{unit}_per_sec_per_sequence": rate / batch,
        f"timed_{unit}": int(steps),
        "timed_note": {"naive": "naive: timed on the first timed_samples/timed_tokens steps (a short prefix "
                                 "by default), reported per step",
                       "cached": "cached: the full length, one position per step",
                       "native": "native: the cached loop in C, float32 weights, the full length",
                       "native-bf16": "native-bf16: the cached loop in C, bfloat16 weights, the full length",
                       "native-int8": "native-int8: the cached loop in C, int8 weights, the full length",
                       "parallel": "parallel: the full length in one pass per flow"}[method],
        "sequential_steps": _sequential_steps(model, method, steps),
        "repeats": int(repeats), "run_seconds_median": med, "run_seconds": times,
        "first_call_seconds": first, "compile_seconds": max(0.0, first - med),
        "flops_per_sample": flops, "model_flops_per_sample": model_flops, "achieved_gflops": gflops,
        "matvec_ceiling_gflops": ceilings["matvec_gflops"], "matmul_ceiling_gflops": ceilings["matmul_gflops"],
        "fraction_of_matvec_ceiling": gflops / ceilings["matvec_gflops"],
        "fraction_of_matmul_ceiling": gflops / ceilings["matmul_gflops"],
        **_traffic(preset, model, method, batch, steps, rate, unit, ceilings),
        "peak_rss_mb": rss1, "peak_rss_delta_mb": max(0.0, rss1 - rss0),
        "memory_method": "resource.getrusage(RUSAGE_SELF).ru_maxrss (process peak RSS; delta = growth "
                         "of the peak during this record, 0 if below an earlier peak)",
        "parameters": int(model.count_params()),
        "environment": env,
    }
    if preset.kind == "audio":
        rec["realtime_factor"] = {str(sr): rate / sr for sr in AUDIO_RATES}
        rec["realtime_note"] = ("seconds of audio generated per second of wall time at that sample rate "
                                "(all rows together; > 1 is faster than real time)")
    return rec


def summary_line(rec):
    unit = "samples/s" if rec["kind"] == "audio" else "tokens/s"
    rate = rec.get("samples_per_sec", rec.get("tokens_per_sec"))
    steps = rec.get("timed_samples", rec.get("timed_tokens"))
    line = (f"{rec['preset']:18s} {rec['method']:6s} b={rec['batch']:<3d} {rate:12.1f} {unit:9s} "
            f"{rec['achieved_gflops']:8.2f} GFLOP/s  {100 * rec['fraction_of_matvec_ceiling']:6.1f}% matvec  "
            f"{100 * rec['fraction_of_matmul_ceiling']:5.1f}% matmul  compile {rec['compile_seconds']:.1f}s  "
            f"steps {steps}")
    if "achieved_gbs" in rec:
        line += f"  {rec['achieved_gbs']:.1f} GB/s"
        if "fraction_of_memory_bandwidth" in rec:
            line += f" ({100 * rec['fraction_of_memory_bandwidth']:.0f}% of memory's)"
    if rec["kind"] == "audio":
        line += f"  RTF@16k {rec['realtime_factor']['16000']:.3g}"
    return line


def run_bench(presets, methods=(CACHED, NAIVE), batches=(1,), seconds=None, tokens=None, repeats=3,
              json_path=None, plot_path=None, run=None, naive_steps=None, threads=None, ceilings=None,
              ceiling_seconds=0.2, log=None):
    """Benchmark generation speed; returns ``{"environment", "ceilings", "records"}``.

    Args:
        presets: names of :data:`PRESETS` (list or comma-separated string).
        methods: of :data:`~seqgen.bench.presets.METHODS` (a preset runs the ones it has).  batches: batch
            sizes.
        seconds: audio per timed cached run (converted at 16 kHz; default:
            the preset's length, 1 s).  tokens: text tokens per timed cached
            run (default: the preset's context, 1024).
        repeats: timed runs after the warm-up (first) call; the median counts.
        json_path: write the result as JSON.  plot_path: write a bar chart (PNG).
        run: a trained run directory whose model is benchmarked too.
        naive_steps: steps of a timed naive run (default: the preset's).
        threads: the intra-op thread setting in effect, recorded (set it with
            :func:`seqgen.utils.threads.configure_threads` before TensorFlow starts).
        ceilings: precomputed :func:`seqgen.bench.roofline.measure_ceilings` (else measured here,
            each ceiling timed for at least ``ceiling_seconds`` per call).
        log: ``callable(str)`` for progress lines (default: print to stderr).
    """
    from seqgen.errors import SeqgenError

    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    names = _parse_list(presets) or []
    methods = _parse_list(methods) or [CACHED]
    batches = _parse_list(batches, int) or [1]
    chosen = []
    for n in names:
        if n not in PRESETS:
            known = ", ".join(p.name for p in PRESETS.values() if not p.hidden)
            raise SeqgenError(f"unknown preset '{n}'; known: {known}")
        chosen.append(PRESETS[n])
    if run is not None:
        chosen.append(_run_preset(run))
    if not chosen:
        raise SeqgenError("no preset to benchmark")
    for m in methods:
        if m not in METHODS:
            raise SeqgenError(f"unknown method '{m}' ({', '.join(METHODS)})")
    if any(b < 1 for b in batches) or int(repeats) < 1:
        raise SeqgenError("batches and repeats must be >= 1")

    env = environment(threads)
    if ceilings is None:
        from seqgen.bench import roofline

        log("measuring ceilings (matrix-vector, matrix-matrix) ...")
        ceilings = roofline.measure_ceilings(min_seconds=ceiling_seconds)
    log(f"ceilings: matvec {ceilings['matvec_gflops']:.2f} GFLOP/s, matmul {ceilings['matmul_gflops']:.2f} GFLOP/s"
        + "".join(f", read {lvl} {v:.1f} GB/s" for lvl, v in (ceilings.get("bandwidth_gbs") or {}).items()))
    records = []
    for preset in chosen:
        model = preset.build()
        for method in methods:
            if method not in preset.methods:
                continue
            if method == NAIVE:
                steps = int(naive_steps or preset.naive_steps)
            elif preset.kind == "audio":
                steps = int(round(seconds * 16000)) if seconds else preset.steps
            else:
                steps = int(tokens) if tokens else preset.steps
            if steps < 1:
                raise SeqgenError("seconds/tokens/naive_steps give no step to time")
            for b in batches:
                rec = _record(preset, model, method, b, steps, repeats, ceilings, env)
                records.append(rec)
                log(summary_line(rec))
    result = {"environment": env, "ceilings": ceilings, "records": records}
    if json_path:
        p = pathlib.Path(json_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(result, indent=2) + "\n")
    if plot_path:
        plot(records, plot_path)
    return result
