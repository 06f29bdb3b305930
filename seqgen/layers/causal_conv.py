"""Dilated causal 1-D convolution with an incremental ``step``.

Full sequence (training)::

    y[t] = bias + sum_{i=0}^{k-1} x[t - (k-1-i)*d] @ kernel[i]

with zeros for negative time (left padding of ``(k-1)*d`` steps), so
``y[t]`` never depends on ``x[t+1:]``.

Incremental (generation), one time step at a time: the layer needs the
``Q = (k-1)*d`` most recent inputs.  They live in a fixed-size *queue*
``[Q+1, B, C_in]`` (time-major) in which input ``x[s]`` is stored at row
``s mod (Q+1)``.  At step ``t`` the current input is first written at row
``t mod (Q+1)`` (overwriting ``x[t-Q-1]``, no longer needed), then the taps
``x[t-j*d]`` are read back at rows ``(t - j*d) mod (Q+1)`` (dynamic slices,
no gathers, nothing is ever shifted), concatenated with the current input
and multiplied by the kernel reshaped to ``[k*C_in, filters]`` -- ONE matmul
per step.  The queue starts as zeros, which is exactly the zero padding of
the full convolution.

Why one spare row and write-before-read: if a step reads a slot and then
overwrites that same slot, XLA cannot update the loop-carried buffer in
place and copies the whole queue on every step (measured: 2-3x slower for a
20-layer WaveNet).  Writing first and reading from the updated queue gives
a plain data dependency and an in-place update.
"""
import keras
from keras import ops

__all__ = ["CausalConv1D"]


@keras.saving.register_keras_serializable(package="seqgen")
class CausalConv1D(keras.layers.Layer):
    """Dilated causal Conv1D (channels last) with ``step`` for decoding.

    Args:
        filters: output channels.
        kernel_size: number of taps ``k >= 1``.
        dilation_rate: spacing ``d >= 1`` between taps.
        use_bias: add a bias.
        kernel_initializer, bias_initializer: Keras initializers.
    """

    def __init__(self, filters, kernel_size=2, dilation_rate=1, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if int(kernel_size) < 1 or int(dilation_rate) < 1 or int(filters) < 1:
            raise ValueError("filters, kernel_size and dilation_rate must be >= 1, got "
                             f"{filters}, {kernel_size}, {dilation_rate}")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.dilation_rate = int(dilation_rate)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    # ------------------------------------------------------------------ build
    def build(self, input_shape):
        in_ch = int(input_shape[-1])
        self.input_channels = in_ch
        self.kernel = self.add_weight(
            name="kernel", shape=(self.kernel_size, in_ch, self.filters),
            initializer=self.kernel_initializer)
        self.bias = (self.add_weight(name="bias", shape=(self.filters,),
                                     initializer=self.bias_initializer)
                     if self.use_bias else None)

    @property
    def queue_size(self):
        """Past inputs the step needs: ``(kernel_size-1)*dilation``."""
        return (self.kernel_size - 1) * self.dilation_rate

    @property
    def queue_rows(self):
        """Rows of the decoding queue: ``queue_size + 1`` (see module docstring)."""
        return self.queue_size + 1

    @property
    def receptive_field(self):
        return self.queue_size + 1

    # ------------------------------------------------------------ full sequence
    def call(self, inputs):
        pad = self.queue_size
        x = inputs
        if pad:
            x = ops.pad(x, [[0, 0], [pad, 0], [0, 0]])
        y = ops.conv(x, self.kernel, strides=1, padding="valid",
                     data_format="channels_last", dilation_rate=self.dilation_rate)
        if self.bias is not None:
            y = y + self.bias
        return y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    # ------------------------------------------------------------- incremental
    def initial_cache(self, batch_size, dtype="float32"):
        """Zero queue ``[queue_size + 1, batch, C_in]``."""
        return ops.zeros((self.queue_rows, batch_size, self.input_channels), dtype)

    def fused_kernel(self):
        """Kernel as ``[k*C_in, filters]``, rows ordered oldest tap first."""
        return ops.reshape(self.kernel, (self.kernel_size * self.input_channels, self.filters))

    def push_and_gather(self, x_t, queue, t):
        """Write ``x_t`` (time ``t``) into the queue, then read the taps.

        Returns ``(concat(x[t-(k-1)d], ..., x[t-d], x[t]) [B, k*C_in], queue)``.
        ``t`` is the absolute time step (int scalar, may be a traced tensor).
        """
        if self.kernel_size == 1:
            return x_t, queue
        rows = self.queue_rows
        d = self.dilation_rate
        batch, ch = queue.shape[1], queue.shape[2]
        t = ops.cast(t, "int32")
        queue = ops.slice_update(queue, [ops.mod(t, rows), 0, 0],
                                 ops.expand_dims(ops.cast(x_t, queue.dtype), 0))
        taps = []
        for j in range(self.kernel_size - 1, 0, -1):
            # (t - j*d) mod rows, kept non-negative: j*d <= Q < rows
            row = ops.mod(t + (rows - j * d), rows)
            taps.append(ops.reshape(ops.slice(queue, [row, 0, 0], [1, batch, ch]), (batch, ch)))
        taps.append(x_t)
        return ops.concatenate(taps, axis=-1), queue

    def step(self, x_t, queue, t, kernel=None):
        """One time step: ``x_t [B, C_in]`` at absolute time ``t``.

        Returns ``(y_t [B, filters], new_queue)``.  ``kernel`` optionally
        passes a precomputed :meth:`fused_kernel` (hoisted out of a loop).
        """
        taps, queue = self.push_and_gather(x_t, queue, t)
        y = ops.matmul(taps, self.fused_kernel() if kernel is None else kernel)
        if self.bias is not None:
            y = y + self.bias
        return y, queue

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters, kernel_size=self.kernel_size,
            dilation_rate=self.dilation_rate, use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer))
        return config
