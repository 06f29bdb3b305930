"""A single continuous Gaussian; float targets."""
import math

import keras
import numpy as np
from keras import ops

from seqgen.core.distributions.base import NOISE_EPS, Distribution, _float, _squeeze_noise


_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@keras.saving.register_keras_serializable(package="seqgen")
class Gaussian(Distribution):
    """Single Gaussian; params ``[mean, log_scale]`` (log scale clamped below
    at ``log_scale_min``).  The nll is that of the continuous density of the
    float targets (it can be negative)."""

    type_name = "gaussian"
    param_size = 2
    noise_size = 1
    input_is_discrete = False

    def __init__(self, log_scale_min=-9.0):
        self.log_scale_min = float(log_scale_min)

    def split_params(self, params):
        """``(mean, log_scale)`` each ``[...]``; log scale clamped."""
        params = _float(params)
        return params[..., 0], ops.maximum(params[..., 1], self.log_scale_min)

    def mean_and_scale(self, params):
        mean, log_scale = self.split_params(params)
        return mean, ops.exp(log_scale)

    def log_density(self, params, x):
        mean, log_scale = self.split_params(params)
        z = (ops.cast(x, mean.dtype) - mean) * ops.exp(-log_scale)
        return -0.5 * ops.square(z) - log_scale - _HALF_LOG_2PI

    def nll(self, params, target):
        return -self.log_density(params, target)

    def bits_to_16bit(self, target):
        """A density over [-1, 1]: a 16-bit step is 1/32768 wide, so +15 bits per sample."""
        return np.full(np.shape(target), 15.0)

    def sample(self, params, noise, temperature=1.0):
        """``clip(mean + scale * temperature * Phi^-1(u), -1, 1)``, float32."""
        mean, log_scale = self.split_params(params)
        u = ops.cast(_squeeze_noise(noise, _float(params)), mean.dtype)
        u = ops.clip(u, NOISE_EPS, 1.0 - NOISE_EPS)
        z = math.sqrt(2.0) * ops.erfinv(2.0 * u - 1.0)
        x = mean + ops.exp(log_scale) * ops.cast(temperature, mean.dtype) * z
        return ops.clip(x, -1.0, 1.0)

    def to_waveform(self, samples):
        return ops.clip(ops.cast(samples, "float32"), -1.0, 1.0)

    def from_waveform(self, x):
        return ops.clip(ops.cast(x, "float32"), -1.0, 1.0)

    def get_config(self):
        return {"log_scale_min": self.log_scale_min}


# ----------------------------------------------------------------------------
# Factory
# ----------------------------------------------------------------------------
