"""Gated residual block of WaveNet (van den Oord et al., 2016).

::

    g      = causal_conv(h) + W_c c + W_g s          (gate_channels, conditioning
                                                      added before the nonlinearity)
    a, b   = split(g, 2)                              (gate_channels/2 each)
    z      = tanh(a) * sigmoid(b)
    h_out  = h + W_res z                              (1x1, residual_channels)
    skip   = W_skip z                                 (1x1, skip_channels)

``c`` is local conditioning at the sample rate ``[B, T, cond_channels]``
(the upsampled mel), ``s`` a global conditioning vector ``[B, global_channels]``
(speaker embedding).  Both projections have no bias (the conv has one).

``step`` runs one time step from a :class:`CausalConv1D` queue; the
conditioning contribution is passed in already projected (``gate_bias_t``,
``[B, gate_channels]``) so that a decoder can precompute it for a whole
chunk with one matmul over all layers.
"""
import keras
from keras import ops

from seqgen.layers.causal_conv import CausalConv1D

__all__ = ["ResidualBlock"]


@keras.saving.register_keras_serializable(package="seqgen")
class ResidualBlock(keras.layers.Layer):
    """One gated, dilated residual layer.

    Args:
        residual_channels, gate_channels, skip_channels: widths (``gate_channels``
            must be even: it is split into tanh and sigmoid halves).
        kernel_size, dilation_rate: of the causal convolution.
        cond_channels: channels of the local conditioning (0 = none).
        global_channels: size of the global conditioning vector (0 = none).
        dropout: dropout rate on the gated activation ``z`` (training only).
        residual_output: False for the last layer of a network, whose
            residual output would be unused: no ``W_res`` and ``h_out`` is None.
    """

    def __init__(self, residual_channels=64, gate_channels=128, skip_channels=128,
                 kernel_size=2, dilation_rate=1, cond_channels=0, global_channels=0,
                 dropout=0.0, residual_output=True, **kwargs):
        super().__init__(**kwargs)
        if int(gate_channels) % 2:
            raise ValueError(f"gate_channels must be even, got {gate_channels}")
        self.residual_channels = int(residual_channels)
        self.gate_channels = int(gate_channels)
        self.skip_channels = int(skip_channels)
        self.kernel_size = int(kernel_size)
        self.dilation_rate = int(dilation_rate)
        self.cond_channels = int(cond_channels)
        self.global_channels = int(global_channels)
        self.dropout_rate = float(dropout)
        self.residual_output = bool(residual_output)
        self.conv = CausalConv1D(self.gate_channels, self.kernel_size, self.dilation_rate,
                                 name="dilated_conv")
        self.cond_proj = (keras.layers.Dense(self.gate_channels, use_bias=False, name="cond_proj")
                          if self.cond_channels else None)
        self.global_proj = (keras.layers.Dense(self.gate_channels, use_bias=False, name="global_proj")
                            if self.global_channels else None)
        self.res_proj = (keras.layers.Dense(self.residual_channels, name="res_proj")
                         if self.residual_output else None)
        self.skip_proj = keras.layers.Dense(self.skip_channels, name="skip_proj")
        self.dropout = keras.layers.Dropout(self.dropout_rate) if self.dropout_rate > 0 else None

    def build(self, input_shape=None):
        r, half = self.residual_channels, self.gate_channels // 2
        self.conv.build((None, None, r))
        if self.cond_proj is not None:
            self.cond_proj.build((None, None, self.cond_channels))
        if self.global_proj is not None:
            self.global_proj.build((None, self.global_channels))
        if self.res_proj is not None:
            self.res_proj.build((None, None, half))
        self.skip_proj.build((None, None, half))
        self.built = True

    @property
    def receptive_field(self):
        return self.conv.receptive_field

    def _gate(self, g):
        half = self.gate_channels // 2
        return ops.tanh(g[..., :half]) * ops.sigmoid(g[..., half:])

    def call(self, inputs, cond=None, global_cond=None, training=False):
        """``inputs [B, T, R]`` -> ``(h_out [B, T, R] or None, skip [B, T, S])``."""
        g = self.conv(inputs)
        if self.cond_proj is not None:
            if cond is None:
                raise ValueError("this block expects local conditioning (cond)")
            g = g + self.cond_proj(cond)
        if self.global_proj is not None:
            if global_cond is None:
                raise ValueError("this block expects global conditioning (global_cond)")
            g = g + ops.expand_dims(self.global_proj(global_cond), 1)
        z = self._gate(g)
        if self.dropout is not None:
            z = self.dropout(z, training=training)
        h_out = inputs + self.res_proj(z) if self.res_proj is not None else None
        return h_out, self.skip_proj(z)

    # ------------------------------------------------------------- incremental
    def initial_cache(self, batch_size, dtype="float32"):
        return self.conv.initial_cache(batch_size, dtype)

    def gate_bias(self, cond=None, global_cond=None):
        """Projected conditioning ``W_c c + W_g s`` (what ``step`` takes).

        ``cond [B, T, C]`` -> ``[B, T, G]``; only ``global_cond [B, S]`` ->
        ``[B, G]``; neither -> ``None``.
        """
        out = None
        if self.cond_proj is not None and cond is not None:
            out = ops.matmul(cond, self.cond_proj.kernel)
        if self.global_proj is not None and global_cond is not None:
            gb = ops.matmul(global_cond, self.global_proj.kernel)
            out = gb if out is None else out + ops.expand_dims(gb, 1)
        return out

    def step_weights(self):
        """Weights of :meth:`step` in fused form (compute once, outside a loop).

        ``conv``: ``[k*R, G]``; ``out``: ``[G/2, R+S]`` (residual and skip
        1x1s in ONE matmul) or ``[G/2, S]`` without the residual output.
        """
        if self.residual_output:
            out = ops.concatenate([self.res_proj.kernel, self.skip_proj.kernel], axis=1)
            out_bias = ops.concatenate([self.res_proj.bias, self.skip_proj.bias], axis=0)
        else:
            out, out_bias = self.skip_proj.kernel, self.skip_proj.bias
        return {"conv": self.conv.fused_kernel(), "out": out, "out_bias": out_bias}

    def step(self, h_t, queue, t, gate_bias_t=None, weights=None):
        """One step: ``h_t [B, R]`` at absolute time ``t``.

        ``gate_bias_t [B, G]``: projected conditioning (:meth:`gate_bias`) or
        None.  ``weights``: :meth:`step_weights`, or None to compute them
        here.  Returns ``(h_out_t [B, R] or None, skip_t [B, S], new_queue)``.
        """
        if weights is None:
            weights = self.step_weights()
        g, queue = self.conv.step(h_t, queue, t, kernel=weights["conv"])
        if gate_bias_t is not None:
            g = g + gate_bias_t
        z = self._gate(g)
        out = ops.matmul(z, weights["out"]) + weights["out_bias"]
        if not self.residual_output:
            return None, out, queue
        r = self.residual_channels
        return h_t + out[:, :r], out[:, r:], queue

    def get_config(self):
        config = super().get_config()
        config.update(
            residual_channels=self.residual_channels, gate_channels=self.gate_channels,
            skip_channels=self.skip_channels, kernel_size=self.kernel_size,
            dilation_rate=self.dilation_rate, cond_channels=self.cond_channels,
            global_channels=self.global_channels, dropout=self.dropout_rate,
            residual_output=self.residual_output)
        return config
