"""The cached Transformer decoding loop in C (``transformer_loop.c``).

:class:`NativeTransformerLoop` takes a built :class:`seqgen.models.transformer.TransformerDecoder` and runs
what ``TransformerDecoder.generate`` runs in its compiled Keras loop: the same generation plan (prompts as
teacher forcing, the uniforms drawn before decoding, PAD and BOS banned, the stop at EOS), the same
sampler (temperature, ``top_k``, ``top_p``), token by token with a key/value cache of which only the
filled positions are read, every row in lockstep.  Learned, sinusoidal and rotary positions, the four
feed-forward activations and tied or separate output projections are supported.
"""
from __future__ import annotations

import ctypes

import numpy as np

from seqgen.native.token_loop import NativeTokenLoop, _f32p, _p, _pp
from seqgen.native.wavenet import WEIGHT_DTYPES

__all__ = ["NativeTransformerLoop"]

#: TransformerDecoder.activation -> the C loop's code
ACTIVATION_CODES = {"gelu": 0, "gelu_tanh": 1, "relu": 2, "relu2": 3}


class _Model(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in ("n_layers", "d", "H", "Dh", "ff", "V", "max_len", "activation",
                                               "wdtype")] + [
        ("tok_emb", _p), ("pos", _p), ("rope_cos", _p), ("rope_sin", _p),
        ("ln1_g", _pp), ("ln1_b", _pp), ("ln2_g", _pp), ("ln2_b", _pp),
        ("qkv_w", _pp), ("qkv_b", _pp), ("qkv_s", _pp), ("o_w", _pp), ("o_b", _pp), ("o_s", _pp),
        ("f1_w", _pp), ("f1_b", _pp), ("f1_s", _pp), ("f2_w", _pp), ("f2_b", _pp), ("f2_s", _pp),
        ("fin_g", _p), ("fin_b", _p), ("out_w", _p), ("out_b", _p), ("out_s", _p)]


class NativeTransformerLoop(NativeTokenLoop):
    """The C loop for ``model``'s current weights (snapshotted here).  ``weight_dtype``: how the matrices
    (Q/K/V, attention output, feed-forward, output projection) are stored: ``"float32"``, ``"bfloat16"`` or
    ``"int8"``; the embeddings, layer norms and biases stay float32."""

    LIB = "transformer"
    Struct = _Model

    def _build(self, model):
        from keras import ops

        d, inner = model.d_model, model.num_heads * (model.d_model // model.num_heads)
        cols = {k: [] for k in ("ln1_g", "ln1_b", "ln2_g", "ln2_b", "qkv_w", "qkv_b", "qkv_s", "o_w", "o_b", "o_s",
                                "f1_w", "f1_b", "f1_s", "f2_w", "f2_b", "f2_s")}
        for blk in model.blocks:
            att = blk.attn
            for key, ln in (("ln1", blk.ln1), ("ln2", blk.ln2)):
                cols[f"{key}_g"].append(self.vec(ln.gamma))
                cols[f"{key}_b"].append(self.vec(ln.beta))
            for key, kernel, bias, width in (("qkv", att.qkv_kernel, att.qkv_bias, 3 * inner),
                                             ("o", att.out_kernel, att.out_bias, d),
                                             ("f1", blk.ff1.kernel, blk.ff1.bias, blk.d_ff),
                                             ("f2", blk.ff2.kernel, blk.ff2.bias, d)):
                w, s = self.mat(kernel)
                cols[f"{key}_w"].append(w)
                cols[f"{key}_s"].append(s)
                cols[f"{key}_b"].append(self.vec(bias if bias is not None else np.zeros(width, np.float32), True))
        m = self.struct
        m.n_layers, m.d, m.H, m.Dh = len(model.blocks), d, model.num_heads, d // model.num_heads
        m.ff, m.V, m.max_len = model.d_ff, model.vocab_size, model.max_length
        m.activation = ACTIVATION_CODES[model.activation]
        m.wdtype = WEIGHT_DTYPES.index(self.weight_dtype)
        m.tok_emb = self.vec(model.token_embedding.embeddings)
        positions = np.arange(model.max_length, dtype=np.int32)
        if model.positions == "rotary":        # the angles of seqgen.layers.attention.rotate
            half = m.Dh // 2
            freqs = ops.exp(ops.arange(half, dtype="float32") * (-2.0 * np.log(10000.0) / (2 * half)))
            angles = ops.expand_dims(ops.cast(positions, "float32"), -1) * freqs
            m.rope_cos, m.rope_sin = self.vec(ops.cos(angles)), self.vec(ops.sin(angles))
        else:
            m.pos = self.vec(model._position(positions))
        self.set_matrices(cols)
        m.fin_g, m.fin_b = self.vec(model.final_norm.gamma), self.vec(model.final_norm.beta)
        out = (ops.transpose(model.token_embedding.embeddings) if model.tie_embeddings
               else model.output_projection.kernel)
        m.out_w, out_s = self.mat(out)
        if out_s is not None:
            m.out_s = out_s
        m.out_b = self.vec(model.output_bias, True)

    def _state(self, batch, length):
        m = self.struct
        shape = (m.n_layers, batch, m.H, length, m.Dh)
        self._kv = (np.zeros(shape, np.float32), np.zeros(shape, np.float32))
        inner = m.H * m.Dh
        scratch = batch * (2 * m.d + self.pad(3 * inner) + self.pad(inner) + self.pad(m.d) + self.pad(m.ff)
                           + self.pad(m.V)) + length
        return [a.ctypes.data_as(_f32p) for a in self._kv], scratch
