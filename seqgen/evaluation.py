"""Held-out likelihood of a trained model on a prepared split."""
from __future__ import annotations

import math

import numpy as np

LN2 = math.log(2.0)


def vocoder_nll(model, data_dir, split="valid", window=16384, batch_size=4, max_windows=0, progress=False):
    """Negative log-likelihood of every sample of ``split`` (or its first ``max_windows`` windows).

    Returns ``{"nll_bits_per_sample", "nll_nats_per_sample", "num_samples"}``.
    The split is cut into consecutive windows (each window's first input is the
    true previous sample), so the figure is the model's NLL of the split with
    at most ``window`` samples of context, over every real sample exactly once.
    """
    from seqgen import data as D

    info = D.VocoderData(data_dir)
    dist = model.distribution
    silence = int(np.asarray(dist.from_waveform(np.zeros((1,), np.float32)))[0]) if dist.input_is_discrete else 0
    window = max(info.hop, (int(window) // info.hop) * info.hop)
    ds = D.vocoder_eval_dataset(data_dir, split, window, batch_size, discrete=dist.input_is_discrete,
                                silence_class=silence)
    total, count, seen = 0.0, 0.0, 0
    bar = None
    if progress:
        from data_prep.common import progress as pbar

        bar = pbar(total=info.num_samples(split), desc=f"evaluate {split}", unit="sample")
    for inputs, target, weight in ds:
        feed = {"x": inputs["x"].numpy()}
        if getattr(model, "cond_channels", 0):
            feed["mel"] = inputs["mel"].numpy()
        if getattr(model, "num_speakers", 0):
            feed["speaker"] = inputs["speaker"].numpy()
        params = model.predict_on_batch(feed)
        nll = np.asarray(dist.nll(params, target.numpy()), np.float64)
        w = weight.numpy().astype(np.float64)
        total += float((nll * w).sum())
        count += float(w.sum())
        seen += nll.shape[0]
        if bar is not None:
            bar.update(int(w.sum()))
        if max_windows and seen >= max_windows:
            break
    if bar is not None:
        bar.close()
    nats = total / max(count, 1.0)
    return {"nll_bits_per_sample": nats / LN2, "nll_nats_per_sample": nats, "num_samples": int(count)}
