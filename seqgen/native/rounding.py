"""The weights a native loop multiplies by, given back to the Keras model, to score what it samples from.

:func:`round_model_weights` rounds, in place, every matrix the loop of a WaveNet, a Transformer decoder or a
ByteNet LM stores in bfloat16 or int8 (:func:`seqgen.native.wavenet.pack`), so the model's Keras forward
pass gives the held-out NLL through those weights.  One difference: a Transformer with tied embeddings
multiplies by the rounded embedding matrix at its output only, while rounding the shared Keras variable
rounds its input lookups too, so the figure is the loop's or slightly worse.
"""
from __future__ import annotations

import numpy as np


def quantize_int8(w):
    """``(q, scale)``: symmetric int8 per output column, ``scale = max |w[:, o]| / 127`` (0 for a zero
    column), ``q = round(w / scale)``."""
    scale = (np.abs(w).max(axis=0) / 127.0).astype(np.float32)
    q = np.clip(np.rint(w / np.where(scale > 0, scale, 1.0)), -127, 127).astype(np.int8)
    return q, scale


def rounded(w, weight_dtype):
    """``w`` (float32 ``[in, out]``) as the loop multiplies by it: unchanged, rounded to bfloat16, or int8
    times its column's scale (the values ``pack`` stores, back in float32)."""
    w = np.asarray(w, np.float32)
    if weight_dtype == "float32":
        return w
    if weight_dtype == "bfloat16":
        import ml_dtypes

        return w.astype(ml_dtypes.bfloat16).astype(np.float32)
    q, scale = quantize_int8(w)
    return (q.astype(np.float32) * scale).astype(np.float32)


def packed_matrices(model):
    """``[(variable, transposed)]``: the Keras variables whose matrices the native loop packs (a
    convolution kernel ``[k, C, F]`` as its fused ``[k C, F]``; ``transposed``: the loop multiplies by the
    variable's transpose, a tied output embedding)."""
    from seqgen.models.bytenet import ByteNet
    from seqgen.models.transformer import TransformerDecoder
    from seqgen.models.wavenet import WaveNet

    if isinstance(model, WaveNet):
        out = []
        for blk in model.blocks:
            out.append((blk.conv.kernel, False))
            out += [(d.kernel, False) for d in (blk.res_proj, blk.skip_proj) if d is not None]
        return out + [(model.head_hidden.kernel, False), (model.head_out.kernel, False)]
    if isinstance(model, TransformerDecoder):
        out = []
        for blk in model.blocks:
            out += [(blk.attn.qkv_kernel, False), (blk.attn.out_kernel, False), (blk.ff1.kernel, False),
                    (blk.ff2.kernel, False)]
        if model.tie_embeddings:
            return out + [(model.token_embedding.embeddings, True)]
        return out + [(model.output_projection.kernel, False)]
    if isinstance(model, ByteNet) and not model.use_encoder:
        out = []
        for blk in model.decoder_blocks:
            out += [(blk.reduce.kernel, False), (blk.conv.kernel, False), (blk.expand.kernel, False)]
        return out + [(model.head_out.kernel, False)]
    raise ValueError(f"no native loop for a {type(model).__name__}")


def round_model_weights(model, weight_dtype):
    """Give ``model`` the weights its native loop with ``weight_dtype`` multiplies by, in place."""
    from keras import ops

    for var, transposed in packed_matrices(model):
        w = np.asarray(ops.convert_to_numpy(var), np.float32)
        flat = w.T if transposed else w.reshape(-1, w.shape[-1])
        r = rounded(flat, weight_dtype)
        var.assign((r.T if transposed else r).reshape(w.shape))
