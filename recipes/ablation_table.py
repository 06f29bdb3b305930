"""The ablation table of a text recipe, from the runs its ``ablations/run.sh`` made.

    python recipes/ablation_table.py bytenet_translation|byte_lm OUTROOT [--json OUT.json]

For every lever of ``RECIPE/ablations/levers.tsv`` with a finished run (its final validation in
``metrics.jsonl`` and the result file its run.sh writes): the steps reached in the equal wall-clock budget,
the held-out teacher-forced bits per byte, the recipe's figure (dev chrF and BLEU for translation; bits per
byte on the shared-evaluator windows for the byte LM), the figure's difference from the mean of the
baseline runs, and whether the lever beats the baseline by more than the spread between the baseline runs
(only then does it count).  (The vocoder's table, with its quality scores, is
``ljspeech_vocoder/ablations/table.py``.)
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("recipe", choices=sorted(FIGURES))
    p.add_argument("root")
    p.add_argument("--json")
    a = p.parse_args(argv)
    table = build(a.recipe, a.root)
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(table, indent=2) + "\n")
    print(markdown(table))


if __name__ == "__main__":
    main()
