"""Output distributions of the autoregressive models (``keras.ops`` only).

Every distribution is a plain, Keras-serializable Python object describing
how a network's per-step output vector (``param_size`` channels) maps to a
probability distribution over the next sample:

* :class:`Categorical` -- softmax over ``num_classes`` (optionally mu-law)
  classes; the model's inputs/targets are int classes.
* :class:`DiscretizedMixtureOfLogistics` -- mixture of logistics discretized
  to ``num_classes`` bins over [-1, 1]; float targets.
* :class:`Gaussian` -- a single continuous Gaussian; float targets.

All maths uses ``keras.ops``/``keras.random`` so it runs under the TensorFlow
and JAX backends and inside compiled loops.  Sampling is a deterministic
function of the parameters and of uniforms drawn with :meth:`draw_noise`.

Half-precision parameters (float16/bfloat16 under mixed precision) are cast
to float32; float64 parameters are kept in float64.
"""
import math
import numbers

import keras
from keras import ops

from seqgen.core import mu_law as _mu_law
from seqgen.core import sampling as _samplers
from seqgen.errors import ConfigError

__all__ = [
    "Distribution",
    "Categorical",
    "DiscretizedMixtureOfLogistics",
    "Gaussian",
    "get_distribution",
    "NOISE_EPS",
]

#: uniforms from :meth:`Distribution.draw_noise` lie in [NOISE_EPS, 1 - NOISE_EPS].
NOISE_EPS = 1e-7


def _dtype(x):
    return keras.backend.standardize_dtype(x.dtype)


def _float(x):
    """Tensor in float32, or float64 if it already is float64."""
    x = ops.convert_to_tensor(x)
    if _dtype(x) == "float64":
        return x
    return ops.cast(x, "float32")


def _is_int_dtype(x):
    return "int" in _dtype(x)


