"""Residual block of ByteNet (Kalchbrenner et al., 2016, "Neural Machine
Translation in Linear Time")::

    h = Conv1x1_{d -> d/2}( ReLU(LN(x)) )
    h = DilatedConv_{d/2 -> d/2, k, dilation}( ReLU(LN(h)) )      causal (decoder)
                                                                   or "same" (encoder)
    y = x + Dropout( Conv1x1_{d/2 -> d}( ReLU(LN(h)) ) )

The causal variant uses :class:`seqgen.layers.causal_conv.CausalConv1D` and
has an incremental :meth:`ByteNetBlock.step` driven by that layer's
rotating queue ``[(k-1)*dilation + 1, B, d/2]`` (the block's decoding
cache), so one step costs O(1) per block.

The "same" (encoder) variant pads ``(k-1)*dilation`` zeros split between
both sides.  ``valid [B, T]`` (optional) marks real positions: the input of
the dilated convolution is zeroed elsewhere, so padded positions act exactly
like the convolution's zero padding and the output at real positions does
not depend on how much padding follows.
"""
import keras
from keras import ops

from seqgen.layers.causal_conv import CausalConv1D

__all__ = ["ByteNetBlock"]


@keras.saving.register_keras_serializable(package="seqgen")
class ByteNetBlock(keras.layers.Layer):
    """One ByteNet residual block.

    Args:
        d_model: channels ``d`` of the residual stream (even).
        kernel_size, dilation_rate: of the dilated convolution.
        causal: True (decoder, masked) or False (encoder, centred "same").
        dropout: on the block output before the residual add (training only).
    """

    def __init__(self, d_model, kernel_size=3, dilation_rate=1, causal=True, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if int(d_model) % 2 or int(d_model) < 2:
            raise ValueError(f"d_model must be even, got {d_model}")
        if int(kernel_size) < 1 or int(dilation_rate) < 1:
            raise ValueError("kernel_size and dilation_rate must be >= 1")
        self.d_model = int(d_model)
        self.hidden = self.d_model // 2
        self.kernel_size = int(kernel_size)
        self.dilation_rate = int(dilation_rate)
        self.causal = bool(causal)
        self.dropout_rate = float(dropout)
        self.ln_in = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_in")
        self.reduce = keras.layers.Dense(self.hidden, name="reduce")
        self.ln_mid = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_mid")
        self.conv = CausalConv1D(self.hidden, self.kernel_size, self.dilation_rate, name="dilated_conv")
        self.ln_out = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_out")
        self.expand = keras.layers.Dense(self.d_model, name="expand")
        self.drop = keras.layers.Dropout(self.dropout_rate)

    def build(self, input_shape=None):
        self.ln_in.build((None, None, self.d_model))
        self.reduce.build((None, None, self.d_model))
        self.ln_mid.build((None, None, self.hidden))
        self.conv.build((None, None, self.hidden))
        self.ln_out.build((None, None, self.hidden))
        self.expand.build((None, None, self.hidden))
        self.built = True

    @property
    def queue_size(self):
        return self.conv.queue_size

    def _same_conv(self, h):
        total = self.conv.queue_size
        left = total // 2
        h = ops.pad(h, [[0, 0], [left, total - left], [0, 0]])
        y = ops.conv(h, self.conv.kernel, strides=1, padding="valid", data_format="channels_last",
                     dilation_rate=self.dilation_rate)
        return y + self.conv.bias

    def call(self, x, valid=None, training=False):
        """``x [B, T, d]`` -> ``[B, T, d]``; ``valid [B, T]`` (encoder padding) or None."""
        h = self.reduce(ops.relu(self.ln_in(x)))
        h = ops.relu(self.ln_mid(h))
        if valid is not None:
            h = h * ops.expand_dims(ops.cast(valid, h.dtype), -1)
        h = self.conv(h) if self.causal else self._same_conv(h)
        h = self.expand(ops.relu(self.ln_out(h)))
        return x + self.drop(h, training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    # ------------------------------------------------------------- incremental
    def initial_cache(self, batch_size, dtype="float32"):
        """Zero queue of the dilated convolution ``[(k-1)*dilation + 1, B, d/2]``."""
        if not self.causal:
            raise ValueError("only the causal (decoder) block decodes incrementally")
        return self.conv.initial_cache(batch_size, dtype)

    def step(self, x_t, queue, t):
        """``x_t [B, d]`` at absolute time ``t`` -> ``(y_t [B, d], queue)``."""
        h = self.reduce(ops.relu(self.ln_in(x_t)))
        h = ops.relu(self.ln_mid(h))
        h, queue = self.conv.step(h, queue, t)
        return x_t + self.expand(ops.relu(self.ln_out(h))), queue

    def get_config(self):
        config = super().get_config()
        config.update(d_model=self.d_model, kernel_size=self.kernel_size,
                      dilation_rate=self.dilation_rate, causal=self.causal,
                      dropout=self.dropout_rate)
        return config
