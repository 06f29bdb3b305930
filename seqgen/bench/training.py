"""`seqgen bench --train`: how fast each preset trains, and where the time goes.

For every training preset (a recipe's config, trained on the embedded corpus of its kind, prepared
once into ``$SEQGEN_CACHE/bench``) two figures from one process:

* **loop**: ``seqgen train`` itself (``TrainLoop``: the grain / numpy input pipeline, Keras ``fit``,
  the callbacks) for ``warmup + steps`` steps; steps/s is the median of the log windows after the
  first (which holds the compilation), as ``metrics.jsonl`` records them.
* **step**: the same compiled model and optimizer on one batch of that pipeline held in memory and
  repeated: ``fit`` over numpy arrays, nothing else.  ``1 - loop/step`` is what the pipeline and the
  callbacks cost.

Work per step: the model's forward FLOP per position (:mod:`seqgen.models.flops`) times the positions in
the batch, times 3 for the backward pass (weights and activations); for the distilled student, the
student's 3x plus the frozen teacher's forward and its backward to the student's samples (2x).  With the
matrix-matrix ceiling measured in the same process (:func:`seqgen.bench.roofline.matmul_gflops`), a
record says what fraction of it the step reaches.  Elementwise work (gates, softmax, optimizer) is
not counted, so the fraction is a floor.
"""
from __future__ import annotations

import json
import math
import pathlib
import statistics
import sys
import tempfile
import time

import numpy as np

#: name -> (data kind, recipe, config file, teacher config for a student or None, description)
TRAIN_PRESETS = {
    # the plain network (small.yaml before it took linear prediction), as the peer r9y9/wavenet_vocoder has it
    "vocoder-small": ("vocoder", "ljspeech_vocoder", "ablations/base.yaml", None,
                      "WaveNet 2x10, residual 64, mu-law 256; batch 4 x 4096 samples"),
    "vocoder-full": ("vocoder", "ljspeech_vocoder", "full.yaml", None,
                     "WaveNet 4x6, k=3, residual 512, MoL 10; batch 8 x 10240 samples (on a CPU: 1 x 10240)"),
    "student-small": ("vocoder", "parallel_wavenet", "student_small.yaml", "teacher_small.yaml",
                      "IAF student 4/4/4/8 layers, width 32, distilled from teacher_small; batch 2 x 4096"),
    # the plain network (small.yaml before rotary positions and the squared ReLU), as the peer nanoGPT has it
    "byte-lm-small": ("text", "byte_lm", "ablations/base.yaml", None,
                      "Transformer 4 layers, d_model 256, 4 heads; batch 16 x 128 bytes"),
    "bytenet-translation-small": ("pairs", "bytenet_translation", "small.yaml", None,
                                  "ByteNet encoder-decoder, d_model 256, 2 sets of dilations 1..16; batch 64 "
                                  "pairs, length-bucketed"),
    # FOR TESTS ONLY (not run by default): the tiny vocoder recipe preset
    "test-tiny": ("vocoder", "ljspeech_vocoder", "tiny.yaml", None, "FOR TESTS ONLY: the tiny vocoder"),
}
DEFAULT_PRESETS = [name for name in TRAIN_PRESETS if not name.startswith("test-")]
#: per preset, what differs on a CPU: its overrides, log window and timed steps.  vocoder-full's step
#: (8 x 10240 samples through 24 layers of width 512) is ~12 TFLOP: minutes a step on 2 cores
CPU_SETTINGS = {"vocoder-full": {"overrides": ["data.batch_size=1"], "window": 1, "steps": 3}}
#: the corpus each kind trains on here: embedded, no downloads
EMBEDDED_INPUT = {"vocoder": ("vocoder", "espeak:50"), "text": ("text", "stdlib"), "pairs": ("pairs", "espeak-g2p")}


def bench_root() -> pathlib.Path:
    from seqgen.utils.cache import cache_dir

    return cache_dir("bench")


