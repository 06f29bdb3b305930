"""Translation (ByteNet encoder-decoder): teacher-forced bits per target byte, decoding, BLEU and chrF."""
from __future__ import annotations

import numpy as np

from seqgen.tasks.language_model import LN2, _token_nll

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
    from seqgen.data import pipeline as D

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
    from seqgen.data.tokenizers import ByteCodec

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

    from seqgen.data import pipeline as D
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


def evaluate_text(model, info, data, split="valid", beam=None, max_pairs=0, max_windows=0, cfg=None):
    """`seqgen evaluate` for text runs: bits/byte (LM) or BLEU / chrF (translation)."""
    from seqgen.tasks.language_model import lm_nll

    kind = info["data"]["kind"]
    d = (cfg or {}).get("data", {})
    if kind == "text":
        return lm_nll(model, data, split, window=int(d.get("window", 256)),
                                 batch_size=int(d.get("valid_batch_size", 16)), max_windows=max_windows,
                                 progress=True)
    res = translation_scores(model, data, split, beam_size=beam, max_pairs=max_pairs)
    res.pop("hypotheses", None)
    return res
