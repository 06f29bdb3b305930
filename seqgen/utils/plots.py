"""PNG figures: waveforms with spectrograms, and loss curves (matplotlib, Agg)."""
from __future__ import annotations

import json
import pathlib

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _spec_db(wav, sr):
    import librosa

    n_fft = 1024 if sr > 12000 else 512
    hop = n_fft // 4
    wav = np.asarray(wav, np.float32)
    if len(wav) < n_fft:
        wav = np.pad(wav, (0, n_fft - len(wav)))
    s = np.abs(librosa.stft(wav, n_fft=n_fft, hop_length=hop))
    return librosa.amplitude_to_db(s, ref=np.max(s) if s.max() > 0 else 1.0, top_db=80.0), hop


def audio_png(path, tracks: list[tuple[str, np.ndarray]], sr: int, title: str = "") -> pathlib.Path:
    """One row per track: its waveform (left) and its spectrogram (right)."""
    plt = _plt()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(tracks)
    fig, axes = plt.subplots(n, 2, figsize=(13, 2.8 * n), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.4]})
    for row, (name, wav) in enumerate(tracks):
        wav = np.asarray(wav, np.float32).reshape(-1)
        t = np.arange(len(wav)) / sr
        ax = axes[row, 0]
        ax.plot(t, wav, lw=0.4, color="tab:blue")
        ax.set_xlim(0, max(t[-1] if len(t) else 0, 1e-3))
        ax.set_ylim(-1, 1)
        ax.set_ylabel(name)
        ax.set_xlabel("seconds")
        db, hop = _spec_db(wav, sr)
        ax = axes[row, 1]
        im = ax.imshow(db, origin="lower", aspect="auto", cmap="magma",
                       extent=[0, db.shape[1] * hop / sr, 0, sr / 2000])
        ax.set_ylabel("kHz")
        ax.set_xlabel("seconds")
        fig.colorbar(im, ax=ax, format="%+.0f dB", pad=0.01)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def compare_png(real, generated, sr, path, title="") -> pathlib.Path:
    return audio_png(path, [("real", real), ("generated", generated)], sr, title)