def prepared_data(kind: str, log, given=None) -> pathlib.Path:
    """The embedded corpus of ``kind``, prepared once (``seqgen prepare``) into the bench cache; or
    ``given[kind]``, a corpus prepared already."""
    from seqgen.data.manifest import read_manifest

    if given and given.get(kind):
        return pathlib.Path(given[kind])
    out = bench_root() / f"data-{kind}"
    try:
        read_manifest(out)
        return out
    except Exception:
        pass
    verb, source = EMBEDDED_INPUT[kind]
    log(f"preparing the embedded {kind} corpus ({source}) in {out} (once)")
    from seqgen.cli.app import main

    import shutil

    shutil.rmtree(out, ignore_errors=True)
    code = main(["prepare", verb, "--input", source, "--out", str(out)])
    if code:
        from seqgen.errors import SeqgenError

        raise SeqgenError(f"bench --train: preparing {source} into {out} failed (exit {code})")
    return out


# ---------------------------------------------------------------------- work per step


def _batch_positions(batch) -> tuple[int, int]:
    """``(rows, positions per row)`` of a training batch: its targets' first two dimensions."""
    y = batch[1]
    y = np.asarray(y[0] if isinstance(y, (tuple, list)) else y)
    return int(y.shape[0]), int(y.shape[1])


def forward_flops_per_position(model, length: int, source_length: int = 0) -> float:
    """Forward FLOP per position of a training window of ``length`` positions, by model class."""
    from seqgen.models import flops as F
    from seqgen.models.bytenet import ByteNet
    from seqgen.models.parallel_wavenet import ParallelWaveNet
    from seqgen.models.transformer import TransformerDecoder
    from seqgen.models.wavenet import WaveNet

    if isinstance(model, WaveNet):
        return F.wavenet_flops(model)
    if isinstance(model, ParallelWaveNet):
        return F.student_flops(model)
    if isinstance(model, TransformerDecoder):
        return F.transformer_training_flops(model, length)
    if isinstance(model, ByteNet):
        return F.bytenet_training_flops(model, source_length, length)
    raise TypeError(f"no FLOP count for {type(model).__name__}")


def flop_per_step(loop, batch) -> dict:
    rows, positions = _batch_positions(batch)
    model = loop.model
    if hasattr(loop, "teacher"):
        from seqgen.models import flops as F

        per_position = 3 * forward_flops_per_position(model, positions) + 2 * F.wavenet_flops(loop.teacher)
    else:
        source = int(np.asarray(batch[0]["source"]).shape[1]) if getattr(model, "use_encoder", False) else 0
        per_position = 3 * forward_flops_per_position(model, positions, source_length=source)
    return {"rows": rows, "positions_per_row": positions, "units_per_step": rows * positions,
            "gflop_per_step": per_position * rows * positions / 1e9}


# ---------------------------------------------------------------------- timing


def loop_steps_per_sec(metrics_path) -> tuple[float, list[float]]:
    """Median steps/s of the log windows after the first (compilation), and all of them."""
    rates = [float(r["steps_per_sec"]) for r in map(json.loads, pathlib.Path(metrics_path).read_text().splitlines())
             if "steps_per_sec" in r]
    later = rates[1:] or rates
    return statistics.median(later), rates


