"""The base of the output distributions: what a network's per-step output means, and the helpers they share."""
import keras
import numpy as np
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

    def bits_to_16bit(self, target):
        """Per-sample bits to add to ``nll / ln 2`` so the figure is in bits per 16-bit linear sample.

        A 16-bit recording takes one of 65536 values; a class that holds ``w`` of them (its width in
        16-bit steps) gives each a ``1/w`` share of its probability, so
        ``-log2 p(value) = -log2 p(class) + log2 w``.  A density over [-1, 1] gives a 16-bit step
        (width 1/32768) the mass ``p(x) / 32768``: ``+15`` bits.  With this the NLL of a coarser quantizer,
        a finer one and a continuous head are figures in one unit.  ``target``: the distribution's
        targets (numpy); returns float64 ``[...]``.
        """
        raise NotImplementedError

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


def codes_per_class(to_class, num_classes):
    """How many of the 65536 16-bit values (``v / 32768``) fall in each class, as float64 ``[num_classes]``,
    floored at 1 (a class no 16-bit value reaches still holds the value it is decoded to)."""
    values = np.arange(-32768, 32768, dtype=np.float64) / 32768.0
    classes = np.asarray(to_class(values.astype(np.float32))).astype(np.int64)
    return np.maximum(np.bincount(classes, minlength=num_classes)[:num_classes], 1).astype(np.float64)


# ----------------------------------------------------------------------------
# Categorical
# ----------------------------------------------------------------------------


def _squeeze_noise(noise, params):
    """Noise ``[..., 1]`` (same rank as params) -> ``[...]``; ``[...]`` as is."""
    noise = ops.convert_to_tensor(noise)
    if len(noise.shape) == len(params.shape):
        return noise[..., 0]
    return noise
