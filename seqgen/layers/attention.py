"""Causal multi-head self-attention with a key/value cache for decoding.

Full sequence (training)::

    q, k, v = x W_q, x W_k, x W_v                 (split into H heads of size D)
    a[t]    = softmax_s( q[t] . k[s] / sqrt(D) ),   s <= t   (causal mask)
    y[t]    = concat_h( sum_s a[t, s] v[s] ) W_o

Incremental (generation), one position ``t`` at a time: the keys and values
of all past positions live in two preallocated buffers ``[B, T_max, H, D]``
(the ``seqgen.core.decoding`` cache of this layer).  At step ``t`` the new key and
value are first written at row ``t`` with ``slice_update`` (in place under
XLA: write before read), then the query attends over all ``T_max`` rows with
positions ``> t`` masked out.  Shapes never change, so one compiled loop
serves every position; the work per step is ``O(T_max)``, so a decoder
allocates the cache no longer than the sequence it is about to generate.

Rotary positions (``rotary=True``; Su et al. 2021, "RoFormer"): before the scores, each head's query and
key at position ``t`` are rotated pair by pair, feature ``i`` with feature ``i + D/2`` by the angle
``t * base ** (-2i / D)``, so ``q[t] . k[s]`` depends on the offset ``t - s`` only and the model needs no
position table.  The cached step rotates its one query and key by the same angles as the full pass.
"""
import math

import keras
from keras import ops

__all__ = ["CausalSelfAttention", "rotate"]

_NEG = -1e9



def normal_or_glorot(std):
    """A normal initializer of standard deviation ``std`` (GPT-2's choice), or Glorot uniform for None."""
    return "glorot_uniform" if std is None else keras.initializers.RandomNormal(stddev=float(std))

def rotate(x, pos, base=10000.0):
    """Rotary position encoding of ``x [..., D]`` (``D`` even) at int positions ``pos`` broadcastable to
    ``x.shape[:-1]``: features ``i`` and ``i + D/2`` are rotated by ``pos * base ** (-2i / D)``."""
    half = x.shape[-1] // 2
    freqs = ops.exp(ops.arange(half, dtype="float32") * (-2.0 * math.log(base) / (2 * half)))
    angles = ops.expand_dims(ops.cast(pos, "float32"), -1) * freqs
    cos, sin = ops.cast(ops.cos(angles), x.dtype), ops.cast(ops.sin(angles), x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return ops.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)