def bench_preset(name: str, steps: int | None, warmup: int | None, log, workdir, on_cpu: bool = True,
                 overrides=(), data_dirs=None, step_alone: bool = True) -> dict:
    """One preset's record.  ``step_alone=False`` skips the second figure (a second model, a second
    compilation: on a GPU the compilation can cost more than the timed steps); its keys are then None."""
    from seqgen.recipes.runner import recipes_root
    from seqgen.train.budget import held_batch
    from seqgen.train.distillation import DistillLoop
    from seqgen.train.loop import TrainLoop

    kind, recipe, cfg_name, teacher_cfg, description = TRAIN_PRESETS[name]
    data = prepared_data(kind, log, data_dirs)
    root = recipes_root() / recipe
    cpu = CPU_SETTINGS.get(name, {}) if on_cpu else {}
    window = max(1, int(warmup or cpu.get("window", 5)))
    steps = int(steps or cpu.get("steps", 20))
    total = window * (1 + math.ceil(steps / window))
    sets = [*cpu.get("overrides", []), *overrides, f"train.log_every={window}", f"train.checkpoint_every={total}",
            "train.valid_every=0", f"train.steps={total}", "train.audio_seconds=0"]
    out = pathlib.Path(workdir) / name
    if teacher_cfg is not None:
        log(f"{name}: a teacher to distill from ({teacher_cfg}, 1 step)")
        TrainLoop(root / teacher_cfg, data, out / "teacher", max_steps=1, quiet=True,
                  overrides=["train.valid_every=0", "train.audio_seconds=0"]).run_training()

    def make_loop(run):
        if teacher_cfg is not None:
            return DistillLoop(root / cfg_name, out / "teacher", data, run, max_steps=total, quiet=True,
                               overrides=sets)
        return TrainLoop(root / cfg_name, data, run, max_steps=total, quiet=True, overrides=sets)

    loop = make_loop(out / "run")
    log(f"{name}: seqgen's training loop, {total} steps (log windows of {window})")
    t0 = time.perf_counter()
    loop.run_training()
    loop_wall = time.perf_counter() - t0
    loop_rate, windows = loop_steps_per_sec(loop.run.path / "metrics.jsonl")
    batch = held_batch(loop._dataset(0))
    work = flop_per_step(loop, batch)
    unit = f"{loop.unit}s"  # the task's unit: samples, bytes
    step_rate = step_windows = None
    if step_alone:
        log(f"{name}: the compiled step alone, {steps} steps on one batch held in memory (windows of {window})")
        # a model of its own, built and compiled as the loop's was (a second fit of a model that has trained
        # can fail on JAX: Keras donates the training state's buffers)
        from seqgen.train.budget import time_compiled_step
        from seqgen.train.strategy import Distribution

        fresh = make_loop(out / "step")
        fresh.dist = Distribution("default")
        fresh._build()
        step_rate, step_windows = time_compiled_step(fresh.model, batch, steps, window)

    def times(rate, factor):
        return None if rate is None else rate * factor

    # the overrides that change what is timed (the CPU's and the caller's: train.precision, train.jit_compile,
    # a batch), not the bench's own logging and step settings
    rec = {"preset": name, "description": description, "config": f"recipes/{recipe}/{cfg_name}",
           "overrides": [*cpu.get("overrides", []), *overrides], "precision": loop.cfg["train"]["precision"],
           "jit_compile": bool(loop.cfg["train"]["jit_compile"]), "window": window, "timed_steps": steps,
           "data": str(data), "kind": kind, "unit": unit, **work,
           "loop_steps_per_sec": loop_rate, "loop_windows_steps_per_sec": windows, "loop_wall_seconds": loop_wall,
           "step_steps_per_sec": step_rate, "step_windows_steps_per_sec": step_windows,
           "loop_units_per_sec": loop_rate * work["units_per_step"],
           "step_units_per_sec": times(step_rate, work["units_per_step"]),
           "loop_overhead": None if step_rate is None else 1.0 - loop_rate / step_rate,
           "step_gflops": times(step_rate, work["gflop_per_step"]), "loop_gflops": loop_rate * work["gflop_per_step"]}
    alone = "" if step_rate is None else f", step alone {step_rate:.3f} steps/s"
    log(f"{name}: loop {loop_rate:.3f} steps/s{alone} ({rec['loop_units_per_sec']:,.0f} {unit}/s and "
        f"{rec['loop_gflops']:.1f} GFLOP/s in the loop)")
    return rec


