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
    window = max(info.hop, (int(window) // info.hop) * info.hop)
    ds = D.vocoder_eval_dataset(data_dir, split, window, batch_size, discrete=dist.input_is_discrete,
                                silence_class=D.silence_input(dist))
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


# --------------------------------------------------------------------------- text


def _token_nll(logits, y, pad_id):
    """Per-token cross-entropy (nats, float64) of targets ``y [B, T]`` under ``logits [B, T, V]``
    and the weights (0 at PAD targets)."""
    logits = np.asarray(logits, np.float64)
    m = logits.max(-1, keepdims=True)
    lse = np.log(np.exp(logits - m).sum(-1)) + m[..., 0]
    picked = np.take_along_axis(logits, np.asarray(y, np.int64)[..., None], -1)[..., 0]
    return lse - picked, (np.asarray(y) != pad_id).astype(np.float64)


def lm_inputs(x, bos_id):
    """Language-model inputs of byte windows: the first byte replaced by BOS (as in training and
    generation, which always start from BOS)."""
    x = np.array(x, np.int32, copy=True)
    x[:, 0] = bos_id
    return x


def lm_nll(model, data_dir, split="valid", window=256, batch_size=16, max_windows=0, progress=False):
    """Bits per byte of a byte LM on consecutive non-overlapping windows of ``split``
    (the first ``max_windows`` of them; 0 = all).

    Returns ``{"bits_per_byte", "nats_per_byte", "num_bytes", "num_windows", "window"}``.
    """
    from seqgen import data as D

    window = min(int(window), int(getattr(model, "max_length", window)))
    x, y = D.byte_arrays(data_dir, split, window, int(max_windows) or None)
    x = lm_inputs(x, model.bos_id)
    total, count = 0.0, 0.0
    bar = None
    if progress:
        from data_prep.common import progress as pbar

        bar = pbar(total=int(y.size), desc=f"evaluate {split}", unit="B")
    for i in range(0, len(x), int(batch_size)):
        logits = model.predict_on_batch({"x": x[i:i + batch_size]})
        nll, w = _token_nll(logits, y[i:i + batch_size], model.pad_id)
        total += float((nll * w).sum())
        count += float(w.sum())
        if bar is not None:
            bar.update(int(w.sum()))
    if bar is not None:
        bar.close()
    nats = total / max(count, 1.0)
    return {"bits_per_byte": nats / LN2, "nats_per_byte": nats, "num_bytes": int(count),
            "num_windows": int(len(x)), "window": int(window)}


def pad_to_bucket(ids, pad_id, minimum=16):
    """``ids [B, T]`` PAD-extended to the next power-of-two length (few compiled shapes)."""
    from seqgen.models.transformer import bucket_length

    ids = np.asarray(ids)
    size = bucket_length(ids.shape[1], minimum)
    out = np.full((ids.shape[0], size), pad_id, ids.dtype)
    out[:, :ids.shape[1]] = ids
    return out


def pairs_nll(model, data_dir, split="valid", batch_size=16, max_length=256, max_batches=0):
    """Teacher-forced NLL of the targets of ``split`` (bits per target byte, EOS included).

    Returns ``{"bits_per_byte", "nats_per_byte", "num_bytes", "num_pairs"}``.
    """
    from seqgen import data as D

    ds = D.pairs_dataset(data_dir, split, int(batch_size), int(max_length), shuffle=False, repeat=False)
    total, count, pairs = 0.0, 0.0, 0
    for k, (inputs, target) in enumerate(ds):
        if max_batches and k >= max_batches:
            break
        feed = {"source": pad_to_bucket(inputs["source"].numpy(), model.pad_id),
                "target_in": pad_to_bucket(inputs["target_in"].numpy(), model.pad_id)}
        y = pad_to_bucket(target.numpy(), model.pad_id)
        nll, w = _token_nll(model.predict_on_batch(feed), y, model.pad_id)
        total += float((nll * w).sum())
        count += float(w.sum())
        pairs += int(y.shape[0])
    if not pairs:
        from seqgen.errors import DataError

        raise DataError(f"{data_dir}: the '{split}' split has no pairs of at most {max_length} bytes")
    nats = total / max(count, 1.0)
    return {"bits_per_byte": nats / LN2, "nats_per_byte": nats, "num_bytes": int(count), "num_pairs": pairs}


def translate_texts(model, texts, beam_size=None, batch_size=32, tokenizer=None):
    """Translate source strings (greedy, or beam search with ``beam_size``); returns strings in order.

    Sources are sorted by length and decoded in batches so that similar lengths share a
    compiled function."""
    from seqgen.text import ByteCodec

    tok = tokenizer or ByteCodec()
    enc = [tok.encode(t) for t in texts]
    order = sorted(range(len(enc)), key=lambda i: len(enc[i]))
    out = [""] * len(enc)
    for i in range(0, len(order), int(batch_size)):
        idx = order[i:i + batch_size]
        rows = model.translate([enc[j] if len(enc[j]) else np.array([model.eos_id], np.int32) for j in idx],
                               beam_size=beam_size)
        for j, row in zip(idx, rows):
            out[j] = tok.decode(row)
    return out


def translation_scores(model, data_dir, split="valid", beam_size=None, max_pairs=0, batch_size=32):
    """Corpus BLEU and chrF (sacrebleu, on the detokenized text) of the decoded sources of ``split``.

    Returns ``{"bleu", "chrf", "signature": {"bleu", "chrf"}, "num_pairs", "decoding"}``.
    """
    from sacrebleu.metrics import BLEU, CHRF

    from seqgen import data as D
    from seqgen.errors import DataError

    pairs = D.read_pairs(data_dir, split)
    if max_pairs:
        pairs = pairs[:int(max_pairs)]
    if not pairs:
        raise DataError(f"{data_dir}: the '{split}' split has no pairs")
    hyps = translate_texts(model, [s for s, _ in pairs], beam_size=beam_size, batch_size=batch_size)
    refs = [[t for _, t in pairs]]
    bleu, chrf = BLEU(), CHRF()
    b, c = bleu.corpus_score(hyps, refs), chrf.corpus_score(hyps, refs)
    return {"bleu": float(b.score), "chrf": float(c.score),
            "signature": {"bleu": str(bleu.get_signature()), "chrf": str(chrf.get_signature())},
            "num_pairs": len(pairs), "decoding": f"beam {beam_size}" if beam_size else "greedy",
            "hypotheses": hyps}
