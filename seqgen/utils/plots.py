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