def run_train_bench(presets=None, steps=None, warmup=None, json_path=None, plot_path=None, threads=None, log=None,
                    overrides=(), data_dirs=None):
    """Benchmark training; returns ``{"environment", "ceilings", "records"}`` (one backend: this process's).
    ``data_dirs``: ``{kind: prepared corpus}`` instead of the embedded ones."""
    from seqgen.bench.environment import environment
    from seqgen.bench.roofline import matmul_gflops
    from seqgen.errors import SeqgenError

    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    names = [p for p in (presets.split(",") if isinstance(presets, str) else presets or DEFAULT_PRESETS) if p]
    for n in names:
        if n not in TRAIN_PRESETS:
            raise SeqgenError(f"bench --train: unknown preset {n!r}; choose from {', '.join(DEFAULT_PRESETS)}")
    env = environment(threads)
    log(f"backend {env['backend']} on {env['device']}: the matrix-matrix ceiling (1024 x 1024, float32)")
    mm = matmul_gflops(1024, min_seconds=0.5, repeats=3)
    ceilings = {"matmul_gflops": mm["gflops"], "matmul": mm}
    log(f"matmul ceiling {mm['gflops']:.1f} GFLOP/s")
    records = []
    with tempfile.TemporaryDirectory(prefix="seqgen-bench-train-") as work:
        for n in names:
            rec = bench_preset(n, steps, warmup, log, work, on_cpu=env["device"].startswith("CPU"),
                               overrides=overrides, data_dirs=data_dirs)
            rec.update(backend=env["backend"], cpu=env["cpu"], device=env["device"], environment=env,
                       matmul_gflops=mm["gflops"], step_fraction_of_matmul=rec["step_gflops"] / mm["gflops"],
                       loop_fraction_of_matmul=rec["loop_gflops"] / mm["gflops"])
            records.append(rec)
    res = {"kind": "train", "environment": env, "ceilings": ceilings, "records": records}
    if json_path:
        pathlib.Path(json_path).write_text(json.dumps(res, indent=2) + "\n")
    if plot_path:
        plot_train(records, plot_path)
    return res


# ---------------------------------------------------------------------- report


def record_label(rec) -> str:
    """The preset's name, and what differs from a float32 step compiled by XLA: ``byte-lm-small (mixed_bfloat16,
    XLA off)``.  (Records written before these keys existed carry neither and read as the default.)"""
    notes = [p for p in [rec.get("precision", "float32")] if p != "float32"]
    if rec.get("jit_compile", True) is False:
        notes.append("XLA off")
    return f"{rec['preset']} ({', '.join(notes)})" if notes else rec["preset"]


def markdown_train_table(records) -> str:
    head = ("| preset | backend | batch | loop steps/s | step alone | loop overhead | units/s (loop) | GFLOP/step | "
            "GFLOP/s (step) | of matmul ceiling |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = [f"| {record_label(r)} | {r['backend']} | {r['rows']} x {r['positions_per_row']} | "
            f"{r['loop_steps_per_sec']:.3f} | {r['step_steps_per_sec']:.3f} | "
            f"{100 * r['loop_overhead']:.0f}% | {r['loop_units_per_sec']:,.0f} {r['unit']} | "
            f"{r['gflop_per_step']:.2f} | {r['step_gflops']:.1f} | {100 * r['step_fraction_of_matmul']:.0f}% |"
            for r in records]
    return "\n".join([head] + rows)


def plot_train(records, path) -> None:
    """Steps/s per preset: the loop and the step alone, a bar per backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    presets = list(dict.fromkeys(record_label(r) for r in records))
    backends = list(dict.fromkeys(r["backend"] for r in records))
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.6 * len(presets) + 2.2), sharey=True)
    height = 0.8 / max(1, len(backends))
    for ax, key, title in ((axes[0], "loop_steps_per_sec", "seqgen train (pipeline + callbacks)"),
                           (axes[1], "step_steps_per_sec", "compiled step alone")):
        for j, b in enumerate(backends):
            ys, xs = [], []
            for i, p in enumerate(presets):
                rec = next((r for r in records if record_label(r) == p and r["backend"] == b), None)
                if rec is not None:
                    ys.append(i + j * height)
                    xs.append(rec[key])
            bars = ax.barh(ys, xs, height=height, label=b)
            ax.bar_label(bars, fmt="%.2f", fontsize=8, padding=2)
        ax.set_title(title)
        ax.set_xlabel("training steps/s")
        ax.set_xscale("log")
    axes[0].set_yticks([i + height * (len(backends) - 1) / 2 for i in range(len(presets))], presets)
    axes[0].invert_yaxis()
    axes[1].legend(loc="lower right")
    cpu = records[0].get("cpu", "") if records else ""
    fig.suptitle(f"training speed per preset {cpu}".strip())
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
