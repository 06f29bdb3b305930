"""The ablation table of the vocoder-quality levers, from the runs ``run.sh`` made.

    python recipes/ljspeech_vocoder/ablations/table.py OUTROOT [--json OUT.json] [--plot OUT.png]

Reads ``OUTROOT/NAME/`` for every lever of ``levers.tsv`` that has a finished run (its final validation in
``metrics.jsonl``, its ``quality.json``), and prints a Markdown table: steps reached in the equal
wall-clock budget, held-out NLL in bits per 16-bit sample (the one unit across heads, bit depths,
pre-emphasis and linear prediction), its difference from the mean of the baseline runs, whether that
difference is beyond the baselines' spread, and the yardstick's quality means.  A lever counts only when
it beats the baseline by more than the spread between the baseline runs.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from ablation_table import finished, levers as recipe_levers  # noqa: E402 (recipes/ablation_table.py)

QUALITY = ("pesq_wb", "stoi", "dnsmos_ovrl", "vuv_error", "mcd_db", "log_mel_l1")


def levers():
    return recipe_levers("ljspeech_vocoder")


def read_run(root: pathlib.Path, name: str) -> dict | None:
    run = root / name
    last = finished(run, "valid_bits_per_16bit_sample")
    if last is None:
        return None
    last, valid = last
    out = {"name": name, "step": int(last["step"]), "train_seconds": float(last["time"]),
           "steps_per_sec": int(last["step"]) / max(float(last["time"]), 1e-9),
           "valid_bits_per_sample": float(valid["valid_bits_per_sample"]),
           "valid_bits_per_16bit_sample": float(valid["valid_bits_per_16bit_sample"])}
    quality = run / "quality.json"
    if quality.is_file():
        q = json.loads(quality.read_text())
        out["quality"] = {k: q["mean"]["model"].get(k) for k in QUALITY}
        out["griffin_lim"] = {k: q["mean"].get("griffin_lim", {}).get(k) for k in QUALITY}
        out["host"] = q.get("host")
    return out


def build(root, spread_from=None) -> dict:
    """``spread_from``: the baseline runs whose mean and spread the levers are measured against (default:
    every run whose name starts with ``baseline``)."""
    root = pathlib.Path(root)
    runs = {name: (overrides, read_run(root, name)) for name, overrides in levers()}
    base = [r for n, (_, r) in runs.items() if r and (n in spread_from if spread_from else n.startswith("baseline"))]
    if not base:
        raise SystemExit(f"table.py: no finished baseline run under {root}")
    nll = [r["valid_bits_per_16bit_sample"] for r in base]
    mean, spread = sum(nll) / len(nll), (max(nll) - min(nll))
    rows = []
    for name, (overrides, r) in runs.items():
        if r is None:
            continue
        delta = r["valid_bits_per_16bit_sample"] - mean
        r = dict(r, overrides=overrides, delta_vs_baseline=delta,
                 counts=(not name.startswith("baseline")) and delta < -max(spread, 0.0))
        rows.append(r)
    return {"baseline_mean": mean, "baseline_spread": spread, "baseline_runs": [r["name"] for r in base],
            "runs": rows}


def markdown(table) -> str:
    head = ("| lever | overrides of base.yaml | steps | NLL bits/16-bit sample | vs baseline | counts | PESQ-WB | STOI "
            "| DNSMOS OVRL | voicing err | MCD dB | log-mel L1 |")
    lines = [head, "|" + "---|" * 12]
    for r in table["runs"]:
        q = r.get("quality") or {}

        def f(k, fmt="{:.3f}"):
            v = q.get(k)
            return "" if v is None else fmt.format(v)

        lines.append(f"| {r['name']} | `{r['overrides']}` | {r['step']} | {r['valid_bits_per_16bit_sample']:.3f} "
                     f"| {r['delta_vs_baseline']:+.3f} | {'yes' if r['counts'] else ''} | {f('pesq_wb')} "
                     f"| {f('stoi')} | {f('dnsmos_ovrl')} | {f('vuv_error')} | {f('mcd_db', '{:.1f}')} "
                     f"| {f('log_mel_l1')} |")
    gl = next((r.get("griffin_lim") for r in table["runs"] if r.get("griffin_lim")), None)
    if gl:
        lines.append(f"| Griffin-Lim (floor) | | | | | | {gl['pesq_wb']:.3f} | {gl['stoi']:.3f} "
                     f"| {gl['dnsmos_ovrl']:.3f} | {gl['vuv_error']:.3f} | {gl['mcd_db']:.1f} | {gl['log_mel_l1']:.3f} |")
    lines.append("")
    lines.append(f"Baseline: mean {table['baseline_mean']:.3f} bits per 16-bit sample, spread "
                 f"{table['baseline_spread']:.3f} over {', '.join(table['baseline_runs'])}; a lever counts when it is "
                 f"lower by more than the spread.")
    return "\n".join(lines)


def plot(table, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = table["runs"]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(runs) + 1.5))
    names = [r["name"] for r in runs]
    vals = [r["valid_bits_per_16bit_sample"] for r in runs]
    colors = ["tab:gray" if n.startswith("baseline") else ("tab:green" if r["counts"] else "tab:red")
              for n, r in zip(names, runs)]
    ax.barh(names, vals, color=colors)
    lo = table["baseline_mean"] - table["baseline_spread"] / 2
    ax.axvspan(lo, lo + table["baseline_spread"], color="tab:gray", alpha=0.25, label="baseline spread")
    ax.set_xlim(min(vals) - 0.3, max(vals) + 0.1)
    ax.invert_yaxis()
    ax.set_xlabel("held-out NLL, bits per 16-bit sample (lower is better)")
    ax.set_title("vocoder levers at equal wall-clock (green: beyond the baseline spread)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("--json")
    ap.add_argument("--plot")
    ap.add_argument("--spread-from", help="comma-separated baseline runs for the mean and spread (default: "
                                          "every baseline* run)")
    a = ap.parse_args(argv)
    table = build(a.root, a.spread_from.split(",") if a.spread_from else None)
    print(markdown(table))
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(table, indent=1) + "\n")
    if a.plot:
        plot(table, a.plot)


if __name__ == "__main__":
    main()
