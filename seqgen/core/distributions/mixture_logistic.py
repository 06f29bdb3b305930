"""A mixture of logistics discretized to ``num_classes`` bins over [-1, 1]; float targets."""
import math

import keras
import numpy as np
from keras import ops

from seqgen.core import sampling as _samplers
from seqgen.core.distributions.base import (NOISE_EPS, Distribution, _dtype, _float, _is_int_dtype,
                                            codes_per_class)


# ----------------------------------------------------------------------------
# Discretized mixture of logistics
# ----------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="seqgen")
class DiscretizedMixtureOfLogistics(Distribution):
    """Mixture of ``num_mixtures`` logistics discretized to ``num_classes``
    bins over [-1, 1].

    Params layout (last axis): ``[logits(K), means(K), log_scales(K)]``;
    ``log_scales`` are clamped below at ``log_scale_min``.

    Bin ``k`` is centred at ``c_k = -1 + 2k/(num_classes-1)`` with half-width
    ``h = 1/(num_classes-1)``; the bottom bin takes the whole lower tail and
    the top bin the whole upper tail, so the bin probabilities sum to one.
    Float targets are snapped to the nearest bin centre; int targets are
    taken as bin indices.
    """

    type_name = "mixture_logistic"
    noise_size = 2
    input_is_discrete = False

    def __init__(self, num_mixtures=10, num_classes=65536, log_scale_min=-7.0):
        num_mixtures = int(num_mixtures)
        num_classes = int(num_classes)
        if num_mixtures < 1:
            raise ValueError(f"num_mixtures must be >= 1, got {num_mixtures}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.num_mixtures = num_mixtures
        self.num_classes = num_classes
        self.log_scale_min = float(log_scale_min)

    @property
    def param_size(self):
        return 3 * self.num_mixtures

    # -- parameter access -------------------------------------------------
    def split_params(self, params):
        """``(logits, means, log_scales)`` each ``[..., K]``; log scales clamped."""
        params = _float(params)
        k = self.num_mixtures
        logits = params[..., :k]
        means = params[..., k : 2 * k]
        log_scales = ops.maximum(params[..., 2 * k : 3 * k], self.log_scale_min)
        return logits, means, log_scales

    def mixture_weights(self, params, temperature=1.0):
        logits, _, _ = self.split_params(params)
        return ops.softmax(logits / temperature, axis=-1)

    def mean_and_scale(self, params):
        """Mean and standard deviation ``[...]`` of the (continuous) mixture.

        A logistic with scale ``s`` has variance ``s**2 * pi**2 / 3``.
        """
        logits, means, log_scales = self.split_params(params)
        w = ops.softmax(logits, axis=-1)
        mean = ops.sum(w * means, axis=-1)
        comp_var = ops.exp(2.0 * log_scales) * (math.pi**2 / 3.0)
        var = ops.sum(w * (comp_var + ops.square(means)), axis=-1) - ops.square(mean)
        return mean, ops.sqrt(ops.maximum(var, 0.0))

    def log_density(self, params, x):
        """Continuous (not discretized) log density of the mixture at float
        ``x`` ``[...]`` (useful for density distillation)."""
        logits, means, log_scales = self.split_params(params)
        x = ops.expand_dims(ops.cast(x, means.dtype), -1)
        z = (x - means) * ops.exp(-log_scales)
        log_pdf = -z - log_scales - 2.0 * ops.softplus(-z)
        return ops.logsumexp(ops.log_softmax(logits, axis=-1) + log_pdf, axis=-1)

    # -- discretization ---------------------------------------------------
    def bin_index(self, x):
        """Nearest bin index (int32) of floats in [-1, 1]."""
        x = ops.clip(_float(x), -1.0, 1.0)
        k = ops.round((x + 1.0) * ((self.num_classes - 1) / 2.0))
        return ops.clip(ops.cast(k, "int32"), 0, self.num_classes - 1)

    def bin_center(self, k, dtype="float32"):
        return ops.cast(k, dtype) * (2.0 / (self.num_classes - 1)) - 1.0

    def component_log_probs(self, params, target):
        """Per-component log bin probability ``[..., K]`` (no mixture weights)."""
        _, means, log_scales = self.split_params(params)
        dtype = _dtype(means)
        target = ops.convert_to_tensor(target)
        k = ops.cast(target, "int32") if _is_int_dtype(target) else self.bin_index(target)
        k = ops.expand_dims(ops.clip(k, 0, self.num_classes - 1), -1)
        centre = self.bin_center(k, dtype)
        half = 1.0 / (self.num_classes - 1)
        inv_s = ops.exp(-log_scales)
        centred = centre - means
        a = inv_s * (centred + half)  # standardized upper edge
        b = inv_s * (centred - half)  # standardized lower edge
        d = inv_s * (2.0 * half)  # a - b, > 0 unless inv_s underflows
        is_top = k >= self.num_classes - 1
        is_bottom = k <= 0
        # log(sigmoid(a) - sigmoid(b)) = log sig(a) + log sig(-b) + log(1 - e^(b-a))
        #   log sig(a) = -softplus(-a) ; log sig(-b) = -softplus(b)
        # The bottom bin drops the sig(-b) term (lower edge at -inf), the top
        # bin drops sig(a) (upper edge at +inf); both drop the last term.
        tiny = 1e-30 if dtype == "float32" else 1e-300
        d_safe = ops.maximum(d, tiny)
        term_a = ops.where(is_top, 0.0, -ops.softplus(-a))
        term_b = ops.where(is_bottom, 0.0, -ops.softplus(b))
        term_d = ops.where(is_top | is_bottom, 0.0, ops.log(-ops.expm1(-d_safe)))
        log_mass = term_a + term_b + term_d
        # Fallback: when the bin is vanishingly narrow in standardized units
        # (inv_s underflow), use density at the centre times the bin width.
        mid = inv_s * centred
        log_pdf_mid = -mid - log_scales - 2.0 * ops.softplus(-mid)
        log_mid = log_pdf_mid + math.log(2.0 * half)
        use_mid = (d < 1e-6) | ~ops.isfinite(log_mass)
        use_mid = use_mid & ~(is_top | is_bottom)
        return ops.where(use_mid, log_mid, log_mass)

    def nll(self, params, target):
        """Negative log bin probability ``[B, T]``; target floats in [-1, 1]
        (snapped to the nearest bin) or int bin indices."""
        logits, _, _ = self.split_params(params)
        comp = self.component_log_probs(params, target)
        return -ops.logsumexp(ops.log_softmax(logits, axis=-1) + comp, axis=-1)

    def bits_to_16bit(self, target):
        """``log2`` of the target bin's width in 16-bit steps (0 for 65536 bins)."""
        if getattr(self, "_log2_width", None) is None:
            self._log2_width = np.log2(codes_per_class(lambda v: ops.convert_to_numpy(self.bin_index(v)),
                                                       self.num_classes))
        target = np.asarray(target)
        k = target.astype(np.int64) if target.dtype.kind in "iu" else \
            np.asarray(ops.convert_to_numpy(self.bin_index(target.astype(np.float32)))).astype(np.int64)
        return self._log2_width[k]

    # -- sampling -----------------------------------------------------------
    def sample(self, params, noise, temperature=1.0):
        """float32 ``[...]`` in [-1, 1].

        ``noise[..., 0]`` picks the component by inverse CDF over
        ``softmax(logits / temperature)``; ``noise[..., 1]`` gives the
        logistic sample ``mean + scale * temperature * logit(u)``.
        Temperature 0 returns the mean of the most probable component.
        """
        logits, means, log_scales = self.split_params(params)
        noise = ops.cast(noise, means.dtype)
        u_comp = noise[..., 0]
        u_val = ops.clip(noise[..., 1], NOISE_EPS, 1.0 - NOISE_EPS)
        j = _samplers.sample_logits(logits, u_comp, temperature=temperature)
        onehot = ops.one_hot(j, self.num_mixtures, dtype=means.dtype)
        mean = ops.sum(onehot * means, axis=-1)
        log_s = ops.sum(onehot * log_scales, axis=-1)
        scale = ops.exp(log_s) * ops.cast(temperature, means.dtype)
        x = mean + scale * (ops.log(u_val) - ops.log1p(-u_val))
        return ops.clip(x, -1.0, 1.0)

    def quantize(self, x):
        """Snap floats to the nearest bin centre."""
        return self.bin_center(self.bin_index(x))

    def to_waveform(self, samples):
        return ops.clip(ops.cast(samples, "float32"), -1.0, 1.0)

    def from_waveform(self, x):
        return ops.clip(ops.cast(x, "float32"), -1.0, 1.0)

    def get_config(self):
        return {
            "num_mixtures": self.num_mixtures,
            "num_classes": self.num_classes,
            "log_scale_min": self.log_scale_min,
        }


# ----------------------------------------------------------------------------
# Gaussian
# ----------------------------------------------------------------------------
