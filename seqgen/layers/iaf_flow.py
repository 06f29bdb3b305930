"""One inverse autoregressive flow of the Parallel WaveNet student (a WaveNet over shifted noise)."""
import keras
from keras import ops

from seqgen.layers.residual_block import ResidualBlock


@keras.saving.register_keras_serializable(package="seqgen")
class IAFFlow(keras.layers.Layer):
    """One inverse autoregressive flow: a WaveNet over its (shifted) input noise.

    ``call(z [B, T], cond [B, T, C] or None, global_cond [B, G] or None)`` ->
    ``(shift [B, T], log_scale [B, T])``, where position ``t`` depends on
    ``z[:, :t]`` only.  The output layer starts at zero (each flow starts as
    ``z -> z * exp(b_s) + b_mu`` with its biases) so that a fresh stack is
    well behaved.

    Args:
        num_layers: residual layers; dilations ``2**(i mod layers_per_cycle)``.
        layers_per_cycle: length of the dilation cycle.
        kernel_size, residual_channels, gate_channels, skip_channels: as WaveNet.
        cond_channels, global_channels: conditioning sizes (0 = none).
        log_scale_min, log_scale_max: the per-flow log-scale is clipped to this range.
        initial_log_scale: the bias of the log-scale output at initialization.
    """

    def __init__(self, num_layers=10, layers_per_cycle=10, kernel_size=2, residual_channels=64,
                 gate_channels=128, skip_channels=64, cond_channels=0, global_channels=0,
                 log_scale_min=-7.0, log_scale_max=3.0, initial_log_scale=0.0, **kwargs):
        super().__init__(**kwargs)
        if int(num_layers) < 1 or int(layers_per_cycle) < 1:
            raise ValueError(f"num_layers and layers_per_cycle must be >= 1, got {num_layers}, {layers_per_cycle}")
        if float(log_scale_min) >= float(log_scale_max):
            raise ValueError(f"log_scale_min {log_scale_min} must be below log_scale_max {log_scale_max}")
        self.num_layers = int(num_layers)
        self.layers_per_cycle = int(layers_per_cycle)
        self.kernel_size = int(kernel_size)
        self.residual_channels = int(residual_channels)
        self.gate_channels = int(gate_channels)
        self.skip_channels = int(skip_channels)
        self.cond_channels = int(cond_channels)
        self.global_channels = int(global_channels)
        self.log_scale_min = float(log_scale_min)
        self.log_scale_max = float(log_scale_max)
        self.initial_log_scale = float(initial_log_scale)
        self.input_projection = keras.layers.Dense(self.residual_channels, name="input_projection")
        self.blocks = [
            ResidualBlock(self.residual_channels, self.gate_channels, self.skip_channels, self.kernel_size,
                          2 ** (i % self.layers_per_cycle), cond_channels=self.cond_channels,
                          global_channels=self.global_channels, name=f"block_{i}",
                          residual_output=i < self.num_layers - 1)
            for i in range(self.num_layers)
        ]
        self.head_hidden = keras.layers.Dense(self.skip_channels, name="head_hidden")
        self.head_out = keras.layers.Dense(
            2, kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant([0.0, self.initial_log_scale]), name="head_out")

    def build(self, input_shape=None):
        self.input_projection.build((None, None, 1))
        for block in self.blocks:
            block.build()
        self.head_hidden.build((None, None, self.skip_channels))
        self.head_out.build((None, None, self.skip_channels))
        self.built = True

    @property
    def receptive_field(self):
        """Past noise samples seen by one output (the shift adds one)."""
        return 1 + (self.kernel_size - 1) * sum(b.dilation_rate for b in self.blocks)

    def call(self, z, cond=None, global_cond=None, training=False):
        prev = ops.pad(z[:, :-1], [[0, 0], [1, 0]])                   # position t sees z[<t]
        h = self.input_projection(ops.expand_dims(prev, -1))
        skip = None
        for block in self.blocks:
            h, s = block(h, cond=cond, global_cond=global_cond, training=training)
            skip = s if skip is None else skip + s
        out = self.head_out(ops.relu(self.head_hidden(ops.relu(skip))))
        return out[..., 0], ops.clip(out[..., 1], self.log_scale_min, self.log_scale_max)

    def get_config(self):
        config = super().get_config()
        config.update(num_layers=self.num_layers, layers_per_cycle=self.layers_per_cycle,
                      kernel_size=self.kernel_size, residual_channels=self.residual_channels,
                      gate_channels=self.gate_channels, skip_channels=self.skip_channels,
                      cond_channels=self.cond_channels, global_channels=self.global_channels,
                      log_scale_min=self.log_scale_min, log_scale_max=self.log_scale_max,
                      initial_log_scale=self.initial_log_scale)
        return config
