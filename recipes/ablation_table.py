"""The ablation table of a text recipe, from the runs its ``ablations/run.sh`` made.

    python recipes/ablation_table.py bytenet_translation|byte_lm OUTROOT [--json OUT.json]
        [--plot CURVES.png [--runs NAME,NAME,...] [--peer LABEL=NANOGPT_LOG.txt ...]]

For every lever of ``RECIPE/ablations/levers.tsv`` with a finished run (its final validation in
``metrics.jsonl`` and the result file its run.sh writes): the steps reached in the equal wall-clock budget,
the held-out teacher-forced bits per byte, the recipe's figure (dev chrF and BLEU for translation; bits per
byte on the shared-evaluator windows for the byte LM), the figure's difference from the mean of the
baseline runs, and whether the lever beats the baseline by more than the spread between the baseline runs
(only then does it count).  ``--plot`` draws the training curves (bits per byte of each logged window against
the step) of the chosen runs, each labelled with its held-out figure, beside a peer's curve read from its own
log (nanoGPT's ``iter N: loss X`` lines, one batch each, averaged over 5 lines).  (The vocoder's table, with
its quality scores, is ``ljspeech_vocoder/ablations/table.py``.)
"""
from __future__ import annotations

import argparse
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
#: recipe -> (result file, the figure, higher is better, further columns)
FIGURES = {"bytenet_translation": ("dev.json", "chrf", True, ("bleu",)),
           "byte_lm": ("eval.json", "bits_per_byte", False, ())}


def levers(recipe):
    """(name, overrides) for each line of RECIPE/ablations/levers.tsv."""
    out = []
    for line in (HERE / recipe / "ablations" / "levers.tsv").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, overrides = line.split("\t", 1)
            out.append((name, overrides.strip()))
    return out


def finished(run: pathlib.Path, valid_key: str):
    """(the last training row, the last validation row) of a run's metrics.jsonl, or None while it has none
    of either (a run that has not validated yet has not finished its budget)."""
    metrics = run / "metrics.jsonl"
    if not metrics.is_file():
        return None
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    valid = [r for r in rows if valid_key in r]
    train = [r for r in rows if "loss" in r]
    return (train[-1], valid[-1]) if valid and train else None


def read_run(recipe, root: pathlib.Path, name: str) -> dict | None:
    result, key, _, extra = FIGURES[recipe]
    run = root / name
    last, res = finished(run, "valid_bits_per_byte"), run / result
    if last is None or not res.is_file():
        return None
    train, valid = last
    r = json.loads(res.read_text())
    return {"name": name, "step": int(train["step"]), "valid_bits_per_byte": float(valid["valid_bits_per_byte"]),
            key: float(r[key]), **{k: float(r[k]) for k in extra}}


def build(recipe, root) -> dict:
    _, key, higher, _ = FIGURES[recipe]
    root = pathlib.Path(root)
    runs = {name: (overrides, read_run(recipe, root, name)) for name, overrides in levers(recipe)}
    base = [r[key] for n, (_, r) in runs.items() if r and n.startswith("baseline")]
    mean = sum(base) / len(base) if base else None
    spread = max(base) - min(base) if len(base) > 1 else None
    rows = []
    for name, (overrides, r) in runs.items():
        if r is None:
            continue
        delta = None if mean is None else r[key] - mean
        gain = None if delta is None else (delta if higher else -delta)
        counts = gain is not None and spread is not None and not name.startswith("baseline") and gain > spread
        rows.append({**r, "overrides": overrides, "vs_baseline": delta, "counts": counts})
    return {"recipe": recipe, "figure": key, "higher_is_better": higher, "baseline_mean": mean,
            "baseline_spread": spread, "rows": rows}


def markdown(table) -> str:
    _, key, _, extra = FIGURES[table["recipe"]]
    cols = [key, *extra]
    lines = ["| lever | overrides of base.yaml | steps | held-out bits/byte | " + " | ".join(cols) +
             f" | {key} vs baseline | counts |", "|---|---|---:|---:|" + "---:|" * len(cols) + "---:|---|"]
    for r in table["rows"]:
        delta = "" if r["vs_baseline"] is None else f"{r['vs_baseline']:+.3f}"
        lines.append(f"| {r['name']} | `{r['overrides']}` | {r['step']} | {r['valid_bits_per_byte']:.3f} | " +
                     " | ".join(f"{r[c]:.3f}" for c in cols) + f" | {delta} | {'yes' if r['counts'] else ''} |")
    if table["baseline_spread"] is not None:
        lines.append(f"\nBaseline {key} {table['baseline_mean']:.3f}, spread {table['baseline_spread']:.3f} between "
                     f"the baseline runs.")
    return "\n".join(lines)


def peer_curve(log: pathlib.Path) -> list[tuple[int, float]]:
    """(iteration, bits per byte) from a nanoGPT training log: its ``iter N: loss X`` lines (nats, one batch
    each), averaged over 5 consecutive lines."""
    import math
    import re

    points = [(int(m.group(1)), float(m.group(2)) / math.log(2))
              for m in re.finditer(r"^iter (\d+): loss ([\d.]+)", log.read_text(), re.M)]
    return [(points[i + 4][0], sum(v for _, v in points[i:i + 5]) / 5) for i in range(0, len(points) - 4, 5)]


def plot(table, root, png, names=None, peers=()):
    """Training curves of the runs ``names`` (all the table's rows by default) and of the ``peers``
    (``(label, log path)``) -> ``png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from seqgen.utils.plots import read_metrics

    _, key, _, _ = FIGURES[table["recipe"]]
    rows = {r["name"]: r for r in table["rows"]}
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for name in names or list(rows):
        if name not in rows:
            raise SystemExit(f"ablation_table.py: no finished run {name!r} under {root}")
        metrics = read_metrics(pathlib.Path(root) / name / "metrics.jsonl")
        curve = [(r["step"], r["bits_per_byte"]) for r in metrics if "bits_per_byte" in r]
        ax.plot(*zip(*curve), lw=1.2, label=f"{name}: {rows[name][key]:.3f}")
    for label, log in peers:
        ax.plot(*zip(*peer_curve(pathlib.Path(log))), lw=1.2, ls="--", color="k", label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("training bits per byte (mean of a log window)")
    ax.set_ylim(top=3.0)
    ax.grid(alpha=0.3)
    ax.legend(title=f"run: held-out {key.replace('_', ' ')}", fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("recipe", choices=sorted(FIGURES))
    p.add_argument("root")
    p.add_argument("--json")
    p.add_argument("--plot", metavar="PNG", help="training curves of the runs")
    p.add_argument("--runs", help="comma-separated runs to draw (default: every finished one)")
    p.add_argument("--peer", action="append", default=[], metavar="LABEL=LOG",
                   help="a peer's curve from its nanoGPT training log (repeatable)")
    a = p.parse_args(argv)
    table = build(a.recipe, a.root)
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(table, indent=2) + "\n")
    print(markdown(table))
    if a.plot:
        peers = [tuple(item.split("=", 1)) for item in a.peer]
        plot(table, a.root, a.plot, a.runs.split(",") if a.runs else None, peers)


if __name__ == "__main__":
    main()
