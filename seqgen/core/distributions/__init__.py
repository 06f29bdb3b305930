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

from seqgen.core.distributions.base import NOISE_EPS, Distribution
from seqgen.core.distributions.categorical import Categorical
from seqgen.core.distributions.gaussian import Gaussian
from seqgen.core.distributions.mixture_logistic import DiscretizedMixtureOfLogistics
from seqgen.errors import ConfigError

__all__ = [
    "Distribution",
    "Categorical",
    "DiscretizedMixtureOfLogistics",
    "Gaussian",
    "get_distribution",
    "NOISE_EPS",
]


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