@keras.saving.register_keras_serializable(package="seqgen")
class CausalSelfAttention(keras.layers.Layer):
    """Masked multi-head self-attention with ``step`` for cached decoding.

    Args:
        num_heads: ``H``.
        key_dim: ``D`` per head (default ``d_model // num_heads``).
        dropout: dropout on the attention weights (training only).
        use_bias: biases on the projections.
        init_std, out_std: the standard deviations of normal initial Q/K/V and output kernels (GPT-2 style;
            None = Glorot uniform).
        rotary: rotate queries and keys by their positions (:func:`rotate`; needs an even ``D``).
    """

    def __init__(self, num_heads, key_dim=None, dropout=0.0, use_bias=True, init_std=None, out_std=None,
                 rotary=False, **kwargs):
        super().__init__(**kwargs)
        if int(num_heads) < 1:
            raise ValueError(f"num_heads must be >= 1, got {num_heads}")
        self.num_heads = int(num_heads)
        self.key_dim = None if key_dim is None else int(key_dim)
        self.dropout_rate = float(dropout)
        self.use_bias = bool(use_bias)
        self.init_std = None if init_std is None else float(init_std)
        self.out_std = None if out_std is None else float(out_std)
        self.rotary = bool(rotary)
        self.attn_dropout = keras.layers.Dropout(self.dropout_rate)

    def build(self, input_shape):
        d_model = int(input_shape[-1])
        if self.key_dim is None:
            if d_model % self.num_heads:
                raise ValueError(f"d_model={d_model} is not divisible by num_heads={self.num_heads}")
            self.key_dim = d_model // self.num_heads
        if self.rotary and self.key_dim % 2:
            raise ValueError(f"rotary positions need an even key_dim, got {self.key_dim}")
        self.d_model = d_model
        inner = self.num_heads * self.key_dim
        # q, k and v projections fused into one matmul
        self.qkv_kernel = self.add_weight(name="qkv_kernel", shape=(d_model, 3 * inner),
                                          initializer=normal_or_glorot(self.init_std))
        self.qkv_bias = (self.add_weight(name="qkv_bias", shape=(3 * inner,), initializer="zeros")
                         if self.use_bias else None)
        self.out_kernel = self.add_weight(name="out_kernel", shape=(inner, d_model),
                                          initializer=normal_or_glorot(self.out_std))
        self.out_bias = (self.add_weight(name="out_bias", shape=(d_model,), initializer="zeros")
                         if self.use_bias else None)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _qkv(self, x):
        y = ops.matmul(x, self.qkv_kernel)
        if self.qkv_bias is not None:
            y = y + self.qkv_bias
        return y

    def _out(self, y):
        y = ops.matmul(y, self.out_kernel)
        if self.out_bias is not None:
            y = y + self.out_bias
        return y

    # ------------------------------------------------------------ full sequence
    def call(self, x, training=False):
        """``x [B, T, d]`` -> ``[B, T, d]``; position ``t`` sees positions ``<= t``."""
        b, t = ops.shape(x)[0], ops.shape(x)[1]
        h, dk = self.num_heads, self.key_dim
        qkv = ops.reshape(self._qkv(x), (b, t, 3, h, dk))
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        if self.rotary:
            pos = ops.expand_dims(ops.arange(t, dtype="int32"), -1)  # [T, 1]: one angle per position and head
            q, k = rotate(q, pos), rotate(k, pos)
        scores = ops.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(dk)
        causal = ops.tril(ops.ones((t, t), "bool"))
        scores = ops.where(causal, scores, _NEG)
        weights = ops.softmax(scores, axis=-1)
        weights = self.attn_dropout(weights, training=training)
        out = ops.einsum("bhqk,bkhd->bqhd", weights, v)
        return self._out(ops.reshape(out, (b, t, h * dk)))

    # -------------------------------------------------------------- incremental
    def initial_cache(self, batch_size, max_length, dtype="float32"):
        """Zero key and value buffers ``([B, T_max, H, D], [B, T_max, H, D])``."""
        shape = (int(batch_size), int(max_length), self.num_heads, self.key_dim)
        return ops.zeros(shape, dtype), ops.zeros(shape, dtype)

    def step(self, x_t, cache, t):
        """One position: ``x_t [B, d]`` at absolute position ``t`` (< T_max).

        Returns ``(y_t [B, d], (keys, values))``.
        """
        keys, values = cache
        b, t_max = keys.shape[0], keys.shape[1]
        h, dk = self.num_heads, self.key_dim
        t = ops.cast(t, "int32")
        qkv = ops.reshape(self._qkv(x_t), (b, 3, h, dk))
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
        if self.rotary:
            q, k = rotate(q, t), rotate(k, t)
        keys = ops.slice_update(keys, [0, t, 0, 0], ops.expand_dims(ops.cast(k, keys.dtype), 1))
        values = ops.slice_update(values, [0, t, 0, 0], ops.expand_dims(ops.cast(v, values.dtype), 1))
        scores = ops.einsum("bhd,bkhd->bhk", q, keys) / math.sqrt(dk)
        visible = ops.arange(t_max, dtype="int32") <= t
        scores = ops.where(visible, scores, _NEG)
        weights = ops.softmax(scores, axis=-1)
        out = ops.einsum("bhk,bkhd->bhd", weights, values)
        return self._out(ops.reshape(out, (b, h * dk))), (keys, values)

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, key_dim=self.key_dim,
                      dropout=self.dropout_rate, use_bias=self.use_bias, init_std=self.init_std,
                      out_std=self.out_std, rotary=self.rotary)
        return config
