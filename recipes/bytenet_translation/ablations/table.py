"""The translation ablation table, from the runs ``run.sh`` made.

    python recipes/bytenet_translation/ablations/table.py OUTROOT [--json OUT.json]

For every lever of ``levers.tsv`` with a finished run (its final validation in ``metrics.jsonl`` and its
``dev.json``): steps reached in the equal wall-clock budget, held-out teacher-forced bits per target byte,
greedy chrF and BLEU on the dev split (all references), chrF's difference from the mean of the baseline
runs, and whether it is beyond the spread between them (a lever counts only then).
"""
from __future__ import annotations

import argparse
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent


def levers():
    for line in (HERE / "levers.tsv").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, overrides = line.split("\t", 1)
            yield name, overrides.strip()


def read_run(root: pathlib.Path, name: str) -> dict | None:
    run = root / name
    metrics, dev = run / "metrics.jsonl", run / "dev.json"
    if not metrics.is_file() or not dev.is_file():
        return None
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    valid = [r for r in rows if "valid_bits_per_byte" in r]
    train = [r for r in rows if "loss" in r]
    if not valid or not train:
        return None
    d = json.loads(dev.read_text())
    return {"name": name, "step": int(train[-1]["step"]), "valid_bits_per_byte": float(valid[-1]["valid_bits_per_byte"]),
            "chrf": float(d["chrf"]), "bleu": float(d["bleu"]), "num_sources": d.get("num_sources"),
            "signature": d["signature"]}


def build(root) -> dict:
    root = pathlib.Path(root)
    runs = {name: (overrides, read_run(root, name)) for name, overrides in levers()}
    base = [r["chrf"] for n, (_, r) in runs.items() if r and n.startswith("baseline")]
    mean = sum(base) / len(base) if base else None
    spread = max(base) - min(base) if len(base) > 1 else None
    rows = []
    for name, (overrides, r) in runs.items():
        if r is None:
            continue
        delta = None if mean is None else r["chrf"] - mean
        counts = (delta is not None and spread is not None and not name.startswith("baseline")
                  and delta > spread)
        rows.append({**r, "overrides": overrides, "chrf_vs_baseline": delta, "counts": counts})
    return {"baseline_chrf_mean": mean, "baseline_chrf_spread": spread, "rows": rows}


def markdown(table) -> str:
    lines = ["| lever | overrides of base.yaml | steps | held-out bits/byte | dev chrF | dev BLEU | chrF vs baseline | counts |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in table["rows"]:
        delta = "" if r["chrf_vs_baseline"] is None else f"{r['chrf_vs_baseline']:+.2f}"
        lines.append(f"| {r['name']} | `{r['overrides']}` | {r['step']} | {r['valid_bits_per_byte']:.3f} | "
                     f"{r['chrf']:.2f} | {r['bleu']:.2f} | {delta} | {'yes' if r['counts'] else ''} |")
    if table["baseline_chrf_spread"] is not None:
        lines.append(f"\nBaseline chrF {table['baseline_chrf_mean']:.2f}, spread {table['baseline_chrf_spread']:.2f} "
                     f"between the baseline runs.")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root")
    p.add_argument("--json")
    a = p.parse_args(argv)
    table = build(a.root)
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(table, indent=2) + "\n")
    print(markdown(table))


if __name__ == "__main__":
    main()