def read_metrics(metrics_jsonl) -> list[dict] | None:
    """The records of a run's ``metrics.jsonl`` (lines that are not JSON skipped), or
    None without the file."""
    metrics_jsonl = pathlib.Path(metrics_jsonl)
    if not metrics_jsonl.is_file():
        return None
    records = []
    for line in metrics_jsonl.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def loss_curves_png(metrics_jsonl, path) -> pathlib.Path | None:
    """Training loss (bits/sample or bits/token) and validation NLL against steps."""
    records = read_metrics(metrics_jsonl)
    if records is None:
        return None
    train, valid = [], []
    unit = None
    for r in records:
        for u in ("sample", "byte", "token"):
            if f"bits_per_{u}" in r:
                train.append((r["step"], r[f"bits_per_{u}"]))
                unit = unit or u
            if f"valid_bits_per_{u}" in r:
                valid.append((r["step"], r[f"valid_bits_per_{u}"]))
                unit = unit or u
    if not train and not valid:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if train:
        s, v = zip(*sorted(train))
        ax.plot(s, v, lw=1, label="train (mean over log interval)")
    if valid:
        s, v = zip(*sorted(valid))
        ax.plot(s, v, "o-", lw=1.5, label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel(f"NLL, bits per {unit}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = pathlib.Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def distill_curves_png(metrics_jsonl, path):
    """Three panels against the step: KL (train and held-out); the teacher's NLL of the
    student's samples next to its NLL of real audio; the power loss."""
    from seqgen.utils.plots import read_metrics

    recs = read_metrics(metrics_jsonl)
    if recs is None:
        return None

    def series(key):
        pts = sorted((r["step"], r[key]) for r in recs if key in r and r[key] is not None)
        return list(zip(*pts)) if pts else None

    from seqgen.utils.plots import _plt

    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = [
        (axes[0], [("kl", "train KL"), ("valid_kl", "held-out KL")], "KL(student || teacher), nats/sample"),
        (axes[1], [("teacher_nll_student", "student samples (train)"),
                   ("valid_teacher_nll_student", "student samples (held-out)"),
                   ("valid_teacher_nll_real", "real audio (held-out)")], "teacher NLL, nats/sample"),
        (axes[2], [("power", "train"), ("valid_power", "held-out")], "power loss"),
    ]
    drawn = False
    for ax, keys, label in panels:
        for key, name in keys:
            s = series(key)
            if s:
                ax.plot(s[0], s[1], "o-" if key.startswith("valid") else "-", lw=1, ms=3, label=name)
                drawn = True
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    if not drawn:
        plt.close(fig)
        return None
    fig.tight_layout()
    path = pathlib.Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


QUALITY_PANELS = (("pesq_wb", "PESQ-WB (higher better)"), ("stoi", "STOI (higher better)"),
                  ("dnsmos_ovrl", "DNSMOS OVRL (higher better)"), ("f0_rmse_cents", "F0 RMSE, cents (lower better)"),
                  ("mcd_db", "MCD, dB (lower better)"), ("log_mel_l1", "log-mel L1 (lower better)"))


def quality_png(path, report: dict, example, sr: int) -> pathlib.Path:
    """A quality report at a glance: per-utterance scores of Griffin-Lim and the model (paired lines, means
    as bars, the recordings where the score is non-intrusive), and one utterance's spectrograms."""
    plt = _plt()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = report["rows"]
    fig, axes = plt.subplots(3, 3, figsize=(14, 10.5))
    systems = (("griffin_lim", "Griffin-Lim", "tab:orange"), ("model", "model", "tab:blue"),
               ("recording", "recording", "tab:green"))
    for ax, (key, label) in zip(axes[:2].ravel(), QUALITY_PANELS):
        shown = [(k, (s, name, c)) for k, (s, name, c) in enumerate(systems)
                 if any(r[s].get(key) is not None for r in rows)]
        for x, (s, name, c) in shown:
            vals = np.asarray([np.nan if r[s].get(key) is None else r[s][key] for r in rows], np.float64)
            jitter = np.linspace(-0.12, 0.12, len(vals)) if len(vals) > 1 else np.zeros(1)
            ax.scatter(x + jitter, vals, s=14, color=c, alpha=0.8)
            if np.isfinite(vals).any():
                ax.hlines(np.nanmean(vals), x - 0.3, x + 0.3, color="black", lw=2)
        a = [r["griffin_lim"].get(key) for r in rows]
        b = [r["model"].get(key) for r in rows]
        for k, (u, v) in enumerate(zip(a, b)):
            if u is not None and v is not None:
                j = np.linspace(-0.12, 0.12, len(rows))[k] if len(rows) > 1 else 0.0
                ax.plot([0 + j, 1 + j], [u, v], color="grey", lw=0.5, alpha=0.5)
        d = report["model_minus_griffin_lim"].get(key, {})
        if d.get("mean") is not None and d.get("low") is not None:
            ax.set_title(f"{label}\nmodel - GL {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]", fontsize=9)
        else:
            ax.set_title(label, fontsize=9)
        ax.set_xticks([x for x, _ in shown])
        ax.set_xticklabels([name for _, (_, name, _) in shown])
        ax.grid(axis="y", alpha=0.3)
    uid, recording, floor, generated = example
    for ax, (name, wav) in zip(axes[2], (("recording", recording), ("Griffin-Lim", floor), ("model", generated))):
        db, hop = _spec_db(wav, sr)
        ax.imshow(db, origin="lower", aspect="auto", cmap="magma", extent=[0, db.shape[1] * hop / sr, 0, sr / 2000])
        ax.set_title(f"{uid}: {name}", fontsize=9)
        ax.set_xlabel("seconds")
        ax.set_ylabel("kHz")
    u = report["utterances"]
    fig.suptitle(f"{pathlib.Path(report['run']).name} step {report['step']} ({report['method']}, "
                 f"T={report['temperature']}): {u['count']} utterances, {u['seconds']:.0f} s; host {report['host']}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


#: the panels of a quality curve: held-out NLL, then these scores of the model's means
CURVE_PANELS = (("pesq_wb", "PESQ-WB (higher better)"), ("dnsmos_ovrl", "DNSMOS OVRL (higher better)"),
                ("f0_rmse_cents", "F0 RMSE, cents (lower better)"))


def quality_curve_png(path, curve: dict) -> pathlib.Path:
    """Held-out NLL and the model's mean PESQ-WB, DNSMOS OVRL and F0 error against training minutes, each
    score with Griffin-Lim's (and, where it has one, the recordings') level as a line."""
    plt = _plt()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 4, figsize=(17, 4))
    valid = [v for v in curve["valid"] if v.get("minutes") is not None]
    ax = axes[0]
    if valid:
        key = "bits_per_16bit_sample" if "bits_per_16bit_sample" in valid[0] else "bits_per_sample"
        ax.plot([v["minutes"] for v in valid], [v[key] for v in valid], "o-", color="tab:blue")
        ax.set_ylabel(key.replace("_", " "))
    ax.set_title("held-out NLL (lower better)", fontsize=9)
    points = [p for p in curve["points"] if p.get("minutes") is not None]
    for ax, (key, label) in zip(axes[1:], CURVE_PANELS):
        xs = [p["minutes"] for p in points]
        ys = [p["model"].get(key) for p in points]
        ax.plot(xs, [np.nan if y is None else y for y in ys], "o-", color="tab:blue", label="model")
        for k, p in enumerate(points):
            d = (p.get("model_minus_griffin_lim") or {}).get(key) or {}
            if d.get("low") is not None and ys[k] is not None:  # the paired interval, moved onto the model's mean
                ax.vlines(xs[k], ys[k] + d["low"] - d["mean"], ys[k] + d["high"] - d["mean"], color="tab:blue",
                          alpha=0.4)
        for system, name, color in (("griffin_lim", "Griffin-Lim", "tab:orange"), ("recording", "recording",
                                                                                  "tab:green")):
            level = curve.get(system, {}).get(key)
            if level is not None:
                ax.axhline(level, color=color, ls="--", lw=1, label=name)
        ax.set_title(label, fontsize=9)
        ax.legend(fontsize=8)
    for ax in axes:
        ax.set_xlabel("training minutes")
        ax.grid(alpha=0.3)
    u = curve["utterances"]
    fig.suptitle(f"{pathlib.Path(curve['run']).name}: {len(curve['points'])} checkpoints, {u['count']} utterances "
                 f"({u['seconds']:.0f} s), {curve['method']}; bars: paired 95% interval vs Griffin-Lim; "
                 f"host {curve['host']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


#: held-out figures a `seqgen evaluate --checkpoint ...` curve draws, per task: (key, label, lower is better)
HELD_OUT_PANELS = (("chrf", "chrF", False), ("bleu", "BLEU", False), ("bits_per_byte", "bits per byte", True),
                   ("nll_bits_per_16bit_sample", "bits per 16-bit sample", True),
                   ("nll_bits_per_sample", "bits per sample", True))


def held_out_curve_png(path, curve: dict) -> pathlib.Path:
    """The held-out figures of each checkpoint (chrF and BLEU, bits per byte, or bits per sample) against
    training minutes (steps when a checkpoint has no logged time), one panel per figure."""
    plt = _plt()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    points = curve["points"]
    panels = [p for p in HELD_OUT_PANELS if points and all(p[0] in q for q in points)]
    if panels and panels[0][0] == "nll_bits_per_16bit_sample":
        panels = panels[:1]  # the vocoder's two NLLs differ by a constant: one panel
    timed = all(q.get("minutes") is not None for q in points)
    xs = [q["minutes"] if timed else q["step"] for q in points]
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5 * max(1, len(panels)), 3.8), squeeze=False)
    for ax, (key, label, lower) in zip(axes[0], panels):
        ys = [q[key] for q in points]
        ax.plot(xs, ys, "o-", color="tab:blue")
        for x, y in zip(xs, ys):
            ax.annotate(f"{y:.2f}" if lower else f"{y:.1f}", (x, y), textcoords="offset points", xytext=(0, 6),
                        ha="center", fontsize=7)
        ax.set_title(f"{label} ({'lower' if lower else 'higher'} is better)", fontsize=9)
        ax.set_xlabel("training minutes" if timed else "step")
        ax.grid(alpha=0.3)
    first = points[0] if points else {}
    what = ", ".join(x for x in (first.get("split"), first.get("decoding")) if x)
    fig.suptitle(f"{pathlib.Path(str(curve['run'])).name}: {len(points)} checkpoints" + (f" ({what})" if what else ""),
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
