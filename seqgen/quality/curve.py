"""Quality against training time: one :func:`~seqgen.quality.report.evaluate_quality` report per checkpoint.

``seqgen evaluate --run RUN --quality --checkpoint all`` (or ``--checkpoint 500,1000,...``) scores each kept
checkpoint of a run on the same utterances, temperature and seed, and puts the model's means beside the
training minutes that checkpoint took (from ``metrics.jsonl``, summed over resumed processes) and the run's
logged held-out NLL.  Griffin-Lim and the recordings do not depend on the checkpoint: they are the curve's
floor and ceiling.  Keep the checkpoints a curve needs with ``train.keep_checkpoint_every``.
"""
from __future__ import annotations

import json
import pathlib
import sys

from seqgen.errors import SeqgenError

#: what a point keeps of the paired model-minus-Griffin-Lim differences
_DIFF_KEYS = ("pesq_wb", "dnsmos_ovrl", "stoi", "f0_rmse_cents")


def checkpoint_steps(run, spec) -> list[int]:
    """The steps ``spec`` names ("all", or a list of steps) among ``run``'s checkpoints, oldest first."""
    from seqgen.runs import Run

    r = Run(run)
    have = sorted(s for s, _ in r.checkpoints())
    if not have:
        raise SeqgenError(f"{run}: no checkpoint yet; train first")
    if spec == "all":
        return have
    missing = [s for s in spec if s not in have]
    if missing:
        raise SeqgenError(f"--checkpoint: {run} has no checkpoint at step {missing[0]}; it has {r.steps_text()} "
                          f"(keep more with train.keep_checkpoint_every)")
    return sorted(set(spec))


def valid_nll(run) -> list[dict]:
    """The run's logged held-out NLL, ``[{"step", "minutes", "bits_per_16bit_sample" | "bits_per_sample"}]``."""
    from seqgen.runs import Run
    from seqgen.utils.plots import read_metrics

    r = Run(run)
    minutes = r.training_minutes()
    out = []
    for row in read_metrics(r.path / "metrics.jsonl") or []:
        for key in ("valid_bits_per_16bit_sample", "valid_bits_per_sample"):
            if key in row:
                out.append({"step": int(row["step"]), "minutes": minutes.get(int(row["step"])),
                            key[len("valid_"):]: float(row[key])})
                break
    return out


def minutes_at(minutes: dict, step: int):
    """Training minutes at ``step``: its logged row, else the last logged row before it."""
    if step in minutes:
        return minutes[step]
    before = [s for s in minutes if s <= step]
    return minutes[max(before)] if before else None


def quality_curve(run, steps="all", json_out=None, plot=None, quiet=False, **options) -> dict:
    """Score each checkpoint in ``steps`` (see :func:`checkpoint_steps`) with ``evaluate_quality(**options)``;
    writes ``json_out`` and ``plot`` (PNG: NLL, PESQ-WB, DNSMOS OVRL and F0 error against training minutes)."""
    from seqgen.bench.environment import _cpu_model
    from seqgen.runs import Run
    from seqgen.tasks.base import load

    for key in ("json_out", "plot", "audio_dir"):
        if options.get(key):
            raise SeqgenError(f"quality_curve: {key} is per checkpoint; give the curve's json_out and plot")
    steps = checkpoint_steps(run, steps)
    minutes = Run(run).training_minutes()
    points, floor = [], None
    for k, step in enumerate(steps):
        if not quiet:
            print(f"checkpoint {k + 1}/{len(steps)}: step {step}", file=sys.stderr)
        rep = load(run, step=step).quality(quiet=quiet, **options)  # a one-line error for a non-vocoder run
        point = {"step": rep["step"], "checkpoint": rep["checkpoint"], "minutes": minutes_at(minutes, step),
                 "temperature": rep["temperature"], "top_p": rep.get("top_p"), "model": rep["mean"]["model"],
                 "model_minus_griffin_lim": {key: rep["model_minus_griffin_lim"].get(key) for key in _DIFF_KEYS}}
        if "temperature_choice" in rep:
            point["temperature_choice"] = rep["temperature_choice"]
        points.append(point)
        floor = floor or {"griffin_lim": rep["mean"]["griffin_lim"], "recording": rep["mean"]["recording"],
                          "utterances": rep["utterances"], "method": rep["method"], "seed": rep["seed"],
                          "data": rep["data"]}
    curve = {"run": str(run), "host": _cpu_model(), "minutes": "wall-clock minutes of training on the run's host",
             **floor, "points": points, "valid": valid_nll(run)}
    if json_out:
        p = pathlib.Path(json_out)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(curve, indent=2) + "\n")
    if plot:
        from seqgen.utils.plots import quality_curve_png

        curve["plot"] = str(quality_curve_png(plot, curve))
    return curve
