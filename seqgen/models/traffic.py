"""Bytes a cached decoding step reads and writes, per generated sample or token, from a model's configuration.

At batch 1 the cached loops are bound by reading weights, not by arithmetic: every step multiplies each
float32 weight once (4 bytes for 2 FLOP).  `seqgen bench` relates these counts to the measured speed and
to the read-bandwidth ceilings of :mod:`seqgen.bench.roofline`.  The definitions, frozen (float32, 4 bytes
a value, but for the weights of WaveNet's native loop, 2 bytes in bfloat16 and 1 in int8; biases, int8's
scales, layer norms and gates, a few vectors per layer, not counted):

* **weights**: every weight matrix the step multiplies by, read once per step for the whole batch, so a
  row's share is ``weights / batch``;
* **per row**: what each row reads or writes for itself: its embedding row, its slice of the precomputed
  conditioning, its cache (a WaveNet / ByteNet layer reads ``k - 1`` queue rows and writes one; a
  Transformer layer reads the whole key/value buffer of ``T`` positions and writes one position, as
  :func:`~seqgen.models.flops.transformer_flops` counts its work), and the output parameters.

``None`` for the methods this does not describe (``naive`` recomputes; ``parallel`` is one pass of
large matrix products, bound by arithmetic).
"""
from __future__ import annotations

from seqgen.core.methods import CACHED

BYTES = 4


def wavenet_bytes(model, batch=1, weight_bytes=BYTES):
    """``{"weights", "per_row", "total"}``: bytes per generated sample (one row) of a cached
    :class:`~seqgen.models.wavenet.WaveNet` step at ``batch`` rows (``weight_bytes``: 4 for float32
    weights, 2 or 1 for the native loop's bfloat16 or int8 ones; everything else is float32)."""
    r, g, s, k = model.residual_channels, model.gate_channels, model.skip_channels, model.kernel_size
    p = model.distribution.param_size
    weights = 0 if model.distribution.input_is_discrete else r
    for block in model.blocks:
        weights += k * r * g + (g // 2) * ((r if block.residual_output else 0) + s)
    weights += s * s + s * p
    per_row = (r if model.distribution.input_is_discrete else 0) * (3 if getattr(model, "lpc_order", 0) else 1)
    if model.cond_channels or model.num_speakers:
        per_row += len(model.blocks) * g                      # this step's conditioning slice
    per_row += len(model.blocks) * k * r                      # queues: k - 1 rows read, one written
    per_row += p                                              # the head's output, read by the sampler
    per_row += 3 * getattr(model, "lpc_order", 0)             # predictor row, ring read and written
    return _result(weights, per_row, batch, weight_bytes)


def transformer_bytes(model, batch=1, cache_length=None, weight_bytes=BYTES):
    """Bytes per generated token (one row) of a cached
    :class:`~seqgen.models.transformer.TransformerDecoder` step (``cache_length``: the key/value buffer's
    positions, default ``max_length``; ``weight_bytes``: 4, or the native loop's 2 or 1).  The native loop
    reads only the filled positions, ``t + 1`` at step ``t``: this count is its upper bound."""
    d, f, v, nl = model.d_model, model.d_ff, model.vocab_size, model.num_layers
    t_len = model.max_length if cache_length is None else int(cache_length)
    weights = nl * (3 * d * d + d * d + 2 * d * f) + d * v
    per_row = 2 * d                                           # token and position embedding rows
    per_row += nl * (2 * t_len * d + 2 * d)                   # keys and values read, this position's written
    per_row += v                                              # logits
    return _result(weights, per_row, batch, weight_bytes)


def bytenet_bytes(model, batch=1, weight_bytes=BYTES):
    """Bytes per generated token (one row) of a cached ByteNet LM step (``weight_bytes``: 4, or the native
    loop's 2 or 1)."""
    d, h, k, v = model.d_model, model.d_model // 2, model.kernel_size, model.vocab_size
    blocks = len(model.decoder_blocks)
    weights = blocks * (d * h + k * h * h + h * d) + d * v
    per_row = d + blocks * k * h + v
    return _result(weights, per_row, batch, weight_bytes)


def _result(weights, per_row, batch, weight_bytes=BYTES):
    w = weight_bytes * weights
    row = BYTES * per_row
    return {"weights": w, "per_row": row, "total": w / max(1, int(batch)) + row}


def bytes_per_step(kind: str, model, method=CACHED, batch=1, **kw):
    """The per-row total of the function for ``kind`` (``wavenet``, ``transformer``, ``bytenet``), or None
    for a method other than cached."""
    if method != CACHED:
        return None
    fn = {"wavenet": wavenet_bytes, "transformer": transformer_bytes, "bytenet": bytenet_bytes}[kind]
    return fn(model, batch, **kw)["total"]