class Distribution:
    """Base class: shared helpers.  Subclasses define the interface below."""

    #: key used by :func:`get_distribution`
    type_name = None
    param_size = None
    noise_size = None
    input_is_discrete = None

    # -- likelihood -----------------------------------------------------
    def nll(self, params, target):  # pragma: no cover - abstract
        raise NotImplementedError

    def log_prob(self, params, target):
        """Log-likelihood ``[B, T]`` in nats (``-nll``)."""
        return -self.nll(params, target)

    def loss(self, params, target):
        """Mean negative log-likelihood (scalar, nats per step)."""
        return ops.mean(self.nll(params, target))

    # -- sampling -------------------------------------------------------
    def draw_noise(self, shape, seed=None):
        """Uniforms ``[*shape, noise_size]`` in ``[NOISE_EPS, 1 - NOISE_EPS]``.

        ``seed``: int, ``keras.random.SeedGenerator`` or None.
        """
        shape = tuple(shape) + (self.noise_size,)
        u = keras.random.uniform(shape, minval=0.0, maxval=1.0, dtype="float32", seed=seed)
        return ops.clip(u, NOISE_EPS, 1.0 - NOISE_EPS)

    def sample(self, params, noise, temperature=1.0):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- waveform conversion ----------------------------------------------
    def to_waveform(self, samples):  # pragma: no cover - abstract
        raise NotImplementedError

    def from_waveform(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- serialization --------------------------------------------------
    def get_config(self):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def to_dict(self):
        """``{"type": ..., **get_config()}``, accepted by :func:`get_distribution`."""
        return {"type": self.type_name, **self.get_config()}

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


# ----------------------------------------------------------------------------
# Categorical
# ----------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="seqgen")
class Categorical(Distribution):
    """Softmax over ``num_classes`` classes.

    The model's inputs and targets are int32 classes.  With ``mu_law=True``
    the classes are mu-law bins (``num_classes`` must be a power of two,
    ``2**bits``); otherwise they are ``num_classes`` evenly spaced levels
    over [-1, 1] (class ``k`` <-> ``-1 + 2k/(num_classes-1)``).
    """

    type_name = "categorical"
    noise_size = 1
    input_is_discrete = True

    def __init__(self, num_classes=256, mu_law=True):
        num_classes = int(num_classes)
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        mu_law = bool(mu_law)
        if mu_law:
            bits = num_classes.bit_length() - 1
            if 2**bits != num_classes or bits > 16:
                raise ValueError(
                    f"num_classes must be a power of two <= 65536 with mu_law=True, got {num_classes}"
                )
            self.bits = bits
        else:
            self.bits = None
        self.num_classes = num_classes
        self.mu_law = mu_law

    @property
    def param_size(self):
        return self.num_classes

    def nll(self, params, target):
        """Softmax cross-entropy ``[B, T]``; target int classes ``[B, T]``."""
        logits = _float(params)
        log_p = ops.log_softmax(logits, axis=-1)
        idx = ops.expand_dims(ops.cast(target, "int32"), -1)
        return -ops.squeeze(ops.take_along_axis(log_p, idx, axis=-1), -1)

    def probs(self, params, temperature=1.0):
        """Class probabilities ``[..., num_classes]``."""
        return ops.softmax(_float(params) / temperature, axis=-1)

    def sample(self, params, noise, temperature=1.0, top_k=0, top_p=1.0):
        """int32 classes ``[...]`` by inverse CDF (see ``samplers.sample_logits``).

        ``noise``: ``[..., 1]`` uniforms (or ``[...]``).
        """
        params = ops.convert_to_tensor(params)
        u = _squeeze_noise(noise, params)
        return _samplers.sample_logits(params, u, temperature=temperature, top_k=top_k, top_p=top_p)

    def mode(self, params):
        return _samplers.greedy(params)

    def to_waveform(self, samples):
        """int classes -> float32 waveform in [-1, 1]."""
        if self.mu_law:
            return _mu_law.decode(samples, self.bits)
        q = ops.cast(samples, "float32")
        return ops.clip(q * (2.0 / (self.num_classes - 1)) - 1.0, -1.0, 1.0)

    def from_waveform(self, x):
        """float waveform in [-1, 1] -> int32 classes."""
        if self.mu_law:
            return _mu_law.encode(x, self.bits)
        x = ops.clip(ops.cast(x, "float32"), -1.0, 1.0)
        q = ops.round((x + 1.0) * ((self.num_classes - 1) / 2.0))
        return ops.clip(ops.cast(q, "int32"), 0, self.num_classes - 1)

    def get_config(self):
        return {"num_classes": self.num_classes, "mu_law": self.mu_law}


def _squeeze_noise(noise, params):
    """Noise ``[..., 1]`` (same rank as params) -> ``[...]``; ``[...]`` as is."""
    noise = ops.convert_to_tensor(noise)
    if len(noise.shape) == len(params.shape):
        return noise[..., 0]
    return noise


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
_TYPES = {
    "categorical": Categorical,
    "mixture_logistic": DiscretizedMixtureOfLogistics,
    "gaussian": Gaussian,
}

# key -> (kind, validator description); kinds: "int", "float", "bool"
_KWARGS = {
    "categorical": {"num_classes": "int", "mu_law": "bool"},
    "mixture_logistic": {"num_mixtures": "int", "num_classes": "int", "log_scale_min": "float"},
    "gaussian": {"log_scale_min": "float"},
}


def _check_kwarg(key, kind, value):
    where = f"model.distribution.{key}"
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    return value


def get_distribution(config):
    """Build a distribution from ``{"type": ..., **kwargs}``.

    ``type`` is ``"categorical"``, ``"mixture_logistic"`` or ``"gaussian"``.
    A :class:`Distribution` instance is returned unchanged.  Raises
    :class:`seqgen.errors.ConfigError` naming ``model.distribution.<key>``
    for an unknown type, an unknown key or a bad value.
    """
    if isinstance(config, Distribution):
        return config
    if not isinstance(config, dict):
        raise ConfigError(f"model.distribution: expected a mapping, got {type(config).__name__}")
    config = dict(config)
    if "type" not in config:
        raise ConfigError(
            "model.distribution.type: missing (one of " + ", ".join(sorted(_TYPES)) + ")"
        )
    type_name = config.pop("type")
    if not isinstance(type_name, str) or type_name not in _TYPES:
        raise ConfigError(
            f"model.distribution.type: unknown distribution {type_name!r} "
            "(one of " + ", ".join(sorted(_TYPES)) + ")"
        )
    allowed = _KWARGS[type_name]
    kwargs = {}
    for key, value in config.items():
        if key not in allowed:
            raise ConfigError(
                f"model.distribution.{key}: unknown key for type {type_name!r} "
                "(allowed: " + ", ".join(sorted(allowed)) + ")"
            )
        kwargs[key] = _check_kwarg(key, allowed[key], value)
    try:
        return _TYPES[type_name](**kwargs)
    except ValueError as exc:
        # name the offending key: the constructor messages start with it
        msg = str(exc)
        key = msg.split(" ", 1)[0] if msg.split(" ", 1)[0] in allowed else next(iter(kwargs), "type")
        raise ConfigError(f"model.distribution.{key}: {msg}") from None
