"""Byte language models (Transformer decoder, ByteNet LM): held-out bits per byte and streamed generation.

Streaming: ``generate`` decodes ``--chunk`` bytes at a time and prints each
chunk as soon as it is decoded.  The models' ``generate`` starts a fresh
cache on every call, so each chunk re-reads its context (the prompt plus
what came before, at most ``max_length - chunk`` bytes for a Transformer,
the receptive field for a ByteNet) through the same compiled cached loop
before sampling the chunk's new bytes.  The text is therefore a function of
``(prompt, seed, chunk)``; it does not equal a single un-chunked call.
"""
from __future__ import annotations

import codecs
import math

import numpy as np

from seqgen.errors import SeqgenError

LN2 = math.log(2.0)

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
    from seqgen.data import pipeline as D

    window = min(int(window), int(getattr(model, "max_length", window)))
    x, y = D.byte_arrays(data_dir, split, window, int(max_windows) or None)
    x = lm_inputs(x, model.bos_id)
    total, count = 0.0, 0.0
    bar = None
    if progress:
        from seqgen.utils.progress import progress as pbar

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




def load_text_run(run_dir, kinds=("text", "pairs")):
    """``(model, step, info)`` of a trained text run (EMA weights when tracked).

    ``info`` is the run's ``run.json`` plus ``trained_window``: the longest
    context the model saw in training (``data.window``), or None."""
    from seqgen.runs import Run

    run = Run(run_dir)
    info = run.info()
    kind = (info.get("data") or {}).get("kind")
    if kind not in kinds:
        raise SeqgenError(f"{run_dir}: a {kind} run; this needs a run trained on {' or '.join(kinds)} data")
    model, step, _ = run.load_model(use_ema=True, compile=False)
    try:
        window = int(run.config()["data"]["window"])
    except (KeyError, TypeError, ValueError, OSError):
        window = None
    return model, step, {**info, "trained_window": window}


def _usable_context(model, trained_window=None):
    """The positions a Transformer may use: ``min(max_length, trained_window)`` (positions
    past the training windows have untrained embeddings)."""
    length = int(model.max_length)
    return min(length, int(trained_window)) if trained_window else length


def _context_limit(model, chunk, trained_window=None):
    """Bytes of context re-read per chunk: a Transformer keeps every position it
    generates within :func:`_usable_context`."""
    if hasattr(model, "max_length"):
        return _usable_context(model, trained_window) - int(chunk)
    return max(1, int(model.receptive_field))


def generate_stream(model, prompt="", max_bytes=256, temperature=1.0, top_k=0, top_p=1.0, seed=0,
                    method="cached", chunk=None, write=None, trained_window=None):
    """Generate ``max_bytes`` bytes after ``prompt`` in chunks of ``chunk`` bytes.

    ``write(text)`` (if given) receives each decoded chunk as it is produced (UTF-8 decoded
    incrementally: a character split across chunks comes out whole).  Returns the generated
    text (without the prompt).  Stops early at EOS.  ``trained_window``: the training
    window of the run (see :func:`load_text_run`), which bounds the context.  ``chunk``
    None: 64 bytes, at most half the context a Transformer may use.
    """
    from seqgen.data.tokenizers import ByteCodec

    tok = ByteCodec()
    if chunk is None:
        chunk = 64
        if hasattr(model, "max_length"):
            chunk = max(1, min(chunk, _usable_context(model, trained_window) // 2))
    chunk = max(1, int(chunk))
    limit = _context_limit(model, chunk, trained_window)
    if limit < 1:
        raise SeqgenError(f"--chunk {chunk} is not smaller than the model's context "
                          f"(max_length {model.max_length}, trained on windows of {trained_window})")
    context = list(tok.encode(prompt))
    dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
    out, left, k = [], int(max_bytes), 0
    while left > 0:
        n = min(chunk, left)
        ctx = context[-limit:] if limit < len(context) else context
        ids = model.generate(np.asarray(ctx, np.int32) if ctx else None, max_new_tokens=n,
                             temperature=temperature, top_k=top_k, top_p=top_p, seed=int(seed) + 7919 * k,
                             method=method)[0]
        ids = [int(i) for i in ids]
        ended = model.eos_id in ids
        if ended:
            ids = ids[:ids.index(model.eos_id)]
        ids = [i for i in ids if i < 256]
        context.extend(ids)
        piece = dec.decode(bytes(ids), final=ended or left - n <= 0)
        out.append(piece)
        if write is not None and piece:
            write(piece)
        left -= n
        k += 1
        if ended:
            break
    return "".join(out)
