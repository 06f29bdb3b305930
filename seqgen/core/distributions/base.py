"""The base of the output distributions: what a network's per-step output means, and the helpers they share."""
import keras
from keras import ops


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


def _squeeze_noise(noise, params):
    """Noise ``[..., 1]`` (same rank as params) -> ``[...]``; ``[...]`` as is."""
    noise = ops.convert_to_tensor(noise)
    if len(noise.shape) == len(params.shape):
        return noise[..., 0]
    return noise
