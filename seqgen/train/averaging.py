"""Checkpoint averaging: the element-wise mean of a run's weights over several kept checkpoints.

Late in training the weights wander around a minimum; their mean over the last few checkpoints often
scores better than any one of them (the "checkpoint averaging" of neural machine translation).  The result
is a new run directory: the source run's ``config.yaml``, ``run.json`` (with ``averaged_from``) and
``metrics.jsonl``, and one checkpoint at the newest averaged step holding the mean weights (no optimizer:
it is for evaluation and generation, not for resuming), so ``seqgen evaluate``, ``translate``, ``generate``
and ``sample`` take it as any run.  Which steps to average is chosen on the dev split, like the decoding settings.

With EMA weights in a checkpoint (``train.ema``) the averaged weights are those moving averages, as
sampling and evaluation read them (:meth:`seqgen.runs.Run.load_model`).
"""
from __future__ import annotations

import pathlib
import shutil

import numpy as np

from seqgen.errors import SeqgenError


def average_checkpoints(run, steps, out) -> dict:
    """Write the mean of ``run``'s checkpoints at ``steps`` (at least two) as the run directory ``out``.
    Returns ``{"run", "out", "steps", "step", "checkpoint"}``."""
    from seqgen.runs import Run

    src = Run(run)
    if not src.exists():
        raise SeqgenError(f"--run {run}: not a run directory (no run.json)")
    steps = sorted({int(s) for s in steps})
    if len(steps) < 2:
        raise SeqgenError(f"average: give at least two checkpoints; {run} has {src.steps_text()}")
    kept = {s for s, _ in src.checkpoints()}
    missing = [s for s in steps if s not in kept]
    if missing:
        raise SeqgenError(f"average: {run} has no checkpoint at step {missing[0]}; it has {src.steps_text()}")
    dest = Run(out)
    if pathlib.Path(out).resolve() == pathlib.Path(run).resolve():
        raise SeqgenError("average: --out must be a new run directory, not the run itself")
    if dest.exists() or dest.checkpoints():
        raise SeqgenError(f"average: {out} is a run already; choose a new --out")
    total = None
    for step in steps:
        model, _, _ = src.load_model(step=step)  # compiled: with train.ema its moving averages are the weights
        values = [np.asarray(w, np.float64) for w in model.get_weights()]
        total = values if total is None else [t + v for t, v in zip(total, values)]
    # the mean goes into the newest checkpoint's model, saved without an optimizer: an averaged run is for
    # evaluation and generation (its step is the newest averaged one), not for resuming
    newest, _, _ = src.load_model(step=steps[-1], compile=False)
    newest.set_weights([(t / len(steps)).astype(w.dtype) for t, w in zip(total, newest.get_weights())])
    dest.path.mkdir(parents=True, exist_ok=True)
    for name in ("config.yaml", "metrics.jsonl"):
        if (src.path / name).is_file():
            shutil.copyfile(src.path / name, dest.path / name)
    info = dict(src.info())
    info["averaged_from"] = {"run": str(src.path), "steps": steps}
    dest.write_info(info)
    path = dest.save_checkpoint(newest, steps[-1])
    if path is None:
        raise SeqgenError(f"average: could not write the checkpoint into {out}")
    return {"run": str(src.path), "out": str(dest.path), "steps": steps, "step": steps[-1],
            "checkpoint": str(path)}


def parse_steps(text: str, run) -> list[int]:
    """``"8000,9000,9600"`` or ``"last:N"`` (the newest N kept checkpoints) -> steps."""
    from seqgen.runs import Run

    text = str(text).strip()
    if text.startswith("last:"):
        try:
            n = int(text[5:])
        except ValueError:
            raise SeqgenError(f"--checkpoint {text}: expected last:N with a whole number N") from None
        return sorted(s for s, _ in Run(run).checkpoints()[:n])
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise SeqgenError(f"--checkpoint {text}: expected steps separated by commas, or last:N") from None

