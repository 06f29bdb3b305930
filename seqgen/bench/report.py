"""Benchmark records as a Markdown table, a bar chart, and merged JSON files."""
from __future__ import annotations

import json
import pathlib

from seqgen.bench.presets import AUDIO_RATES


def threads_label(rec):
    """The intra-op thread setting of a record: ``1``, ``all`` (0 = the backend's default) or ``?``."""
    t = rec.get("environment", {}).get("threads_requested")
    return "?" if t is None else ("all" if int(t) == 0 else str(t))


def merge(paths):
    """Records of several ``--json`` files in one result (e.g. runs with different thread settings)."""
    from seqgen.errors import SeqgenError

    records, ceilings = [], None
    for path in paths:
        try:
            data = json.loads(pathlib.Path(path).read_text())
            records.extend(data["records"])
            ceilings = ceilings or data.get("ceilings")
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SeqgenError(f"{path}: not a `seqgen bench --json` file ({e})") from None
    return {"environment": records[0]["environment"] if records else {}, "ceilings": ceilings,
            "records": records, "merged_from": [str(p) for p in paths]}


def _traffic_cells(r):
    per = r.get("bytes_per_sample", r.get("bytes_per_token"))
    if per is None:
        return "- | - | -"
    fr = [r.get(f"fraction_of_{lvl}_bandwidth") for lvl in ("l2", "l3", "memory")]
    frac = " / ".join("-" if f is None else f"{100 * f:.0f}" for f in fr)
    return f"{per / 1e3:.0f} | {r['achieved_gbs']:.1f} | {frac}"


def markdown_table(records):
    """The results table of bench/README.md (one row per record)."""
    lines = ["| preset | method | batch | threads | samples or tokens/s | x real time @16k / 22.05k / 24k "
             "| sequential steps | GFLOP/s | % matvec ceiling | % matmul ceiling | KB moved per step | GB/s "
             "| % L2 / L3 / memory read bandwidth | compile s | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        rate = r.get("samples_per_sec", r.get("tokens_per_sec"))
        rtf = (" / ".join(f"{r['realtime_factor'][str(sr)]:.3g}" for sr in AUDIO_RATES)
               if r["kind"] == "audio" else "-")
        steps = r.get("timed_samples", r.get("timed_tokens"))
        seq = r.get("sequential_steps")
        seq = "-" if seq is None else f"{seq:,} for {steps:,}"
        lines.append(f"| {r['preset']} | {r['method']} | {r['batch']} | {threads_label(r)} | {rate:.1f} | {rtf} | "
                     f"{seq} | "
                     f"{r['achieved_gflops']:.2f} | {100 * r['fraction_of_matvec_ceiling']:.1f} | "
                     f"{100 * r['fraction_of_matmul_ceiling']:.1f} | {_traffic_cells(r)} | {r['compile_seconds']:.1f} | "
                     f"{r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


# ======================================================================= plot
def plot(records, path):
    """Bar chart of samples (tokens)/s, log scale, one bar per preset/method/batch,
    annotated with the fraction of the matrix-vector ceiling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['preset']}\n{r['method']} b={r['batch']} t={threads_label(r)}" for r in records]
    rates = [r.get("samples_per_sec", r.get("tokens_per_sec")) for r in records]
    palette = {"cached": "tab:blue", "naive": "tab:orange", "parallel": "tab:green", "native": "tab:red",
               "native-bf16": "tab:purple", "native-int8": "tab:brown"}
    colors = [palette.get(r["method"], "tab:gray") for r in records]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(records) + 2), 4.8))
    bars = ax.bar(range(len(records)), rates, color=colors)
    ax.set_yscale("log")
    ax.set_xticks(range(len(records)))
    ax.set_xticklabels(labels, fontsize=7, rotation=30, ha="right")
    ax.set_ylabel("samples/s (audio) or tokens/s (text), log scale")
    env = records[0]["environment"] if records else {}
    ax.set_title(f"seqgen bench: {env.get('backend', '')} on {env.get('device', '')[:60]}", fontsize=9)
    for bar, r in zip(bars, records):
        ax.annotate(f"{100 * r['fraction_of_matvec_ceiling']:.1f}% mv\n{100 * r['fraction_of_matmul_ceiling']:.1f}% mm",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=6)
    ax.margins(y=0.2)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=c, label=m) for m, c in palette.items()],
              fontsize=7, loc="upper right")
    fig.text(0.01, 0.01, "labels: fraction of the matrix-vector (mv) / matrix-matrix (mm) GFLOP/s ceilings",
             fontsize=6)
    fig.tight_layout()
    p = pathlib.Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p
